"""Safety metrics: hand-built scenes with hand-computed values; scripted drives on the street."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from agents.metrics import (
    EpisodeRecorder,
    EpisodeRow,
    clearance,
    lead_ttc,
    read_episodes_csv,
    summarize,
    write_episodes_csv,
)
from agents.wrappers import SceneObjectsInfo
from roadsight.errors import ConfigError
from sim.camera.bev import BevCamera
from sim.drivers import FASTER, IDLE, SLOWER
from sim.make import make_env
from sim.types import EgoState, ObjectTruth
from tests.conftest import QUIET_URBAN
from tests.sim.test_pedestrians import _pedestrian

CAR, PED = (5.0, 2.0), (0.5, 0.5)  # [m] length, width


def obj(cls, x, y, vx=0.0, tid=1, size=CAR, heading=0.0) -> ObjectTruth:
    """An object at ego-frame (x, y) [m] with RELATIVE velocity (vx, 0) [m/s]."""
    return ObjectTruth(tid, cls, (0, 0, 0, 0), 1.0, False, (x, y), (vx, 0.0), heading, size)


def ego(speed=8.0, xy=(0.0, 0.0)) -> EgoState:
    return EgoState(speed, 0.0, 0.0, xy, 0.0, 0)


def info(e, objects=(), crashed=False, into=None, fault=None, violation=0.0) -> dict:
    return {"ego": e, "scene_objects": list(objects), "crashed": crashed, "crashed_into": into,
            "at_fault": fault, "rewards": {"crosswalk_violation": violation}}


LEAD = obj("vehicle", 20.0, 0.5, vx=-10.0)  # gap 20 - 2.5 - 2.5 = 15 m, closing 10 m/s: 1.5 s
# (objects, expected min TTC [s]) computed by hand; ego box 5 x 2 m
SCENES = [
    ([LEAD], 1.5),
    ([LEAD, obj("vehicle", 8.0, 3.5, vx=-10.0)], 1.5),  # next lane: lateral gap 1.5 m
    ([LEAD, obj("vehicle", -10.0, 0.0, vx=5.0)], 1.5),  # behind, closing from the rear
    ([obj("vehicle", 20.0, 2.0, vx=-10.0)], np.inf),  # lateral gap exactly 0: no real overlap
    ([obj("vehicle", 20.0, 0.0, vx=1.0), obj("pedestrian", 30.0, 0.0, -10, 2, PED)], np.inf),
    # a car crossing (turned 90 deg): 2 m long in ego x, 5 m wide in y; gap 12 - 1 - 2.5 = 8.5
    ([LEAD, obj("vehicle", 12.0, 2.8, vx=-4.0, heading=np.pi / 2)], 8.5 / 4.0),
    ([obj("pedestrian", 10.0, -1.0, vx=-8.0, size=PED)], (10.0 - 0.25 - 2.5) / 8.0),
]


@pytest.mark.parametrize("objects,expected", SCENES)
def test_min_ttc_of_a_hand_built_scene(objects, expected):
    assert lead_ttc(objects) == pytest.approx(expected)


def test_clearance_is_the_box_to_box_distance():
    assert clearance(obj("pedestrian", 2.75 + 0.6, 1.25 + 0.8, size=PED)) == pytest.approx(1.0)
    assert clearance(obj("pedestrian", 2.6, 0.0, size=PED)) == 0.0  # overlapping the bumper
    assert clearance(obj("vehicle", 0.0, -6.0)) == pytest.approx(4.0)


def hand_episode() -> tuple[EpisodeRecorder, EpisodeRow]:
    """Five steps of 0.5 s along an L-shaped path, hand-computed below."""
    rec = EpisodeRecorder(dt=0.5)
    rec.start({"ego": ego(4.0, (0.0, 0.0))}, episode=3, seed=1003)
    near = obj("pedestrian", 3.75, 0.0, tid=7, size=PED)  # 1 m ahead of the bumper
    steps = [
        (1.0, info(ego(4.0, (3.0, 4.0)), [near, obj("pedestrian", -3.5, 0, tid=10, size=PED)])),
        (0.5, info(ego(1.5, (3.0, 10.0)), [obj("pedestrian", 3.75, 0, tid=8, size=PED)],
                   violation=1.0)),
        (0.0, info(ego(6.0, (3.0, 12.0)), [near, obj("pedestrian", 4.75, 0, tid=9, size=PED),
                                           obj("pedestrian", 3.5, 1.6, tid=11, size=PED)],
                   violation=1.0)),
        (0.5, info(ego(6.0, (3.0, 15.0)), [LEAD])),
        (-2.0, info(ego(12.5, (3.0, 20.0)), [obj("pedestrian", 3.0, 0.1, tid=11, size=PED), LEAD],
                    crashed=True, into="pedestrian", fault=True, violation=1.0)),
    ]
    for reward, step_info in steps:
        rec.step(reward, step_info)
    return rec, rec.finish()


def test_recorder_row_of_a_hand_built_episode():
    _, row = hand_episode()
    assert row == EpisodeRow(
        episode=3, seed=1003, episode_return=0.0, length=5, duration=2.5, crashed=True,
        crashed_into="pedestrian", at_fault=True,
        distance=5.0 + 6.0 + 2.0 + 3.0 + 5.0,  # world path, from the reset's position
        mean_speed=(4.0 + 1.5 + 6.0 + 6.0 + 12.5) / 5, min_ttc=1.5,
        # 7 (twice); not 8 (ego at 1.5 m/s), 9 (2 m), 10 (behind), 11 (hit)
        pedestrian_near_misses=1,
        crosswalk_violations=2,  # steps 2-3 are one pass, step 5 another
    )


def test_recorder_needs_scene_objects_and_a_positive_dt():
    rec = EpisodeRecorder(dt=0.5)
    with pytest.raises(KeyError, match="scene_objects.*SceneObjectsInfo"):
        rec.step(0.0, {"ego": ego()})
    with pytest.raises(ValueError, match="dt=0"):
        EpisodeRecorder(dt=0)


def row(i, ret, into=None, fault=None, ttc=np.inf, speed=5.0, length=10, **kw) -> EpisodeRow:
    return EpisodeRow(i, 1000 + i, ret, length, length * 0.5, into is not None, into, fault,
                      speed * length * 0.5, speed, ttc, kw.get("near", 0), kw.get("cw", 0))


ROWS = [
    row(0, 10.0, speed=4.0, length=20, near=2),
    row(1, 4.0, "pedestrian", True, ttc=0.5, cw=1),
    row(2, 2.0, "vehicle", False, ttc=1.5, speed=8.0, length=30),
    row(3, 8.0, ttc=3.0, near=1, cw=2),
]


def test_summary_of_hand_built_rows():
    s = summarize(ROWS, n_boot=0)
    assert s["episodes"] == 4
    assert s["return_mean"] == pytest.approx(6.0)
    assert s["return_std"] == pytest.approx(np.sqrt((16 + 4 + 16 + 4) / 4))
    assert s["crash_rate"] == 0.5 and s["pedestrian_collision_rate"] == 0.25
    assert s["at_fault_crash_rate"] == 0.25
    assert s["collision_rate_by_class"] == {"vehicle": 0.25, "pedestrian": 0.25, "obstacle": 0.0}
    assert s["mean_speed"] == pytest.approx((4 * 20 + 5 * 10 + 8 * 30 + 5 * 10) / 70)  # per step
    assert s["distance_mean"] == pytest.approx((40 + 25 + 120 + 25) / 4)
    assert s["min_ttc_mean"] == pytest.approx(5.0 / 3) and s["min_ttc_count"] == 3
    assert s["pedestrian_near_misses"] == 3 and s["crosswalk_violations"] == 3
    assert "return_mean_ci95" not in s
    unjudged = summarize([*ROWS, row(4, 1.0, "vehicle", None)], n_boot=0)  # highway-env's envs
    assert np.isnan(unjudged["at_fault_crash_rate"]) and unjudged["crash_rate"] == 0.6


def test_csv_rows_and_summary_agree(tmp_path):
    _, crashed = hand_episode()
    rows = [*ROWS, crashed, row(4, 1 / 3, speed=np.pi)]  # floats must come back exactly
    path = tmp_path / "episodes.csv"
    write_episodes_csv(rows, path)
    with open(path, newline="") as f:
        raw = list(csv.DictReader(f))
    assert [r["episode"] for r in raw] == ["0", "1", "2", "3", "3", "4"]
    assert (raw[0]["min_ttc"], raw[0]["crashed_into"], raw[1]["at_fault"]) == ("inf", "", "True")
    assert read_episodes_csv(path) == rows
    assert summarize(read_episodes_csv(path)) == summarize(rows)


def crash_rows(n: int, seed: int) -> list[EpisodeRow]:
    rng = np.random.default_rng(seed)
    crashes = rng.random(n) < 0.3
    return [row(i, float(rng.normal(5, 2)), "vehicle" if c else None, False if c else None)
            for i, c in enumerate(crashes)]


def test_bootstrap_intervals_contain_the_mean_shrink_and_repeat():
    small, large = summarize(crash_rows(20, 0)), summarize(crash_rows(320, 0))
    for s in (small, large):
        for key, mean in (("return_mean_ci95", "return_mean"), ("crash_rate_ci95", "crash_rate")):
            lo, hi = s[key]
            assert lo < s[mean] < hi
    for key in ("return_mean_ci95", "crash_rate_ci95"):  # 16x the episodes: about 1/4 the width
        w_small, w_large = (s[key][1] - s[key][0] for s in (small, large))
        assert 0.15 < w_large / w_small < 0.4
    rows = crash_rows(20, 0)
    assert summarize(rows, seed=3) == summarize(rows, seed=3)
    assert summarize(rows, seed=3)["return_mean_ci95"] != summarize(rows, seed=4)[
        "return_mean_ci95"]


def test_summary_rejects_no_episodes_and_bad_bootstrap():
    with pytest.raises(ValueError, match="no episodes"):
        summarize([])
    with pytest.raises(ConfigError, match="bootstrap=-1"):
        summarize(ROWS, n_boot=-1)


def scripted_drive(stop_short: bool) -> tuple[EpisodeRow, float]:
    """The quiet street with one pedestrian standing on the first crosswalk in the ego's lane:
    the ego drives on (FASTER), or brakes (SLOWER) once the crosswalk is 25 m ahead."""
    env = SceneObjectsInfo(make_env("roadsight/urban-crossing-v0", QUIET_URBAN,
                                    camera=BevCamera(width=64, height=32)))
    _, reset_info = env.reset(seed=0)
    base = env.unwrapped
    x, ego_vehicle = base.crosswalks_x[0], base.vehicle
    _pedestrian(env, x, ego_vehicle.position[1], "wait", gap_time=1e9)  # never crosses on
    rec = EpisodeRecorder(dt=1 / base.config["policy_frequency"])
    rec.start(reset_info)
    start_x = ego_vehicle.position[0]
    for _ in range(60):
        ahead = x - ego_vehicle.position[0]
        action = SLOWER if stop_short and ahead < 25 else (IDLE if stop_short else FASTER)
        _, reward, terminated, truncated, step_info = env.step(action)
        rec.step(reward, step_info)
        if terminated or truncated:
            break
    travelled = ego_vehicle.position[0] - start_x
    env.close()
    return rec.finish(), travelled


def test_driving_into_a_pedestrian_counts_one_pedestrian_collision_and_stopping_none():
    hit, _ = scripted_drive(stop_short=False)
    stop, travelled = scripted_drive(stop_short=True)
    assert (hit.crashed, hit.crashed_into, hit.at_fault) == (True, "pedestrian", True)
    assert (stop.crashed, stop.crashed_into, stop.length) == (False, None, 60)
    assert stop.min_ttc > 1.0 and hit.min_ttc < 0.5
    assert hit.pedestrian_near_misses == 0 and stop.pedestrian_near_misses == 0
    assert (hit.crosswalk_violations, stop.crosswalk_violations) == (1, 0)
    assert stop.distance == pytest.approx(travelled)  # a straight drive along the lane
    s = summarize([hit, stop], n_boot=0)
    assert s["pedestrian_collision_rate"] == 0.5 and s["collision_rate_by_class"]["vehicle"] == 0
    assert summarize([stop], n_boot=0)["pedestrian_collision_rate"] == 0.0
