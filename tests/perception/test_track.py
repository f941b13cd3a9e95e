"""perception.track: ids, births, deaths and ground velocities on hand-built detections.

Scenes are built in highway-env's world frame (y to the right of travel): the ego drives (and
turns) with known odometry, objects move at known velocities, and the detections are their
ego-frame positions (with seeded noise where stated).
"""

from __future__ import annotations

import numpy as np
import pytest

from perception.geometry import world_to_ego
from perception.track import MultiObjectTracker
from sim.types import CLASSES, EgoState

VEHICLE, PEDESTRIAN = CLASSES.index("vehicle"), CLASSES.index("pedestrian")
DT = 0.5  # [s] urban-crossing's policy period


def drive(n: int, speed: float = 10.0, yaw_rate: float = 0.0, dt: float = DT) -> list[EgoState]:
    """The ego's odometry over n frames: constant speed [m/s] and yaw rate [rad/s]."""
    states, xy, heading = [], np.zeros(2), 0.3
    for _ in range(n):
        states.append(EgoState(speed, 0.0, 0.0, (float(xy[0]), float(xy[1])), heading, 0))
        xy = xy + speed * dt * np.array([np.cos(heading), np.sin(heading)])
        heading += yaw_rate * dt
    return states


def to_ego(world_xy, ego: EgoState) -> np.ndarray:
    """(..., 2) world points -> ego frame."""
    return (np.asarray(world_xy, float) - ego.world_xy) @ world_to_ego(ego.world_heading).T


def run(tracker, egos, objects, noise=0.0, seed=0, detect=lambda k, i: True, dt=DT):
    """objects: list of (cls, world start xy, world velocity). Returns the outputs per frame."""
    rng = np.random.default_rng(seed)
    outputs = []
    for k, ego in enumerate(egos):
        rows = [
            (c, to_ego(np.add(p0, np.multiply(v, k * dt)), ego))
            for i, (c, p0, v) in enumerate(objects)
            if detect(k, i)
        ]
        xy = np.array([r[1] for r in rows]).reshape(-1, 2) + rng.normal(0, noise, (len(rows), 2))
        cls = [r[0] for r in rows]
        boxes = np.zeros((len(rows), 4))
        outputs.append(tracker.update(xy, cls, np.full(len(rows), 0.9), boxes, ego, dt))
    return outputs


def test_keeps_its_id_through_a_3_frame_occlusion():
    egos = drive(20)
    obj = (PEDESTRIAN, (25.0, 4.0), (0.0, -1.4))  # crossing in front of the ego
    out = run(MultiObjectTracker(), egos, [obj], detect=lambda k, i: not 8 <= k <= 10)
    assert all(len(o) == 1 for o in out[1:])  # coasts through the gap, never doubled
    assert {o[0].track_id for o in out[1:]} == {1}
    # the coasting prediction stays on the walker
    for k in (8, 9, 10):
        truth = to_ego(np.add(obj[1], np.multiply(obj[2], k * DT)), egos[k])
        assert np.hypot(*(out[k][0].ego_xy - truth)) < 0.5
    assert out[10][0].misses == 3 and out[11][0].misses == 0


@pytest.mark.parametrize("yaw_rate", [0.0, 0.2])
def test_estimates_a_constant_ground_velocity_within_10_percent(yaw_rate):
    egos = drive(24, yaw_rate=yaw_rate)
    v = np.array([6.0, 2.0])  # [m/s] world
    out = run(MultiObjectTracker(), egos, [(VEHICLE, (15.0, -3.0), v)], noise=0.1)
    for k in range(12, 24):  # once the filter has settled
        truth = world_to_ego(egos[k].world_heading) @ v  # ground velocity in the ego frame
        est = out[k][0].ego_vxy
        assert np.hypot(*(est - truth)) < 0.1 * np.hypot(*v), (k, est, truth)


def test_a_static_object_reads_zero_velocity_while_the_ego_drives_and_turns():
    egos = drive(24, speed=10.0, yaw_rate=0.3)  # 10 m/s, turning 0.3 rad/s
    out = run(MultiObjectTracker(), egos, [(VEHICLE, (30.0, 8.0), (0.0, 0.0))], noise=0.1)
    speeds = [np.hypot(*o[0].ego_vxy) for o in out[4:]]
    assert max(speeds) < 0.3, speeds
    # and its position follows the turning ego frame
    assert np.hypot(*(out[-1][0].ego_xy - to_ego((30.0, 8.0), egos[-1]))) < 0.3


@pytest.mark.parametrize("seed", range(6))
def test_crossing_objects_of_different_classes_never_swap_ids(seed):
    """A jogger and a creeping car on paths that cross at a shallow angle, at the same speed."""
    egos = drive(16, speed=3.0)
    car = (VEHICLE, (10.0, 0.0), (3.0, 0.0))
    jogger = (PEDESTRIAN, (10.0, -2.0), (3.0, 0.5))  # crosses the car's path at frame 8
    out = run(MultiObjectTracker(), egos, [car, jogger], noise=0.3, seed=seed)
    ids = {VEHICLE: set(), PEDESTRIAN: set()}
    for k, tracks in enumerate(out[1:], start=1):
        for t in tracks:
            ids[t.cls].add(t.track_id)
            c, p0, v = car if t.cls == VEHICLE else jogger
            truth = to_ego(np.add(p0, np.multiply(v, k * DT)), egos[k])
            # once settled (frame 4 on) each track stays on its own object: at most 0.81 m off
            # on seeds 0-11, while a class-blind association swaps them (1.3-2 m) on 3, 4, 5
            assert k < 4 or np.hypot(*(t.ego_xy - truth)) < 1.0, (k, t)
    assert len(ids[VEHICLE]) == 1 and len(ids[PEDESTRIAN]) == 1
    assert ids[VEHICLE] != ids[PEDESTRIAN]


@pytest.mark.parametrize("min_hits", [2, 3])
def test_births_need_min_hits_and_a_one_frame_false_positive_never_shows(min_hits):
    egos = drive(12)
    real = (VEHICLE, (20.0, 3.0), (9.0, 0.0))
    ghost = (PEDESTRIAN, (25.0, -2.0), (0.0, 0.0))
    # the ghost flickers: frames 3, 5 and 7, never twice in a row
    out = run(
        MultiObjectTracker(min_hits=min_hits),
        egos,
        [real, ghost],
        detect=lambda k, i: i == 0 or k in (3, 5, 7),
    )
    assert [len(o) for o in out[: min_hits - 1]] == [0] * (min_hits - 1)
    assert all(len(o) == 1 and o[0].cls == VEHICLE for o in out[min_hits - 1 :])
    assert out[min_hits - 1][0].hits == min_hits


@pytest.mark.parametrize("max_misses", [1, 3])
def test_deaths_after_max_misses(max_misses):
    egos = drive(14)
    obj = (VEHICLE, (20.0, 3.0), (9.0, 0.0))
    out = run(
        MultiObjectTracker(max_misses=max_misses), egos, [obj], detect=lambda k, i: not 5 <= k <= 9
    )
    coasting = [len(o) for o in out[5:10]]
    assert coasting == [1] * max_misses + [0] * (5 - max_misses)
    # seen again after its death: a new track, a new id, after min_hits
    assert len(out[10]) == 0 and out[11][0].track_id != out[4][0].track_id


def test_reset_forgets_tracks_and_bad_lengths_are_refused():
    tracker = MultiObjectTracker(min_hits=1)
    ego = drive(1)[0]
    assert len(tracker.update([[10.0, 0.0]], [0], [0.9], np.zeros((1, 4)), ego, DT)) == 1
    tracker.reset()
    assert tracker.update(np.zeros((0, 2)), [], [], np.zeros((0, 4)), ego, DT) == []
    # rays that missed the ground come in as NaN and are dropped
    assert tracker.update([[np.nan, np.nan]], [0], [0.9], np.zeros((1, 4)), ego, DT) == []
    with pytest.raises(ValueError, match="2 positions, 1 classes"):
        tracker.update(np.zeros((2, 2)), [0], [0.9, 0.8], np.zeros((2, 4)), ego, DT)
