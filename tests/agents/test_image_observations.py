"""observation=embedding (frozen, finetune) and pixels: real urban-crossing scenes, tiny budgets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from agents.build import build_agent, build_env, check_observation, load_perception
from agents.build import observation_signature as signature
from agents.image_obs import pool_features
from agents.perceive import Item
from agents.seeding import train_seed_base
from perception.checkpoint import build_model, load_checkpoint
from roadsight.errors import ConfigError
from roadsight.io import atomic_write_json
from tests.agents.test_build import config, same_actions

PPO = ("agent=ppo", "agent.n_steps=32", "agent.batch_size=32", "agent.n_epochs=1", "n_envs=1",
       "total_timesteps=64")


@pytest.fixture(scope="module")
def perception(tmp_path_factory):
    return load_perception(config("observation=embedding"), "bev", tmp_path_factory.mktemp("p"))


def learn(cfg, perception=None):
    venv = build_env(cfg, cfg.n_envs, perception)
    model = build_agent(cfg, venv, perception=perception)
    venv.seed(train_seed_base(cfg.seed, 0, cfg.n_envs))
    model.learn(cfg.total_timesteps)
    return model, venv


def first_frame(venv, seed: int = 7) -> tuple[np.ndarray, list]:
    """The workers' first frame (1, H, W, 3) for `seed`, and the wrapper's items for it."""
    venv.venv.seed(seed)
    frames = venv.venv.reset()
    return frames, [Item(0, frames[0], venv.venv.reset_infos[0], True)]


def detector_features(frames: np.ndarray, perception, pool: int = 8) -> torch.Tensor:
    """The training (unfused) CenterNet's pooled neck features of (B, H, W, 3) frames."""
    net = build_model(load_checkpoint(perception.checkpoint)).eval()
    x, _ = perception.detector.prepare(list(frames))
    with torch.no_grad():
        return pool_features(net.features(x), pool)


DQN = ("agent=dqn", "agent.learning_starts=32", "agent.buffer_size=200", "n_envs=1",
       "total_timesteps=64")


@pytest.mark.parametrize("agent", [PPO, DQN], ids=["ppo", "dqn"])
def test_embedding_frozen_trains_on_the_detectors_feature_map(perception, tmp_path, agent):
    cfg = config("observation=embedding", "extractor=feature_cnn", *agent)
    model, venv = learn(cfg, perception)
    try:
        assert model.num_timesteps == 64 and venv.observation_space.shape == (32, 8, 16)
        frames, items = first_frame(venv)
        np.testing.assert_allclose(venv.observe(items)[0],
                                   detector_features(frames, perception)[0], atol=1e-3)
        same_actions(model, tmp_path / "embedding.zip", venv)
    finally:
        venv.close()


def test_embedding_finetune_trains_the_detector(perception, tmp_path):
    cfg = config("observation=embedding", "observation.finetune=true", "extractor=feature_cnn",
                 *PPO)
    model, venv = learn(cfg, perception)
    try:
        extractor = model.policy.features_extractor
        before = build_model(load_checkpoint(perception.checkpoint)).state_dict()
        after = extractor.detector.state_dict()
        assert any(not torch.equal(before[k], after[k].cpu()) for k in before
                   if k.startswith("stages")), "the backbone did not learn"
        # the same features as the frozen mode, before any learning, from the stored frame
        frames, items = first_frame(venv)
        obs = torch.as_tensor(venv.observe(items), dtype=torch.float32)
        fresh = type(extractor)(venv.observation_space, perception.checkpoint, pool=8)
        with torch.no_grad():
            np.testing.assert_allclose(fresh._features(obs),
                                       detector_features(frames, perception), atol=1e-3)
        same_actions(model, tmp_path / "finetune.zip", venv)
    finally:
        venv.close()


@pytest.mark.parametrize("agent", [PPO, DQN], ids=["ppo", "dqn"])
def test_pixels_trains_saves_and_reloads(agent, tmp_path):
    cfg = config("observation=pixels", "extractor=nature_cnn", *agent)
    model, venv = learn(cfg)
    try:
        assert model.num_timesteps == 64 and venv.observation_space.shape == (4, 64, 128)
        venv.seed(7)
        obs = venv.reset()
        workers = venv.venv.venv.venv  # VecTransposeImage(VecFrameStack(PixelsVecEnv(...)))
        workers.seed(7)
        frames = workers.reset()  # the same first frame again
        grey = cv2.cvtColor(cv2.resize(frames[0], (128, 64), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
        np.testing.assert_array_equal(obs[0, -1], grey)  # newest frame last, channels first
        same_actions(model, tmp_path / "pixels.zip", venv)
    finally:
        venv.close()


def test_wrong_extractor_or_backend_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="observation=pixels needs extractor=nature_cnn"):
        learn(config("observation=pixels", "extractor=mlp", *PPO))
    with pytest.raises(ConfigError, match="observation=embedding needs .* perception.backend="):
        load_perception(config("observation=embedding", "perception.backend=onnx"), "bev",
                        tmp_path)


def test_a_policy_for_another_layout_is_refused(tmp_path):
    box = lambda *shape: type("S", (), {"shape": shape, "dtype": np.float32})  # noqa: E731
    objects = signature(config("observation=objects"), box(16, 9))
    atomic_write_json(tmp_path / "observation.json", objects)
    check_observation(tmp_path, objects)
    check_observation(tmp_path, signature(config("observation=kinematics"), box(16, 9)))
    with pytest.raises(ConfigError, match=r"trained on observation=objects, not observation="
                                          r"pixels; set observation=objects"):
        check_observation(tmp_path, signature(config("observation=pixels"), box(4, 64, 128)))
    with pytest.raises(ConfigError, match=r"with layout=.*'max_objects': 15.*max_objects': 5"):
        check_observation(tmp_path, signature(config("observation=kinematics",
                                                     "observation.layout.max_objects=5"),
                                              box(6, 9)))
    with pytest.raises(ConfigError, match="observation.json: cannot read"):
        check_observation(tmp_path / "nowhere", objects)
    old = {k: v for k, v in objects.items() if k != "layout_version"}  # before the ego setpoint
    atomic_write_json(tmp_path / "observation.json", old)
    with pytest.raises(ConfigError, match=r"with layout_version=None, this one has "
                                          r"layout_version=2"):
        check_observation(tmp_path, objects)
