"""VecEnv wrappers for the image-like observations (agents.perceive for the object lists).

- `EmbeddingVecEnv` (observation=embedding, frozen): the detector's neck feature map from the
  same single batched forward that yields the detections, without gradients, average-pooled by
  `pool` on the detector's device: (C, h/pool, w/pool) float32 per camera, a rig's cameras
  stacked along channels.
- `DetectorFramesVecEnv` (observation=embedding, finetune=true): the frame through the
  detector's preprocessing up to its final Normalize, (3 * cameras, H', W') uint8; the policy's
  features extractor (agents.detector_extractor.DetectorFeatures) holds the detector, normalises,
  runs the backbone and neck with gradients and pools as above.
- `PixelsVecEnv` (observation=pixels): frames resized to (height, width), grey or RGB, uint8
  (H, W, channels) (a rig's cameras side by side before resizing); build.py stacks `n_stack` of
  them (VecFrameStack) and moves channels first (VecTransposeImage) for SB3's NatureCNN.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from agents.perceive import Item, ObservationVecEnv
from perception.preprocess import Letterbox, Normalize
from roadsight.errors import ConfigError


def _cameras(item: Item) -> list[np.ndarray]:
    """An item's frames, one per camera (a rig's frames arrive stacked)."""
    return list(item.frame) if isinstance(item.info["camera"], dict) else [item.frame]


def pool_features(feats: torch.Tensor, pool: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, ceil(h / pool), ceil(w / pool)) average pooling (pool 1: as is)."""
    return F.avg_pool2d(feats, pool, ceil_mode=True) if pool > 1 else feats


class EmbeddingVecEnv(ObservationVecEnv):
    """The detector's pooled neck features (see the module docstring); `detector` is a
    perception.backends.Detector on the torch backend."""

    def __init__(self, venv: VecEnv, detector, pool: int = 8, reseed: int | None = None):
        if pool < 1:
            raise ConfigError(f"observation.pool={pool}: need a whole number >= 1")
        self.detector, self.pool = detector, int(pool)
        frame = venv.observation_space.shape  # (H, W, 3) or (cameras, H, W, 3)
        cams = frame[0] if len(frame) == 4 else 1
        _, feats = detector.detect_with_features([np.zeros(frame[-3:], np.uint8)])
        c, h, w = pool_features(feats, self.pool).shape[1:]
        space = spaces.Box(-np.inf, np.inf, (cams * c, h, w), np.float32)
        super().__init__(venv, space, reseed)

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        per_item = [_cameras(it) for it in items]
        images = [im for ims in per_item for im in ims]
        _, feats = self.detector.detect_with_features(images)  # ONE forward for the vector step
        feats = pool_features(feats, self.pool).float().cpu().numpy()
        n = len(per_item[0])
        return feats.reshape(len(items), n * feats.shape[1], *feats.shape[2:])


def split_normalize(preprocessor) -> tuple[list, Normalize | None]:
    """The preprocessor's ops before a final Normalize, and that Normalize (None: none); a
    ConfigError when a Normalize comes earlier (finetune stores uint8 frames)."""
    ops = list(preprocessor.ops)
    last = ops.pop() if ops and isinstance(ops[-1], Normalize) else None
    if any(isinstance(op, Normalize) for op in ops):
        raise ConfigError("observation.finetune=true needs a detector preprocessing whose only "
                          "Normalize op is its last one (frames are stored as uint8)")
    return ops, last


class DetectorFramesVecEnv(ObservationVecEnv):
    """Frames through the detector's preprocessing before its final Normalize, CHW uint8."""

    def __init__(self, venv: VecEnv, preprocessor, reseed: int | None = None):
        self.ops, _ = split_normalize(preprocessor)
        frame = venv.observation_space.shape
        cams = frame[0] if len(frame) == 4 else 1
        h, w = self._prepare(np.zeros(frame[-3:], np.uint8)).shape[1:]
        super().__init__(venv, spaces.Box(0, 255, (3 * cams, h, w), np.uint8), reseed)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        img, lb = image, Letterbox.identity((image.shape[1], image.shape[0]))
        for op in self.ops:
            img, lb = op(img, lb)
        return np.ascontiguousarray(np.asarray(img, np.uint8).transpose(2, 0, 1))

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        return np.stack([np.concatenate([self._prepare(im) for im in _cameras(it)])
                         for it in items])


class PixelsVecEnv(ObservationVecEnv):
    """Downsampled camera frames, (height, width, 1 grey | 3 RGB) uint8."""

    def __init__(self, venv: VecEnv, width: int = 128, height: int = 64, grey: bool = True,
                 reseed: int | None = None):
        if width < 36 or height < 36:
            raise ConfigError(f"observation.width={width}, height={height}: NatureCNN needs at "
                              f"least 36 x 36 pixels")
        self.size, self.grey = (int(width), int(height)), bool(grey)
        space = spaces.Box(0, 255, (int(height), int(width), 1 if grey else 3), np.uint8)
        super().__init__(venv, space, reseed)

    def observe(self, items: Sequence[Item]) -> np.ndarray:
        out = []
        for it in items:
            frame = np.concatenate(_cameras(it), axis=1)  # a rig: cameras side by side
            small = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
            if self.grey:
                small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[..., None]
            out.append(small)
        return np.stack(out)
