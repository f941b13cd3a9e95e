"""`roadsight record` as a user runs it: real env, real files, pycocotools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from pycocotools.coco import COCO

from roadsight.paths import CONF_DIR
from sim.camera.bev import BevCamera
from sim.drivers import IDMDriver
from sim.record import record_dataset

ROADSIGHT = str(Path(sys.executable).with_name("roadsight"))


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ROADSIGHT, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"roadsight {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


# a config key only that command's app has: `--cfg job` shows which app a command runs
OWN_KEY = {"record": "max_steps", "train-detector": "epochs", "val-detector": "bootstrap",
           "detect": "source", "export": "format", "train": "total_timesteps",
           "eval": "deterministic", "summarize": "sweep", "bench": "suites"}


def test_help_lists_the_commands():
    out = run_cli("--help").stdout.splitlines()
    # the first word of each line of the "commands:" block, not a substring anywhere in the text
    # ("record" is also in "recorded", "detect" in "detector", "bench" in "benchmark")
    block = out[out.index("commands:") + 1 :]
    listed = [line.split()[0] for line in block[: block.index("")]]
    assert listed == list(OWN_KEY)


def test_each_command_runs_its_own_app(capsys, monkeypatch, tmp_path):
    from roadsight.cli import main

    monkeypatch.chdir(tmp_path)  # in case Hydra writes anything
    for command, key in OWN_KEY.items():
        monkeypatch.setattr(sys, "argv", list(sys.argv))  # the dispatcher rewrites sys.argv
        main([command, "--cfg", "job"])  # prints the app's composed config and stops
        keys = set(yaml.safe_load(capsys.readouterr().out))
        # bench holds one section per suite, the sweep suite's among them
        others = set(OWN_KEY.values()) - {key} - ({"sweep"} if command == "bench" else set())
        assert key in keys and not keys & others, (command, sorted(keys))


def record_small(out: Path) -> Path:
    """Two 4-step urban episodes from seed 7, bev camera, into `out`."""
    args = ["env=urban_crossing", "camera=bev", "episodes=2", "seed=7", "max_steps=4"]
    run_cli("record", *args, f"hydra.run.dir={out}")
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    return record_small(out)


def test_record_writes_a_coco_dataset_pycocotools_loads(recorded):
    coco = COCO(str(recorded / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "vehicle",
        "pedestrian",
        "obstacle",
    ]
    images = coco.loadImgs(coco.getImgIds())
    assert len(images) == 2 * 5  # reset + 4 steps, two episodes
    assert {(im["episode"], im["step"]) for im in images} == {
        (e, s) for e in (0, 1) for s in range(5)
    }
    assert len(coco.getAnnIds()) > 0
    for ann in coco.loadAnns(coco.getAnnIds()):
        im = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= im["width"] and y + h <= im["height"]
        assert 0 < ann["visible"] <= 1 and ann["track_id"] > 0
    im = images[0]
    assert (recorded / im["file_name"]).is_file() and im["camera"]["kind"] == "bev"
    run = json.loads((recorded / "run.json").read_text())
    metrics = json.loads((recorded / "metrics.json").read_text())
    assert run["status"] == "ok" and run["command"] == "record"
    assert metrics["images"] == 10


def test_same_seed_same_dataset_byte_for_byte(recorded, tmp_path):
    again = tmp_path / "again"
    record_small(again)
    assert (again / "annotations.json").read_bytes() == (recorded / "annotations.json").read_bytes()
    for png in sorted((recorded / "images").glob("*.png")):
        assert (again / "images" / png.name).read_bytes() == png.read_bytes()


def test_another_seed_gives_another_dataset(recorded, tmp_path):
    env = gym.make("roadsight/urban-crossing-v0")
    record_dataset(
        env, BevCamera(), IDMDriver(), tmp_path, episodes=2, seed=8, max_steps=4, progress=False
    )
    assert (tmp_path / "annotations.json").read_bytes() != (
        recorded / "annotations.json"
    ).read_bytes()


@pytest.mark.parametrize("group,bad", [("env", "urban_crosing"), ("camera", "fisheye")])
def test_unknown_env_or_camera_lists_the_valid_names(tmp_path, group, bad):
    proc = run_cli("record", f"{group}={bad}", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    line, choices = proc.stderr.strip(), sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    assert line == f"roadsight record: {group}={bad}: no such option; choose from " + ", ".join(
        choices)
    assert "bev" in choices if group == "camera" else "highway_hazards" in choices


def test_unwritable_output_dir_fails_before_any_episode(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    proc = run_cli("record", "episodes=1", f"hydra.run.dir={blocker}/out", check=False)
    assert proc.returncode != 0
    assert str(blocker) in proc.stderr
    assert "record:" not in proc.stderr  # the progress bar never started


class _CrashingDriver(IDMDriver):
    def act(self, env):
        if env.unwrapped.steps > 10:
            raise KeyboardInterrupt
        return super().act(env)


def test_interrupted_record_leaves_no_half_written_annotations(tmp_path):
    env = gym.make("roadsight/urban-crossing-v0")
    previous = b'{"previous": "dataset"}\n'
    (tmp_path / "annotations.json").write_bytes(previous)
    with pytest.raises(KeyboardInterrupt):
        record_dataset(
            env, BevCamera(), _CrashingDriver(), tmp_path, episodes=1, seed=0, progress=False
        )
    assert (tmp_path / "annotations.json").read_bytes() == previous
    assert not list(tmp_path.rglob("*.tmp"))


def test_unknown_extra_is_refused_naming_the_choices(tmp_path):
    env = gym.make("roadsight/urban-crossing-v0")
    with pytest.raises(ValueError, match="record.extras.*depth"):
        record_dataset(env, BevCamera(), IDMDriver(), tmp_path, 1, 0, extras=("normals",))
    assert not (tmp_path / "images").exists()
