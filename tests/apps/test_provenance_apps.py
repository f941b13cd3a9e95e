"""Provenance as a user meets it: `record` notes the env it drove, and `val-detector`, `detect`
and `export` refuse another camera's data with a one-line reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from perception.synthetic import write_synthetic_coco
from roadsight.paths import MODELS_DIR
from sim.camera.bev import BevCamera
from sim.drivers import IDMDriver
from sim.make import make_env
from sim.record import record_dataset

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ROADSIGHT, *args], capture_output=True, text=True, timeout=600)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The command's one-line error (a traceback would fail this)."""
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert not any("Traceback" in line for line in lines), proc.stderr[-2000:]
    return lines[-1]


def test_record_writes_the_env_id_and_resolved_config(tmp_path):
    proc = run_cli("record", "env=highway_hazards", "camera=bev", "episodes=1", "max_steps=1",
                   f"hydra.run.dir={tmp_path / 'cli'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((tmp_path / "cli" / "annotations.json").read_text())["info"]
    env = make_env("roadsight/highway-hazards-v0")
    assert info["env"] == "roadsight/highway-hazards-v0"
    assert info["env_config"] == json.loads(json.dumps(env.unwrapped.config))  # every key
    env.close()
    # a config override is what the file records, not the default
    env = make_env("roadsight/urban-crossing-v0", {"pedestrians_count": 3, "jaywalk_rate": 0.5})
    try:
        record_dataset(env, BevCamera(), IDMDriver(), tmp_path / "lib", episodes=1, seed=0,
                       max_steps=0, progress=False)
    finally:
        env.close()
    info = json.loads((tmp_path / "lib" / "annotations.json").read_text())["info"]
    assert info["env"] == "roadsight/urban-crossing-v0"
    assert (info["env_config"]["pedestrians_count"], info["env_config"]["jaywalk_rate"]) == (3, 0.5)
    assert info["env_config"]["lanes_count"] == env.unwrapped.config["lanes_count"]


def test_apps_refuse_another_cameras_data_with_the_reason(tmp_path):
    # a front dataset (320x160 pinhole frames) given to the default bev checkpoint: before
    # provenance this scored mAP50 0.0003 and reported ok
    front = write_synthetic_coco(tmp_path / "front", 2, size=(320, 160))
    coco = json.loads((front / "annotations.json").read_text())
    for im in coco["images"]:
        im["camera"] = {"name": "front", "kind": "pinhole"}
    (front / "annotations.json").write_text(json.dumps(coco))
    line = error_line(run_cli("val-detector", f"data={front}", f"hydra.run.dir={tmp_path / 'v'}"))
    assert line.startswith(f"roadsight val-detector: data {front}: pinhole camera 'front', "
                           f"320x160 px, not the camera checkpoint ")
    assert "detector_bev.pt was trained for, bev camera 'bev', 512x256 px" in line
    assert not (tmp_path / "v" / "metrics.json").exists()

    frames = tmp_path / "frames"  # a folder without annotations: its image size is checked
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), np.zeros((160, 320, 3), np.uint8))
    line = error_line(run_cli("detect", f"source={frames}", f"hydra.run.dir={tmp_path / 'd'}"))
    assert f"source {frames}: 320x160 px images, not the camera checkpoint" in line
    assert "(images of 320x160 px, not 512x256)" in line
    assert not (tmp_path / "d" / "detections.jsonl").exists()

    line = error_line(run_cli("export", "camera=front", f"checkpoint={MODELS_DIR}/detector_bev.pt",
                              f"hydra.run.dir={tmp_path / 'e'}"))
    assert "camera=front: camera 'front', 320x160 px, not the camera checkpoint" in line
    assert not (tmp_path / "e" / "detector.onnx").exists()
