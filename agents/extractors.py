"""SB3 features extractors: flat MLP and ego-attention over object lists, CNN over feature maps.

Pass one through `policy_kwargs=dict(features_extractor_class=EgoAttention)`. Each checks its
observation space on construction and names what it expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.observations import FEATURES, PRESENCE
from roadsight.errors import ConfigError


def _object_list_space(observation_space: gym.Space, who: str) -> tuple[int, int]:
    """(rows, features) of an object-list Box, or a ConfigError naming what `who` needs."""
    shape = getattr(observation_space, "shape", None)
    if (
        not isinstance(observation_space, gym.spaces.Box)
        or shape is None
        or len(shape) != 2
        or shape[1] != len(FEATURES)
        or not np.issubdtype(observation_space.dtype, np.floating)
    ):
        raise ConfigError(
            f"extractor {who} needs the object-list observation, a float Box of shape "
            f"(rows, {len(FEATURES)}) with columns {FEATURES}; got {observation_space} "
            "(use an object-list observation: kinematics or objects)"
        )
    return int(shape[0]), int(shape[1])


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU layers through `sizes` (ReLU after every layer)."""
    sizes, layers = list(sizes), []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class ObjectMLP(BaseFeaturesExtractor):
    """MLP over the flattened object list (rows in the layout's distance order)."""

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 128,
        hidden: Sequence[int] = (128,),
    ):
        rows, cols = _object_list_space(observation_space, "ObjectMLP")
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Flatten(), mlp([rows * cols, *hidden, features_dim]))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)  # (B, rows, F) -> (B, features_dim)


class EgoAttention(BaseFeaturesExtractor):
    """Ego-attention (Leurent & Mercat 2019, "Social Attention for Autonomous Decision-Making in
    Dense Traffic"): every row is embedded by a shared MLP; the ego row's embedding is the query
    of a multi-head attention over all present rows (absent rows, presence 0, are masked), so
    the output does not depend on the order of the object rows nor on absent rows' content.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 128,
        embed_dim: int = 64,
        heads: int = 4,
    ):
        _, cols = _object_list_space(observation_space, "EgoAttention")
        if embed_dim % heads:
            raise ConfigError(f"extractor.embed_dim={embed_dim} must be divisible by heads={heads}")
        super().__init__(observation_space, features_dim)
        self.embed = mlp([cols, embed_dim, embed_dim])
        self.attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
        self.head = mlp([embed_dim, features_dim])

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = self.embed(observations)  # (B, rows, E)
        absent = observations[..., PRESENCE] < 0.5  # (B, rows) True = ignored as a key
        absent[:, 0] = False  # the ego row always attends to itself (no all-masked NaN)
        ego = x[:, :1]  # (B, 1, E) query
        attended, _ = self.attention(ego, x, x, key_padding_mask=absent, need_weights=False)
        # residual average with the ego's own embedding, as in the paper's implementation
        return self.head(((attended + ego) / 2).squeeze(1))  # (B, features_dim)


class FeatureMapCNN(BaseFeaturesExtractor):
    """Small CNN over a (C, h, w) float feature map (the detector's neck), pooled to at most
    `grid` x `grid` cells and flattened into a linear head sized by one dummy forward pass."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 128, grid: int = 4):
        shape = getattr(observation_space, "shape", None)
        if (
            not isinstance(observation_space, gym.spaces.Box)
            or shape is None
            or len(shape) != 3
            or not np.issubdtype(observation_space.dtype, np.floating)
        ):
            raise ConfigError(
                "extractor FeatureMapCNN needs a float Box of shape (C, h, w), the detector's "
                f"feature map (observation=embedding); got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        self.cnn = nn.Sequential(
            nn.Conv2d(shape[0], 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((min(grid, -(-shape[1] // 4)), min(grid, -(-shape[2] // 4)))),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))  # (B, C, h, w) -> (B, features_dim)
