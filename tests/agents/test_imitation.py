"""agents.imitation: the privileged teacher's labels and DAgger, on real urban-crossing scenes."""

from __future__ import annotations

import numpy as np
import pytest

from agents.build import build_agent, build_env, teacher_config
from agents.imitation import LABEL, DaggerOptions, TeacherLabels, dagger, discounted_returns
from agents.seeding import train_seed_base
from roadsight.errors import ConfigError
from sim.drivers import IDMDriver
from sim.make import make_env
from tests.agents.test_build import config


def test_labels_are_the_teachers_action_in_the_state_observed():
    env = TeacherLabels(make_env("roadsight/urban-crossing-v0", {"duration": 5}), IDMDriver())
    reference = IDMDriver()
    _, info = env.reset(seed=3)
    reference.reset(env, 3)
    labels = [info[LABEL]]
    assert info[LABEL] == reference.act(env)
    for _ in range(6):
        _, _, terminated, truncated, info = env.step(info[LABEL])  # the teacher drives
        assert info[LABEL] == reference.act(env)  # the label of the state now
        labels.append(info[LABEL])
        if terminated or truncated:
            break
    assert set(labels) <= set(range(5)) and len(set(labels)) > 1  # it accelerates, then holds
    env.close()


def test_discounted_returns_restart_at_episode_ends():
    rewards = np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    dones = np.array([False, False, True, False, False])
    np.testing.assert_allclose(discounted_returns(rewards, dones, 0.5),
                               [1.75, 1.5, 1.0, 3.0, 2.0])


def agreement(model, venv, steps: int) -> float:
    """Share of `steps` vector steps where the deterministic student takes the teacher's action
    (the teacher drives, so both see the same states)."""
    obs = venv.reset()
    labels = np.array([r[LABEL] for r in venv.unwrapped.reset_infos])
    same = 0
    for _ in range(steps):
        same += int(np.sum(model.predict(obs, deterministic=True)[0] == labels))
        obs, _, dones, infos = venv.step(labels)
        labels = np.array([venv.unwrapped.reset_infos[i][LABEL] if dones[i] else infos[i][LABEL]
                           for i in range(venv.num_envs)])
    return same / (steps * venv.num_envs)


def test_dagger_teaches_the_student_the_teachers_actions():
    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "imitation.teacher=idm",
                 "agent.n_steps=64", "total_timesteps=64")
    venv = build_env(cfg, 1, teacher=teacher_config(cfg))
    try:
        model = build_agent(cfg, venv)
        venv.seed(train_seed_base(7))
        before = agreement(model, venv, 40)
        stats = dagger(model, venv, DaggerOptions(steps=600, rounds=2, epochs=15), seed=0,
                       progress_bar=False)
        venv.seed(train_seed_base(8))  # other episodes than the ones it learnt on
        after = agreement(model, venv, 40)
    finally:
        venv.close()
    assert stats["dataset"] == 600 and stats["round"] == 1 and stats["beta"] == 0.5
    assert after >= 0.6 and after > before + 0.2, (before, after)


def test_bad_imitation_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"imitation.teacher='human'; choose from null, idm"):
        teacher_config(config("imitation.teacher=human"))
    with pytest.raises(ConfigError, match=r"imitation.steps=0"):
        DaggerOptions(steps=0)
    with pytest.raises(ConfigError, match=r"imitation.beta=1.5"):
        DaggerOptions(beta=1.5)
    cfg = config("observation=kinematics", "agent=dqn", "extractor=mlp", "n_envs=1",
                 "total_timesteps=64", "agent.train_freq=4",
                 "imitation.teacher=idm")
    venv = build_env(cfg, 1, teacher=teacher_config(cfg))
    try:
        with pytest.raises(ConfigError, match=r"actor-critic policy \(agent=ppo\), not DQN"):
            dagger(build_agent(cfg, venv), venv, DaggerOptions(steps=8), progress_bar=False)
    finally:
        venv.close()
