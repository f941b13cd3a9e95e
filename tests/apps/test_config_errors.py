"""Config a user can override and sweep, and bad settings that end in one line, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from agents.build import make_vec_env
from roadsight.device import resolve_device_name
from roadsight.errors import ConfigError, user_input_error
from roadsight.io import RunRecord
from roadsight.paths import CONF_DIR
from sim.envs import default_config
from sim.make import make_env
from tests.apps.test_record import run_cli
from tests.configs import compose_app

ENV_FILES = sorted((CONF_DIR / "env").glob("*.yaml"))
CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_env_yaml_lists_every_default_config_key_with_its_default(path):
    """So `env.config.<key>=v` works without `+` for every key, and the file never drifts."""
    node = yaml.safe_load(path.read_text())
    assert node["config"] == default_config(node["id"])


def test_env_config_overrides_without_plus_reach_the_env():
    overrides = ["env=urban_crossing", "env.config.jaywalk_rate=0.3",
                 "env.config.pedestrians_count=3", "env.config.observation.vehicles_count=4"]
    cfg = compose_app("record", overrides)
    env = instantiate(cfg.env)
    try:
        obs, _ = env.reset(seed=0)
        config = env.unwrapped.config
        assert config["jaywalk_rate"] == 0.3 and config["pedestrians_count"] == 3
        assert obs.shape[0] == 4  # Kinematics rows: the nested observation key took effect
        assert config["crosswalk_width"] == 4.0  # keys not overridden keep their default
    finally:
        env.close()


@pytest.mark.parametrize("env_id, key, nearest", [
    ("roadsight/urban-crossing-v0", "pedestrain_count", "pedestrians_count"),
    ("roadsight/highway-hazards-v0", "obstacle_count", "obstacles_count"),
    ("highway-fast-v0", "lane_count", "lanes_count"),
])
def test_unknown_env_key_fails_naming_it_and_the_nearest(env_id, key, nearest):
    with pytest.raises(ConfigError, match=rf"env\.config\.{key}: .*did you mean {nearest}"):
        make_env(env_id, {key: 1})


def test_device_setting_is_checked_and_resolved():
    for bad in ("gpu", "cuda:x", "cpu:0", ""):
        with pytest.raises(ConfigError, match=r"device=.*auto \| cpu \| cuda \| cuda:N"):
            resolve_device_name(bad)
    assert resolve_device_name("cpu") == "cpu"
    assert resolve_device_name("auto") == ("cuda" if CUDA else "cpu")
    with pytest.raises(ConfigError, match=r"device=cuda:99: this machine has|CUDA is not avail"):
        resolve_device_name("cuda:99")
    if not CUDA:
        with pytest.raises(ConfigError, match="device=cuda: CUDA is not available"):
            resolve_device_name("cuda")


def test_run_json_records_the_device_used_and_a_bad_one_is_one_line(tmp_path):
    RunRecord(tmp_path / "a", "detect", None, "auto")
    assert json.loads((tmp_path / "a" / "run.json").read_text())["device"] == (
        "cuda" if CUDA else "cpu")
    with pytest.raises(SystemExit) as exit_info:
        RunRecord(tmp_path / "b", "detect", None, "gpu")
    assert exit_info.value.code == ("roadsight detect: device=gpu: unknown device; choose "
                                    "auto | cpu | cuda | cuda:N")
    assert json.loads((tmp_path / "b" / "run.json").read_text())["status"] == "error"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((256, 512, 3), 90, np.uint8))
    return folder


def assert_one_line_error(run_dir: Path, args: list[str], message: str) -> None:
    proc = run_cli(*args, f"hydra.run.dir={run_dir}", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert last.startswith(f"roadsight {args[0]}: ") and message in last, last
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "error" and message in record["error"]
    assert not (run_dir / "metrics.json").exists()


def test_bad_settings_end_in_one_line_and_an_error_record(tmp_path, images):
    source = f"source={images}"
    cases = [
        (["record", "+env.config.pedestrain_count=40", "episodes=1", "max_steps=1"],
         "env.config.pedestrain_count: roadsight/urban-crossing-v0 has no such key; "
         "did you mean pedestrians_count"),
        (["record", "record.every=0", "episodes=1", "max_steps=1"], "record.every=0"),
        (["detect"], "source: no value given"),
        (["detect", source, "batch_size=0"], "batch_size=0"),
        (["detect", source, "device=gpu"], "device=gpu: unknown device"),
        (["summarize", f"sweep={tmp_path / 'nowhere'}"], "nowhere: no such directory"),
    ]
    if not CUDA:
        cases.append((["detect", source, "device=cuda"], "device=cuda: CUDA is not available"))
    for i, (args, message) in enumerate(cases):
        assert_one_line_error(tmp_path / f"run{i}", args, message)
    assert not (tmp_path / "nowhere").exists()  # summarize did not create the mistyped sweep


class Faulty:
    """A target whose own code raises the TypeError instantiate would raise for a bad key."""

    def __init__(self, size: int = 1):
        raise TypeError(f"helper() got an unexpected keyword argument 'size' ({size})")


def test_a_key_the_target_does_not_take_is_named_with_the_targets_settings():
    node = OmegaConf.create({"camera": {"_target_": "sim.camera.bev.BevCamera", "fov_deg": 60}})
    with pytest.raises(InstantiationException) as info:
        instantiate(node.camera)
    assert str(user_input_error(info.value)) == (
        "camera.fov_deg: not a setting of sim.camera.bev.BevCamera; choose from width, height, "
        "scaling, centering, name")
    # the same TypeError raised inside a target that takes the key is a bug: no user error
    with pytest.raises(InstantiationException) as info:
        instantiate({"_target_": f"{__name__}.Faulty", "size": 2})
    assert user_input_error(info.value) is None


def test_a_camera_key_the_camera_does_not_take_fails_before_any_worker_starts():
    cfg = compose_app("train", ["camera=front", "+camera.centering=[0.2,0.5]", "n_envs=2"])
    with pytest.raises(InstantiationException) as info:
        make_vec_env(cfg, 2)  # raised in this process, not as a dead worker's ConnectionReset
    assert str(user_input_error(info.value)).startswith(
        "camera.centering: not a setting of sim.camera.pinhole.PinholeCamera; choose from name, "
        "width, height, fov_deg")


def test_unknown_env_key_without_plus_is_refused_naming_it_and_the_nearest(tmp_path):
    proc = run_cli("record", "env.config.pedestrain_count=40", "episodes=1",
                   f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "roadsight record: env.config.pedestrain_count: env=urban_crossing has no such key; "
        "did you mean pedestrians_count, pedestrian_collision_reward, vehicles_count?")
    assert not tmp_path.exists() or not list(tmp_path.iterdir())  # nothing ran
