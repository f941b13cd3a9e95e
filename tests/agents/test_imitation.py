"""agents.imitation: the privileged teacher's labels and DAgger, on real urban-crossing scenes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from agents.build import build_agent, build_env, teacher_config
from agents.imitation import LABEL, DaggerOptions, TeacherLabels, dagger, discounted_returns
from agents.seeding import train_seed_base
from roadsight.errors import ConfigError, UserInputError
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


def test_the_teachers_arguments_reach_the_teacher():
    from hydra.utils import instantiate

    teacher = instantiate(teacher_config(config(
        "imitation.teacher=idm", "+imitation.teacher_kwargs.overtake_gain=0.2")))
    assert isinstance(teacher, IDMDriver) and teacher.overtake_gain == 0.2
    assert instantiate(teacher_config(config("imitation.teacher=idm"))).overtake_gain is None


def test_bad_imitation_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"imitation.teacher='human'; choose from null, idm"):
        teacher_config(config("imitation.teacher=human"))
    with pytest.raises(ConfigError, match=r"imitation.teacher_kwargs.overtake: not a setting of "
                       r"sim.drivers.IDMDriver; choose from lane_change_distance, horizon, "
                       r"overtake_gain"):
        teacher_config(config("imitation.teacher=idm", "+imitation.teacher_kwargs.overtake=1"))
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


def test_dagger_resumes_after_its_last_saved_round(tmp_path, monkeypatch):
    import agents.imitation as imitation

    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "imitation.teacher=idm",
                 "agent.n_steps=64", "total_timesteps=64")
    options = DaggerOptions(steps=90, rounds=3, epochs=2)
    state = tmp_path / "dagger.pt"
    venv = build_env(cfg, 1, teacher=teacher_config(cfg))
    try:
        fits, real_fit = [], imitation._fit

        def fit_then_stop(*args):  # the process dies while training round 1
            fits.append(1)
            if len(fits) == 2:
                raise KeyboardInterrupt
            return real_fit(*args)

        model = build_agent(cfg, venv)
        monkeypatch.setattr(imitation, "_fit", fit_then_stop)
        with pytest.raises(KeyboardInterrupt):
            dagger(model, venv, options, seed=0, progress_bar=False, state=state)
        monkeypatch.setattr(imitation, "_fit", real_fit)
        after_round_0 = {k: v.clone() for k, v in model.policy.state_dict().items()}
        # written zlib-compressed; an uncompressed state (earlier versions) loads as well
        state.write_bytes(zlib.decompress(state.read_bytes()))

        fresh = build_agent(cfg, venv)  # a new process: untrained weights
        restored = []

        def reseed(steps):
            restored.append((steps, all(v.equal(after_round_0[k])
                                        for k, v in fresh.policy.state_dict().items())))
        stats = dagger(fresh, venv, options, seed=0, progress_bar=False, state=state,
                       reseed=reseed, tb_log=tmp_path / "tb")
    finally:
        venv.close()
    assert restored == [(30, True)]  # round 0's data and weights, the envs reseeded after it
    assert stats["round"] == 2 and stats["dataset"] == 90 and stats["beta"] == 0.25
    # the rounds of this sitting in TensorBoard, at the env steps collected so far
    from roadsight.sweep_plots import read_scalars

    curves = read_scalars(tmp_path / "tb", ("imitation/beta", "imitation/student_agreement",
                                            "imitation/crash_rate"))
    assert curves["imitation/beta"].tolist() == [[60, 0.5], [90, 0.25]]
    agreement_ = curves["imitation/student_agreement"][:, 1]
    assert ((agreement_ >= 0) & (agreement_ <= 1)).all()
    assert curves["imitation/student_agreement"][-1, 1] == pytest.approx(
        stats["student_agreement"])


def test_a_corrupt_dagger_state_names_the_file(tmp_path):
    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "imitation.teacher=idm",
                 "agent.n_steps=64", "total_timesteps=64")
    state = tmp_path / "dagger.pt"
    state.write_bytes(b"not a torch file")
    venv = build_env(cfg, 1, teacher=teacher_config(cfg))
    try:
        with pytest.raises(UserInputError, match=r"dagger.pt: not a loadable DAgger state"):
            dagger(build_agent(cfg, venv), venv, DaggerOptions(steps=8), progress_bar=False,
                   state=state)
    finally:
        venv.close()


def test_action_weights_tip_an_ambiguous_label_toward_the_heavier_action():
    """Identical states labelled FASTER (3) and SLOWER (4) alike: plain cross-entropy has no
    reason to prefer SLOWER; weighing SLOWER 4x makes the student brake there, with
    probability 0.8 (the weighted share), as cost-sensitive imitation should."""
    import torch as th

    from agents.imitation import _fit

    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "agent.n_steps=64",
                 "total_timesteps=64")
    venv = build_env(cfg, 1)
    try:
        obs = np.repeat(venv.reset(), 64, axis=0)
        labels = np.array([3, 4] * 32)
        returns = np.zeros(64, np.float32)
        probs = {}
        for name, weights in (("plain", None), ("brake", (1, 1, 1, 1, 4))):
            model = build_agent(cfg, venv)
            options = DaggerOptions(epochs=60, batch_size=64, action_weights=weights)
            _fit(model.policy, th.optim.Adam(model.policy.parameters(), lr=1e-2), obs, labels,
                 returns, options, np.random.default_rng(0))
            with th.no_grad():
                dist = model.policy.get_distribution(model.policy.obs_to_tensor(obs[:1])[0])
            probs[name] = dist.distribution.probs[0].cpu().numpy()
    finally:
        venv.close()
    assert abs(probs["plain"][4] - 0.5) < 0.05 and abs(probs["plain"][3] - 0.5) < 0.05
    assert abs(probs["brake"][4] - 0.8) < 0.05 and abs(probs["brake"][3] - 0.2) < 0.05


def test_bad_action_weights_name_the_key():
    for bad in ([], [1, -1, 1, 1, 1], [0, 0, 0, 0, 0], ["x"]):
        with pytest.raises(ConfigError, match=r"imitation.action_weights=.*one weight >= 0"):
            DaggerOptions(action_weights=bad)
    cfg = config("observation=kinematics", "extractor=mlp", "n_envs=1", "imitation.teacher=idm",
                 "agent.n_steps=64", "total_timesteps=64")
    venv = build_env(cfg, 1, teacher=teacher_config(cfg))
    try:
        with pytest.raises(ConfigError, match=r"imitation.action_weights=\[1.0, 2.0\]: need 5"):
            dagger(build_agent(cfg, venv), venv, DaggerOptions(steps=8, action_weights=[1, 2]),
                   progress_bar=False)
    finally:
        venv.close()
