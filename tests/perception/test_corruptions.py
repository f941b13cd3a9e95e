"""Camera corruptions: identity at severity 0, seeding, monotone severity, errors, configs."""

import functools
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from perception.corruptions import CORRUPTIONS, Corruption, RandomCorruption, corrupt

CONF = Path(__file__).resolve().parents[2] / "conf" / "corruption"
NAMES = list(CORRUPTIONS)
DETERMINISTIC = {"defocus_blur", "brightness", "contrast", "jpeg"}


@functools.cache
def _road(w: int = 512, h: int = 256) -> np.ndarray:
    """A road scene as the bev/front cameras draw it: sky, grass, road, lane marks, cars."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3] = np.linspace(205, 140, h // 3)[:, None, None] * np.array([0.75, 0.85, 1.0])
    img[h // 3:] = (70, 110, 60)
    road = np.array([[w * 0.45, h // 3], [w * 0.55, h // 3], [w, h], [0, h]], np.int32)
    cv2.fillPoly(img, [road], (90, 90, 95))
    for i in range(6):
        y0 = h // 3 + i * (h * 2 // 3) // 6
        cv2.line(img, (w // 2, y0), (w // 2, y0 + h // 20), (235, 235, 235), 1 + i // 2)
    for x, colour in ((0.58, (180, 30, 30)), (0.2, (30, 60, 170))):
        x0, y0 = int(x * w), int(0.6 * h)
        cv2.rectangle(img, (x0, y0), (x0 + w // 7, y0 + h // 4), colour, -1)
        cv2.rectangle(img, (x0 + 6, y0 + 6), (x0 + w // 7 - 6, y0 + h // 10), (40, 60, 80), -1)
    cv2.circle(img, (w // 5, h // 4), h // 14, (30, 120, 40), -1)
    texture = cv2.GaussianBlur(np.random.default_rng(0).normal(0, 4, img.shape), (0, 0), 1.0)
    out = np.clip(img + texture, 0, 255).astype(np.uint8)
    out.setflags(write=False)  # shared between tests: corruptions must not write into it
    return out


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity(name):
    img = _road()
    out = corrupt(img, name, 0, np.random.default_rng(0))
    assert out is not img and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)


def _grad(img: np.ndarray) -> float:
    """Mean absolute difference of neighbouring grey pixels (x and y): the fine detail."""
    g = img.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _expected_mad(name: str, img: np.ndarray, s: int) -> tuple[float, float]:
    """(low, high) mean absolute difference [grey levels] that corruption `name` at severity `s`
    must make on `img`, from the corruption's physical parameter (noise sigma, photon count,
    brightness shift, kept contrast, haze fraction, rain darkening, veiling glare)."""
    f = img.astype(np.float64)
    gauss = np.sqrt(2 / np.pi)  # E|X| / sigma for a normal X
    if name == "gaussian_noise":  # sigma 10..51 grey levels (clipping trims a little)
        sigma = (10.0, 18.0, 25.0, 36.0, 51.0)[s - 1]
        return 0.93 * gauss * sigma, 1.01 * gauss * sigma
    if name == "shot_noise":  # Poisson: std sqrt(v * 255 / photons) at grey level v
        photons = (120.0, 60.0, 30.0, 15.0, 8.0)[s - 1]
        mad = float(np.mean(gauss * np.sqrt(f * 255 / photons)))
        return 0.93 * mad, 1.03 * mad
    if name == "brightness":  # HSV value + shift (saturating), hue and saturation kept
        shift = (20, 40, 60, 80, 100)[s - 1]
        v = f.max(axis=2, keepdims=True)
        mad = float(np.mean(f * (np.minimum(v + shift, 255) - v) / np.maximum(v, 1)))
        return 0.95 * mad, 1.03 * mad
    if name == "contrast":  # keeps a fraction c of each pixel's deviation from the mean
        c = (0.7, 0.55, 0.4, 0.3, 0.2)[s - 1]
        mad = (1 - c) * float(np.abs(f - f.mean()).mean())
        return mad - 0.5, mad + 0.5
    if name == "fog":  # blends a fraction t0 (+-20 % smooth field) toward grey 200
        t0 = (0.3, 0.45, 0.58, 0.7, 0.8)[s - 1]
        mad = t0 * float(np.abs(200 - f).mean())
        return 0.85 * mad, 1.1 * mad
    if name == "rain":  # darkens the scene to `dark` of its value, then adds streaks
        dark = (0.95, 0.9, 0.85, 0.8, 0.75)[s - 1]
        mad = (1 - dark) * float(f.mean())
        return 0.9 * mad, 1.3 * mad
    if name == "glare":  # at least the veiling glare (blue channel: 0.85 of it) everywhere
        veil = (0.03, 0.06, 0.09, 0.12, 0.16)[s - 1]
        return veil * 0.85 * float((255 - f).mean()), float((255 - f).mean())
    if name == "jpeg":  # quality 40 down to 6: visible loss at every severity
        return 2.0, 20.0
    if name in ("motion_blur", "defocus_blur"):  # checked through the detail they remove
        return 0.5, 10.0
    if name == "dead_pixels":  # checked through the number of pixels changed
        return 0.05, 5.0
    raise AssertionError(f"no expectation for corruption {name!r}")


DEAD_FRACTION = (0.001, 0.002, 0.004, 0.008, 0.016)  # of the pixels, per severity


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(512, 256), (97, 61)])
def test_each_severity_does_what_the_corruption_must(name, size):
    img = _road(*size)
    detail = []
    for s in range(1, 6):
        out = corrupt(img, name, s, np.random.default_rng(s))
        assert out.dtype == np.uint8 and out.shape == img.shape, (name, s)
        lo, hi = _expected_mad(name, img, s)
        assert lo <= _mad(out, img) <= hi, (name, s, _mad(out, img), (lo, hi))
        detail.append(_grad(out) / _grad(img))
        if name == "dead_pixels":  # n pixels drawn with repeats; a few land on their own value
            n = max(1, round(DEAD_FRACTION[s - 1] * img.shape[0] * img.shape[1]))
            assert 0.75 * n <= np.any(out != img, axis=2).sum() <= n, (s, n)
    if name in ("motion_blur", "defocus_blur"):
        # blurs remove fine detail, more at each severity (at least 10 % at severity 1); the
        # 1 px minimum radius/length makes the low severities alike on a small image
        assert detail[0] < 0.9 and all(b <= a + 1e-9 for a, b in pairwise(detail)), detail


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_seed_dependence(name):
    img = _road()
    a = corrupt(img, name, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, corrupt(img, name, 3, np.random.default_rng(7)))
    b = corrupt(img, name, 3, np.random.default_rng(8))
    assert np.array_equal(a, b) == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_severity_is_monotone(name, seed):
    img = _road()
    mads = [_mad(corrupt(img, name, s, np.random.default_rng(seed)), img) for s in range(1, 6)]
    assert all(hi > lo * 1.02 for lo, hi in zip(mads, mads[1:], strict=False)), mads


def test_noise_has_the_intended_statistics():
    grey = np.full((256, 512, 3), 128, np.uint8)
    g = corrupt(grey, "gaussian_noise", 3, np.random.default_rng(0)).astype(float)
    assert g.mean() == pytest.approx(128, abs=0.5) and g.std() == pytest.approx(25.0, rel=0.03)
    # Poisson with 30 photons for white: lambda = 128/255*30, rescaled by 255/30.
    p = corrupt(grey, "shot_noise", 3, np.random.default_rng(0)).astype(float)
    lam = 128 / 255 * 30
    assert p.mean() == pytest.approx(lam * 255 / 30, abs=1.0)
    assert p.std() == pytest.approx(np.sqrt(lam) * 255 / 30, rel=0.03)
    assert len(np.unique(p)) < 40  # photon counts: discrete levels, not a Gaussian blur of them


def test_effects_look_like_their_names():
    img, rng = _road(), np.random.default_rng
    const = np.full((64, 128, 3), 77, np.uint8)
    for name in ("motion_blur", "defocus_blur"):  # kernels sum to 1: flat stays flat
        np.testing.assert_array_equal(corrupt(const, name, 5, rng(0)), const)
    glare = corrupt(img, "glare", 4, rng(0))
    assert np.all(glare >= img) and glare.max() == 255  # a bloom only adds light
    fog = corrupt(img, "fog", 4, rng(0)).astype(float)
    assert fog.std() < 0.6 * img.std() and fog.mean() > img.mean()  # towards light grey
    dead = corrupt(img, "dead_pixels", 5, rng(0))
    changed = np.any(dead != img, axis=2).mean()
    assert 0.01 < changed <= 0.016  # 1.6 % of the pixels, minus repeats and lucky matches
    rain = corrupt(img, "rain", 5, rng(0))
    assert rain.astype(float).mean() < img.mean()  # darker overall, with bright streaks
    assert np.sum(rain.astype(int) - img > 40) > 1000


def test_bad_arguments_give_clear_errors():
    img, rng = _road(), np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"name='snow' is not a corruption; valid: gaussian_noise"):
        corrupt(img, "snow", 1, rng)
    with pytest.raises(ValueError, match=r"severity=7 is outside the range 0\.\.5"):
        corrupt(img, "fog", 7, rng)
    with pytest.raises(ValueError, match=r"severity=-1 is outside"):
        corrupt(img, "fog", -1, rng)
    with pytest.raises(ValueError, match=r"severity=2.5 must be an integer"):
        corrupt(img, "fog", 2.5, rng)
    with pytest.raises(ValueError, match=r"uint8 RGB image, got \(\(4, 4, 3\), dtype\('float32'\)"):
        corrupt(np.zeros((4, 4, 3), np.float32), "fog", 1, rng)
    with pytest.raises(TypeError, match="numpy.random.Generator, got int"):
        corrupt(img, "fog", 1, 0)
    with pytest.raises(ValueError, match=r"severity=7 is outside"):
        Corruption("fog", 7)
    with pytest.raises(ValueError, match=r"names\[1\]='snow'.*valid"):
        RandomCorruption(["fog", "snow"])
    with pytest.raises(ValueError, match=r"max_severity=0 must be in 1\.\.5"):
        RandomCorruption(max_severity=0)
    with pytest.raises(ValueError, match=r"p=1.5"):
        RandomCorruption(p=1.5)


def test_corruption_object_draws_from_its_own_seeded_generator():
    img = _road()
    a, b = Corruption("rain", 3, seed=5), Corruption("rain", 3, seed=5)
    first = a(img)
    np.testing.assert_array_equal(first, b(img))
    assert not np.array_equal(first, a(img))  # the next frame gets new streaks


def test_configs_instantiate_and_override():
    none = instantiate(OmegaConf.load(CONF / "none.yaml"))
    np.testing.assert_array_equal(none(_road()), _road())
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "single.yaml"),
                          OmegaConf.from_dotlist(["name=fog", "severity=5"]))
    fog = instantiate(cfg)
    assert isinstance(fog, Corruption) and (fog.name, fog.severity) == ("fog", 5)
    expected = corrupt(_road(), "fog", 5, np.random.default_rng(0))
    np.testing.assert_array_equal(fog(_road()), expected)


def test_random_corruption():
    img = _road()
    never = RandomCorruption(p=0.0)
    np.testing.assert_array_equal(never(img, np.random.default_rng(0)), img)
    always = RandomCorruption(p=1.0)
    assert all(_mad(always(img, np.random.default_rng(s)), img) > 0.05 for s in range(10))
    out = always(img, np.random.default_rng(3))
    np.testing.assert_array_equal(out, always(img, np.random.default_rng(3)))
    # Only brightness, severity at most 1: must equal the deterministic severity-1 result.
    mild = RandomCorruption(["brightness"], p=1.0, max_severity=1)
    expected = corrupt(img, "brightness", 1, np.random.default_rng(0))
    np.testing.assert_array_equal(mild(img, np.random.default_rng(9)), expected)
    small, some = _road(64, 32), RandomCorruption(p=0.3)
    hits = sum(_mad(some(small, np.random.default_rng(s)), small) > 0 for s in range(100))
    assert 15 <= hits <= 45  # ~30 expected
