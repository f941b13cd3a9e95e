"""Multiruns of roadsight commands through the launchers of conf/hydra/launcher/ (joblib,
submitit_local, a real single-node SLURM cluster), a failing job, an Optuna study that resumes,
a finished train sweep run again that trains nothing."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from roadsight.launch import SweepJobs, job_dir_name, job_threads

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))
ENV = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
RECORD_2X2 = ("episodes=1", "max_steps=2", "seed=0,1", "camera=bev,front")
# tiny PPO trainings (16 env steps, one 5 s evaluation episode), 2 extractors x 2 seeds
TRAIN_2X2 = ("total_timesteps=16", "agent.n_steps=16", "agent.batch_size=16", "agent.n_epochs=1",
             "n_envs=1", "eval_episodes=1", "eval_freq=0", "checkpoint_freq=0",
             "env.config.duration=5", "progress_bar=false", "device=cpu", "seed=0,1",
             "extractor=mlp,attention")


def roadsight(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ROADSIGHT, *args], capture_output=True, text=True, timeout=600,
                          env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"roadsight {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def summary_rows(sweep: Path) -> dict[str, dict]:
    roadsight("summarize", f"sweep={sweep}", "metrics=[annotations,images]")
    return {r["overrides"]: r for r in csv.DictReader((sweep / "summary.csv").open())}


def check_2x2(sweep: Path) -> None:
    """4 job dirs named from their overrides; the summary groups them by camera over 2 seeds."""
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert [p.name.split("_", 1)[0] for p in jobs] == ["0", "1", "2", "3"]
    assert all("seed=" in p.name and "camera=" in p.name for p in jobs)
    boxes: dict[str, list[int]] = {}
    for job in jobs:
        camera = "camera=bev" if "camera=bev" in job.name else "camera=front"
        boxes.setdefault(camera, []).append(json.loads((job / "metrics.json").read_text())[
            "annotations"])
    rows = summary_rows(sweep)
    assert len(rows) == 2
    for camera, values in boxes.items():
        (row,) = [r for key, r in rows.items() if camera in key.split()]
        assert int(row["n"]) == 2 and int(row["failed"]) == 0
        assert float(row["annotations"]) == pytest.approx(sum(values) / 2)
    assert "n seeds" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_2x2_record_sweep_with_joblib(tmp_path):  # a command other than train sweeps too
    roadsight("record", "-m", "hydra/launcher=joblib", *RECORD_2X2, f"hydra.sweep.dir={tmp_path}")
    check_2x2(tmp_path)


@pytest.mark.slow
# joblib's train sweeps: the README's example (tests/apps/test_readme_examples.py) and
# test_rerunning_a_finished_train_sweep_trains_nothing; its 2x2 job naming: the record sweep above
@pytest.mark.parametrize("launcher", ["submitit_local"])
def test_2x2_train_sweep_on_this_machine(tmp_path, launcher):
    roadsight("train", "-m", f"hydra/launcher={launcher}", *TRAIN_2X2,
              f"hydra.sweep.dir={tmp_path}")
    check_train_2x2(tmp_path)


def check_train_2x2(sweep: Path) -> None:
    """4 trained job dirs; the summary groups them by extractor over 2 seeds."""
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert [p.name.split("_", 1)[0] for p in jobs] == ["0", "1", "2", "3"]
    returns: dict[str, list[float]] = {}
    for job in jobs:
        assert (job / "model.zip").is_file() and (job / "tb").is_dir()
        overrides = (job / ".hydra" / "overrides.yaml").read_text()  # long names are cut
        extractor = "extractor=mlp" if "extractor=mlp" in overrides else "extractor=attention"
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["total_timesteps"] == 16
        returns.setdefault(extractor, []).append(metrics["return_mean"])
    roadsight("summarize", f"sweep={sweep}", "metrics=[return_mean,crash_rate]")
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 2  # grouped by everything but the seed
    for extractor, values in returns.items():
        (row,) = [r for r in rows if extractor in r["overrides"].split()]
        assert int(row["n"]) == 2 and int(row["failed"]) == 0
        assert float(row["return_mean"]) == pytest.approx(sum(values) / 2)


@pytest.mark.slow
def test_2x2_train_sweep_on_a_real_slurm_cluster(tmp_path):
    if shutil.which("sinfo") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM: .ci/run starts it with scripts/slurm-up")
        pytest.skip("no SLURM here (sinfo missing): scripts/slurm-up starts a one-node cluster")
    roadsight("train", "-m", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=debug",
              "hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_task=null",
              "hydra.launcher.mem_gb=1", *TRAIN_2X2, f"hydra.sweep.dir={tmp_path}")
    assert list((tmp_path / ".submitit").iterdir())  # the jobs went through sbatch
    check_train_2x2(tmp_path)


def test_slurm_without_partition_names_the_key(tmp_path):
    proc = roadsight("record", "-m", "hydra/launcher=submitit_slurm", "seed=0,1",
                     f"hydra.sweep.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "roadsight: hydra.launcher.partition: no value given")
    assert not tmp_path.exists() or not list(tmp_path.iterdir())



def test_unknown_launcher_or_experiment_lists_the_choices():
    from roadsight.overrides import check_overrides

    assert check_overrides(["-m", "hydra/launcher=slurm", "seed=0,1"], "train") == (
        "hydra/launcher=slurm: no such launcher; choose from basic, joblib, submitit_local, "
        "submitit_slurm")
    assert check_overrides(["-m", "experiment=benchmark_urban,nope"], "train") == (
        "experiment=nope: no such option; choose from benchmark_urban, highway_fast, "
        "highway_fast_dagger, highway_hazards, urban_crossing, urban_crossing_dagger")


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_others_and_is_reported(tmp_path):
    proc = roadsight("record", "-m", "hydra/launcher=joblib", "episodes=1", "max_steps=2",
                     "record.every=1,0", "seed=0,1", f"hydra.sweep.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    done = sorted(p.name for p in tmp_path.glob("*/metrics.json"))
    assert len(done) == 2  # the every=1 jobs, both seeds
    rows = summary_rows(tmp_path)
    (bad,) = [r for key, r in rows.items() if "record.every=0" in key]
    assert int(bad["failed"]) == 2 and int(bad["n"]) == 0
    jobs = list(csv.DictReader((tmp_path / "jobs.csv").open()))
    failed = [j for j in jobs if j["status"] != "ok"]
    assert len(failed) == 2 and all("record.every=0" in j["error"] for j in failed)
    assert "Failed jobs (2)" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_optuna_study_completes_and_resumes_from_its_storage(tmp_path):
    optuna = pytest.importorskip("optuna")  # the `sweep` extra; `make install` has it
    args = ("train", "-m", "+hparams_search=ppo_urban", "hydra/launcher=joblib",
            "hydra.sweeper.n_trials=2", "agent.n_steps=choice(16,32)", "total_timesteps=32",
            "agent.batch_size=16", "agent.n_epochs=1", "env.config.duration=5",
            "eval_episodes=1", "n_envs=1", "eval_freq=0", "checkpoint_freq=0", "extractor=mlp",
            "progress_bar=false", "device=cpu", f"hydra.sweep.dir={tmp_path}")
    storage = f"sqlite:///{tmp_path}/optuna.db"
    roadsight(*args)
    trials = optuna.load_study(study_name="ppo_urban", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    roadsight(*args)  # the same command again: 2 more trials in the same study
    trials = optuna.load_study(study_name="ppo_urban", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    # the objective is the train app's return_mean (a trial that repeats a finished job's
    # config shares its job dir and returns its stored metric: compare as sets)
    # (32 steps barely move the policy: distinct trials may well return the same value, so
    # count the jobs, not the values)
    finished = list(tmp_path.glob("*/metrics.json"))
    returned = {json.loads(p.read_text())["return_mean"] for p in finished}
    assert len(finished) >= 2 and {t.value for t in trials} == returned


TINY_TRAIN = ("agent=ppo", "agent.n_steps=16", "agent.batch_size=16", "agent.n_epochs=1",
              "total_timesteps=16", "env.config.duration=5", "eval_episodes=1", "n_envs=1",
              "eval_freq=0", "checkpoint_freq=0", "extractor=mlp", "progress_bar=false",
              "device=cpu")


@pytest.mark.slow
def test_rerunning_a_finished_train_sweep_trains_nothing(tmp_path):
    args = ("train", "-m", "hydra/launcher=joblib", *TINY_TRAIN, "seed=0,1",
            f"hydra.sweep.dir={tmp_path}")
    roadsight(*args)
    jobs = sorted(p for p in tmp_path.iterdir() if (p / "run.json").is_file())
    assert len(jobs) == 2

    def state() -> dict:
        return {str(p.relative_to(tmp_path)): p.stat().st_mtime_ns for job in jobs
                for p in [job / "run.json", job / "metrics.json", *(job / "tb").rglob("*")]}

    before = state()
    assert any("tfevents" in k for k in before)
    roadsight(*args)  # the same sweep again: every job is finished already
    assert state() == before  # no run.json rewritten, no new TensorBoard events
    for job in jobs:
        logs = "".join(p.read_text() for p in job.glob("*.log"))
        assert "already holds a finished train of this config" in logs
    # another config in the same dir trains again: tests/agents/test_finished.py


def test_job_threads_share_the_cores(monkeypatch):
    assert job_threads(None, 2, cores=8) == 4
    assert job_threads(None, 3, cores=2) == 1
    assert job_threads(3, 2, cores=8) == 3  # SLURM's cpus_per_task wins
    assert job_threads(None, -1, cores=8) == 1
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "99")
    before = torch.get_num_threads()
    try:
        SweepJobs(parallel_jobs=os.cpu_count()).on_job_start(config=None)
        assert os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def _job_starting_a_process() -> int:
    """In a joblib worker: the job's start hook, then a process as SubprocVecEnv starts one
    (forkserver); its exit code."""
    import multiprocessing

    SweepJobs(parallel_jobs=2).on_job_start(config=None)
    worker = multiprocessing.get_context("forkserver").Process(target=os.getpid)
    worker.start()
    worker.join(timeout=60)
    return worker.exitcode


def test_a_joblib_job_can_start_processes():
    # joblib's loky workers leave their start method as the default; a process started from
    # one failed with "cannot find context for 'loky'" (train -m ... n_envs=2 under joblib)
    from joblib import Parallel, delayed

    assert Parallel(n_jobs=2, backend="loky")(
        delayed(_job_starting_a_process)() for _ in range(2)) == [0, 0]


def test_job_dir_names_are_short_unique_and_flat():
    assert job_dir_name(3, "agent=dqn,seed=1") == "3_agent=dqn,seed=1"
    assert job_dir_name(0, "agent.learning_rate=0.00012520653814999459") == (
        "0_agent.learning_rate=0.0001252")
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    a, b = job_dir_name(0, long_a), job_dir_name(0, long_b)
    assert len(a) <= 120 and a != b
    assert "/" not in job_dir_name(1, "out=a/b")
