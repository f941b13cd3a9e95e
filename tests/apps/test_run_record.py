"""How a command ends: `RunRecord.reporting` tells bad input (one line) from bugs (traceback)."""

from __future__ import annotations

import json

import pytest
from hydra.utils import instantiate

from perception.checkpoint import CheckpointError
from perception.data import DatasetError
from perception.video import SourceError
from roadsight.errors import ConfigError, UserInputError
from roadsight.io import RunRecord
from tests.apps.test_record import run_cli


def status(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.parametrize("error", [ConfigError, DatasetError, CheckpointError, SourceError])
def test_bad_input_exits_with_one_line_and_is_recorded(tmp_path, error):
    run = RunRecord(tmp_path, "val-detector", seed=0)
    with pytest.raises(SystemExit) as exit_info, run.reporting():
        raise error("data=/x/annotations.json: box 3 lies outside its 320x160 image")
    assert exit_info.value.code == ("roadsight val-detector: data=/x/annotations.json: box 3 lies "
                                    "outside its 320x160 image")
    record = status(tmp_path)
    assert record["status"] == "error" and record["end"] is not None
    assert record["error"].startswith("data=/x/annotations.json")


def test_bad_value_inside_instantiate_is_bad_input_too(tmp_path):
    """Hydra wraps what a config's target raises; the user still gets the target's message."""
    run = RunRecord(tmp_path, "train-detector", seed=0)
    with pytest.raises(SystemExit) as exit_info, run.reporting():
        instantiate({"_target_": "perception.model.CenterNet", "out_stride": 3})
    assert exit_info.value.code == ("roadsight train-detector: detector.out_stride=3: choose one "
                                    "of (2, 4)")
    assert status(tmp_path)["status"] == "error"


@pytest.mark.parametrize("bug", [ValueError("operands could not be broadcast"), KeyError("x"),
                                 KeyboardInterrupt()])
def test_a_bug_or_an_interrupt_keeps_its_exception(tmp_path, bug):
    run = RunRecord(tmp_path, "train-detector", seed=0)
    with pytest.raises(type(bug)), run.reporting():
        raise bug
    record = status(tmp_path)
    assert record["status"] == "failed" and record["error"] == repr(bug)


def test_a_clean_body_leaves_the_record_to_the_command(tmp_path):
    run = RunRecord(tmp_path, "export", seed=None)
    with run.reporting():
        pass
    assert status(tmp_path)["status"] == "running"
    run.finish(status="ok")
    assert status(tmp_path)["status"] == "ok"


def test_config_errors_are_value_errors():
    """Callers that catch ValueError (and the tests that expect it) keep working."""
    assert issubclass(ConfigError, UserInputError) and issubclass(UserInputError, ValueError)


def test_record_with_a_bad_camera_value_prints_one_line_and_records_it(tmp_path):
    proc = run_cli("record", "camera=front", "camera.fov_deg=200", "episodes=1",
                   f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 1
    assert "roadsight record: camera.fov_deg must be" in proc.stderr
    assert "Traceback" not in proc.stderr
    record = status(tmp_path)
    assert record["status"] == "error" and "camera.fov_deg" in record["error"]
    assert not (tmp_path / "annotations.json").exists()
