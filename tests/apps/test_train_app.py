"""`roadsight train` as a user runs it (subprocesses, real urban-crossing scenes, tiny budgets)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN

from agents.callbacks import checkpoints
from agents.metrics import read_episodes_csv

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))
TINY = ("env.config.duration=5", "eval_episodes=1", "n_envs=1", "progress_bar=false",
        "device=cpu", "threads=1")
DQN_ARGS = ("agent=dqn", "extractor=mlp", "agent.learning_starts=32", "agent.buffer_size=1000")
ENV = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ROADSIGHT, "train", *TINY, *args], capture_output=True, text=True,
                          timeout=600, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"roadsight train {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def test_killed_run_resumes_to_exactly_total_timesteps(tmp_path):
    out = tmp_path / "run"
    args = (*DQN_ARGS, "total_timesteps=400", "checkpoint_freq=100", "eval_freq=0",
            f"hydra.run.dir={out}")
    proc = subprocess.Popen([ROADSIGHT, "train", *TINY, *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not checkpoints(out / "checkpoints"):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # mid-training, right after the first checkpoint
    proc.wait()
    first = checkpoints(out / "checkpoints")
    assert first and first[-1].steps < 400 and not (out / "model.zip").exists()
    run(*args, "resume=true")
    model = DQN.load(out / "model.zip", device="cpu")
    assert model.num_timesteps == 400
    saved = checkpoints(out / "checkpoints")
    assert [c.steps for c in saved][: len(first)] == [c.steps for c in first]
    for c in saved:  # every checkpoint loads, with its replay buffer
        m = DQN.load(c.model, device="cpu")
        assert m.num_timesteps == c.steps
        m.load_replay_buffer(c.replay_buffer)
        assert m.replay_buffer.size() == min(c.steps, 1000)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["total_timesteps"] == 400 and metrics["episodes"] == 1
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert not list(out.rglob("*.tmp"))


def test_run_dir_artefacts_and_best_model(tmp_path):
    out = tmp_path / "run"
    run("agent=ppo", "extractor=attention", "agent.n_steps=64", "agent.batch_size=32",
        "total_timesteps=128", "eval_freq=64", "checkpoint_freq=64", f"hydra.run.dir={out}")
    for name in ("model.zip", "best_model.zip", "run.json", "metrics.json", ".hydra/config.yaml"):
        assert (out / name).is_file(), name
    assert list((out / "tb").rglob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("return_mean", "return_std", "crash_rate", "pedestrian_collision_rate",
                "mean_speed", "episodes", "at_fault_crash_rate", "distance_mean",
                "return_mean_ci95"):  # roadsight eval's metrics
        assert key in metrics
    assert 0 <= metrics["crash_rate"] <= 1 and metrics["mean_speed"] > 0
    rows = read_episodes_csv(out / "episodes.csv")
    assert [r.seed for r in rows] == [10_000] and metrics["episodes"] == 1
    assert metrics["return_mean"] == pytest.approx(rows[0].episode_return)
    clock = json.loads((out / "train_time.json").read_text())
    assert clock["steps"] == 128 and metrics["train_seconds"] == clock["seconds"] > 0
    assert metrics["train_steps_per_second"] == pytest.approx(128 / clock["seconds"])


def test_teacher_then_ppo_and_a_resumed_run_does_not_imitate_again(tmp_path):
    out = tmp_path / "run"
    args = ("observation=kinematics", "extractor=mlp", "agent.n_steps=64", "eval_freq=0",
            "checkpoint_freq=64", "imitation.teacher=idm", "imitation.steps=96",
            "imitation.rounds=2", "imitation.epochs=2", f"hydra.run.dir={out}")
    first = run(*args, "total_timesteps=128")
    assert "dagger round 1 (beta 0.50)" in first.stdout
    imitation = json.loads((out / "imitation.json").read_text())
    assert imitation["teacher"] == "idm" and imitation["dataset"] == 96
    assert imitation["eval"]["episodes"] == 1 and (out / "imitation_model.zip").is_file()
    assert json.loads((out / "metrics.json").read_text())["imitation"] == imitation
    first_log = json.loads((out / "train_time.json").read_text())["log"]
    second = run(*args, "total_timesteps=192")  # resume=auto: from the last checkpoint
    assert "resuming from" in second.stdout and "dagger round" not in second.stdout
    step = int(re.search(r"resuming from \S+ at step (\d+)", second.stdout).group(1))
    clock = json.loads((out / "train_time.json").read_text())
    # summed: the first sitting's seconds up to the step it resumed from, then this sitting's
    assert clock["steps"] == 192
    assert clock["seconds"] > np.interp(step, *zip(*first_log, strict=True))
    kept = [e for e in first_log if e[0] <= step]  # the first sitting's log up to there stays
    assert clock["log"][:len(kept)] == kept and clock["log"][-1] == [192, clock["seconds"]]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["total_timesteps"] == 192 and metrics["imitation"] == imitation


def test_total_timesteps_0_after_a_teacher_ships_the_student_alone(tmp_path):
    """DAgger without RL: the run's policy is the student, evaluated on the eval seeds as the
    imitation's own evaluation was (same seeds, same figures); without a teacher, 0 is refused
    naming the key."""
    out = tmp_path / "run"
    run("observation=kinematics", "extractor=mlp", "agent.n_steps=64", "eval_freq=0",
        "imitation.teacher=idm", "imitation.steps=96", "imitation.rounds=2",
        "imitation.epochs=2", "total_timesteps=0", f"hydra.run.dir={out}")
    metrics = json.loads((out / "metrics.json").read_text())
    imitation = json.loads((out / "imitation.json").read_text())
    assert metrics["total_timesteps"] == 0 and imitation["dataset"] == 96
    assert metrics["return_mean"] == imitation["eval"]["return_mean"]
    assert (out / "episodes.csv").read_text() == (out / "imitation_episodes.csv").read_text()
    assert (out / "model.zip").is_file() and (out / "best_model.zip").is_file()
    bad = run("observation=kinematics", "total_timesteps=0", f"hydra.run.dir={tmp_path / 'b'}",
              check=False)
    assert bad.returncode != 0
    assert "total_timesteps=0: need a whole number >= 1 (0 only with imitation.teacher" in (
        bad.stderr)
    assert not (tmp_path / "b" / "metrics.json").exists()


def test_a_shielded_run_learns_and_is_evaluated_behind_its_shield(tmp_path):
    """shield=gap in training: the env takes the shield's actions (a shield that finds
    everything too close brakes on every step), TensorBoard logs the intervention rate, the
    final evaluation runs behind it, and `roadsight eval` keeps it unless told shield=off."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    run("agent=ppo", "extractor=mlp", "agent.n_steps=64", "total_timesteps=64", "eval_freq=0",
        "shield=gap", "shield.min_gap=1000", "shield.corridor=1000", f"hydra.run.dir={out}")
    metrics = json.loads((out / "metrics.json").read_text())
    row = read_episodes_csv(out / "episodes.csv")[0]
    assert metrics["shield_intervention_rate"] > 0.5 and row.shield_interventions > 0
    events = EventAccumulator(str(next((out / "tb").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    rates = [e.value for e in events.Scalars("rollout/shield_intervention_rate")]
    assert rates and all(r > 0.5 for r in rates)
    env = {**ENV, "PYTHONWARNINGS": "ignore"}
    for name, shield, rate in (("as_trained", "", metrics["shield_intervention_rate"]),
                               ("off", "shield=off", None)):
        ev = tmp_path / f"eval_{name}"
        subprocess.run([ROADSIGHT, "eval", f"run={out}", "checkpoint=last", "episodes=1",
                        "videos=0", "n_boot=0", "progress_bar=false", f"hydra.run.dir={ev}",
                        *[a for a in (shield,) if a]], check=True, env=env, timeout=600,
                       capture_output=True)
        evaluated = json.loads((ev / "metrics.json").read_text())
        assert evaluated.get("shield_intervention_rate") == (
            None if rate is None else pytest.approx(rate))  # the same seed, the same episode


def test_a_run_killed_mid_imitation_continues_after_its_last_round(tmp_path):
    out = tmp_path / "run"
    args = ("observation=kinematics", "extractor=mlp", "agent.n_steps=64", "eval_freq=0",
            "checkpoint_freq=64", "imitation.teacher=idm", "imitation.steps=240",
            "imitation.rounds=3", "imitation.epochs=2", "total_timesteps=64",
            f"hydra.run.dir={out}")
    state = out / "checkpoints" / "dagger.pt"
    proc = subprocess.Popen([ROADSIGHT, "train", *TINY, *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not state.is_file():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # in round 1, right after round 0 was saved
    proc.wait()
    assert state.is_file() and not (out / "imitation.json").exists()
    second = run(*args)  # resume=auto finds the DAgger state
    assert "dagger: resuming after round 0 of 3" in second.stdout
    assert "dagger round 0 " not in second.stdout and "dagger round 2 " in second.stdout
    imitation = json.loads((out / "imitation.json").read_text())
    assert imitation["dataset"] == 240 and imitation["round"] == 2
    assert not state.exists()  # imitation_model.zip holds the result now
    assert json.loads((out / "metrics.json").read_text())["total_timesteps"] == 64
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(("args", "message"), [
    (("agent=sarsa",), "roadsight train: agent=sarsa: no such option; choose from dqn, ppo"),
    (("extractor=cnn",), "roadsight train: extractor=cnn: no such option; choose from "
                         "attention, feature_cnn, flatten, mlp, nature_cnn"),
    (("observation=lidar",), "roadsight train: observation=lidar: no such option; choose from "
                             "embedding, kinematics, native, objects, pixels"),
    (("imitation.teacher=human",), "roadsight train: imitation.teacher='human'; choose from "
                                   "null, idm"),
    (("imitation.teacher=idm", "agent=dqn"), "roadsight train: imitation.teacher needs an "
                                             "actor-critic policy (agent=ppo), not DQN"),
    (("shield=gap", "observation=pixels", "extractor=nature_cnn"),
     "roadsight train: shield: it reads the object list, and observation=pixels has none"),
    (("observation=objects", "perception.checkpoint=/nonexistent/det.pt"),
     "roadsight train: perception.checkpoint=/nonexistent/det.pt does not exist"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = run(*args, f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_unwritable_run_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run directory should go")
    proc = run("total_timesteps=64", f"hydra.run.dir={blocker / 'run'}", check=False)
    assert proc.returncode != 0 and str(blocker) in proc.stderr
    assert "Training" not in proc.stderr and not list(tmp_path.rglob("*.zip"))
