"""Camera corruptions at severity 0 (identity) to 5, seeded, with numpy + OpenCV only.

For robustness studies (`Corruption`, config group `conf/corruption/`) and training
augmentation (`RandomCorruption`). Every function takes and returns (H, W, 3) uint8 RGB;
severity parameters are tuned for 512x256 frames and scale with the image height where the
effect has a size in pixels.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable

import cv2
import numpy as np

from roadsight.errors import ConfigError

Fn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
MAX_SEVERITY = 5
_U_BITS = 10  # noise is drawn by inverse-CDF lookup from a 10-bit uniform (tails to ~3.3 sigma)
_MAX_KERNEL = 7  # [px] larger blur kernels are applied at reduced resolution (see _filter)


def _sample_levels(img: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """out[i] = table[img[i], u[i]] with u uniform: per-grey-level noise in one gather."""
    u = rng.integers(0, 1 << _U_BITS, img.shape, dtype=np.uint16)
    idx = img.astype(np.uint32) << _U_BITS
    idx |= u
    return np.take(table, idx)


@functools.cache
def _uniform_grid() -> np.ndarray:
    return (np.arange(1 << _U_BITS) + 0.5) / (1 << _U_BITS)  # (U,) probabilities


@functools.cache
def _gaussian_table(sigma: float) -> np.ndarray:
    """(256 * U,) uint8: grey level v plus the u-quantile of N(0, sigma), clipped."""
    q = np.array([statistics.NormalDist().inv_cdf(p) for p in _uniform_grid()])
    table = np.arange(256)[:, None] + np.round(sigma * q)[None, :]
    return np.clip(table, 0, 255).astype(np.uint8).ravel()


@functools.cache
def _poisson_table(photons: float) -> np.ndarray:
    """(256 * U,) uint8: Poisson(v / 255 * photons) quantiles, rescaled to grey levels."""
    lam = np.maximum(np.arange(256) / 255.0 * photons, 1e-12)[:, None]  # (256, 1)
    k = np.arange(int(photons + 10 * math.sqrt(photons) + 10))
    log_fact = np.cumsum(np.log(np.maximum(k, 1)))
    cdf = np.cumsum(np.exp(k * np.log(lam) - lam - log_fact), axis=1)  # (256, K)
    kq = np.stack([np.searchsorted(row, _uniform_grid()) for row in cdf])  # (256, U)
    return np.clip(np.round(kq * (255.0 / photons)), 0, 255).astype(np.uint8).ravel()


def gaussian_noise(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (10.0, 18.0, 25.0, 36.0, 51.0)[s - 1]  # [grey levels]
    return _sample_levels(img, _gaussian_table(sigma), rng)


def shot_noise(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    photons = (120.0, 60.0, 30.0, 15.0, 8.0)[s - 1]  # photon count of a white pixel
    return _sample_levels(img, _poisson_table(photons), rng)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 >= 0 -> uint8, rounded and saturated at 255 in one OpenCV pass."""
    return cv2.convertScaleAbs(x)


def _filter(img: np.ndarray, kernel: Callable[[float], np.ndarray], extent: float) -> np.ndarray:
    """Convolve with kernel(scale); beyond _MAX_KERNEL px the image is shrunk by an integer
    factor first (the blur removes those frequencies anyway), keeping the cost ~1-2 ms."""
    f = max(1, math.ceil(extent / _MAX_KERNEL))
    if f == 1:
        return cv2.filter2D(img, -1, kernel(1.0), borderType=cv2.BORDER_REFLECT)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    small = cv2.filter2D(small, -1, kernel(1.0 / f), borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """Anti-aliased line of `length` px at `angle` [rad] through the centre, summing to 1."""
    k = 2 * math.ceil(length / 2) + 1
    c, d = (k - 1) / 2, (length - 1) / 2 * np.array([math.cos(angle), math.sin(angle)])
    p0, p1 = np.round((c - d) * 16).astype(int), np.round((c + d) * 16).astype(int)
    ker = np.zeros((k, k), np.uint8)
    cv2.line(ker, tuple(map(int, p0)), tuple(map(int, p1)), 255, 1, cv2.LINE_AA, shift=4)
    ker = ker.astype(np.float32)
    return ker / ker.sum()


def _disk_kernel(radius: float) -> np.ndarray:
    """Pillbox of `radius` px with a 1 px soft edge, summing to 1."""
    r = math.ceil(radius + 0.5)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    ker = np.clip(radius + 0.5 - np.hypot(xx, yy), 0, 1).astype(np.float32)
    return ker / ker.sum()


def motion_blur(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    length = max(3.0, (5.0, 9.0, 13.0, 19.0, 27.0)[s - 1] * img.shape[0] / 256)  # [px]
    angle = math.radians(rng.uniform(-45.0, 45.0))
    return _filter(img, lambda f: _line_kernel(max(1.0, length * f), angle), length)


def defocus_blur(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    radius = max(1.0, (1.5, 2.5, 3.5, 5.0, 7.0)[s - 1] * img.shape[0] / 256)  # [px]
    return _filter(img, lambda f: _disk_kernel(max(0.5, radius * f)), 2 * radius + 1)


def brightness(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    shift = (20, 40, 60, 80, 100)[s - 1]  # [grey levels] added to HSV value, hue kept
    h, sat, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
    return cv2.cvtColor(cv2.merge([h, sat, cv2.add(v, shift)]), cv2.COLOR_HSV2RGB)


def contrast(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = (0.7, 0.55, 0.4, 0.3, 0.2)[s - 1]  # kept fraction of the deviation from the mean
    return cv2.addWeighted(img, c, img, 0.0, float(img.mean()) * (1.0 - c))


def jpeg(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    quality = (40, 25, 15, 10, 6)[s - 1]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cv2.imencode failed on an image of shape {img.shape}")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def glare(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Sun/headlight flare: white core, warm halo, horizontal streak and veiling glare."""
    h, w = img.shape[:2]
    amp = (0.45, 0.6, 0.75, 0.9, 1.0)[s - 1]
    sig = (0.12, 0.16, 0.2, 0.25, 0.3)[s - 1] * h  # [px] halo size
    veil = (0.03, 0.06, 0.09, 0.12, 0.16)[s - 1]  # uniform light added everywhere
    x = np.arange(w, dtype=np.float32) - rng.uniform(0.1, 0.9) * w
    y = np.arange(h, dtype=np.float32) - rng.uniform(0.05, 0.5) * h

    def blob(sx: float, sy: float) -> np.ndarray:  # separable Gaussian, (H, W)
        return np.outer(np.exp(-0.5 * (y / sy) ** 2), np.exp(-0.5 * (x / sx) ** 2))

    light = amp * (0.7 * blob(sig, sig) + 0.6 * blob(sig / 4, sig / 4)
                   + 0.3 * blob(3 * sig, sig / 12)) + veil
    light = np.minimum(light, 1.0)[..., None] * np.array([1.0, 0.96, 0.85], np.float32)
    out = img.astype(np.float32)
    out += (255.0 - out) * light  # screen blend: only ever brightens
    return _to_uint8(out)


def fog(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Blend toward light grey airlight with a smooth, depth-agnostic random density."""
    h, w = img.shape[:2]
    t0 = (0.3, 0.45, 0.58, 0.7, 0.8)[s - 1]  # mean haze fraction
    coarse = rng.standard_normal((4, max(1, round(4 * w / h)))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    t = np.clip(t0 * (1.0 + 0.2 * field), 0.0, 1.0)[..., None]  # (H, W, 1)
    out = img.astype(np.float32)
    out += (200.0 - out) * t
    return _to_uint8(out)


def rain(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Slanted bright streaks drawn with cv2.polylines over a slightly blurred, darker scene."""
    h, w = img.shape[:2]
    n = round((120, 250, 400, 600, 900)[s - 1] * h * w / (512 * 256))
    length = (7.0, 10.0, 13.0, 17.0, 22.0)[s - 1] * h / 256  # [px]
    alpha = (0.35, 0.45, 0.55, 0.65, 0.75)[s - 1]
    dark = (0.95, 0.9, 0.85, 0.8, 0.75)[s - 1]
    blur = (0.4, 0.6, 0.8, 1.0, 1.2)[s - 1] * h / 256  # [px] Gaussian sigma
    angle = rng.normal(0.0, 0.25) + rng.normal(0.0, 0.05, n)  # [rad] wind slant + jitter
    lens = length * rng.uniform(0.6, 1.4, n)
    x0, y0 = rng.uniform(-0.1 * w, 1.1 * w, n), rng.uniform(-length, h, n)
    ends = np.stack([x0 + lens * np.sin(angle), y0 + lens * np.cos(angle)], axis=1)
    pts = np.stack([np.stack([x0, y0], axis=1), ends], axis=1).round().astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.polylines(mask, list(pts), False, 255, 1, cv2.LINE_AA)  # pts: (n, 2, 2)
    base = cv2.GaussianBlur(img, (0, 0), blur).astype(np.float32) * dark
    a = mask.astype(np.float32)[..., None] * (alpha / 255.0)
    base += a * (220.0 - base)
    return _to_uint8(base)


def dead_pixels(img: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Sensor defects: dead (black), hot (white) and single-channel stuck pixels."""
    h, w = img.shape[:2]
    n = max(1, round((0.001, 0.002, 0.004, 0.008, 0.016)[s - 1] * h * w))
    ys, xs, kind = rng.integers(0, h, n), rng.integers(0, w, n), rng.integers(0, 3, n)
    vals = np.zeros((n, 3), np.uint8)
    vals[kind == 1] = 255
    stuck = np.flatnonzero(kind == 2)
    vals[stuck, rng.integers(0, 3, stuck.size)] = 255
    out = img.copy()
    out[ys, xs] = vals
    return out


CORRUPTIONS: dict[str, Fn] = {f.__name__: f for f in (
    gaussian_noise, shot_noise, motion_blur, defocus_blur, brightness, contrast, jpeg,
    glare, fog, rain, dead_pixels)}


def check_name(name: str, key: str = "name") -> str:
    if name not in CORRUPTIONS:
        raise ConfigError(f"{key}={name!r} is not a corruption; valid: {', '.join(CORRUPTIONS)}")
    return name


def check_severity(severity: int, key: str = "severity") -> int:
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise ConfigError(f"{key}={severity!r} must be an integer in 0..{MAX_SEVERITY}")
    if not 0 <= severity <= MAX_SEVERITY:
        raise ConfigError(f"{key}={severity} is outside the range 0..{MAX_SEVERITY}")
    return int(severity)


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply corruption `name` at `severity` (0 = a copy of the image) to (H, W, 3) uint8 RGB."""
    fn, severity = CORRUPTIONS[check_name(name)], check_severity(severity)
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        desc = (image.shape, image.dtype) if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"corrupt expects an (H, W, 3) uint8 RGB image, got {desc}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if severity == 0:
        return image.copy()
    return fn(np.ascontiguousarray(image), severity, rng)


class Corruption:
    """One corruption at a fixed severity, drawing from its own generator seeded by `seed`."""

    def __init__(self, name: str, severity: int, seed: int = 0):
        self.name, self.severity, self.seed = check_name(name), check_severity(severity), seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return corrupt(image, self.name, self.severity, self._rng)

    def __repr__(self) -> str:
        return f"Corruption(name={self.name!r}, severity={self.severity}, seed={self.seed})"


class RandomCorruption:
    """Augmentation: with probability p, one of `names` (default: all) at severity 1..max_severity.

    Always returns a new array.
    """

    def __init__(self, names: list[str] | None = None, p: float = 0.5, max_severity: int = 3):
        names = list(CORRUPTIONS) if names is None else [str(n) for n in names]
        if not names:
            raise ConfigError(f"names is empty; give some of {', '.join(CORRUPTIONS)} or null")
        self.names = [check_name(n, f"names[{i}]") for i, n in enumerate(names)]
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"p={p} must be a probability in [0, 1]")
        self.p, self.max_severity = float(p), check_severity(max_severity, "max_severity")
        if self.max_severity < 1:
            raise ConfigError(f"max_severity={max_severity} must be in 1..{MAX_SEVERITY}")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return image.copy()
        name = self.names[int(rng.integers(len(self.names)))]
        return corrupt(image, name, int(rng.integers(1, self.max_severity + 1)), rng)

    def __repr__(self) -> str:
        return f"RandomCorruption(names={self.names}, p={self.p}, max_severity={self.max_severity})"
