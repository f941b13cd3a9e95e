"""`roadsight bench` runs its suites with tiny budgets and reports consistent ratios."""

from __future__ import annotations

import json

import pytest
from hydra.utils import instantiate

from perception.backends import input_hw
from perception.checkpoint import build_model, load_checkpoint, resolve_checkpoint
from tests.apps.test_record import run_cli


def test_sim_suite_reports_rates_and_ratios(tmp_path):
    run_cli("bench", "suites=[sim]", "sim.steps=3", "sim.rounds=1", f"hydra.run.dir={tmp_path}")
    result = json.loads((tmp_path / "metrics.json").read_text())
    rows = {r["case"]: r for r in result["suites"]["sim"]["rows"]}
    base = rows["highway-fast-v0 (kinematics)"]
    assert base["vs_highway_fast"] == 1.0
    urban, urban_bev = rows["urban-crossing-v0 (kinematics)"], rows["urban-crossing-v0 + bev"]
    assert urban_bev["vs_same_env_without_camera"] == pytest.approx(
        urban_bev["steps_per_s"] / urban["steps_per_s"]
    )
    assert all(r["steps_per_s"] > 0 for r in rows.values())
    assert result["machine"]["cores"] >= 1


def test_unknown_suite_names_the_choices(tmp_path):
    proc = run_cli("bench", "suites=[gpu_magic]", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "unknown suite 'gpu_magic'" in proc.stderr
    assert "sim" in proc.stderr


def test_detector_suite_reports_latency_beside_an_env_step(tmp_path):
    run_cli(
        "bench",
        "suites=[detector]",
        "detector.repeats=1",
        "detector.env_steps=2",
        "detector.batches=[1,2]",
        "detector.cameras=[front]",
        f"hydra.run.dir={tmp_path}",
    )
    rows = {
        r["case"]: r
        for r in json.loads((tmp_path / "metrics.json").read_text())["suites"]["detector"]["rows"]
    }
    step = rows["highway-fast-v0 env step"]["ms_per_frame"]
    # the shipped front checkpoint's own input size and output stride
    state = load_checkpoint(resolve_checkpoint(None, "front"))
    h, w = input_hw(instantiate(state["preprocess_cfg"]))
    case = f"front {w}x{h} stride {build_model(state).stride}"
    for name in (f"{case} torch b1", f"{case} torch b2", f"{case} onnxruntime b1"):
        row = rows[name]
        assert row["ms_per_frame"] > 0
        assert row["vs_highway_fast_step"] == pytest.approx(row["ms_per_frame"] / step)
    b2 = rows[f"{case} torch b2"]
    assert b2["ms_per_frame"] == pytest.approx(b2["ms_per_call"] / 2)
    # the forward pass plus peak decoding has its own rows, at every batch size
    assert rows[f"{case} torch+decode b1"]["ms_per_frame"] > 0
    assert f"{case} torch+decode b2" in rows
