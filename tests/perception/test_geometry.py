"""perception.geometry: pixels <-> ego frame for pinhole cameras.

The bev mapping is tested on a turning ego in tests/sim/test_bev_frame.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from perception.geometry import boxes_to_ego, ego_to_pixels, pixels_to_ego
from roadsight.errors import ConfigError
from sim.camera.pinhole import PinholeCamera
from sim.drivers import IDMDriver
from sim.make import make_env
from sim.types import CLASSES, CameraInfo

# Front camera (conf/camera/front.yaml), visible >= 0.5, untruncated, within 30 m of the ego, with
# the class's typical depth. Measured on the 3 drives below (69 objects): error median 0.30 m,
# p90 0.96 m, max 1.72 m; on 6 other drives (114 objects) max 2.7 m at 20 m (a stalled car, labelled
# obstacle, deeper than the class's typical depth) and 2.4 m at 21 m (a truck). One pixel of the
# box's bottom row is about 0.3 m of range at 10 m, 3 m at 30 m.
ABS_TOL, REL_TOL = 1.0, 0.10  # [m], fraction of range: error <= ABS_TOL + REL_TOL * range
MEDIAN_TOL = 0.5  # [m]
MAX_RANGE = 30.0  # [m]
DRIVES = (("roadsight/urban-crossing-v0", 0), ("roadsight/urban-crossing-v0", 1))
DRIVES += (("roadsight/highway-hazards-v0", 0),)


def front_camera() -> PinholeCamera:
    return instantiate(OmegaConf.load("conf/camera/front.yaml"))


@pytest.fixture(scope="module")
def front_errors():
    """(range [m], error [m], cls) of every checked object on a few short IDM drives."""
    rows = []
    for env_id, seed in DRIVES:
        env = make_env(env_id, camera=front_camera())
        _, info = env.reset(seed=seed)
        driver = IDMDriver()
        driver.reset(env, seed)
        for step in range(24):
            objs = [
                o
                for o in info["objects"]
                if o.visible >= 0.5 and not o.truncated and np.hypot(*o.ego_xy) <= MAX_RANGE
            ]
            if step % 2 == 0 and objs:
                boxes = np.array([o.box_xyxy for o in objs])
                cls = [CLASSES.index(o.cls) for o in objs]
                est = boxes_to_ego(boxes, info["camera"], cls)
                for o, e in zip(objs, est, strict=True):
                    rows.append((np.hypot(*o.ego_xy), np.hypot(*(e - o.ego_xy)), o.cls))
            _, _, terminated, truncated, info = env.step(driver.act(env))
            if terminated or truncated:
                break
        env.close()
    return rows


def test_ground_truth_boxes_back_project_near_the_objects(front_errors):
    rng, err = (np.array([r[i] for r in front_errors]) for i in (0, 1))
    assert len(err) >= 40, len(err)  # enough objects checked (69 on these drives)
    assert {r[2] for r in front_errors} == set(CLASSES)
    assert np.all(np.isfinite(err))
    worst = np.argmax(err - REL_TOL * rng)
    assert np.all(err <= ABS_TOL + REL_TOL * rng), (rng[worst], err[worst])
    assert np.median(err) < MEDIAN_TOL


def side_camera() -> PinholeCamera:
    return PinholeCamera(name="left", mount_x=0.5, mount_y=0.9, yaw_deg=80.0, pitch_deg=12.0)


@pytest.mark.parametrize("make_camera", [front_camera, side_camera])
def test_ground_points_round_trip_and_agree_with_the_renderer(make_camera):
    camera = make_camera()
    rng = np.random.default_rng(0)
    # ground points in front of the camera, 3-40 m along its viewing direction
    dist, side = rng.uniform(3, 40, 50), rng.uniform(-0.5, 0.5, 50)
    ang = camera.yaw + side
    xy = camera.mount[:2] + np.c_[np.cos(ang), np.sin(ang)] * dist[:, None]
    uv = ego_to_pixels(xy, camera.info())
    assert uv == pytest.approx(camera.project(np.c_[xy, np.zeros(len(xy))]), abs=1e-9)
    assert pixels_to_ego(uv, camera.info()) == pytest.approx(xy, abs=1e-6)


def test_class_depth_pushes_the_ground_point_back_along_the_ray():
    info = front_camera().info()
    box = np.array([[150.0, 70.0, 170.0, 100.0]])
    ground = boxes_to_ego(box, info)[0]
    car, person = boxes_to_ego(np.repeat(box, 2, 0), info, [0, 1])
    ray = (ground - info.mount_xyz[:2]) / np.linalg.norm(ground - info.mount_xyz[:2])
    assert car - ground == pytest.approx(2.25 * ray)  # half of a 4.5 m car
    assert person - ground == pytest.approx(0.25 * ray)


def test_rays_above_the_horizon_and_points_behind_are_nan():
    camera = front_camera()
    info = camera.info()
    above = np.array([[100.0, 10.0, 120.0, camera.horizon_row()]])
    assert np.isnan(boxes_to_ego(above, info)).all()
    assert np.isnan(ego_to_pixels(np.array([[-5.0, 0.0]]), info)).all()


def test_unknown_camera_kind_names_the_choices():
    info = CameraInfo(name="fisheye", kind="fisheye", width=10, height=10)
    with pytest.raises(ConfigError, match="fisheye.*valid: bev, pinhole"):
        boxes_to_ego(np.zeros((1, 4)), info)
