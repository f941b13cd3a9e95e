"""agents.callbacks.AtomicCheckpoint: rollout-boundary checkpoints, and only the newest kept."""

from __future__ import annotations

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
