"""`roadsight eval` as a user runs it (subprocesses, real urban-crossing scenes, tiny budgets)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from agents.metrics import read_episodes_csv
from roadsight.paths import MODELS_DIR
from tests.agents.test_report import probe_in_chromium

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))
ENV = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
TINY = ("progress_bar=false", "n_boot=200", "device=cpu")


def roadsight(command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ROADSIGHT, command, *args], capture_output=True, text=True,
                          timeout=600, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"roadsight {command} {' '.join(args)} failed:\n"
                             f"{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny kinematics PPO run (64 steps, 5 s episodes), made once for the module."""
    out = tmp_path_factory.mktemp("train") / "run"
    roadsight("train", "observation=kinematics", "agent=ppo", "extractor=mlp",
              "total_timesteps=64", "agent.n_steps=64", "n_envs=1", "eval_freq=0",
              "eval_episodes=1", "env.config.duration=5", "progress_bar=false", "device=cpu",
              "threads=1", f"hydra.run.dir={out}")
    return out


def evaluate(out: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return roadsight("eval", *TINY, *args, f"hydra.run.dir={out}", check=check)


def frames(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(path) as reader:
        return [np.asarray(f) for f in reader]


def test_artefacts_exist_and_agree(trained, tmp_path):
    out = tmp_path / "eval"
    proc = evaluate(out, f"run={trained}", "episodes=2", "videos=1")
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_episodes_csv(out / "episodes.csv")
    assert metrics["episodes"] == len(rows) == 2
    assert [r.seed for r in rows] == [10_000, 10_001]
    assert metrics["return_mean"] == pytest.approx(np.mean([r.episode_return for r in rows]))
    assert metrics["crash_rate"] == pytest.approx(np.mean([r.crashed for r in rows]))
    assert metrics["distance_mean"] == pytest.approx(np.mean([r.distance for r in rows]))
    lo, hi = metrics["return_mean_ci95"]
    assert lo <= metrics["return_mean"] <= hi
    assert metrics["checkpoint"].endswith("best_model.zip")
    videos = sorted((out / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["episode_000.mp4"]
    with imageio.get_reader(videos[0]) as reader:
        meta = reader.get_meta_data()
    assert meta["codec"] == "h264" and meta["fps"] == 2.0  # urban-crossing decides at 2 Hz
    video = frames(videos[0])
    assert len(video) == rows[0].length
    assert video[0].shape[0] % 2 == 0 and video[0].shape[1] % 2 == 0
    page = (out / "report.html").read_text()
    assert 'src="videos/episode_000.mp4"' in page and page.count("<tr>") >= 2
    plot = (out / "episodes.png").read_bytes()
    assert plot.startswith(b"\x89PNG") and base64.b64encode(plot).decode() in page  # embedded
    state = probe_in_chromium(out / "report.html", tmp_path / "profile")  # as a browser shows it
    assert state["rows"] == 2
    assert state["duration"] == pytest.approx(rows[0].length / 2.0, abs=0.1)
    assert state["t1"] > state["t0"], state  # it plays
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert "return_mean" in proc.stdout and "report.html" in proc.stdout


def test_same_seed_same_metrics_and_frames(trained, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 0), (b, 0), (c, 5)):
        evaluate(out, f"run={trained}", "episodes=1", "videos=1", f"seed={seed}")
    assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()
    assert (a / "episodes.csv").read_text() == (b / "episodes.csv").read_text()
    fa, fb = frames(a / "videos/episode_000.mp4"), frames(b / "videos/episode_000.mp4")
    assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert read_episodes_csv(c / "episodes.csv")[0].seed == 10_005
    assert frames(c / "videos/episode_000.mp4")[0].tobytes() != fa[0].tobytes()


def test_driver_idm_runs_without_a_run(tmp_path):
    out = tmp_path / "idm"
    evaluate(out, "driver=idm", "episodes=1", "videos=0", "env.config.duration=3",
             "scenario=dense_traffic", "record_frames=true")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["driver"] == "idm" and metrics["scenario"] == "dense_traffic"
    assert metrics["episodes"] == 1 and "detection_AP50" not in metrics
    assert not (out / "videos").exists()
    coco = json.loads((out / "frames/annotations.json").read_text())
    steps = read_episodes_csv(out / "episodes.csv")[0].length
    assert len(coco["images"]) == steps and coco["annotations"]
    config = json.loads(json.dumps(coco["info"]))["env_config"]
    assert config["vehicles_count"] == 20  # the scenario's traffic


def test_skip_finished_runs_only_what_is_missing(tmp_path):
    out = tmp_path / "idm"
    job = ("driver=idm", "episodes=1", "videos=0", "n_boot=0")
    evaluate(out, *job, "env.config.duration=2")
    first = json.loads((out / "run.json").read_text())
    stamp = (out / "metrics.json").stat().st_mtime_ns
    # the torch thread count does not change a result: the job stays finished under another
    proc = evaluate(out, *job, "env.config.duration=2", "skip_finished=true", "threads=1")
    assert "already holds a finished eval of this config" in proc.stdout + proc.stderr
    assert json.loads((out / "run.json").read_text()) == first  # not run again
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    evaluate(out, *job, "env.config.duration=3", "skip_finished=true")  # another config: runs
    again = json.loads((out / "run.json").read_text())
    assert again["start"] != first["start"] and again["config_sha256"] != first["config_sha256"]
    assert again["config"]["env"]["config"]["duration"] == 3


def test_perception_metrics_and_crash_attribution(tmp_path):
    """A driver seen through the shipped detector: AP50/recall along the drive, attribution."""
    out = tmp_path / "objects"
    evaluate(out, "driver=idm", "observation=objects", "episodes=1", "videos=1",
             "env.config.duration=3")
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 < metrics["detection_AP50"] <= 1.0 and 0.0 < metrics["detection_recall"] <= 1.0
    assert metrics["detection_frames"] == read_episodes_csv(out / "episodes.csv")[0].length
    attribution = metrics["crash_attribution"]
    assert attribution["crashes"] == sum(attribution[k] for k in
                                         ("perception_miss", "late_detection", "policy_error"))


def no_artefacts(out: Path) -> bool:
    return not any((out / name).exists() for name in ("metrics.json", "episodes.csv",
                                                      "videos", "report.html"))


def test_bad_inputs_name_the_file_and_write_nothing(trained, tmp_path):
    bare = tmp_path / "bare"  # a run directory without a model
    shutil.copytree(trained / ".hydra", bare / ".hydra")
    cases = [
        (("run=/nonexistent/run",), "run=/nonexistent/run: no such directory"),
        ((f"run={tmp_path}",), f"{tmp_path}/.hydra/config.yaml does not exist"),
        ((f"run={bare}",), f"{bare}/best_model.zip does not exist"),
        ((f"run={trained}", "checkpoint=nope.zip"), f"{trained}/nope.zip does not exist"),
        (("scenario=foggy", f"run={trained}"), "roadsight eval: scenario=foggy: no such option; "
         "choose from default, dense_traffic, jaywalkers, many_pedestrians, night"),
        ((), "pass run=OUT"),
    ]
    for k, (args, message) in enumerate(cases):
        out = tmp_path / f"out{k}"
        proc = evaluate(out, *args, check=False)
        assert proc.returncode != 0, args
        assert message in proc.stderr.strip().splitlines()[-1], proc.stderr[-2000:]
        assert no_artefacts(out), args


def test_a_checkpoint_for_another_observation_is_refused(trained, tmp_path):
    import gymnasium as gym
    from stable_baselines3 import PPO

    other = tmp_path / "cartpole.zip"
    PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, device="cpu").save(other)
    out = tmp_path / "out"
    proc = evaluate(out, f"run={trained}", f"checkpoint={other}", check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f"checkpoint={other}: its observation_space" in last and "pass a checkpoint" in last
    assert no_artefacts(out)


def test_a_shield_overrides_the_driver_and_counts_it(tmp_path):
    """shield=gap between the driver and the env: a shield that finds everything ahead too
    close (gap 1000 m, corridor 1000 m) brakes the IDM driver; its steps are counted."""
    plain, shielded = tmp_path / "plain", tmp_path / "shielded"
    common = ("driver=idm", "episodes=1", "videos=1", "env.config.duration=8")
    evaluate(plain, *common)
    evaluate(shielded, *common, "shield=gap", "shield.min_gap=1000", "shield.corridor=1000")
    a = json.loads((plain / "metrics.json").read_text())
    b = json.loads((shielded / "metrics.json").read_text())
    assert "shield_intervention_rate" not in a and b["shield"] == "gap"
    row = read_episodes_csv(shielded / "episodes.csv")[0]
    assert row.shield_interventions > 0
    assert b["shield_intervention_rate"] == pytest.approx(row.shield_interventions / row.length)
    # which rules changed the driver's actions: the shares add up to the intervention rate
    rates = b["shield_rule_rates"]
    assert sum(rates.values()) == pytest.approx(b["shield_intervention_rate"])
    assert rates["gap_vehicle"] + rates["gap_obstacle"] + rates["gap_pedestrian"] > 0
    assert b["distance_mean"] < a["distance_mean"]
    proc = evaluate(tmp_path / "bad", *common, "shield=gap", "shield.corridor=0", check=False)
    assert "shield.corridor=0: need a value > 0" in proc.stderr.strip().splitlines()[-1]


def test_run_overrides_change_what_a_trained_policy_sees(tmp_path):
    """A what-if on the shipped objects policy: its own config with 3 s episodes, then the same
    with a detector threshold nothing passes, and with the ground-truth boxes for detections
    (perception.detector=truth, a key its config predates); metrics.json records the
    overrides."""
    run = MODELS_DIR / "urban_crossing-objects"
    recall = {}
    for name, extra in (("own", ""), ("blind", ",perception.score_thresh:0.999"),
                        ("truth", ",perception.detector:truth")):
        out = tmp_path / name
        evaluate(out, f"run={run}", f"run_overrides={{env.config.duration:3{extra}}}",
                 "episodes=1", "videos=0", "n_boot=0")
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["detection_frames"] == 6  # 3 s at 2 decisions per second
        recall[name] = metrics["detection_recall"]
        assert metrics["run_overrides"]["env.config.duration"] == 3
        ran_under = json.loads((out / "run.json").read_text())["policy_config"]
        assert ran_under["env"]["config"]["duration"] == 3  # what ran, not eval.yaml's env
        assert ran_under["env"]["id"] == "roadsight/urban-crossing-v0"
        assert (ran_under["perception"]["score_thresh"] == 0.999) == (name == "blind")
        # at its earlier value a later key counts as absent (agents.finished.ADDED_KEYS)
        assert ran_under["perception"].get("detector") == ("truth" if name == "truth" else None)
    assert recall["own"] > 0.8 and recall["blind"] == 0.0
    assert recall["truth"] > 0.95 and recall["truth"] >= recall["own"]
