"""agents.shield on hand-built object lists (ego frame: x forward, y left)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.observations import ObjectListLayout
from agents.shield import RULES, GapShield, ShieldedPolicy
from roadsight.errors import ConfigError
from roadsight.paths import REPO_ROOT
from sim.drivers import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from sim.types import CLASSES, EgoState

LAYOUT = ObjectListLayout()
SHIELD = GapShield(LAYOUT, lane_width=3.5)


def scene(speed: float, *objects: tuple[str, float, float, float, float],
          layout: ObjectListLayout = LAYOUT, target: float | None = None) -> np.ndarray:
    """The object list of an ego at `speed` [m/s] (target speed `target`, None: `speed`) among
    (class, x, y, vx, vy) ground truth."""
    ego = EgoState(speed=speed, heading_to_lane=0.0, lateral_offset=0.0, world_xy=(0.0, 0.0),
                   world_heading=0.0, lane_index=0,
                   target_speed=speed if target is None else target, lanes_left=1,
                   lanes_right=1)
    cls = np.array([CLASSES.index(o[0]) for o in objects], int)
    xy = np.array([o[1:3] for o in objects], float).reshape(-1, 2)
    vxy = np.array([o[3:5] for o in objects], float).reshape(-1, 2)
    return layout.encode(cls, xy, vxy, np.ones(len(objects)), ego)


@pytest.mark.parametrize("action", [FASTER, IDLE])
def test_a_stopped_obstacle_inside_the_gap_brakes(action):
    obs = scene(8.0, ("obstacle", 20.0, 0.5, 0.0, 0.0))  # s* = 10 + 12 + 8 * 8 / 7.75 = 30.3
    assert SHIELD(obs, action) == SLOWER
    assert SHIELD(obs, SLOWER) == SLOWER


def test_what_is_outside_the_path_or_the_gap_changes_nothing():
    for obs in (scene(8.0, ("obstacle", 25.0, 3.5, 0.0, 0.0)),  # the next lane, past 23.3 m
                scene(8.0, ("obstacle", 32.0, 0.0, 0.0, 0.0)),  # beyond s* = 30.3 m
                scene(8.0, ("vehicle", -8.0, 0.0, 8.0, 0.0)),  # behind
                scene(8.0)):  # an empty road
        for action in (FASTER, IDLE, SLOWER, LANE_LEFT, LANE_RIGHT):
            assert SHIELD(obs, action) == action


def test_a_stopped_car_half_in_the_lane_is_in_the_path():
    # hit on urban_crossing and highway_hazards with a 2 m corridor: stopped 2.3-2.6 m off the line
    assert SHIELD(scene(8.0, ("vehicle", 20.0, -2.3, 0.0, 0.0)), FASTER) == SLOWER
    assert SHIELD(scene(8.0, ("vehicle", 20.0, -2.6, 0.0, 0.0)), FASTER) == FASTER
    assert SHIELD(scene(8.0, ("vehicle", 20.0, 3.5, 0.0, 0.0)), FASTER) == FASTER  # next lane


def test_the_gap_to_a_car_ahead_grows_with_the_closing_speed():
    same_speed = scene(8.0, ("vehicle", 24.0, 0.0, 8.0, 0.0))  # s* = 22 m
    assert SHIELD(same_speed, FASTER) == FASTER
    assert SHIELD(scene(8.0, ("vehicle", 20.0, 0.0, 8.0, 0.0)), FASTER) == SLOWER  # < 22 m
    assert SHIELD(scene(8.0, ("vehicle", 24.0, 0.0, 4.0, 0.0)), FASTER) == SLOWER  # closing


def test_a_pedestrian_walking_into_the_path_brakes_one_standing_or_leaving_does_not():
    towards = scene(6.0, ("pedestrian", 15.0, 5.0, 0.0, -1.5))  # at y 0.5 in 3 s
    assert SHIELD(towards, FASTER) == SLOWER
    standing = scene(6.0, ("pedestrian", 15.0, 5.0, 0.0, 0.0))
    leaving = scene(6.0, ("pedestrian", 15.0, 2.5, 0.0, 1.5))
    assert SHIELD(standing, FASTER) == FASTER and SHIELD(leaving, IDLE) == IDLE
    assert SHIELD(scene(6.0, ("pedestrian", 15.0, 0.0, 0.0, 0.0)), IDLE) == SLOWER  # on it


def test_a_lane_change_waits_for_a_free_gap():
    left_car = scene(8.0, ("vehicle", -5.0, 3.5, 9.0, 0.0))  # beside-behind, lane on the left
    assert SHIELD(left_car, LANE_LEFT) == IDLE
    assert SHIELD(left_car, LANE_RIGHT) == LANE_RIGHT  # the right lane is free
    right_far = scene(8.0, ("vehicle", 30.0, -3.5, 8.0, 0.0))
    assert SHIELD(right_far, LANE_RIGHT) == LANE_RIGHT
    # a lane change away from an obstacle ahead into a taken gap: IDLE, then the gap rule
    blocked = scene(8.0, ("obstacle", 20.0, 0.0, 0.0, 0.0), ("vehicle", 5.0, -3.5, 8.0, 0.0))
    assert SHIELD(blocked, LANE_RIGHT) == SLOWER


def test_the_lane_change_gap_grows_with_the_closing_speed():
    layout = ObjectListLayout(max_range=100.0)  # highway_hazards' view
    shield = GapShield(layout, lane_width=3.5)

    def at(x, vx):  # an object in the lane on the left, the ego at 25 m/s
        kind = "obstacle" if vx == 0 else "vehicle"
        return scene(25.0, (kind, x, 3.5, vx, 0.0), layout=layout)

    # debris 60 m ahead: 15 + 25 * 25 / 7.75 = 95.6 m needed
    assert shield(at(60.0, 0.0), LANE_LEFT) == IDLE
    assert shield(at(60.0, 0.0), LANE_RIGHT) == LANE_RIGHT
    assert shield(at(97.0, 0.0), LANE_LEFT) == LANE_LEFT
    # a car at the ego's speed needs only lane_change_front ahead, one pulling away nothing more
    assert shield(at(16.0, 25.0), LANE_LEFT) == LANE_LEFT
    assert shield(at(14.0, 30.0), LANE_LEFT) == IDLE
    # behind: 12 m for a car at the ego's speed, 12 + 35 * 10 / 7.75 = 57.2 m for one at 35
    assert shield(at(-20.0, 25.0), LANE_LEFT) == LANE_LEFT
    assert shield(at(-50.0, 35.0), LANE_LEFT) == IDLE
    assert shield(at(-60.0, 35.0), LANE_LEFT) == LANE_LEFT


def test_a_lane_change_into_a_free_gap_goes_round_what_is_ahead():
    # 20 m ahead at 8 m/s: inside s* (30.3 m) but beyond min_gap + 8 m/s x 1 s = 18 m
    debris = scene(8.0, ("obstacle", 20.0, 0.0, 0.0, 0.0))
    assert SHIELD(debris, LANE_LEFT) == LANE_LEFT and SHIELD(debris, LANE_RIGHT) == LANE_RIGHT
    assert SHIELD(debris, IDLE) == SLOWER
    near = scene(8.0, ("obstacle", 16.0, 0.0, 0.0, 0.0))  # the ego would still be in its lane
    assert SHIELD(near, LANE_LEFT) == SLOWER and SHIELD(near, LANE_RIGHT) == SLOWER


def test_the_gap_is_judged_one_decision_ahead():
    # highway-env at 1 Hz, target speeds 0..30 by 5; the ego at 14 m/s, target 15, debris 59 m
    # ahead: IDLE leaves 59 - (14 + 15) / 2 = 44.5 m at 15 m/s, inside s* = 10 + 22.5 + 15 * 15
    # / 7.75 = 61.5 m; FASTER (target 20) 42 m at 20 m/s, inside s* = 91.6 m
    layout = ObjectListLayout(max_range=100.0)
    ahead = GapShield(layout, lane_width=4.0, decision_period=1.0,
                      target_speeds=(0, 5, 10, 15, 20, 25, 30))
    now = GapShield(layout, lane_width=4.0)

    def debris_at(x):
        return scene(14.0, ("obstacle", x, 0.0, 0.0, 0.0), layout=layout, target=15.0)

    assert now(debris_at(59.0), FASTER) == FASTER  # 59 m > s* = 10 + 21 + 14 * 14 / 7.75 now
    assert ahead(debris_at(59.0), FASTER) == SLOWER and ahead(debris_at(59.0), IDLE) == SLOWER
    assert ahead(debris_at(90.0), IDLE) == IDLE  # 75.5 m > 61.5 m
    assert ahead(debris_at(90.0), FASTER) == SLOWER  # 73 m < 91.6 m
    # a car ahead at the ego's speed: the gap stays, only the speed it is judged at changes
    car = scene(25.0, ("vehicle", 60.0, 0.0, 25.0, 0.0), layout=layout)  # s* = 47.5 m
    assert ahead(car, IDLE) == IDLE
    assert ahead(car, FASTER) == SLOWER  # 57.5 m left at 30 m/s: s* = 74.4 m
    top = scene(30.0, ("vehicle", 80.0, 0.0, 30.0, 0.0), layout=layout)
    assert ahead(top, FASTER) == FASTER  # no speed above 30: FASTER keeps it, s* = 55 m


def test_with_least_change_a_faster_that_would_close_the_gap_keeps_the_target_speed():
    # as above (1 Hz, 0..30 by 5, the ego at 14 m/s, target 15): debris 90 m ahead is inside
    # FASTER's gap (73 m left < 91.6 m) but not IDLE's (75.5 m > 61.5 m): IDLE, not SLOWER
    layout = ObjectListLayout(max_range=100.0)
    least = GapShield(layout, lane_width=4.0, decision_period=1.0,
                      target_speeds=(0, 5, 10, 15, 20, 25, 30), least_change=True)

    def debris_at(x):
        return scene(14.0, ("obstacle", x, 0.0, 0.0, 0.0), layout=layout, target=15.0)

    assert least.decide(debris_at(90.0), FASTER) == (IDLE, "gap_obstacle")
    assert replace(least, least_change=False)(debris_at(90.0), FASTER) == SLOWER
    assert least(debris_at(59.0), FASTER) == SLOWER  # IDLE would close it too
    assert least(debris_at(59.0), IDLE) == SLOWER
    car = scene(25.0, ("vehicle", 60.0, 0.0, 25.0, 0.0), layout=layout)  # s* = 47.5 m
    assert least.decide(car, FASTER) == (IDLE, "gap_vehicle")


def test_when_braking_comes_too_late_the_shield_steers_round_into_a_free_lane():
    layout = ObjectListLayout(max_range=100.0)
    shield = GapShield(layout, lane_width=4.0, decision_period=1.0,
                      target_speeds=(0, 5, 10, 15, 20, 25, 30))
    # braking from 20 m/s by 5 m/s a second covers 17.5 + 12.5 + 7.5 + 2.5 = 40 m
    assert shield.braking_distance(20.0, 0.0) == 40.0
    assert shield.braking_distance(20.0, 10.0) == 7.5 + 2.5  # closing 10, 5, 0
    assert shield.braking_distance(20.0, -0.4) == 40.0  # a parked car's wobbling estimate
    # nearly stopped behind a parked car 16 m ahead (urban: 2 Hz, 0..14 m/s): brake, not swerve
    urban = GapShield(layout, lane_width=4.0, decision_period=0.5, target_speeds=(0, 4, 8, 11, 14))
    parked = scene(1.7, ("vehicle", 16.0, 0.0, -0.4, 0.0), layout=layout, target=0.0)
    assert urban(parked, FASTER) == SLOWER
    assert GapShield(layout, decision_period=1.0, target_speeds=(20, 25)).braking_distance(
        25.0, 0.0) == float("inf")
    debris = ("obstacle", 45.0, 0.0, 0.0, 0.0)  # < 10 + 40 m: too late to brake
    assert shield(scene(20.0, debris, layout=layout), FASTER) == LANE_LEFT
    assert shield(scene(20.0, debris, layout=layout), SLOWER) == LANE_LEFT
    left_taken = scene(20.0, debris, ("vehicle", 5.0, 4.0, 20.0, 0.0), layout=layout)
    assert shield(left_taken, IDLE) == LANE_RIGHT
    both = scene(20.0, debris, ("vehicle", 5.0, 4.0, 20.0, 0.0), ("vehicle", 0.0, -4.0, 20.0,
                                                                    0.0), layout=layout)
    assert shield(both, IDLE) == SLOWER
    # no lane on the left (the ego row's flag): right
    ego_only_right = scene(20.0, debris, layout=layout)
    ego_only_right[0, 2] = 0.0  # agents.observations.LANE_LEFT: the lane-on-left flag
    assert shield(ego_only_right, IDLE) == LANE_RIGHT
    # braking still in time (75 m > 50 m), or too late to leave (25 m < 10 + 20 x 1 s): SLOWER
    assert shield(scene(20.0, ("obstacle", 75.0, 0.0, 0.0, 0.0), layout=layout), IDLE) == SLOWER
    assert shield(scene(20.0, ("obstacle", 25.0, 0.0, 0.0, 0.0), layout=layout), IDLE) == SLOWER
    # a present-only shield (decision_period 0) always brakes
    assert GapShield(layout, lane_width=4.0)(scene(20.0, debris, layout=layout), IDLE) == SLOWER


def test_the_ego_drives_no_faster_than_it_can_stop_within_its_sight():
    # highway_hazards: 1 Hz, target speeds 0..30 by 5, the bev's 92 m ahead. At target 20 a
    # decision's travel + braking + min_gap = 20 + 40 + 10 = 70 m fits; at 25: from 20 m/s
    # 22.5 + 62.5 + 10 = 95 m, from 25 m/s 25 + 62.5 + 10 = 97.5 m do not
    layout = ObjectListLayout(max_range=100.0)
    shield = GapShield(layout, lane_width=4.0, decision_period=1.0,
                       target_speeds=(0, 5, 10, 15, 20, 25, 30), sight_range=92.0)
    empty = scene(20.0, layout=layout)
    assert shield.outruns_sight(20.0, 20.0) is False and shield.outruns_sight(20.0, 25.0) is True
    assert shield(empty, FASTER) == IDLE and shield(empty, IDLE) == IDLE
    assert shield(empty, LANE_LEFT) == LANE_LEFT and shield(empty, SLOWER) == SLOWER
    spawned = scene(25.0, layout=layout)  # highway-env spawns the ego at 25 m/s
    assert shield(spawned, IDLE) == SLOWER and shield(spawned, FASTER) == SLOWER
    assert shield(scene(15.0, layout=layout, target=15.0), FASTER) == FASTER  # to 20
    # a farther sight lets it go to 25 (97.5 m) but not 30 (30 + 90 + 10 = 130 m)
    far = GapShield(layout, lane_width=4.0, decision_period=1.0,
                    target_speeds=(0, 5, 10, 15, 20, 25, 30), sight_range=100.0)
    assert far(empty, FASTER) == FASTER and far(scene(25.0, layout=layout), FASTER) == IDLE
    # off where braking cannot stop the ego (highway-env's default speeds), or with no look-ahead
    fast = GapShield(layout, decision_period=1.0, target_speeds=(20, 25, 30), sight_range=10.0)
    assert fast(scene(25.0, layout=layout), FASTER) == FASTER
    assert GapShield(layout, sight_range=10.0)(scene(25.0, layout=layout), FASTER) == FASTER
    # urban_crossing (2 Hz, 0..14 m/s, 41 m ahead): 7 + 15 + 10 = 32 m, never binding
    urban = GapShield(layout, decision_period=0.5, target_speeds=(0, 4, 8, 11, 14),
                      sight_range=41.0)
    assert urban(scene(11.0, layout=layout, target=11.0), FASTER) == FASTER


def test_the_sight_range_is_the_cameras_view_ahead():
    from omegaconf import OmegaConf

    from agents.shield import sight_range

    bev = {"_target_": "sim.camera.bev.BevCamera", "width": 1024, "height": 256,
           "scaling": 10.0, "centering": [0.1, 0.5]}
    run = OmegaConf.create({"camera": bev, "observation": {"name": "objects"}})
    near, far = ObjectListLayout(max_range=60.0), ObjectListLayout(max_range=100.0)
    assert sight_range(run, far) == pytest.approx(92.16)  # 102.4 m wide, the ego at 10%
    assert sight_range(run, near) == 60.0  # the list drops what lies farther
    run.observation.scope = "all"  # kinematics scope=all: every object within max_range
    assert sight_range(run, far) == 100.0
    run.observation.scope = "camera"
    run.camera = {"_target_": "sim.camera.pinhole.PinholeCamera"}
    assert sight_range(run, far) == 100.0


def test_the_way_round_counts_everything_in_the_path_not_only_the_nearest():
    # held-out seed 10300: a car 21 m ahead at the ego's 20 m/s hides debris 41 m ahead; braking
    # from 20 m/s needs 10 + 40 = 50 m for the debris (and nothing for the car): go round it.
    # Late to leave is judged on the closing speed: the car, not closing, never makes it late
    layout = ObjectListLayout(max_range=100.0)
    shield = GapShield(layout, lane_width=4.0, decision_period=1.0,
                       target_speeds=(0, 5, 10, 15, 20, 25, 30))
    car = ("vehicle", 21.0, 0.7, 21.0, 0.0)
    debris = ("obstacle", 41.0, -0.1, 0.0, 0.0)
    assert shield(scene(20.0, car, debris, layout=layout), SLOWER) == LANE_LEFT
    assert shield(scene(20.0, car, layout=layout), LANE_LEFT) == LANE_LEFT
    # a slow car 21 m ahead (closing 15 m/s: 10 + 15 = 25 m > 21 m): late, brake
    slow = ("vehicle", 21.0, 0.7, 5.0, 0.0)
    assert shield(scene(20.0, slow, debris, layout=layout), SLOWER) == SLOWER
    assert shield(scene(20.0, slow, layout=layout), LANE_LEFT) == SLOWER
    # the debris far enough to stop for (55 m > 50 m): brake behind the car, no swerve
    far = ("obstacle", 55.0, -0.1, 0.0, 0.0)
    assert shield(scene(20.0, car, far, layout=layout), SLOWER) == SLOWER


def test_a_car_whose_own_lane_is_blocked_counts_as_cutting_in():
    # urban_crossing seed 10020: a car in the next lane coming up on a stopped car swerved in
    # just ahead of the ego. Its IDM gap at 5 m/s closing 5: 10 + 7.5 + 25 / 7.75 = 20.7 m > 12 m
    shield = GapShield(LAYOUT, lane_width=3.5, cut_ins=True)  # conf/shield/gap.yaml's
    car, stopped = ("vehicle", 20.0, -3.5, 5.0, 0.0), ("obstacle", 32.0, -3.5, 0.0, 0.0)
    # the ego at 7 m/s keeps s* = 10 + 10.5 + 7 x 2 / 7.75 = 22.3 m to it as if in its lane
    assert shield(scene(7.0, car, stopped), FASTER) == SLOWER
    assert SHIELD(scene(7.0, car, stopped), FASTER) == FASTER  # off by default (older runs)
    assert shield(scene(7.0, car), FASTER) == FASTER  # its lane free: it stays there
    assert shield(scene(7.0, car, ("obstacle", 45.0, -3.5, 0.0, 0.0)), FASTER) == FASTER  # 25 m
    assert shield(scene(7.0, car, ("pedestrian", 32.0, -3.5, 0.0, 0.0)), FASTER) == FASTER
    assert shield(scene(7.0, ("vehicle", 20.0, -7.0, 5.0, 0.0),  # two lanes over
                        ("obstacle", 32.0, -7.0, 0.0, 0.0)), FASTER) == FASTER
    assert shield(scene(7.0, ("vehicle", -5.0, -3.5, 5.0, 0.0),  # behind the ego
                        ("obstacle", 5.0, -3.5, 0.0, 0.0)), FASTER) == FASTER
    # a car coming up on a standing car cuts in too; one closing on a moving car (a platoon,
    # where MOBIL rarely sends it out) or keeping its gap to it does not count
    assert shield(scene(7.0, car, ("vehicle", 30.0, -3.5, 0.5, 0.0)), FASTER) == SLOWER
    assert shield(scene(7.0, car, ("vehicle", 30.0, -3.5, 2.0, 0.0)), FASTER) == FASTER
    assert shield(scene(7.0, car, ("vehicle", 45.0, -3.5, 5.0, 0.0)), FASTER) == FASTER
    assert list(shield.cutting_in(shield.scene(scene(7.0, car, stopped)))) == [True, False]


def test_a_queued_car_waits_and_only_an_obstacle_pulls_a_standing_car_out():
    # urban_crossing eval seeds: the ego, stopped, waited behind the other lane's queue at a
    # crosswalk (161 of 800 decisions overridden as cut-ins by standing cars 14 m ahead)
    shield = GapShield(LAYOUT, lane_width=3.5, cut_ins=True, queued_cut_ins=False,
                       decision_period=0.5, target_speeds=(0.0, 4.0, 8.0))
    queued, before = ("vehicle", 14.0, -3.5, 0.0, 0.0), ("vehicle", 21.0, -3.5, 0.0, 0.0)
    assert shield(scene(0.0, queued, before), FASTER) == FASTER
    assert list(shield.cutting_in(shield.scene(scene(0.0, queued, before)))) == [False, False]
    # behind an obstacle a standing car pulls out (sim.vehicles.ObstacleAwareIDMVehicle)
    debris = ("obstacle", 21.0, -3.5, 0.0, 0.0)
    assert shield(scene(0.0, queued, debris), FASTER) == SLOWER
    # a moving car coming up on the queue's tail still cuts in (MOBIL moves it)
    coming = ("vehicle", 12.0, -3.5, 5.0, 0.0)
    assert shield(scene(0.0, coming, before), FASTER) == SLOWER
    assert shield(scene(0.0, coming), FASTER) == FASTER  # (its lane free: it stays there)
    # with queued_cut_ins on (the default) the queue counts
    assert replace(shield, queued_cut_ins=True)(scene(0.0, queued, before), FASTER) == SLOWER


URBAN = dict(lane_width=3.5, decision_period=0.5, target_speeds=(0.0, 4.0, 8.0, 11.0, 14.0),
             speed_lag=0.6)


def test_with_the_stopping_gap_the_ego_creeps_up_to_a_queue_as_far_as_braking_reaches():
    # urban_crossing, the ego standing behind a standing car: FASTER (target 4) covers 0.64 m
    # in the decision, reaching 2.26 m/s, from which one SLOWER stops it in 1.36 m: 2.0 m in
    # all, so a car 12.5 m ahead leaves 10.5 m >= min_gap; IDM's gap at 4 m/s is 18.1 m
    idm = GapShield(LAYOUT, **URBAN)
    stopping = replace(idm, stopping_gap=True)
    queue = scene(0.0, ("vehicle", 12.5, 0.0, 0.0, 0.0), target=0.0)
    assert idm(queue, FASTER) == SLOWER
    assert stopping(queue, FASTER) == FASTER
    assert stopping.unsafe_to_stop(0.0, 4.0, np.array([12.5, 11.5]), np.zeros(2)).tolist() == \
        [False, True]
    # pedestrians and obstacles keep IDM's gap (measured: README "A cheaper shield")
    for what in ("obstacle", "pedestrian"):
        assert stopping(scene(0.0, (what, 12.5, 0.0, 0.0, 0.0), target=0.0), FASTER) == SLOWER


def test_the_stopping_gap_counts_the_lead_braking_as_hard_as_it_can():
    # the ego at 8 m/s behind a car at 8 m/s 20 m ahead: inside IDM's 22 m. IDLE: 4 m in the
    # decision + 8.8 m of braking from 8 m/s (with the lag) = 12.8 m, and the car braking at
    # 6 m/s^2 stops 20 + 5.3 m ahead: 12.5 m >= min_gap. FASTER: 4.5 m + 13.8 m from 9.7 m/s
    # leaves 7.0 m. A lead that stopped at 12 m/s^2 would leave IDLE 9.9 m
    stopping = GapShield(LAYOUT, stopping_gap=True, **URBAN)
    follow = scene(8.0, ("vehicle", 20.0, 0.0, 8.0, 0.0), target=8.0)
    assert replace(stopping, stopping_gap=False)(follow, IDLE) == SLOWER
    assert stopping(follow, IDLE) == IDLE
    assert stopping.braking_distance(8.0, 0.0) == pytest.approx(8.8)
    assert stopping(follow, FASTER) == SLOWER
    assert replace(stopping, lead_dec=12.0)(follow, IDLE) == SLOWER
    # a standing obstacle at 8 m/s: IDM's gap and braking agree
    assert stopping(scene(8.0, ("obstacle", 20.0, 0.0, 0.0, 0.0), target=8.0), IDLE) == SLOWER
    # no more cautious than IDM's gap: the gap rule needs both tests to fire. At 14 m/s behind
    # a car at 14 m/s 31.5 m ahead: braking (7 + 31.4 m) needs 32.1 m, IDM's gap 31 m
    top = scene(14.0, ("vehicle", 31.5, 0.0, 14.0, 0.0), target=14.0)
    assert stopping.unsafe_to_stop(14.0, 14.0, np.array([31.5]), np.array([14.0])).tolist() == \
        [True]
    assert stopping(top, IDLE) == IDLE


def test_with_cut_in_braking_a_car_counts_as_cutting_in_only_where_mobil_would_let_it():
    # urban_crossing eval seed 10003: the ego stood for 30 decisions beside a car queued in the
    # next lane 6-7 m ahead, which highway-env's MOBIL never sends in front of a car that would
    # have to brake at 2 m/s^2 or more for it (here: 3 - 3 (10 / 7)^2 = -3.1 m/s^2)
    shield = GapShield(LAYOUT, cut_ins=True, **URBAN)
    mobil = replace(shield, cut_in_braking=2.0)
    beside = scene(0.0, ("vehicle", 7.0, -3.5, 0.0, 0.0), ("vehicle", 14.0, -3.5, 0.0, 0.0),
                   target=0.0)
    assert shield.decide(beside, FASTER) == (SLOWER, "gap_cut_in")
    assert mobil(beside, FASTER) == FASTER
    assert mobil.braking_imposed(mobil.scene(beside))[0] == pytest.approx(3 * (10 / 7) ** 2 - 3)
    # one 20 m ahead at 5 m/s coming up on an obstacle: the ego at 7 m/s heading for 11 would
    # brake at 2.5 (1 - (7 / 11)^4) - 3 (22.3 / 20)^2 = -1.2 m/s^2 for it, so MOBIL lets it in;
    # the ego holding 7 m/s would brake at 3.7 m/s^2: MOBIL keeps it out
    car, stopped = ("vehicle", 20.0, -3.5, 5.0, 0.0), ("obstacle", 32.0, -3.5, 0.0, 0.0)
    assert mobil.decide(scene(7.0, car, stopped, target=11.0), IDLE) == (SLOWER, "gap_cut_in")
    assert mobil(scene(7.0, car, stopped, target=7.0), IDLE) == IDLE


def test_braking_imposed_is_highway_envs_idm_acceleration_of_the_ego_behind_the_car():
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.behavior import IDMVehicle
    from highway_env.vehicle.controller import MDPVehicle

    road = Road(RoadNetwork.straight_road_network(2, length=1000.0, speed_limit=30.0),
                np_random=np.random.default_rng(0))
    lane = road.network.get_lane(("0", "1", 0))
    for speed, target, gap, car_speed in ((8.0, 11.0, 25.0, 5.0), (0.0, 0.0, 9.0, 0.0),
                                          (11.0, 8.0, 30.0, 12.0)):
        ego = MDPVehicle(road, lane.position(100.0, 0.0), speed=speed,
                         target_speeds=np.array([0.0, 4.0, 8.0, 11.0, 14.0]))
        ego.target_speed = target
        car = IDMVehicle(road, lane.position(100.0 + gap, 0.0), speed=car_speed)
        obs = scene(speed, ("vehicle", gap, 0.0, car_speed, 0.0), target=target)
        imposed = GapShield(LAYOUT, **URBAN).braking_imposed(GapShield(LAYOUT).scene(obs))
        assert -imposed[0] == pytest.approx(car.acceleration(ego, car), abs=1e-3)


def test_decide_names_the_rule_that_changed_the_action():
    layout = ObjectListLayout(max_range=100.0)
    obstacle = scene(8.0, ("obstacle", 20.0, 0.5, 0.0, 0.0))
    assert SHIELD.decide(obstacle, FASTER) == (SLOWER, "gap_obstacle")
    assert SHIELD.decide(obstacle, SLOWER) == (SLOWER, None)  # asked for what it would do
    assert SHIELD.decide(scene(8.0, ("vehicle", 20.0, 0.0, 8.0, 0.0)), FASTER) == \
        (SLOWER, "gap_vehicle")
    assert SHIELD.decide(scene(6.0, ("pedestrian", 15.0, 5.0, 0.0, -1.5)), FASTER) == \
        (SLOWER, "gap_pedestrian")
    assert SHIELD.decide(scene(8.0), FASTER) == (FASTER, None)
    left_car = scene(8.0, ("vehicle", -5.0, 3.5, 9.0, 0.0))
    assert SHIELD.decide(left_car, LANE_LEFT) == (IDLE, "lane_occupied")
    near = scene(8.0, ("obstacle", 16.0, 0.0, 0.0, 0.0))
    assert SHIELD.decide(near, LANE_LEFT) == (SLOWER, "late_to_leave")
    cut_in = GapShield(LAYOUT, lane_width=3.5, cut_ins=True)
    swerving = scene(7.0, ("vehicle", 20.0, -3.5, 5.0, 0.0), ("obstacle", 32.0, -3.5, 0.0, 0.0))
    assert cut_in.decide(swerving, FASTER) == (SLOWER, "gap_cut_in")
    sight = GapShield(layout, lane_width=4.0, decision_period=1.0,
                      target_speeds=(0, 5, 10, 15, 20, 25, 30), sight_range=92.0)
    assert sight.decide(scene(20.0, layout=layout), FASTER) == (IDLE, "sight")
    steer = GapShield(layout, lane_width=4.0, decision_period=1.0,
                      target_speeds=(0, 5, 10, 15, 20, 25, 30))
    debris = scene(20.0, ("obstacle", 45.0, 0.0, 0.0, 0.0), layout=layout)
    assert steer.decide(debris, FASTER) == (LANE_LEFT, "way_round")
    assert {"lane_occupied", "late_to_leave", "sight", "way_round", "gap_cut_in",
            "gap_vehicle", "gap_pedestrian", "gap_obstacle"} == set(RULES)


@pytest.mark.parametrize("speeds, frequency, speed", [
    ((0, 4, 8, 11, 14), 2, 14.0), ((0, 4, 8, 11, 14), 2, 11.0),
    ((0, 5, 10, 15, 20, 25, 30), 1, 20.0), ((0, 5, 10, 15, 20, 25, 30), 1, 25.0)])
def test_the_lagged_braking_distance_is_highway_envs_own(speeds, frequency, speed):
    # highway-env's MDPVehicle braking by one SLOWER per decision on a straight road, 10 Hz
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.controller import MDPVehicle

    road = Road(RoadNetwork.straight_road_network(1, length=1000.0),
                np_random=np.random.default_rng(0))
    ego = MDPVehicle(road, road.network.get_lane(("0", "1", 0)).position(0.0, 0.0),
                     speed=speed, target_speeds=np.array(speeds, float))
    start, steps = ego.position[0], 0
    while ego.speed > 0.01 and steps < 600:
        ego.act("SLOWER")
        for _ in range(10 // frequency):
            ego.act()
            ego.step(0.1)
            steps += 1
    driven = ego.position[0] - start
    lagged = GapShield(LAYOUT, decision_period=1.0 / frequency, target_speeds=speeds,
                       speed_lag=0.6)
    instant = GapShield(LAYOUT, decision_period=1.0 / frequency, target_speeds=speeds)
    # never shorter than what highway-env drives; within 0.5 m but where the rounding to the
    # nearest target falls the other way (14 m/s: 31.4 m against 25.9 m)
    assert driven - 0.5 <= lagged.braking_distance(speed, 0.0) <= driven + (6.0 if speed == 14
                                                                            else 0.5)
    assert instant.braking_distance(speed, 0.0) < driven - 1.0  # what the lag adds
    assert lagged.braking_distance(speed, speed) == 0.0
    for shield in (lagged, instant):  # within 0.5 m/s of the object's speed: one decision's
        assert shield.braking_distance(0.3, 0.0) == pytest.approx(0.15 / frequency)
    assert GapShield(LAYOUT, decision_period=1.0, target_speeds=(20, 25),
                     speed_lag=0.6).braking_distance(25.0, 0.0) == float("inf")


def test_with_the_lag_urban_crossings_top_speed_outruns_its_41_m_of_sight():
    # from 11 m/s to 14: 6.25 m of travel + 31.4 m braking + 10 m > 41 m; at 11: 34.1 m fits
    urban = GapShield(LAYOUT, decision_period=0.5, target_speeds=(0, 4, 8, 11, 14),
                      sight_range=41.0, speed_lag=0.6)
    assert urban(scene(11.0, target=11.0), FASTER) == IDLE
    assert urban(scene(11.0, target=11.0), IDLE) == IDLE
    assert urban(scene(8.0, target=8.0), FASTER) == FASTER


def test_in_a_lane_change_the_target_lanes_objects_are_judged_along_the_lane():
    # urban_crossing seed 10004: the ego, turned 20 deg right in a lane change at 5 m/s, with a
    # stopped car 25 m ahead along the target lane: 8.6 m left of its heading in the ego frame
    h = np.radians(-20.0)
    along = np.array([25.0, -3.5])  # lane frame: 25 m ahead, the lane on the right
    rot = np.array([[np.cos(h), np.sin(h)], [-np.sin(h), np.cos(h)]])  # lane -> ego frame
    x, y = rot @ along
    obs = scene(5.0, ("obstacle", x, y, 0.0, 0.0), target=8.0)
    obs[0, 6:8] = 5.0 * np.array([np.cos(h), np.sin(h)]) / LAYOUT.velocity_scale  # VX, VY
    urban = dict(decision_period=0.5, target_speeds=(0, 4, 8, 11, 14))
    lane = GapShield(LAYOUT, lane_width=3.5, lane_frame=True, **urban)
    heading = GapShield(LAYOUT, lane_width=3.5, **urban)
    # along the lane it is 3.5 m right of the ego, the ego still half in its old lane: in the
    # corridor once the ego is within 2.5 m of that lane, i.e. when shifted by 1.5 m
    assert heading(obs, FASTER) == FASTER  # 5.4 m off the ego's heading: out of its path
    xy_lane = lane.scene(obs)[1][0]
    assert xy_lane == pytest.approx(along, abs=1e-3)
    obs_mid = scene(5.0, ("obstacle", *(rot @ (along + [0.0, 1.5])), 0.0, 0.0), target=8.0)
    obs_mid[0, 6:8] = obs[0, 6:8]
    assert lane(obs_mid, FASTER) == SLOWER and heading(obs_mid, FASTER) == FASTER


def test_a_car_swerving_into_the_lane_is_in_the_path():
    # held-out seed 10123: a car overtaking a truck turned into the ego's lane 12 m ahead, its
    # centre still 3 m off the ego's line; at 2 m/s sideways it is inside the corridor in 1 s
    shield = GapShield(LAYOUT, lane_width=3.5, vehicle_horizon=1.0)  # conf/shield/gap.yaml's
    swerving = scene(6.0, ("vehicle", 12.0, -3.0, 5.0, 2.0))
    assert shield(swerving, FASTER) == SLOWER
    assert SHIELD(swerving, FASTER) == FASTER  # off by default (older runs)
    assert shield(scene(6.0, ("vehicle", 12.0, -3.0, 5.0, 0.0)), FASTER) == FASTER  # keeping
    assert shield(scene(6.0, ("vehicle", 12.0, -3.0, 5.0, -2.0)), FASTER) == FASTER  # leaving
    assert shield(scene(6.0, ("obstacle", 12.0, -3.0, 0.0, 2.0)), FASTER) == FASTER  # no drift
    # and a lane change waits for a car swerving into the target lane
    assert shield(scene(6.0, ("vehicle", 2.0, 7.5, 6.0, -3.0)), LANE_LEFT) == IDLE
    assert shield(scene(6.0, ("vehicle", 2.0, 7.5, 6.0, 0.0)), LANE_LEFT) == LANE_LEFT


def test_the_shield_takes_the_envs_decision_period_and_speeds():
    from omegaconf import OmegaConf

    from agents.shield import build_shield

    shield_cfg = OmegaConf.load(REPO_ROOT / "conf/shield/gap.yaml")
    run = OmegaConf.create({"observation": {"name": "kinematics", "layout": {
        "_target_": "agents.observations.ObjectListLayout"}}, "env": {"config": {
            "policy_frequency": 2, "action": {"target_speeds": [0, 4, 8]}}}})
    shield = build_shield(shield_cfg, run)
    assert shield.cut_ins is True and shield.lane_frame is True and shield.speed_lag == 0.6
    assert shield.vehicle_horizon == 1.0 and shield.queued_cut_ins is True
    assert shield.stopping_gap is False and shield.cut_in_braking is None  # as measured first
    assert shield.decision_period == 0.5 and shield.target_speeds == (0.0, 4.0, 8.0)
    assert shield.lane_width == 4.0 and shield.sight_range == 60.0  # max_range (no camera)
    run.env.config = {}  # highway-env's defaults: 1 Hz, [20, 25, 30]
    shield = build_shield(shield_cfg, run)
    assert shield.decision_period == 1.0 and shield.target_speeds == (20.0, 25.0, 30.0)


def test_the_shielded_policy_counts_its_interventions_per_episode():
    class Always:
        def __init__(self, action):
            self.action, self.resets = action, 0

        def reset(self, env, seed):
            self.resets += 1

        def act(self, obs, env):
            return np.array([self.action])

    danger = scene(8.0, ("obstacle", 12.0, 0.0, 0.0, 0.0))[None]
    clear = scene(8.0)[None]
    policy = ShieldedPolicy(Always(FASTER), SHIELD)
    policy.reset(None, 0)
    assert policy.act(danger, None).tolist() == [SLOWER] and policy.last_changed
    assert policy.act(clear, None).tolist() == [FASTER] and not policy.last_changed
    assert policy.act(danger, None).tolist() == [SLOWER]
    assert policy.interventions == 2
    policy.reset(None, 1)
    assert policy.interventions == 0 and policy.policy.resets == 2
    # the rules are counted over every episode (the eval's shield_rule_rates)
    assert policy.act(danger, None).tolist() == [SLOWER]
    assert policy.rule_counts == {**dict.fromkeys(RULES, 0), "gap_obstacle": 3}


@pytest.mark.parametrize("key", ["corridor", "min_gap", "lane_width", "lane_change_time",
                                 "decision_period", "sight_range", "speed_lag",
                                 "standing_speed", "vehicle_horizon", "lead_dec",
                                 "cut_in_braking"])
def test_bad_parameters_name_the_key(key):
    with pytest.raises(ConfigError, match=rf"shield\.{key}=-1.0: need a value >=? 0"):
        GapShield(LAYOUT, **{key: -1.0})


def test_the_shield_needs_an_object_list():
    from omegaconf import OmegaConf

    from agents.eval_setup import shield_of

    cfg = OmegaConf.create({"shield": {"_target_": "agents.shield.GapShield",
                                       "lane_width": None}})
    run = OmegaConf.create({"observation": {"name": "pixels"}, "env": {"config": {}}})
    with pytest.raises(ConfigError, match="observation=pixels has none; use it with "
                                          "observation=kinematics or objects"):
        shield_of(cfg, run)
    run = OmegaConf.create({"observation": {"name": "kinematics", "layout": {
        "_target_": "agents.observations.ObjectListLayout"}}, "env": {"config": {
            "lane_width": 3.5}}})
    assert shield_of(cfg, run).lane_width == 3.5  # the env's
    assert shield_of(OmegaConf.create({}), run) is None
