"""Crash attribution on hand-built tracking histories (dt 0.5 s, window 2 s, react time 1 s)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.attribution import CrashAttribution, CrashAttributor, count_categories, match_tracks
from perception.track import Track
from sim.types import CLASSES, ObjectTruth


def truth(x, y=0.0, cls="pedestrian", tid=5) -> ObjectTruth:
    return ObjectTruth(tid, cls, (0, 0, 0, 0), 1.0, False, (x, y), (0.0, 0.0), 0.0, (0.5, 0.5))


def track(x, y=0.0, cls="pedestrian", tid=40, age=3) -> Track:
    return Track(tid, CLASSES.index(cls), np.zeros(4), np.array([x, y]), np.zeros(2), 0.9, age,
                 age, 0)


def test_match_by_class_within_a_range_dependent_gate():
    far, near = truth(10.0, tid=1), truth(0.0, 4.0, tid=2)  # ranges 10 m and 4 m
    # gate 2 m + 10 %: 3 m at 10 m, 2.4 m at 4 m
    assert set(match_tracks([track(12.5, tid=40)], [far])) == {1}
    assert match_tracks([track(0.0, 6.5, tid=41)], [near]) == {}
    assert match_tracks([track(10.0, cls="vehicle")], [far]) == {}
    # one track, two objects in its gate: it goes to the nearer one only
    both = match_tracks([track(10.5, tid=42)], [far, truth(12.0, tid=3)])
    assert {k: t.track_id for k, t in both.items()} == {1: 42}


def replay(tracked_steps: set[int], crash_step: int = 10, dt: float = 0.5) -> CrashAttribution:
    """Pedestrian 5 approaches from 30 m, 2.5 m a step; a track (age = its step) sees it at
    `tracked_steps`; a nearer parked car is in view all along; the ego hits the pedestrian at
    `crash_step`."""
    att = CrashAttributor(dt=dt)
    for step in range(1, crash_step + 1):
        ped = truth(30.0 - 2.5 * (step - 1))
        car = truth(3.0, 3.0, "vehicle", tid=6)
        tracks = [track(3.0, 3.0, "vehicle", tid=41)]
        if step in tracked_steps:
            tracks.append(track(ped.ego_xy[0] + 0.5, tid=40, age=step))
        info = {"objects": [ped, car], "crashed": step == crash_step,
                "crashed_into": "pedestrian" if step == crash_step else None}
        result = att.step(tracks, info)
        assert (result is None) == (step != crash_step)
    return result


def test_tracked_in_time_is_a_policy_error():
    a = replay(set(range(1, 11)))
    assert a == CrashAttribution(
        object_id=5, cls="pedestrian", category="policy_error", crash_step=10,
        first_detection_distance=30.0, first_detection_s=4.5, last_detection_s=0.0,
        track_id=40, track_age=10, window_steps=5, missed_steps=0,
    )


def test_first_tracked_exactly_the_react_time_before_is_in_time():
    a = replay({8, 10})  # 1.0 s before impact, then a gap, then at impact
    assert (a.category, a.first_detection_s, a.missed_steps, a.track_age) == (
        "policy_error", 1.0, 3, 10)


def test_first_tracked_under_the_react_time_before_is_late():
    a = replay({9, 10})
    assert (a.category, a.first_detection_s, a.first_detection_distance) == (
        "late_detection", 0.5, 10.0)
    assert a.missed_steps == 3


def test_lost_then_refound_late_is_late_and_lost_for_the_window_is_a_miss():
    late = replay({1, 2, 3, 10})  # seen from afar, lost for 2.5 s, refound at impact
    assert (late.category, late.first_detection_s, late.last_detection_s) == (
        "late_detection", 4.5, 0.0)
    miss = replay({1, 2, 3, 4, 5})  # last seen 2.5 s before impact: outside the window
    assert (miss.category, miss.first_detection_s, miss.last_detection_s) == (
        "perception_miss", 4.5, None)
    assert (miss.missed_steps, miss.track_id, miss.track_age) == (5, None, None)
    never = replay(set())
    assert (never.category, never.first_detection_distance) == ("perception_miss", None)


def test_the_object_hit_is_the_nearest_of_the_crashed_into_class():
    att = CrashAttributor(dt=0.5)
    ped, other, car = truth(3.0, tid=5), truth(8.0, 1.0, tid=7), truth(2.0, -3, "vehicle", 6)
    att.step([track(8.0, 1.0, tid=40)], {"objects": [ped, other, car]})
    a = att.step([track(8.0, 1.0, tid=40)], {
        "objects": [other, car], "scene_objects": [car, other, ped],  # out of the camera's view
        "crashed": True, "crashed_into": "pedestrian"})
    assert (a.object_id, a.category) == (5, "perception_miss")
    assert att.step([], {"objects": [], "crashed": True, "crashed_into": "pedestrian"}) is None


def test_category_counts_for_metrics_json():
    attributions = [replay(set(range(1, 11))), replay({9, 10}), replay(set()), replay({10})]
    assert count_categories(attributions) == {
        "crashes": 4, "perception_miss": 1, "late_detection": 2, "policy_error": 1}
    assert count_categories([]) == {
        "crashes": 0, "perception_miss": 0, "late_detection": 0, "policy_error": 0}


def test_bad_timing_is_rejected():
    with pytest.raises(ValueError, match="dt 0"):
        CrashAttributor(dt=0)
