"""The object-list layout: ego row, ordering, truncation, range, ground velocity, scene objects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.observations import FEATURES, ObjectListLayout
from agents.wrappers import SceneObjectsInfo
from perception.track import Track
from roadsight.errors import ConfigError
from sim.camera.bev import BevCamera
from sim.make import make_env
from sim.types import EgoState, ObjectTruth

EGO = EgoState(
    speed=10.0,
    heading_to_lane=0.3,
    lateral_offset=-1.5,
    world_xy=(100.0, 3.5),
    world_heading=-0.3,
    lane_index=1,
    target_speed=12.0,
    lanes_left=1,
    lanes_right=0,
)
COL = {name: i for i, name in enumerate(FEATURES)}


def _truth(cls: str, xy, vxy=(0.0, 0.0), visible: float = 1.0, track_id: int = 1) -> ObjectTruth:
    return ObjectTruth(track_id, cls, (0, 0, 0, 0), visible, False, xy, vxy, 0.0, (4.0, 2.0))


def test_ego_row():
    rows = ObjectListLayout().encode(np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)), [], EGO)
    # presence, target speed / 20, a lane on the left, none on the right, x, y, vx, vy, conf
    expected = [1, 12 / 20, 1, 0, 0, -1.5 / 50, 10 * np.cos(0.3) / 20, 10 * np.sin(0.3) / 20, 1]
    np.testing.assert_allclose(rows[0], expected, rtol=1e-6)
    assert rows.shape == (16, 9) and rows.dtype == np.float32
    assert not rows[1:].any()
    assert ObjectListLayout().observation_space.contains(rows)
    fast = dataclasses.replace(EGO, target_speed=35.0, lanes_left=0, lanes_right=2)
    row = ObjectListLayout().encode(np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)), [], fast)[0]
    np.testing.assert_allclose(row[1:4], [35 / 20, 0, 1], rtol=1e-6)  # 1.75: within the space


def test_objects_sorted_one_hot_scaled_and_absent_rows_zero():
    layout = ObjectListLayout()
    xy = np.array([[30.0, 0.0], [-10.0, 2.0], [0.0, -20.0]])
    vxy = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = layout.encode([0, 1, 2], xy, vxy, [0.9, 0.8, 0.7], EGO)
    # nearest first: the pedestrian at 10.2 m, the obstacle at 20 m, the vehicle at 30 m
    np.testing.assert_allclose(
        rows[1:4, COL["is_vehicle"] : COL["is_obstacle"] + 1], np.eye(3)[[1, 2, 0]]
    )
    np.testing.assert_allclose(rows[1:4, COL["x"] : COL["y"] + 1], xy[[1, 2, 0]] / 50, rtol=1e-6)
    np.testing.assert_allclose(rows[1:4, COL["vx"] : COL["vy"] + 1], vxy[[1, 2, 0]] / 20, rtol=1e-6)
    np.testing.assert_allclose(rows[1:4, COL["confidence"]], [0.8, 0.7, 0.9], rtol=1e-6)
    assert (rows[1:4, COL["presence"]] == 1).all()
    assert not rows[4:].any()
    assert layout.observation_space.contains(rows)


def test_truncation_to_the_nearest_n_and_range():
    layout = ObjectListLayout(max_objects=3, max_range=60.0)
    dist = np.array([59.0, 5.0, 61.0, 40.0, 20.0, 30.0])
    rows = layout.encode(
        np.zeros(6, int), np.c_[dist, np.zeros(6)], np.zeros((6, 2)), np.ones(6), EGO
    )
    assert rows.shape == (4, 9)
    np.testing.assert_allclose(rows[1:, COL["x"]], np.array([5.0, 20.0, 30.0]) / 50, rtol=1e-6)
    # the range drops the object at 61 m before the N nearest are kept
    wide = ObjectListLayout(max_objects=10, max_range=60.0)
    rows = wide.encode(
        np.zeros(6, int), np.c_[dist, np.zeros(6)], np.zeros((6, 2)), np.ones(6), EGO
    )
    assert rows[:, COL["presence"]].sum() == 1 + 5
    assert rows[1:, COL["x"]].max() == pytest.approx(59.0 / 50)


def test_values_clipped_to_the_space():
    layout = ObjectListLayout()
    rows = layout.encode([0], [[55.0, 0.0]], [[-100.0, 60.0]], [1.5], EGO)
    np.testing.assert_allclose(
        rows[1, COL["x"] : COL["confidence"] + 1], [1.1, 0, -2, 2, 1], rtol=1e-6
    )
    assert layout.observation_space.contains(rows)


def test_from_truth_ground_velocity_and_visibility():
    objects = [
        _truth("obstacle", (12.0, 1.0), vxy=(-10.0, 0.0), track_id=1),  # parked: -ego speed
        _truth("vehicle", (20.0, -3.5), vxy=(2.0, 0.5), track_id=2),
        _truth("pedestrian", (8.0, 4.0), visible=0.2, track_id=3),
    ]
    rows = ObjectListLayout().from_truth(objects, EGO, min_visible=0.3)
    assert rows[:, COL["presence"]].sum() == 3  # the ego, the obstacle, the vehicle
    np.testing.assert_allclose(rows[1, COL["vx"] : COL["vy"] + 1], [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(rows[2, COL["vx"] : COL["vy"] + 1], [12.0 / 20, 0.5 / 20], rtol=1e-6)
    assert (rows[1:3, COL["confidence"]] == 1).all()
    # a rig's per-camera lists merge by track id
    rig = ObjectListLayout().from_truth({"front": objects[:2], "left": objects[1:2]}, EGO)
    np.testing.assert_array_equal(rig, rows)


def test_from_tracks_uses_ground_velocity_and_score():
    box = np.zeros(4)
    tracks = [Track(7, 2, box, np.array([6.0, 8.0]), np.array([0.0, 0.0]), 0.6, 5, 5, 0)]
    rows = ObjectListLayout().from_tracks(tracks, EGO)
    np.testing.assert_allclose(rows[1], [1, 0, 0, 1, 6 / 50, 8 / 50, 0, 0, 0.6], rtol=1e-6)


def test_bad_layout_config():
    with pytest.raises(ConfigError, match="max_objects"):
        ObjectListLayout(max_objects=0)
    with pytest.raises(ConfigError, match="position_scale"):
        ObjectListLayout(position_scale=0.0)


QUIET = {"vehicles_count": 0, "pedestrians_count": 0, "obstacles_range": [8.0, 30.0]}


def test_parked_obstacles_read_zero_velocity_on_a_real_frame():
    env = make_env("roadsight/urban-crossing-v0", {**QUIET, "obstacles_count": 3}, BevCamera())
    env.reset(seed=1)
    for _ in range(2):
        _, _, terminated, _, info = env.step(1)  # IDLE at 8 m/s
    assert not terminated and info["ego"].speed > 5.0
    rows = ObjectListLayout().from_truth(info["objects"], info["ego"])
    obstacles = rows[rows[:, COL["is_obstacle"]] == 1]
    assert len(obstacles) >= 2
    assert np.abs(obstacles[:, COL["vx"] : COL["vy"] + 1]).max() < 0.05
    env.close()


def test_scene_objects_reach_beyond_the_camera():
    config = {"vehicles_count": 6, "pedestrians_count": 6, "obstacles_count": 5}
    env = SceneObjectsInfo(make_env("roadsight/urban-crossing-v0", config, BevCamera()), 60.0)
    _, info = env.reset(seed=0)
    for _ in range(3):
        _, _, _, _, info = env.step(1)
    seen = {o.track_id: o for o in info["objects"]}
    every = {o.track_id: o for o in info["scene_objects"]}
    assert set(seen) < set(every)  # the bev camera shows about 33 m ahead: fewer than 60 m
    assert all(np.hypot(*o.ego_xy) <= 60.0 for o in every.values())
    ego = env.unwrapped.vehicle
    assert all(o.cls in ("vehicle", "pedestrian", "obstacle") for o in every.values())
    assert not any(np.allclose(o.ego_xy, 0) for o in every.values())  # the ego is not listed
    for tid, o in seen.items():  # the same objects, the same ego-frame kinematics
        np.testing.assert_allclose(every[tid].ego_xy, o.ego_xy, atol=1e-9)
        np.testing.assert_allclose(every[tid].ego_vxy, o.ego_vxy, atol=1e-9)
    assert ego.speed > 5.0
    env.close()
