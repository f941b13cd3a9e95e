"""Preprocessing ops, the Letterbox mapping and the conf/preprocess configs."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from perception.preprocess import (
    CLAHE,
    ConvertColor,
    Gamma,
    Letterbox,
    LetterboxResize,
    Normalize,
    Preprocessor,
    Resize,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "preprocess"


def _scene(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _bright_bbox(chw: np.ndarray, thresh: float) -> np.ndarray:
    """xyxy (pixel edges) of the pixels of channel 0 above `thresh`."""
    ys, xs = np.nonzero(chw[0] > thresh)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def test_letterbox_round_trip():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 440, (50, 2))  # boxes inside the 640x480 image
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (50, 2))], axis=1)
    _, lb = Preprocessor([LetterboxResize(512, 256)])(_scene(640, 480))
    assert lb.scale == pytest.approx(256 / 480)
    assert lb.pad == (85.0, 0.0)  # 640 * 256/480 = 341 px wide, centred in 512
    assert lb.image_size == (640, 480) and lb.input_size == (512, 256)
    np.testing.assert_allclose(lb.to_image(lb.to_input(boxes)), boxes, atol=1e-9)
    assert lb.to_input(boxes.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("image_size, ops, scale, pad", [
    ((512, 256), [Resize(256, 128), LetterboxResize(320, 320, pad_value=0)], 0.625, (0.0, 80.0)),
    ((640, 480), [LetterboxResize(512, 256, pad_value=0), Resize(256, 128)], 0.2667, (42.5, 0.0)),
])
def test_letterbox_maps_a_drawn_box_onto_its_pixels(image_size, ops, scale, pad):
    # A white rectangle must land where to_input says, through chained resizes and letterboxes.
    img = np.zeros((image_size[1], image_size[0], 3), np.uint8)
    box = np.array([[100.0, 60.0, 220.0, 140.0]])
    cv2.rectangle(img, (100, 60), (219, 139), (255, 255, 255), -1)
    pre = Preprocessor(ops)
    out, lb = pre(img)
    assert out.shape == (3, ops[-1].height, ops[-1].width)
    assert pre.input_size == (ops[-1].width, ops[-1].height)
    assert lb.scale == pytest.approx(scale, abs=1e-4) and lb.pad == pytest.approx(pad)
    np.testing.assert_allclose(_bright_bbox(out, 127), lb.to_input(box)[0], atol=1.0)


def test_letterbox_pad_region_has_pad_value():
    img = np.full((480, 640, 3), 200, np.uint8)
    out, lb = Preprocessor([LetterboxResize(512, 256, pad_value=7)])(img)
    left = int(lb.pad[0])
    assert left == 85
    assert np.all(out[:, :, :left] == 7) and np.all(out[:, :, left + 341:] == 7)
    assert np.all(out[:, :, left:left + 341] == 200)


def test_same_size_letterbox_is_identity():
    img = _scene(512, 256)
    out, lb = Preprocessor([LetterboxResize(512, 256)])(img)
    assert lb.scale == 1.0 and lb.pad == (0.0, 0.0)
    np.testing.assert_array_equal(out, img.transpose(2, 0, 1).astype(np.float32))


def test_to_image_clips_to_the_image():
    lb = Letterbox(0.5, (10.0, 0.0), (100, 50), (60, 25))
    back = lb.to_image(np.array([[0.0, -5.0, 70.0, 30.0]]))
    np.testing.assert_allclose(back, [[0.0, 0.0, 100.0, 50.0]])
    with pytest.raises(ValueError, match=r"\(N, 4\).*\(3,\)"):
        lb.to_input(np.zeros(3))


@pytest.mark.parametrize("name, size", [("default", (512, 256)), ("clahe", (512, 256)),
                                        ("front", (320, 160))])
def test_config_builds_a_zero_one_chw_float_preprocessor(name, size):
    pre = instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
    assert isinstance(pre, Preprocessor) and pre.input_size == size
    for image in (_scene(*size), _scene(640, 480, seed=1)):
        image[:40, :40] = 255
        out, lb = pre(image)
        assert out.shape == (3, size[1], size[0]) and out.dtype == np.float32
        assert out.flags.c_contiguous and 0.0 <= out.min() and out.max() <= 1.0
        assert out.max() > 0.9  # really scaled to [0, 1], not left at 0..255 / 255 twice


def test_default_config_also_builds_with_recursive_instantiation():
    cfg = OmegaConf.load(CONF / "default.yaml")
    pre = instantiate(cfg, _recursive_=True)
    assert isinstance(pre.ops[0], LetterboxResize)
    out, _ = pre(_scene(512, 256))
    assert out.shape == (3, 256, 512)


def test_unknown_op_in_config_names_the_op_and_valid_ones():
    cfg = OmegaConf.load(CONF / "default.yaml")
    cfg.ops[0]._target_ = "perception.preprocess.Sharpen"
    msg = r"ops\[0\]._target_.*Sharpen.*LetterboxResize"
    with pytest.raises(InstantiationException, match=msg):
        instantiate(cfg)
    with pytest.raises(ValueError, match=r"'Blur' is not a preprocessing op.*Normalize"):
        Preprocessor([{"_target_": "Blur"}])


def test_bad_keys_and_values_name_the_key_and_choices():
    with pytest.raises(ValueError, match=r"ops\[0\].*unknown keys \['widht'\].*valid keys"):
        Preprocessor([{"_target_": "perception.preprocess.Resize", "widht": 5, "height": 5}])
    with pytest.raises(ValueError, match=r"ops\[1\]: Resize.interpolation='bicubic'.*'cubic'"):
        Preprocessor([Normalize(), {"_target_": "Resize", "width": 4, "height": 4,
                                    "interpolation": "bicubic"}])
    with pytest.raises(ValueError, match=r"ConvertColor.code='RGB2BRG'.*RGB2BGR.*valid codes"):
        ConvertColor("RGB2BRG")
    with pytest.raises(ValueError, match="'RGB2GRAY'"):  # 1 channel out: not allowed
        ConvertColor("RGB2GRAY")
    with pytest.raises(ValueError, match=r"pad_value=300.*0\.\.255"):
        LetterboxResize(64, 64, pad_value=300)
    with pytest.raises(ValueError, match=r"std=\[255.0, 0.0, 255.0\]"):
        Normalize(0.0, [255.0, 0.0, 255.0])
    with pytest.raises(ValueError, match=r"Gamma.gamma=0"):
        Gamma(0)


def test_uint8_op_after_normalize_is_rejected():
    with pytest.raises(ValueError, match=r"ops\[1\] \(CLAHE\).*after Normalize"):
        Preprocessor([Normalize(), CLAHE()])


def test_stretching_resize_is_rejected():
    with pytest.raises(ValueError, match=r"stretch a 640x480 image.*LetterboxResize"):
        Preprocessor([Resize(512, 256)])(_scene(640, 480))


def test_bad_input_image_is_rejected():
    pre = Preprocessor([Normalize()])
    assert pre.input_size is None
    with pytest.raises(ValueError, match=r"uint8 RGB, got \(\(8, 8, 3\), dtype\('float32'\)\)"):
        pre(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        pre(np.zeros((8, 8), np.uint8))


def test_colour_gamma_clahe_normalize_do_their_job():
    img = _scene(64, 32)
    lb = Letterbox.identity((64, 32))
    bgr, _ = ConvertColor("COLOR_RGB2BGR")(img, lb)
    np.testing.assert_array_equal(bgr, img[..., ::-1])
    grey = np.full((4, 4, 3), 128, np.uint8)
    assert Gamma(2.0)(grey, lb)[0][0, 0, 0] == round(255 * (128 / 255) ** 0.5)
    flat = (np.random.default_rng(0).normal(120, 4, (64, 64, 3))).clip(0, 255).astype(np.uint8)
    eq, _ = CLAHE(clip_limit=4.0, tile_grid=4)(flat, lb)
    assert eq.dtype == np.uint8 and eq.shape == flat.shape and eq.std() > 2 * flat.std()
    norm, _ = Normalize([1.0, 2.0, 3.0], [2.0, 4.0, 8.0])(np.full((2, 2, 3), 9, np.uint8), lb)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm[0, 0], [4.0, 1.75, 0.75])
