"""Checkpoint provenance: the camera a detector was trained for, refused data from another
camera, and per-class F1-best score thresholds stored in the checkpoint and used by default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from perception.backends import load_detector
from perception.checkpoint import load_checkpoint
from perception.coco_eval import evaluate, predict_records
from perception.data import load_coco_dirs
from perception.decode import DecodeOptions
from perception.provenance import CameraMismatchError, check_data, check_source
from perception.synthetic import write_synthetic_coco
from perception.trainer import train_detector
from perception.val import validate
from roadsight.errors import ConfigError
from roadsight.paths import CONF_DIR, MODELS_DIR
from sim.drivers import IDMDriver
from sim.make import make_env
from sim.record import record_dataset
from tests.configs import compose_app

torch.set_num_threads(1)
BEV = MODELS_DIR / "detector_bev.pt"


def relabel(directory: Path, **camera) -> Path:
    """Give every image of a synthetic dataset the CameraInfo fields `camera`."""
    path = directory / "annotations.json"
    coco = json.loads(path.read_text())
    for im in coco["images"]:
        im["camera"] = {**im["camera"], **camera}
    path.write_text(json.dumps(coco))
    return directory


def val_cfg(checkpoint, data, *overrides: str):
    return compose_app("val_detector", [
        f"checkpoint={checkpoint}", f"data={data}", "range_bins=null", "height_bins=null",
        "visible_bins=null", "threads=1", *overrides])


@pytest.fixture(scope="module")
def bev_data(tmp_path_factory):
    """7 recorded bev frames of one urban episode (the shipped bev camera)."""
    out = tmp_path_factory.mktemp("bev")
    env = make_env("roadsight/urban-crossing-v0")
    try:
        record_dataset(env, instantiate(OmegaConf.load(CONF_DIR / "camera" / "bev.yaml")),
                       IDMDriver(), out, episodes=1, seed=4100, max_steps=12, every=2,
                       progress=False)
    finally:
        env.close()
    return out


@pytest.mark.parametrize("name,kind,size,members", [
    ("bev", "bev", (512, 256), ["bev"]), ("front", "pinhole", (320, 160), ["front"]),
    ("front_small", "pinhole", (320, 160), ["front"]),
    ("surround", "pinhole", (320, 160), ["front", "left", "right", "rear"])])
def test_shipped_checkpoints_record_their_camera(name, kind, size, members):
    state = load_checkpoint(MODELS_DIR / f"detector_{name}.pt")
    camera = state["camera"]
    assert (camera["kind"], camera["width"], camera["height"]) == (kind, *size)
    assert list(camera["members"]) == members
    assert all((m["width"], m["height"], m["kind"]) == (*size, kind)
               for m in camera["members"].values())
    # the preprocessing feeds the camera's whole image to the network
    op = state["preprocess_cfg"]["ops"][0]
    assert (op["width"], op["height"]) == size
    if kind == "bev":
        assert camera["members"]["bev"]["metres_per_pixel"] == pytest.approx(0.1)
    else:
        assert camera["members"]["front"]["K"][0][0] == pytest.approx(160.0)  # 90 deg FOV


def test_val_refuses_data_from_another_camera(tmp_path):
    # a front-camera dataset: 320x160 pinhole images
    front = relabel(write_synthetic_coco(tmp_path / "front", 2, size=(320, 160)),
                    name="front", kind="pinhole")
    with pytest.raises(CameraMismatchError, match=r"data .*front: pinhole camera 'front', "
                       r"320x160 px, not the camera checkpoint .*detector_bev.pt was trained for, "
                       r"bev camera 'bev', 512x256 px"):
        validate(val_cfg(BEV, front), tmp_path / "v1")
    assert not (tmp_path / "v1" / "metrics.json").exists()
    # same name, another size or scale: still another camera
    small = relabel(write_synthetic_coco(tmp_path / "small", 2, size=(256, 128)), name="bev")
    with pytest.raises(CameraMismatchError, match="images of 256x128 px, not 512x256"):
        validate(val_cfg(BEV, small), tmp_path / "v2")
    zoomed = relabel(write_synthetic_coco(tmp_path / "zoom", 2, size=(512, 256)), name="bev",
                     metres_per_pixel=0.05)
    with pytest.raises(CameraMismatchError, match="0.05 m/px, not 0.1 m/px"):
        validate(val_cfg(BEV, zoomed), tmp_path / "v3")
    # check_camera=false scores it anyway
    metrics = validate(val_cfg(BEV, front, "check_camera=false"), tmp_path / "v4")
    assert (tmp_path / "v4" / "metrics.json").is_file() and metrics["n_images"] == 2


def test_rig_checkpoint_takes_any_of_its_members_only(tmp_path):
    state = load_checkpoint(MODELS_DIR / "detector_surround.pt")
    front = relabel(write_synthetic_coco(tmp_path / "f", 1, size=(320, 160)), name="front",
                    kind="pinhole")
    check_data(state, [front], "surround.pt")  # one member's frames are fine
    rear = relabel(write_synthetic_coco(tmp_path / "r", 1, size=(320, 160)), name="rear",
                   kind="pinhole")
    check_data(state, rear, "surround.pt")
    with pytest.raises(CameraMismatchError, match="a bev camera, not a pinhole one"):
        check_data(state, relabel(write_synthetic_coco(tmp_path / "b", 1, size=(320, 160)),
                                  name="rear", kind="bev"), "surround.pt")
    front_only = load_checkpoint(MODELS_DIR / "detector_front.pt")
    with pytest.raises(CameraMismatchError, match=r"camera 'rear' is not among the "
                                                  r"checkpoint's \['front'\]"):
        check_data(front_only, [front, rear], "front.pt")


def test_detect_source_without_annotations_is_checked_by_image_size(tmp_path):
    state = load_checkpoint(BEV)
    for name, hw in (("ok", (256, 512)), ("other", (160, 320))):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "0.png"), np.zeros((*hw, 3), np.uint8))
    check_source(state, tmp_path / "ok", BEV)
    with pytest.raises(CameraMismatchError, match=r"source .*other: 320x160 px images"):
        check_source(state, tmp_path / "other", BEV)
    # an images/ folder of a recorded dataset is checked by its annotations' cameras
    data = relabel(write_synthetic_coco(tmp_path / "ds", 1, size=(512, 256)), name="front")
    with pytest.raises(CameraMismatchError, match="camera 'front' is not among"):
        check_source(state, data / "images", BEV)


def test_training_records_the_data_camera_and_refuses_val_from_another(tmp_path):
    data = relabel(write_synthetic_coco(tmp_path / "ds", 4, seed=1), name="synthetic")
    cfg = compose_app("train_detector", [
        f"data={data}", "detector=tiny", "preprocess.ops.0.width=256",
        "preprocess.ops.0.height=128", "batch_size=4", "workers=0", "epochs=1",
        "augment=null", "threads=1"])
    train_detector(cfg, tmp_path / "run")
    for name in ("best.pt", "last.pt"):
        camera = load_checkpoint(tmp_path / "run" / name)["camera"]
        assert (camera["name"], camera["kind"], camera["width"], camera["height"]) == \
            ("synthetic", "bev", 256, 128)
    other = write_synthetic_coco(tmp_path / "other", 2, size=(320, 160))
    cfg.val_data = str(other)
    with pytest.raises(CameraMismatchError, match=r"val_data .*other: bev camera 'synthetic', "
                                                  r"320x160 px, not the training data's"):
        train_detector(cfg, tmp_path / "run2")
    assert not (tmp_path / "run2" / "last.pt").exists()


def test_f1_thresholds_are_stored_and_used_by_default(bev_data, tmp_path):
    ckpt = tmp_path / "bev.pt"
    shutil.copy(BEV, ckpt)
    before = load_checkpoint(ckpt)
    # scores under a corruption never become thresholds, and the file is left alone
    with pytest.raises(ConfigError, match="write_thresholds=true: not under a corruption"):
        validate(val_cfg(ckpt, bev_data, "write_thresholds=true", "corruption=single",
                         "corruption.name=fog"), tmp_path / "c")
    assert ckpt.read_bytes() == BEV.read_bytes()
    metrics = validate(val_cfg(ckpt, bev_data, "write_thresholds=true"), tmp_path / "w")
    state = load_checkpoint(ckpt)
    best = {name: pc["F1_thresh"] for name, pc in metrics["per_class"].items()}
    assert state["score_thresh"] == metrics["stored_score_thresh"] == best
    assert state["score_thresh_from"]["data"] == str(bev_data)
    assert state["score_thresh"] != {name: 0.3 for name in best}  # not the fixed default
    for k, v in before["state_dict"].items():  # the weights are untouched
        assert torch.equal(state["state_dict"][k], v)
    assert state["camera"] == before["camera"]

    # decoding with score_thresh null (the apps' default) uses them ...
    detector, _ = load_detector(ckpt, device="cpu", options=DecodeOptions())
    assert detector.options.score_thresh == best
    assert load_detector(ckpt, device="cpu", options=DecodeOptions(0.5))[0].options \
        .score_thresh == 0.5  # ... and an explicit value wins
    # ... and at them each class sits at its F1-best operating point (inclusive thresholds)
    records = load_coco_dirs(bev_data)
    dets = predict_records(detector, records, 8)
    at = evaluate(records, dets, 0.3, best).metrics["per_class"]
    for name, pc in metrics["per_class"].items():
        p, r = at[name]["precision"], at[name]["recall"]
        assert 2 * p * r / (p + r) == pytest.approx(pc["F1"]), name
    again = validate(val_cfg(ckpt, bev_data), tmp_path / "again")
    assert again["score_thresh"] == best
