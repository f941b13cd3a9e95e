"""`observation=embedding observation.finetune=true`: the detector's backbone and neck inside the
policy's SB3 features extractor, trained with it.

The observation is the frame through the detector's preprocessing up to its final Normalize,
(3 * cameras, H, W) uint8 (agents.image_obs.DetectorFramesVecEnv); SB3 hands it over as float
0..255 (build.py sets `normalize_images=False`). `DetectorFeatures` applies the Normalize,
`CenterNet.features` (gradients flow into the detector; its BatchNorm statistics stay frozen, in
eval mode), the same average pooling as the frozen mode and then `FeatureMapCNN`: the two modes
differ only by whether the detector learns. The checkpoint builds the architecture (and its
initial weights); a saved policy carries the fine-tuned weights in its own state dict.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from agents.extractors import FeatureMapCNN
from agents.image_obs import pool_features, split_normalize


class DetectorFeatures(BaseFeaturesExtractor):
    """uint8 frames (B, 3 * cameras, H, W) -> detector features -> pool -> FeatureMapCNN."""

    def __init__(self, observation_space: gym.Space, checkpoint: str, pool: int = 8,
                 features_dim: int = 128, **cnn_kwargs):
        from hydra.utils import instantiate

        from perception.checkpoint import build_model, load_checkpoint

        state = load_checkpoint(checkpoint)
        detector = build_model(state, checkpoint)
        _, norm = split_normalize(instantiate(state["preprocess_cfg"]))
        super().__init__(observation_space, features_dim)
        mean = norm.mean if norm else (0.0, 0.0, 0.0)
        std = norm.std if norm else (1.0, 1.0, 1.0)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.detector, self.pool = detector.eval(), int(pool)
        c, h, w = observation_space.shape
        with torch.no_grad():
            feats = self._features(torch.zeros(1, c, h, w))
        space = gym.spaces.Box(-np.inf, np.inf, tuple(feats.shape[1:]), np.float32)
        self.cnn = FeatureMapCNN(space, features_dim, **cnn_kwargs)

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        b, c, h, w = frames.shape  # c = 3 * cameras
        x = (frames.reshape(b * c // 3, 3, h, w) - self.mean) / self.std
        feats = pool_features(self.detector.features(x), self.pool)  # (B * cams, C, h', w')
        return feats.reshape(b, -1, *feats.shape[2:])

    def train(self, mode: bool = True) -> DetectorFeatures:
        super().train(mode)
        self.detector.eval()  # BatchNorm statistics frozen; the weights still learn
        return self

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.cnn(self._features(observations))  # (B, features_dim)
