"""train-detector, val-detector, detect and export as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import onnxruntime as ort
import pytest
import torch
from hydra.utils import instantiate
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from perception.backends import OnnxBackend, TorchBackend, load_detector
from perception.checkpoint import build_model, load_checkpoint
from perception.coco_eval import coco_results, evaluate, predict_records
from perception.corruptions import Corruption
from perception.data import load_coco_dirs
from perception.decode import DecodeOptions, decode
from perception.report import band_start
from perception.synthetic import write_synthetic_coco
from perception.val import validate
from roadsight.errors import ConfigError
from tests.configs import compose_app

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))
SMALL_INPUT = ("preprocess.ops.0.width=256", "preprocess.ops.0.height=128")


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ROADSIGHT, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"roadsight {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny detector trained on 8 synthetic frames (also its val set)."""
    root = tmp_path_factory.mktemp("det")
    data = write_synthetic_coco(root / "ds", n_images=8, seed=1)
    out = root / "train"
    run_cli(
        "train-detector",
        f"data={data}",
        f"val_data={data}",
        "epochs=30",
        "detector=tiny",
        *SMALL_INPUT,
        "batch_size=8",
        "workers=0",
        "lr=0.01",
        "warmup_steps=10",
        "augment=null",
        "val_every=5",
        "threads=1",
        f"hydra.run.dir={out}",
    )
    return data, out


def test_train_writes_checkpoints_tb_and_metrics(trained):
    _, out = trained
    for name in ("last.pt", "best.pt", "metrics.json", "run.json"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    state = load_checkpoint(out / "best.pt")
    assert state["classes"] == ["vehicle", "pedestrian", "obstacle"]
    assert state["preprocess_cfg"]["ops"][0]["width"] == 256
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert json.loads((out / "metrics.json").read_text())["best_mAP50"] > 0.5


def test_val_detector_metrics_csv_and_pr_plot(trained, tmp_path):
    data, out = trained
    run_cli(
        "val-detector", f"checkpoint={out / 'best.pt'}", f"data={data}", "bootstrap=200",
        f"hydra.run.dir={tmp_path}"
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    # bootstrap resamples whole episodes by default: the synthetic data is one episode, so every
    # resample is the whole set and each interval is the AP50 itself
    boot = m["bootstrap"]
    assert (boot["n"], boot["level"], boot["by"], boot["units"]) == (200, 0.95, "episode", 1)
    for name, ci in boot["per_class"].items():
        assert ci["AP50"] == pytest.approx([m["per_class"][name]["AP50"]] * 2)
    assert m["mAP50"] > 0.5 and 0 < m["mAP50_95"] <= m["mAP50"] <= m["mAP_loose"]
    assert m["loose_iou"] == 0.1 and m["peak_iou"] == 0.3 and m["snap_px"]  # config defaults
    for name in ("vehicle", "pedestrian", "obstacle"):
        pc = m["per_class"][name]
        assert set(pc) >= {"AP50", "AP50_95", "AP_loose", "precision", "recall", "recall_max"}
        assert pc["recall"] <= pc["recall_max"] and pc["AP50"] <= pc["recall_max"] + 1 / 101
    csv_rows = (tmp_path / "per_class.csv").read_text().splitlines()
    assert csv_rows[0] == ("class,AP50,AP50_95,AP_loose,precision,recall,recall_max,F1,F1_thresh,"
                           "n_gt")
    vehicle = m["per_class"]["vehicle"]
    assert 0 < vehicle["F1"] <= 1 and 0 < vehicle["F1_thresh"] <= 1
    assert csv_rows[-1].startswith(f"all,{m['mAP50']},{m['mAP50_95']},{m['mAP_loose']},")
    assert cv2.imread(str(tmp_path / "pr_curve.png")) is not None
    # AP per band of ego distance (the synthetic frames carry no ego_xy: no object in any band)
    assert list(m["by_range"]) == ["0-20 m", "20-40 m", "40-80 m", "80-250 m"]
    assert m["by_range"]["0-20 m"]["per_class"]["vehicle"] == {"AP50": None, "AP50_95": None,
                                                                "AP_loose": None, "n_gt": 0}
    assert m["by_camera"] is None  # one camera, not a rig
    # recall by box height: every counted object falls in one band
    assert sorted(m["by_height"], key=band_start) == ["0-3 px", "3-4 px", "4-6 px", "6-12 px",
                                                      "12-1000 px"]
    for name, pc in m["per_class"].items():
        bands = [b["per_class"][name] for b in m["by_height"].values()]
        assert sum(b["n_gt"] for b in bands) == pc["n_gt"]
        assert all(b["recall50"] is None or b["recall50"] <= b["recall_loose"] for b in bands)
    # and by visible fraction, fully visible objects included in the last band
    assert list(m["by_visible"]) == ["0.3-0.5", "0.5-0.7", "0.7-0.9", "0.9-1"]
    for name, pc in m["per_class"].items():
        assert sum(b["per_class"][name]["n_gt"] for b in m["by_visible"].values()) == pc["n_gt"]
    # what was scored is written in COCO format: plain pycocotools re-scores it to the same mAP50
    gt = COCO(str(tmp_path / "ground_truth.json"))
    ev = COCOeval(gt, gt.loadRes(str(tmp_path / "detections.json")), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[1] == pytest.approx(m["mAP50"], abs=1e-6)
    # snap_px (default): every box edge lies on the pixel grid and every box covers a pixel
    boxes = np.array([d["bbox"] for d in json.loads((tmp_path / "detections.json").read_text())])
    assert len(boxes) and np.array_equal(boxes, np.round(boxes)) and (boxes[:, 2:] >= 1).all()


def test_val_detector_onnx_backend_under_corruption(trained, tmp_path):
    data, out = trained
    run_cli(
        "val-detector",
        f"checkpoint={out / 'best.pt'}",
        f"data={data}",
        "backend=onnx",
        "corruption=single",
        "corruption.name=fog",
        "corruption.severity=3",
        "peak_iou=null",
        "snap_px=false",
        f"hydra.run.dir={tmp_path}",
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["backend"] == "onnx" and m["corruption"] == {"name": "fog", "severity": 3}
    assert m["peak_iou"] is None and m["snap_px"] is False
    onnx_fog = json.loads((tmp_path / "detections.json").read_text())
    boxes = np.array([d["bbox"] for d in onnx_fog])
    assert not np.array_equal(boxes, np.round(boxes))  # as regressed: off the pixel grid
    # the same frames, fogged (or not) here and run through torch
    records = load_coco_dirs(data)
    options = DecodeOptions(score_thresh=0.001, peak_iou=None, snap_px=False)
    torch_det, _ = load_detector(out / "best.pt", "torch", device="cpu", options=options)
    torch_fog = predict_records(torch_det, records, corruption=Corruption("fog", 3))
    clean = predict_records(torch_det, records)
    # onnxruntime in the app and torch here found the same objects on the fogged frames ...
    assert _unmatched(onnx_fog, coco_results(torch_fog)) == 0
    assert _unmatched(coco_results(torch_fog), onnx_fog) == 0
    torch_map = evaluate(records, torch_fog, 0.3, 0.3, 0.0).metrics["mAP50"]
    assert m["mAP50"] == pytest.approx(torch_map, abs=1e-3)
    # ... and the fog was applied: the clean frames give other detections and a higher score
    assert _unmatched(onnx_fog, coco_results(clean)) > 0
    assert evaluate(records, clean, 0.3, 0.3, 0.0).metrics["mAP50"] > m["mAP50"] + 0.05


def _unmatched(dets: list[dict], others: list[dict], min_score: float = 0.01) -> int:
    """How many of `dets` scoring >= min_score have no detection in `others` of the same image
    and class with a box within 0.05 px and a score within 1e-3."""
    missing = 0
    for d in (d for d in dets if d["score"] >= min_score):
        missing += not any(o["image_id"] == d["image_id"] and o["category_id"] == d["category_id"]
                           and abs(o["score"] - d["score"]) < 1e-3
                           and np.abs(np.subtract(o["bbox"], d["bbox"])).max() < 0.05
                           for o in others)
    return missing


def ffprobe_video_line(path: Path) -> str:
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path)], capture_output=True, text=True
    )
    return next(line for line in proc.stderr.splitlines() if "Video:" in line)


def read_frames(path: Path) -> list:
    with imageio.get_reader(str(path)) as reader:  # its len() is inf: no list(reader)
        return [frame for frame in reader.iter_data()]


def test_detect_on_a_video_writes_h264_and_jsonl(trained, tmp_path):
    data, out = trained
    video = tmp_path / "in.avi"  # MJPG AVI: something OpenCV reads that is not our own output
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (256, 128))
    for p in sorted((data / "images").glob("*.png"))[:5]:
        vw.write(cv2.imread(str(p)))
    vw.release()
    run_cli(
        "detect",
        f"checkpoint={out / 'best.pt'}",
        f"source={video}",
        "batch_size=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    mp4 = tmp_path / "run" / "detections.mp4"
    assert "Video: h264" in ffprobe_video_line(mp4)
    frames = read_frames(mp4)
    assert len(frames) == 5 and frames[0].shape == (128, 256, 3)
    lines = [
        json.loads(x) for x in (tmp_path / "run" / "detections.jsonl").read_text().split("\n") if x
    ]
    assert [x["frame"] for x in lines] == list(range(5))
    assert all(set(x) >= {"boxes", "classes", "scores"} for x in lines)
    assert sum(len(x["boxes"]) for x in lines) > 0


def test_detect_on_an_image_folder_with_onnx(trained, tmp_path):
    data, out = trained
    run_cli(
        "detect",
        f"checkpoint={out / 'best.pt'}",
        f"source={data / 'images'}",
        "backend=onnx",
        f"hydra.run.dir={tmp_path}",
    )
    assert len((tmp_path / "detections.jsonl").read_text().splitlines()) == 8
    assert len(read_frames(tmp_path / "detections.mp4")) == 8
    # per-class thresholds: only vehicles pass
    run_cli("detect", f"checkpoint={out / 'best.pt'}", f"source={data / 'images'}",
            "score_thresh={vehicle:0.2,pedestrian:1.0,obstacle:1.0}", "video=false",
            f"hydra.run.dir={tmp_path / 'vehicles'}")
    lines = [json.loads(x) for x in (tmp_path / "vehicles" / "detections.jsonl").read_text()
             .splitlines()]
    classes = {c for x in lines for c in x["classes"]}
    assert classes == {"vehicle"}


def test_export_onnx_agrees_with_torch(trained, tmp_path):
    _, out = trained
    run_cli("export", f"checkpoint={out / 'best.pt'}", "format=onnx", f"hydra.run.dir={tmp_path}")
    onnx_path = tmp_path / "detector.onnx"
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["heatmap", "size", "offset"]
    state = load_checkpoint(out / "best.pt")
    pre = instantiate(state["preprocess_cfg"])
    imgs = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((trained[0] / "images").glob("*.png"))[:3]
    ]
    x = torch.stack([torch.from_numpy(pre(im)[0]) for im in imgs])  # batch 3: dynamic batch
    ref = TorchBackend(build_model(state), "cpu")(x)
    got = OnnxBackend(onnx_path)(x)
    torch.testing.assert_close(got[0], ref[0], atol=1e-4, rtol=0)  # heatmaps
    for (b1, c1, s1), (b2, c2, s2) in zip(decode(*ref), decode(*got), strict=True):
        assert torch.equal(c1, c2)
        torch.testing.assert_close(b1, b2, atol=1e-3, rtol=0)
        torch.testing.assert_close(s1, s2, atol=1e-4, rtol=0)


def test_bad_inputs_fail_naming_the_file_and_keep_artefacts(trained, tmp_path):
    data, out = trained
    ckpt = f"checkpoint={out / 'best.pt'}"
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"garbage" * 100)
    proc = run_cli(
        "detect", ckpt, f"source={bad_video}", f"hydra.run.dir={tmp_path / 'd1'}", check=False
    )
    assert proc.returncode != 0 and "bad.mp4: unreadable" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli(
        "detect",
        ckpt,
        f"source={tmp_path / 'empty'}",
        f"hydra.run.dir={tmp_path / 'd2'}",
        check=False,
    )
    assert proc.returncode != 0 and "empty: empty" in proc.stderr

    broken = tmp_path / "broken"
    write_synthetic_coco(broken, n_images=2)
    coco = json.loads((broken / "annotations.json").read_text())
    coco["annotations"][0]["bbox"] = [250, 120, 30, 30]
    (broken / "annotations.json").write_text(json.dumps(coco))
    last_before = (out / "last.pt").read_bytes()
    proc = run_cli(
        "train-detector",
        f"data={broken}",
        "detector=tiny",
        *SMALL_INPUT,
        "epochs=31",
        "workers=0",
        f"hydra.run.dir={out}",
        check=False,
    )
    assert proc.returncode != 0 and "annotations.json: annotation id=1: box" in proc.stderr
    assert (out / "last.pt").read_bytes() == last_before  # the failed run destroyed nothing

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((out / "best.pt").read_bytes()[:2000])
    proc = run_cli(
        "val-detector",
        f"checkpoint={corrupt}",
        f"data={data}",
        f"hydra.run.dir={tmp_path / 'v'}",
        check=False,
    )
    assert proc.returncode != 0 and "corrupt.pt: not a readable torch file" in proc.stderr
    # bad values fail naming the key and the choices, before any inference: two through the CLI
    # (one error line, nothing written), the rest through the same checks in-process
    val, det = ("val-detector", f"data={data}"), ("detect", f"source={data}")
    for i, ((app, input_arg), value, message) in enumerate([
        (val, "topk=0", "topk=0: choose a whole number >= 1 (detections kept per image)"),
        (det, "snap_px=maybe", "snap_px='maybe': choose true (box edges rounded to whole image "
                               "pixels)"),
    ]):
        run_dir = tmp_path / f"bad{i}"
        proc = run_cli(app, ckpt, input_arg, value, f"hydra.run.dir={run_dir}", check=False)
        assert proc.returncode != 0, value
        assert message in proc.stderr.strip().splitlines()[-1], proc.stderr[-500:]
        assert not (run_dir / "metrics.json").exists()
    bad_values = [
        ("range_bins=[40,20]", "range_bins=[40, 20]: need two or more increasing"),
        ("loose_iou=0.7", "loose_iou=0.7: choose an IoU in (0, 0.5), or null"),
        ("height_bins=[4]", "height_bins=[4]: need two or more increasing box heights [px]"),
        ("score_thresh={vehicle:0.3}", "score_thresh={'vehicle': 0.3}: give one number, or one "
                                       "per class naming each of ['vehicle', 'pedestrian', "
                                       "'obstacle']"),
        ("visible_bins=[1,0.5]", "visible_bins=[1, 0.5]: need two or more increasing visible "
                                 "fractions"),
        ("peak_iou=1.5", "peak_iou=1.5: choose null (3x3 max-pool peaks) or an IoU in [0, 1)"),
        ("bootstrap=-5", "bootstrap=-5: choose a number of resamples >= 0 (0: none)"),
        ("bootstrap_level=95", "bootstrap_level=95: choose a confidence level in (0, 1)"),
        ("bootstrap_by=frame", "bootstrap_by='frame': choose one of ['episode', 'image']"),
    ]
    for i, (value, message) in enumerate(bad_values):
        run_dir = tmp_path / f"val{i}"
        cfg = compose_app("val_detector", [f"checkpoint={out / 'best.pt'}", f"data={data}", value])
        with pytest.raises(ConfigError) as err:
            validate(cfg, run_dir)
        assert str(err.value).startswith(message), (value, str(err.value))
        assert not run_dir.exists()  # failed before writing anything
    cfg = compose_app("detect", [f"checkpoint={out / 'best.pt'}", f"source={data}", "peak_iou=1.5"])
    with pytest.raises(ConfigError) as err:
        DecodeOptions.from_cfg(cfg)  # what detect checks before it loads anything
    assert str(err.value).startswith(
        "peak_iou=1.5: choose null (3x3 max-pool peaks) or an IoU in [0, 1)"), str(err.value)
    # train-detector checks its eval decoding before it loads any data
    proc = run_cli("train-detector", "data=/nonexistent", "eval.peak_iou=2",
                   f"hydra.run.dir={tmp_path / 't'}", check=False)
    assert proc.returncode != 0
    assert "peak_iou=2: choose null (3x3 max-pool peaks)" in proc.stderr
    assert not (tmp_path / "t" / "last.pt").exists()


def test_camera_picks_its_shipped_default(tmp_path):
    """`camera=surround` without `checkpoint=` runs the shipped surround detector (a missing
    default names its make recipe: tests/perception/test_detector.py)."""
    source = tmp_path / "frames"
    source.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(source / f"{i:06d}.png"), rng.integers(0, 255, (160, 320, 3), np.uint8))
    run_cli("detect", "camera=surround", f"source={source}", f"hydra.run.dir={tmp_path / 'd'}")
    summary = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert Path(summary["checkpoint"]).name == "detector_surround.pt"
    assert summary["frames"] == 2
