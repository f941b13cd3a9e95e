"""OpenCV preprocessing described in config: an ordered list of ops, the same in training,
evaluation and on video.

Each op is a callable `(img, letterbox) -> (img, letterbox)`. Geometric ops update the
`Letterbox` so that detections in network-input pixels map back to image pixels. The
`Preprocessor` turns (H, W, 3) uint8 RGB into (3, H', W') float32 CHW.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import hydra.utils
import numpy as np
from omegaconf import DictConfig, OmegaConf

from roadsight.errors import ConfigError

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos4": cv2.INTER_LANCZOS4,
}


@dataclass
class Letterbox:
    """How an input image maps into the network input: input_px = image_px * scale + pad."""

    scale: float
    pad: tuple[float, float]  # (pad_x, pad_y) in network-input pixels
    image_size: tuple[int, int]  # (W, H) of the original image
    input_size: tuple[int, int]  # (W, H) of the network input

    @classmethod
    def identity(cls, image_size: tuple[int, int]) -> Letterbox:
        return cls(1.0, (0.0, 0.0), tuple(image_size), tuple(image_size))

    def then(self, scale: float, pad: tuple[float, float],
             input_size: tuple[int, int]) -> Letterbox:
        """This mapping followed by a further `x * scale + pad` into an input of `input_size`."""
        new_pad = (self.pad[0] * scale + pad[0], self.pad[1] * scale + pad[1])
        return Letterbox(self.scale * scale, new_pad, self.image_size, tuple(input_size))

    def to_input(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes in image pixels -> network-input pixels."""
        b = _as_boxes(boxes_xyxy)
        return b * self.scale + self._offset(b.dtype)

    def to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes in network-input pixels -> image pixels, clipped to the image."""
        b = _as_boxes(boxes_xyxy)
        b = (b - self._offset(b.dtype)) / self.scale
        w, h = self.image_size
        np.clip(b[:, 0::2], 0, w, out=b[:, 0::2])
        np.clip(b[:, 1::2], 0, h, out=b[:, 1::2])
        return b

    def _offset(self, dtype) -> np.ndarray:
        return np.array([self.pad[0], self.pad[1], self.pad[0], self.pad[1]], dtype=dtype)


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) xyxy, got {b.shape}")
    # float32 stays float32 (detector outputs); ints and float64 become float64.
    return b.astype(np.result_type(b.dtype, np.float32), copy=True)


class _Op:
    """Base of the ops: a repr from the constructor's parameters, for logs.

    Plain classes, not dataclasses: hydra turns dataclass instances inside a list into
    DictConfigs when it instantiates `ops` recursively.
    """

    needs_uint8 = False  # True: the op only works before Normalize

    def __repr__(self) -> str:
        keys = inspect.signature(type(self)).parameters
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in keys)
        return f"{type(self).__name__}({args})"


def _size(width, height, op: str) -> tuple[int, int]:
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ConfigError(f"{op}: width/height must be positive integers, got {width}x{height}")
    return int(width), int(height)


def _interpolation(name: str, op: str) -> int:
    if name not in INTERPOLATIONS:
        raise ConfigError(f"{op}.interpolation={name!r} is not valid; "
                          f"choose from {list(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def _check_uint8(img: np.ndarray, op: str) -> None:
    if img.dtype != np.uint8:
        raise ValueError(f"{op} needs a uint8 image, got {img.dtype}; put it before Normalize")


class LetterboxResize(_Op):
    """Resize keeping the aspect ratio, then pad (centred) to exactly width x height [px]."""

    needs_uint8 = True  # pad_value is a uint8 grey level

    def __init__(self, width: int, height: int, pad_value: int = 114, interpolation: str = "area"):
        self.width, self.height = _size(width, height, "LetterboxResize")
        self.interpolation = interpolation
        self._interp = _interpolation(interpolation, "LetterboxResize")
        if not 0 <= pad_value <= 255:
            raise ConfigError(f"LetterboxResize.pad_value={pad_value} must be in 0..255")
        self.pad_value = pad_value

    @property
    def output_size(self) -> tuple[int, int]:
        return self.width, self.height

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        _check_uint8(img, "LetterboxResize")
        h, w = img.shape[:2]
        s = min(self.width / w, self.height / h)
        nw, nh = min(round(w * s), self.width), min(round(h * s), self.height)
        if (nw, nh) != (w, h):
            img = cv2.resize(img, (nw, nh), interpolation=self._interp)
        left, top = (self.width - nw) // 2, (self.height - nh) // 2
        if (nw, nh) != self.output_size:  # a frame of the input size needs no border (nor copy)
            img = cv2.copyMakeBorder(img, top, self.height - nh - top, left,
                                     self.width - nw - left, cv2.BORDER_CONSTANT,
                                     value=(self.pad_value,) * 3)
        return img, lb.then(s, (float(left), float(top)), self.output_size)


class Resize(_Op):
    """Plain resize to width x height [px]; must keep the aspect ratio to within 1 px.

    A `Letterbox` has one scale for both axes, so a stretching resize cannot be mapped back;
    use `LetterboxResize` for inputs of another aspect ratio.
    """

    def __init__(self, width: int, height: int, interpolation: str = "area"):
        self.width, self.height = _size(width, height, "Resize")
        self.interpolation, self._interp = interpolation, _interpolation(interpolation, "Resize")

    @property
    def output_size(self) -> tuple[int, int]:
        return self.width, self.height

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        h, w = img.shape[:2]
        s = (self.width / w + self.height / h) / 2
        if max(abs(w * s - self.width), abs(h * s - self.height)) > 1.0:
            raise ConfigError(f"Resize to {self.width}x{self.height} would stretch a {w}x{h} "
                              f"image; use LetterboxResize (a Letterbox has a single scale)")
        if (w, h) != self.output_size:
            img = cv2.resize(img, self.output_size, interpolation=self._interp)
        return img, lb.then(s, (0.0, 0.0), self.output_size)


@functools.cache
def color_codes() -> dict[str, int]:
    """cv2 COLOR_ conversions that map a 3-channel uint8 image to 3 channels, by short name."""
    probe = np.zeros((4, 4, 3), np.uint8)
    codes = {}
    for name in dir(cv2):
        if not name.startswith("COLOR_"):
            continue
        try:
            out = cv2.cvtColor(probe, getattr(cv2, name))
        except cv2.error:
            continue
        if out.ndim == 3 and out.shape[2] == 3:
            codes[name.removeprefix("COLOR_")] = getattr(cv2, name)
    return codes


class ConvertColor(_Op):
    """cv2.cvtColor with a 3-to-3-channel code named like 'RGB2BGR' (or 'COLOR_RGB2BGR')."""

    def __init__(self, code: str):
        self.code, codes = code, color_codes()
        short = str(code).removeprefix("COLOR_")
        if short not in codes:
            near = difflib.get_close_matches(short, list(codes), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ConfigError(f"ConvertColor.code={self.code!r} is not a cv2 COLOR_ conversion "
                              f"from 3 to 3 channels{hint}; valid codes: "
                              f"{', '.join(sorted(codes))}")
        self._cv_code = codes[short]

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        return cv2.cvtColor(img, self._cv_code), lb


class Gamma(_Op):
    """Gamma correction out = 255 * (in / 255) ** (1 / gamma): gamma > 1 brightens shadows."""

    needs_uint8 = True

    def __init__(self, gamma: float):
        if not (math.isfinite(gamma) and gamma > 0):
            raise ConfigError(f"Gamma.gamma={gamma} must be a finite number > 0")
        self.gamma = gamma
        x = np.arange(256) / 255.0
        self._lut = np.clip(np.round(255 * x ** (1.0 / self.gamma)), 0, 255).astype(np.uint8)

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        _check_uint8(img, "Gamma")
        return cv2.LUT(img, self._lut), lb


class CLAHE(_Op):
    """Contrast-limited adaptive histogram equalisation of the L channel of LAB (input RGB).

    tile_grid: tiles across (x, y); an int means square.
    """

    needs_uint8 = True

    def __init__(self, clip_limit: float = 2.0, tile_grid: int | Sequence[int] = (8, 8)):
        if not (math.isfinite(clip_limit) and clip_limit > 0):
            raise ConfigError(f"CLAHE.clip_limit={clip_limit} must be a finite number > 0")
        grid = [tile_grid] * 2 if isinstance(tile_grid, int) else list(tile_grid)
        if len(grid) != 2 or any(int(g) != g or g < 1 for g in grid):
            raise ConfigError(f"CLAHE.tile_grid={tile_grid} must be a positive int or a pair")
        self.clip_limit, self.tile_grid = float(clip_limit), (int(grid[0]), int(grid[1]))

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        _check_uint8(img, "CLAHE")
        # Built per call: cv2 CLAHE objects do not pickle (DataLoader workers) and cost ~10 us.
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=self.tile_grid)
        lum, a, b = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2LAB))
        return cv2.cvtColor(cv2.merge([clahe.apply(lum), a, b]), cv2.COLOR_LAB2RGB), lb


class Normalize(_Op):
    """(img - mean) / std per channel, as float32; turns uint8 into float32."""

    def __init__(self, mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 255.0):
        self.mean, self.std = _triple(mean, "mean"), _triple(std, "std")
        if any(not math.isfinite(s) or s == 0 for s in self.std):
            raise ConfigError(f"Normalize.std={list(self.std)} must be finite and non-zero")
        # OpenCV's per-channel scalar arithmetic: about 3x faster than numpy's broadcast over
        # the last axis of 3 (equal to within one float32 rounding)
        self._mean = (*self.mean, 0.0)
        self._inv_std = (*(1.0 / s for s in self.std), 0.0)

    def __call__(self, img: np.ndarray, lb: Letterbox) -> tuple[np.ndarray, Letterbox]:
        out = img.astype(np.float32)  # (H, W, 3)
        cv2.subtract(out, self._mean, dst=out)
        cv2.multiply(out, self._inv_std, dst=out)
        return out, lb


def _triple(v, key: str) -> tuple[float, float, float]:
    vals = [v] * 3 if isinstance(v, int | float) else list(v)
    if len(vals) != 3:
        raise ConfigError(f"Normalize.{key}={vals} must be one number or 3 (one per channel)")
    return tuple(float(x) for x in vals)


OPS: dict[str, type] = {c.__name__: c for c in
                        (LetterboxResize, Resize, ConvertColor, Gamma, CLAHE, Normalize)}


def build_op(spec: Mapping, where: str = "op"):
    """Build one op from a `{_target_: ..., **kwargs}` mapping, with errors naming `where`.

    Targets in this module are checked against `OPS`; other targets (your own ops) go through
    `hydra.utils.instantiate`.
    """
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    spec = dict(spec)
    target = spec.pop("_target_", None)
    name = str(target).rsplit(".", 1)[-1]
    if target in (name, f"{__name__}.{name}") and name in OPS:
        cls = OPS[name]
    elif target is None or "." not in str(target) or str(target).startswith(f"{__name__}."):
        raise ConfigError(f"{where}._target_={target!r} is not a preprocessing op; valid: "
                          f"{', '.join(f'{__name__}.{n}' for n in OPS)}")
    else:
        return hydra.utils.instantiate({"_target_": target, **spec})
    params = inspect.signature(cls).parameters
    unknown = sorted(set(spec) - set(params))
    missing = [k for k, p in params.items() if p.default is p.empty and k not in spec]
    if unknown or missing:
        raise ConfigError(f"{where} ({name}): unknown keys {unknown}, missing keys {missing}; "
                          f"valid keys: {list(params)}")
    try:
        return cls(**spec)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


class Preprocessor:
    """ops: list of op objects, each callable (img, letterbox) -> (img, letterbox).

    The output is float32 CHW; without a `Normalize` op its values stay in 0..255.

    Entries may also be `_target_` mappings (the yaml sets `_recursive_: false` so that they
    arrive here and get the error messages of `build_op`).
    """

    def __init__(self, ops: list):
        built, is_float = [], False
        for i, op in enumerate(ops):
            op = build_op(op, f"ops[{i}]") if isinstance(op, Mapping) else op
            if not callable(op):
                raise ConfigError(f"ops[{i}]={op!r} is not callable (img, letterbox) -> ...")
            if is_float and getattr(op, "needs_uint8", False):
                raise ConfigError(f"ops[{i}] ({type(op).__name__}) needs uint8 but comes after "
                                  f"Normalize; move it before Normalize")
            is_float |= isinstance(op, Normalize)
            built.append(op)
        self.ops = built

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(W, H) fixed by the last resize/letterbox op, else None (input size passes through)."""
        sizes = [op.output_size for op in self.ops if getattr(op, "output_size", None)]
        return sizes[-1] if sizes else None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """image: (H, W, 3) uint8 RGB -> ((3, H', W') float32 CHW, Letterbox)."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                or image.shape[2] != 3:
            desc = (image.shape, image.dtype) if isinstance(image, np.ndarray) else type(image)
            raise ValueError(f"Preprocessor expects (H, W, 3) uint8 RGB, got {desc}")
        img, lb = image, Letterbox.identity((image.shape[1], image.shape[0]))
        for op in self.ops:
            img, lb = op(img, lb)
        if img.ndim != 3 or img.shape[2] != 3 or lb.input_size != (img.shape[1], img.shape[0]):
            raise ValueError(f"ops produced shape {img.shape} with letterbox input_size "
                             f"{lb.input_size}; expected (H, W, 3) matching it")
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32), lb  # (3, H, W)

    def __repr__(self) -> str:
        return f"Preprocessor(ops={self.ops!r})"
