"""agents.callbacks.AtomicCheckpoint: rollout-boundary checkpoints, and only the newest kept."""

from __future__ import annotations

import json

import pytest

from agents.build import build_agent, build_env
from agents.callbacks import AtomicCheckpoint, checkpoints
from tests.agents.test_build import config


@pytest.mark.parametrize(("keep", "expected"), [(0, [64, 128, 192]), (2, [128, 192])])
def test_checkpoints_every_rollout_and_keep_the_newest(tmp_path, keep, expected):
    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "agent.n_steps=64",
                 "agent.batch_size=64", "agent.n_epochs=1", "total_timesteps=256")
    venv = build_env(cfg, 1)
    try:
        model = build_agent(cfg, venv)
        model.learn(256, callback=AtomicCheckpoint(tmp_path, 64, keep))
    finally:
        venv.close()
    assert [c.steps for c in checkpoints(tmp_path)] == expected
    assert {p.name for p in tmp_path.iterdir()} == {f"model_{s}_steps.zip" for s in expected}


def test_clock_resumes_from_the_seconds_at_the_checkpoint(tmp_path):
    from agents.callbacks import TrainClock
    from roadsight.io import atomic_write_json

    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "agent.n_steps=64",
                 "total_timesteps=64")
    venv = build_env(cfg, 1)
    try:
        model = build_agent(cfg, venv)
    finally:
        venv.close()
    path = tmp_path / "train_time.json"
    # the interrupted sitting logged rollouts up to 192 steps; its last checkpoint was at 128
    atomic_write_json(path, {"seconds": 31.0, "steps": 192,
                             "log": [[64, 10.0], [128, 20.0], [192, 30.0]]})
    model.num_timesteps = 128
    clock = TrainClock(path, resumed=True)
    clock.init_callback(model)
    clock.on_training_start({}, {})
    assert clock.base == 20.0 and clock.log == [[64, 10.0], [128, 20.0]]
    clock.on_rollout_start()
    stored = json.loads(path.read_text())
    assert stored["steps"] == 128 and 20.0 <= stored["seconds"] < 25.0
    # a checkpoint between two entries (the log is written at most every 10 s): interpolated
    atomic_write_json(path, {"seconds": 30.0, "steps": 192, "log": [[0, 0.0], [192, 30.0]]})
    model.num_timesteps = 64
    between = TrainClock(path, resumed=True)
    between.init_callback(model)
    between.on_training_start({}, {})
    assert between.base == pytest.approx(10.0) and between.log == [[0, 0.0]]
    fresh = TrainClock(path, resumed=False)
    fresh.init_callback(model)
    fresh.on_training_start({}, {})
    assert fresh.base == 0.0 and fresh.log == []
    for steps in range(129, 229):  # a DQN's one-step rollouts, within a second
        model.num_timesteps = steps
        fresh.on_rollout_start()
    assert fresh.log == [[129, 0.0]]  # the first; then at most one write every 10 s
    fresh.on_training_end()
    stored = json.loads(path.read_text())
    assert stored["steps"] == 228 and [e[0] for e in stored["log"]] == [129, 228]
