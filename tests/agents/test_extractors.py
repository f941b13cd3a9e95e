"""SB3 features extractors: shapes, ego-attention's invariances, space checks, a PPO smoke run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.extractors import EgoAttention, FeatureMapCNN, ObjectMLP
from agents.observations import ObjectListLayout
from roadsight.errors import ConfigError
from sim.types import EgoState

LAYOUT = ObjectListLayout(max_objects=7)
EGO = EgoState(8.0, 0.1, 0.4, (0.0, 0.0), 0.0, 0)


def _lists(batch: int, present: int, seed: int = 0) -> torch.Tensor:
    """(batch, 8, 9) object lists with `present` objects each."""
    rng = np.random.default_rng(seed)
    rows = [
        LAYOUT.encode(
            rng.integers(0, 3, present),
            rng.uniform(-40, 40, (present, 2)),
            rng.uniform(-10, 10, (present, 2)),
            rng.uniform(0.3, 1, present),
            EGO,
        )
        for _ in range(batch)
    ]
    return torch.as_tensor(np.stack(rows))


@pytest.mark.parametrize("cls", [ObjectMLP, EgoAttention])
def test_object_list_extractors_shapes(cls):
    net = cls(LAYOUT.observation_space, features_dim=32)
    assert net.features_dim == 32
    assert net(_lists(5, 3)).shape == (5, 32)


def test_feature_map_cnn_shapes():
    space = gym.spaces.Box(-np.inf, np.inf, (32, 24, 40), np.float32)
    net = FeatureMapCNN(space, features_dim=48)
    assert net(torch.randn(3, 32, 24, 40)).shape == (3, 48)
    small = FeatureMapCNN(gym.spaces.Box(-1, 1, (8, 3, 5), np.float32))  # smaller than the grid
    assert small(torch.randn(2, 8, 3, 5)).shape == (2, 128)


def test_ego_attention_ignores_row_order_and_absent_rows():
    torch.manual_seed(0)
    net = EgoAttention(LAYOUT.observation_space, features_dim=16, embed_dim=32, heads=4).eval()
    obs = _lists(4, 5)
    out = net(obs)
    shuffled = obs.clone()
    shuffled[:, 1:6] = obs[:, [3, 1, 5, 2, 4]]
    torch.testing.assert_close(net(shuffled), out, atol=1e-5, rtol=1e-5)
    garbage = obs.clone()
    garbage[:, 6:, 1:] = torch.randn(4, 2, 8) * 5  # absent rows (presence 0) with junk
    torch.testing.assert_close(net(garbage), out, atol=1e-5, rtol=1e-5)
    # but it does look at the objects that are present
    moved = obs.clone()
    moved[:, 1, 4:8] += 0.5
    assert not torch.allclose(net(moved), out, atol=1e-4)


def test_ego_attention_with_no_objects_attends_to_the_ego():
    net = EgoAttention(LAYOUT.observation_space, embed_dim=16, heads=2)
    assert torch.isfinite(net(_lists(2, 0))).all()
    # even an all-zero list (presence 0 everywhere) keeps the ego row as the one key: the
    # attention then returns the ego's own value
    obs = torch.zeros(2, 8, 9)
    ego = net.embed(obs)[:, 0]
    att = net.attention
    value = torch.nn.functional.linear(ego, att.in_proj_weight[32:], att.in_proj_bias[32:])
    expected = net.head((att.out_proj(value) + ego) / 2)
    torch.testing.assert_close(net(obs), expected)


@pytest.mark.parametrize(
    "cls,space,match",
    [
        (EgoAttention, gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), "object-list"),
        (ObjectMLP, gym.spaces.Discrete(3), "object-list"),
        (EgoAttention, gym.spaces.Box(-2, 2, (16, 5), np.float32), r"\(rows, 9\)"),
        (FeatureMapCNN, LAYOUT.observation_space, r"\(C, h, w\)"),
        (FeatureMapCNN, gym.spaces.Box(0, 255, (3, 64, 64), np.uint8), "float Box"),
    ],
)
def test_wrong_space_raises_with_a_message(cls, space, match):
    with pytest.raises(ConfigError, match=match):
        cls(space)


def test_ego_attention_heads_must_divide_embedding():
    with pytest.raises(ConfigError, match="embed_dim=30.*heads=4"):
        EgoAttention(LAYOUT.observation_space, embed_dim=30, heads=4)


class _ListEnv(gym.Env):
    """A tiny env whose observations are object lists: enough for SB3 to run its loop."""

    observation_space = LAYOUT.observation_space
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        n = int(self.np_random.integers(0, 8))
        xy = self.np_random.uniform(-50, 50, (n, 2))
        return LAYOUT.encode(self.np_random.integers(0, 3, n), xy, xy / 5, np.ones(n), EGO)

    def step(self, action):
        self.t += 1
        return self._obs(), float(action == 1), False, self.t >= 16, {}


def test_ppo_runs_with_ego_attention():
    model = PPO(
        "MlpPolicy",
        _ListEnv(),
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        policy_kwargs=dict(
            features_extractor_class=EgoAttention, features_extractor_kwargs=dict(features_dim=32)
        ),
        seed=0,
        device="cpu",
    )
    assert isinstance(model.policy.features_extractor, EgoAttention)
    model.learn(64)
    assert model.num_timesteps == 64
    action, _ = model.predict(_ListEnv().reset(seed=1)[0], deterministic=True)
    assert action in (0, 1, 2)
