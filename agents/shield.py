"""A safety shield between an object-list policy and the env (`roadsight eval ... shield=gap`).

Shielding (Alshiekh et al., "Safe Reinforcement Learning via Shielding", AAAI 2018): a small,
inspectable rule reads the SAME object list the policy reads (agents.observations: ground truth
for kinematics, the tracker's output for objects) and replaces a meta-action it judges unsafe;
every other action passes unchanged. It knows nothing the policy does not, so "policy + shield"
on perception stays a perception-driven driver, and the shield's own misses are perception's.
At evaluation it wraps the policy (ShieldedPolicy); in training (`roadsight train ... shield=gap`)
it sits in the vector env (ShieldVecEnv), so the policy learns from what the shielded actions
did (Alshiekh et al.'s post-posed shield), and the run is evaluated with it.

Two rules, with highway-env's IDM constants as defaults (its cars keep these gaps):
- keep the gap: something in the ego's path (a vehicle or obstacle whose centre is within
  `corridor` of the ego's line, or a pedestrian whose constant-velocity walk over
  `pedestrian_horizon` comes within it) closer, centre to centre, than IDM's desired gap
  s* = min_gap + v time_gap + v dv / (2 sqrt(comfort_acc comfort_dec)) -> SLOWER, judged one
  decision ahead: the gap and the speed the action would leave after `decision_period` (the
  env's 1 / policy_frequency), the speed being the ego's target speed (the ego row's), for
  FASTER the next of `target_speeds` above it. At highway-env's 1 Hz a FASTER at 14 m/s
  (target 15) with debris 59 m ahead leaves 42 m at 20 m/s, more than one SLOWER a second
  (5 m/s) can stop in. With `least_change` a FASTER that would close the gap becomes IDLE
  when IDLE keeps it (the least change that is safe by the same test), else SLOWER;
- change lanes into a free gap only: a LANE_LEFT/LANE_RIGHT with anything in the target lane's
  corridor closer ahead than `lane_change_front` + IDM's braking term v dv / (2 sqrt(ab)) for
  the ego closing on it, or closer behind than `lane_change_rear` + the same term for it
  closing on the ego -> IDLE (then the gap rule). At 25 m/s a debris in the next lane thus
  blocks the change up to 96 m ahead, a car at the ego's speed 15 m ahead.
Third, the sight rule (the assured clear distance ahead): the ego may only drive as fast as it
can stop within what its object list can show, `sight_range` (the camera's view ahead): at the
target speed v an action leaves, the distance covered in one decision (something out of sight
now is at most that much nearer at the next decision, when it is first listed) + one SLOWER per
decision's braking distance + min_gap must fit in sight_range, else FASTER -> IDLE and IDLE ->
SLOWER. With highway_hazards' 92 m bev view at 1 Hz this caps the target speed at 20 m/s
(20 + 40 + 10 = 70 m; at 25 m/s 25 + 62.5 + 10 = 97.5 m): at 29 m/s debris first listed 62 m
ahead could not be stopped for nor driven round (held-out seed 10100). The rule is off where the
lowest target speed cannot stop the ego (highway-env's default [20, 25, 30]).
Fourth, the way round: when the gap rule fires and one SLOWER per decision cannot stop the ego
`min_gap` short of something in its path (the closing speed shed one target speed per
`decision_period`; every object in the path counts, not only the nearest: debris 41 m ahead
behind a car 21 m ahead at the ego's speed, held-out seed 10300), the shield steers into a free
lane instead (left, else right; one that exists, by the ego row's lane flags), unless it is
late to leave: something in the path nearer than min_gap + its closing speed x
`lane_change_time` (the ego would still be in its lane when it got there; a car ahead at the
ego's speed never is). A lane change into a free gap passes even with something inside the gap
ahead (moving out of the path is the way round a standstill that braking cannot reach at
highway speed), unless it is late to leave: then SLOWER.
Fifth, cut-ins (`cut_ins`): a vehicle ahead in a next lane that is coming up on an obstacle or
a standing car (below `standing_speed`) in its own lane nearer than its IDM gap one decision
ahead will change lanes (highway-
env's MOBIL sends it into the ego's lane as soon as the ego would need to brake by no more than
2 m/s^2 for it), so it counts as in the ego's path: the ego keeps IDM's gap to it before it
swerves (urban_crossing seed 10020: a car swerving round a stopped car cut in just ahead of the
ego, and the shield braked only once it was there). A car standing in a queue (below
`standing_speed` itself, behind a standing car) waits for the queue rather than pulling out
(highway-env's MOBIL only moves cars at 1 m/s or more; sim.vehicles pulls a standing car out
round an obstacle only), so with `queued_cut_ins` off only an obstacle ahead makes a standing
car cut in (urban_crossing: the ego waited behind the other lane's queue at a crosswalk; off
measured no better, so the default keeps it on).
A car already swerving is in the path when its lateral motion over `vehicle_horizon` reaches
the corridor (held-out seed 10123: a car overtaking a truck turned into the ego's lane 12 m
ahead of it, its centre still outside the corridor while the ego asked for FASTER).
Two options make the shield cheaper, measured in README "A cheaper shield" (IDM itself lost a
third of its return behind the rules above, stopped for cars that could not cut in and kept
IDM's 1.5 s time gap by SLOWER):
- `stopping_gap`: a VEHICLE in the path trips the gap rule only if it is also nearer than the
  stopping gap (Shalev-Shwartz et al., "On a Formal Model of Safe and Scalable Self-driving
  Cars", 2017, RSS's safe longitudinal distance with the meta-actions' braking): after the
  action, one SLOWER per decision would not stop the ego min_gap short of where the car stops
  braking at `lead_dec` from now. Creeping up to a standing queue or following closer than
  1.5 s passes while braking can still stop the ego. Pedestrians and obstacles keep IDM's gap
  (measured: the perceived policies hit them when they did not).
- `cut_in_braking`: a car counts as cutting in only where highway-env's MOBIL would let it in
  front of the ego: the braking it would impose on the ego (IDM's acceleration behind it, the
  ego's speed against its target) is no harder than this (MOBIL's
  LANE_CHANGE_MAX_BRAKING_IMPOSED, 2 m/s^2). A car queued just ahead of the ego in the next
  lane never cuts in (urban_crossing eval seed 10003: the cut-in rule changed 57 of IDM's 80
  decisions, mostly for a car 5-7 m ahead in the next lane).
conf/shield/gap_rss.yaml sets both with least_change; conf/shield/gap.yaml neither.
Ego frame: x forward, y left; LANE_LEFT is the lane at +lane_width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.observations import (
    CLASS0,
    PRESENCE,
    TARGET_SPEED,
    VX,
    VY,
    ObjectListLayout,
    X,
    Y,
)
from agents.observations import LANE_LEFT as HAS_LEFT_LANE
from agents.observations import LANE_RIGHT as HAS_RIGHT_LANE
from roadsight.errors import ConfigError
from sim.drivers import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from sim.types import CLASSES

PEDESTRIAN = CLASSES.index("pedestrian")
VEHICLE = CLASSES.index("vehicle")
OBSTACLE = CLASSES.index("obstacle")
HIGHWAY_TARGET_SPEEDS = (20.0, 25.0, 30.0)  # highway-env's DiscreteMetaAction default [m/s]


@dataclass(frozen=True)
class GapShield:
    """See the module docstring; lengths in m, speeds in m/s, times in s."""

    layout: ObjectListLayout
    lane_width: float = 4.0
    corridor: float = 2.5  # half-width of the ego's path: its half-width + another car's + 0.5
    #                        for a car standing at an angle (a stopped car 2.3-2.6 m off the
    #                        ego's line was hit on urban_crossing and highway_hazards)
    min_gap: float = 10.0  # IDM's DISTANCE_WANTED (5 m + a car length), centre to centre
    time_gap: float = 1.5  # IDM's TIME_WANTED
    comfort_acc: float = 3.0  # IDM's COMFORT_ACC_MAX
    comfort_dec: float = 5.0  # -IDM's COMFORT_ACC_MIN
    pedestrian_horizon: float = 3.0
    vehicle_horizon: float = 0.0  # [s] a vehicle's lateral motion that counts as in the path
    #                               (conf/shield/gap.yaml: 1 s; 0 here for runs trained before)
    lane_change_front: float = 15.0
    lane_change_rear: float = 12.0
    lane_change_time: float = 1.0
    decision_period: float = 0.0  # [s] 0: judge the present gap only
    target_speeds: tuple[float, ...] = ()  # [m/s] the meta-actions' speeds (); none: FASTER
    #                                        is judged at the present speed
    sight_range: float = float("inf")  # [m] how far ahead the object list can show anything
    speed_lag: float = 0.0  # [s] the ego's speed follows its target as v' = (target - v) / lag
    #                         (highway-env: 0.6); 0: each target reached within the decision
    lane_frame: bool = False  # judge positions along the lane (the ego frame turned by the
    #                           ego's heading to it), not along the ego's heading
    cut_ins: bool = False  # a car in a next lane whose own lane ahead is blocked is in the
    #                        path (conf/shield/gap.yaml: on; off here for runs trained before it)
    standing_speed: float = 1.0  # [m/s] slower than this, a car or obstacle blocks its lane
    queued_cut_ins: bool = True  # a standing car behind a standing car counts as cutting in
    least_change: bool = False  # a FASTER that would close the gap becomes IDLE when IDLE
    #                             keeps it, not SLOWER (measured: conf/shield/gap.yaml)
    cut_in_braking: float | None = None  # [m/s^2] a car counts as cutting in only where MOBIL
    #                                      would let it: the braking it imposed on the ego
    #                                      (braking_imposed) no harder than this (highway-env's
    #                                      LANE_CHANGE_MAX_BRAKING_IMPOSED: 2); None: any
    stopping_gap: bool = False  # a vehicle trips the gap rule only where the ego, after the
    #                             action, could not stop min_gap short of where it can stop
    #                             (unsafe_to_stop)
    lead_dec: float = 6.0  # [m/s^2] the hardest an object ahead brakes (highway-env's
    #                        IDMVehicle.ACC_MAX, which its and sim.vehicles' cars are clipped to)

    def __post_init__(self):
        for key in ("lane_width", "corridor", "min_gap", "time_gap", "comfort_acc",
                    "comfort_dec", "lane_change_front", "lane_change_rear", "lane_change_time",
                    "standing_speed", "lead_dec"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"shield.{key}={getattr(self, key)!r}: need a value > 0")
        for key in ("decision_period", "speed_lag", "pedestrian_horizon", "vehicle_horizon"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"shield.{key}={getattr(self, key)!r}: need a value >= 0")
        if self.cut_in_braking is not None and not self.cut_in_braking >= 0:
            raise ConfigError(f"shield.cut_in_braking={self.cut_in_braking!r}: need a value >= 0 "
                              f"(highway-env's MOBIL: 2.0), or null")
        if not self.sight_range > 0:
            raise ConfigError(f"shield.sight_range={self.sight_range!r}: need a value > 0 (inf: "
                              f"no sight rule)")

    def scene(self, obs: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
        """One object list as ego speed, the present objects' (x, y), (vx, vy) in m, m/s and
        classes, and the ego's target speed; with `lane_frame`, x along the lane and y left of
        it (the ego frame turned by the ego's heading to its lane), else the ego frame."""
        ps, vs = self.layout.position_scale, self.layout.velocity_scale
        speed = float(np.hypot(obs[0, VX], obs[0, VY]) * vs)
        rows = obs[1:][obs[1:, PRESENCE] > 0]
        cls = np.argmax(rows[:, CLASS0:CLASS0 + len(CLASSES)], axis=1)
        xy, vxy = rows[:, X:Y + 1] * ps, rows[:, VX:VY + 1] * vs
        if self.lane_frame and speed > 0.2:  # the heading is the ego row's velocity direction
            h = float(np.arctan2(obs[0, VY], obs[0, VX]))
            rot = np.array([[np.cos(h), np.sin(h)], [-np.sin(h), np.cos(h)]])  # R(h)^T
            xy, vxy = xy @ rot, vxy @ rot
        return speed, xy, vxy, cls, float(obs[0, TARGET_SPEED] * vs)

    def braking_gap(self, speed: np.ndarray | float, closing: np.ndarray) -> np.ndarray:
        """IDM's braking term v dv / (2 sqrt(ab)) [m] of a follower at `speed` closing at
        `closing` (>0: approaching; a receding object adds nothing)."""
        ab = 2.0 * np.sqrt(self.comfort_acc * self.comfort_dec)
        return speed * np.maximum(closing, 0.0) / ab

    def desired_gap(self, speed: float, closing: np.ndarray) -> np.ndarray:
        """IDM's s* [m] at ego speed `speed` for closing speeds `closing` (>0: approaching)."""
        ab = 2.0 * np.sqrt(self.comfort_acc * self.comfort_dec)
        return self.min_gap + speed * self.time_gap + speed * closing / ab

    def in_path(self, xy: np.ndarray, vxy: np.ndarray, cls: np.ndarray,
                offset: float = 0.0) -> np.ndarray:
        """(M,) bool: objects within the corridor around y = offset (pedestrians: anywhere on
        their walk over pedestrian_horizon; vehicles: on their lateral motion over
        vehicle_horizon, a car swerving into the lane)."""
        y0 = xy[:, 1] - offset
        horizon = np.select([cls == PEDESTRIAN, cls == VEHICLE],
                            [self.pedestrian_horizon, self.vehicle_horizon], 0.0)
        y1 = y0 + vxy[:, 1] * horizon
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        return (hi > -self.corridor) & (lo < self.corridor)

    def speed_after(self, obs: np.ndarray, speed: float, action: int) -> float:
        """The ego's speed [m/s] one decision after `action` from `speed` (the scene's): its
        target speed (the ego row's), for FASTER the next of `target_speeds` above it; the
        present speed with no look-ahead."""
        if self.decision_period == 0:
            return speed
        target = float(obs[0, TARGET_SPEED] * self.layout.velocity_scale)
        above = [v for v in self.target_speeds if v > target + 0.5]
        return min(above) if action == FASTER and above else target

    def braking_distance(self, speed: float, object_speed: float) -> float:
        """Distance [m] the ego covers relative to an object at `object_speed` before one SLOWER
        per decision stops it closing (inf: the lowest target speed is still faster). An object
        coming towards the ego counts as standing: braking can only bring the ego to a stop
        (and a tracker's estimate of a parked car wobbles around 0)."""
        if self.decision_period == 0:
            return 0.0  # deciding continuously: braking is never late
        floor = max(object_speed, 0.0)
        if speed <= floor + 0.5:  # nearly there: one decision's slowing
            return max(speed - floor, 0.0) * self.decision_period / 2
        if min(self.target_speeds, default=speed) > floor + 1e-6:
            return float("inf")
        if self.speed_lag == 0:  # the speed reaches each target within the decision
            targets = sorted((v for v in self.target_speeds if v < speed - 0.5), reverse=True)
            closing = np.maximum(np.array([speed, *targets]) - floor, 0.0)
            return self.decision_period * float(np.sum(closing[:-1] + closing[1:]) / 2)
        return self._lagged_braking(speed, floor)

    def _lagged_braking(self, speed: float, floor: float) -> float:
        """braking_distance as highway-env brakes (MDPVehicle, ControlledVehicle): each SLOWER
        sets the target one below the target speed NEAREST THE PRESENT SPEED (its
        speed_to_index, which takes the list as uniform), and the speed follows it as v' =
        (target - v) / speed_lag (_follow), relative to an object at `floor`. To a stop from 11,
        20 and 25 m/s (urban_crossing's [0, 4, 8, 11, 14] at 2 Hz, highway_hazards' 0..30 by 5 at 1
        Hz): 18.6, 42.0 and 65.0 m, as highway-env's own (Euler-stepped) speed covers; from 14
        m/s 31.4 m against its 25.9 m, where the rounding to the nearest target falls the other
        way (12.30 against 12.21 m/s after one decision), i.e. on the safe side; each target
        reached within its decision would give 15.0 m."""
        speeds = np.sort(np.asarray(self.target_speeds, float))
        tau, v, covered = self.speed_lag, speed, 0.0
        for _ in range(1000):
            share = (v - speeds[0]) / max(speeds[-1] - speeds[0], 1e-9)
            index = int(np.clip(np.round(share * (len(speeds) - 1)), 0, len(speeds) - 1))
            target = float(speeds[max(index - 1, 0)])
            if target < floor:  # v reaches the object's speed at t = tau ln((v-T)/(floor-T))
                t = min(tau * np.log((v - target) / (floor - target)), self.decision_period)
            elif target == floor or v - target < 1e-3:  # held: v nears it for good
                return float(covered + (v - floor) * tau if target == floor else np.inf)
            else:
                t = self.decision_period
            v, ground = self._follow(v, target, t)
            covered += ground - floor * t
            if v <= floor + 1e-6:
                break
        return float(covered)

    def _follow(self, speed: float, target: float, t: float) -> tuple[float, float]:
        """The ego's speed [m/s] after `t` s heading for `target` from `speed`, and the ground it
        covers [m], as highway-env's speed follows its target (speed_lag > 0): v = T + (v0 - T)
        e^(-t/tau), covering T t + (v0 - T) tau (1 - e^(-t/tau))."""
        decay = np.exp(-t / self.speed_lag)
        return (target + (speed - target) * decay,
                target * t + (speed - target) * self.speed_lag * (1.0 - decay))

    def outruns_sight(self, speed: float, then: float) -> bool:
        """Would the ego, going from `speed` to target `then`, be unable to stop min_gap short
        of something that comes into sight during the next decision? (See the module
        docstring; False where braking cannot stop the ego at all.)"""
        stop = self.braking_distance(then, 0.0)
        if self.decision_period == 0 or not np.isfinite(stop):
            return False
        travel = 0.5 * (speed + then) * self.decision_period
        return travel + stop + self.min_gap > self.sight_range

    def cutting_in(self, scene: tuple) -> np.ndarray:
        """(M,) bool: vehicles in a next lane (not in the ego's path) with an obstacle or a
        standing car ahead in their own lane nearer than their IDM gap one decision ahead (see
        the module docstring); all False with `cut_ins` off."""
        _, xy, vxy, cls, _ = scene
        cutting = np.zeros(len(xy), bool)
        if not self.cut_ins:
            return cutting
        beside = (self.in_path(xy, vxy, cls, +self.lane_width)
                  | self.in_path(xy, vxy, cls, -self.lane_width)) & ~self.in_path(xy, vxy, cls)
        # what a car swerves round: an obstacle or a standing car (a car waits for a
        # pedestrian; one following a moving car in a platoon mostly stays in its lane)
        blocker = (cls != PEDESTRIAN) & (np.hypot(vxy[:, 0], vxy[:, 1]) < self.standing_speed)
        for i in np.flatnonzero(beside & (cls == VEHICLE)):
            speed = max(float(vxy[i, 0]), 0.0)
            queued = not self.queued_cut_ins and np.hypot(*vxy[i]) < self.standing_speed
            round_what = blocker & (cls == OBSTACLE) if queued else blocker
            closing = speed - np.maximum(vxy[:, 0], 0.0)
            gap = xy[:, 0] - xy[i, 0] - closing * self.decision_period
            own_lane = np.abs(xy[:, 1] - xy[i, 1]) < self.corridor
            ahead = (xy[:, 0] > xy[i, 0]) & own_lane & round_what
            cutting[i] = bool((ahead & (gap < self.desired_gap(speed, closing))).any())
        if self.cut_in_braking is not None:
            cutting &= self.braking_imposed(scene) <= self.cut_in_braking
        return cutting

    def braking_imposed(self, scene: tuple) -> np.ndarray:
        """(M,) the braking [m/s^2, >0: braking] each object would impose on the ego were it
        in the ego's lane now: IDM's acceleration of the ego behind it, as highway-env's
        IDMVehicle.acceleration computes it for MOBIL's safety criterion (the ego's speed
        against its target speed, IDM's desired gap to the object)."""
        speed, xy, vxy, _, target = scene
        free = self.comfort_acc * (1.0 - (max(speed, 0.0) / max(abs(target), 1e-2)) ** 4)
        gap = np.maximum(xy[:, 0], 1e-2)
        return -(free - self.comfort_acc * (self.desired_gap(speed, speed - vxy[:, 0]) / gap) ** 2)

    def path_ahead(self, scene: tuple, *, which: bool = False):
        """x [m] and vx [m/s] of every object ahead in the ego's path, cars about to cut into
        it included; `which`: also their indices into the scene."""
        _, xy, vxy, cls, _ = scene
        ahead = (xy[:, 0] > 0) & (self.in_path(xy, vxy, cls) | self.cutting_in(scene))
        if which:
            return xy[ahead, 0], vxy[ahead, 0], np.flatnonzero(ahead)
        return xy[ahead, 0], vxy[ahead, 0]

    def too_close(self, scene: tuple, then: float | None = None) -> bool:
        """Anything ahead in the ego's path nearer than IDM's desired gap one decision ahead,
        the ego then at speed `then` (None: its present speed)? (`scene`: see `scene`.) With
        `stopping_gap`, a vehicle only if also nearer than the stopping gap (unsafe_to_stop)."""
        speed = scene[0]
        x, vx, index = self.path_ahead(scene, which=True)
        if len(x) == 0:
            return False
        cls = scene[3][index]
        then = speed if then is None else then
        near = x + (vx - 0.5 * (speed + then)) * self.decision_period < \
            self.desired_gap(then, then - vx)
        if self.stopping_gap and self.decision_period > 0:
            near &= self.unsafe_to_stop(speed, then, x, vx) | (cls != VEHICLE)
        return bool(near.any())

    def unsafe_to_stop(self, speed: float, target: float, x: np.ndarray,
                       vx: np.ndarray) -> np.ndarray:
        """(M,) bool: would the ego, heading from `speed` for the target speed `target` over one
        decision and braking one SLOWER per decision after it (braking_distance), stop less
        than min_gap short of where objects at x, vx stop when they brake at lead_dec from now
        (Shalev-Shwartz et al.'s RSS safe distance, with the meta-actions' braking)? Unlike
        IDM's desired gap, no time headway: creeping up to a standing queue, or following a
        car closer than 1.5 s, passes while braking can still stop the ego behind it. The ego's
        speed follows the target as highway-env's does (speed_lag)."""
        period = self.decision_period
        if self.speed_lag > 0:
            v1, covered = self._follow(speed, target, period)
        else:
            v1, covered = target, 0.5 * (speed + target) * period
        ego_stop = covered + self.braking_distance(v1, 0.0)
        object_stop = x + np.maximum(vx, 0.0) ** 2 / (2.0 * self.lead_dec)
        return object_stop - ego_stop < self.min_gap

    def late_to_leave(self, scene: tuple) -> bool:
        """Would the ego reach something ahead in its path before it was out of its lane, i.e.
        is one nearer than min_gap + the closing speed x lane_change_time? (A car ahead at the
        ego's speed never is.)"""
        x, vx = self.path_ahead(scene)
        return bool((x <= self.min_gap + np.maximum(scene[0] - vx, 0.0)
                     * self.lane_change_time).any())

    def way_round(self, obs: np.ndarray, scene: tuple) -> int | None:
        """The lane change round what is ahead when braking comes too late for any object in
        the path (not only the nearest: debris behind a car that will swerve round it), see
        the module docstring; or None."""
        x, vx = self.path_ahead(scene)
        room = [xi - self.min_gap - self.braking_distance(scene[0], vi)
                for xi, vi in zip(x, vx, strict=True)]
        if min(room, default=0.0) >= 0:
            return None  # braking still stops in time for everything in the path
        if self.late_to_leave(scene):
            return None
        for action, side, column in ((LANE_LEFT, +1, HAS_LEFT_LANE),
                                     (LANE_RIGHT, -1, HAS_RIGHT_LANE)):
            if obs[0, column] > 0 and not self.lane_occupied(scene, side):
                return action
        return None

    def lane_occupied(self, scene: tuple, side: int) -> bool:
        """Anything in the lane on `side` (+1 left, -1 right) within the lane-change gap?"""
        speed, xy, vxy, cls, _ = scene
        lane = self.in_path(xy, vxy, cls, side * self.lane_width)
        ahead = xy[:, 0] < self.lane_change_front + self.braking_gap(speed, speed - vxy[:, 0])
        behind = -xy[:, 0] < self.lane_change_rear + self.braking_gap(vxy[:, 0],
                                                                       vxy[:, 0] - speed)
        return bool((lane & np.where(xy[:, 0] > 0, ahead, behind)).any())

    def __call__(self, obs: np.ndarray, action: int) -> int:
        """The action to take for the policy's `action` on one object list `obs`."""
        return self.decide(obs, action)[0]

    def decide(self, obs: np.ndarray, action: int) -> tuple[int, str | None]:
        """The action to take and the rule that changed it (one of RULES), or None when the
        policy's action passes."""
        asked, scene = int(action), self.scene(obs)
        action, rule = asked, None
        if action in (LANE_LEFT, LANE_RIGHT):
            if not self.lane_occupied(scene, +1 if action == LANE_LEFT else -1):
                return (SLOWER, "late_to_leave") if self.late_to_leave(scene) else (action, None)
            action, rule = IDLE, "lane_occupied"
        for wanted, instead in ((FASTER, IDLE), (IDLE, SLOWER)):  # the sight rule
            if action == wanted and self.outruns_sight(scene[0],
                                                       self.speed_after(obs, scene[0], wanted)):
                action, rule = instead, "sight"
        if self.too_close(scene, then=self.speed_after(obs, scene[0], action)):
            if (self.least_change and action == FASTER
                    and not self.too_close(scene, then=self.speed_after(obs, scene[0], IDLE))):
                return IDLE, self._gap_rule(scene)  # the target speed kept keeps the gap
            evade = self.way_round(obs, scene)  # (LANE_LEFT is 0)
            action, rule = (SLOWER, self._gap_rule(scene)) if evade is None else \
                (evade, "way_round")
        return action, (rule if action != asked else None)

    def _gap_rule(self, scene: tuple) -> str:
        """`gap_<class>` of the nearest object in the path, `gap_cut_in` for a car cutting in."""
        x, _, index = self.path_ahead(scene, which=True)
        nearest = int(index[np.argmin(x)])
        if self.cutting_in(scene)[nearest]:
            return "gap_cut_in"
        return f"gap_{CLASSES[int(scene[3][nearest])]}"


# the rules that change a policy's action (GapShield.decide), for the shield's statistics
RULES = ("lane_occupied", "late_to_leave", "sight", "way_round", "gap_cut_in",
         *(f"gap_{c}" for c in CLASSES))


class ShieldedPolicy:
    """An agents.evaluation.Policy whose actions go through `shield` (one env); counts the
    actions it changed in the current episode (`interventions`), marks the last one, and counts
    the rules that changed them over every episode (`rule_counts`, RULES)."""

    def __init__(self, policy, shield: GapShield):
        self.policy, self.shield = policy, shield
        self.interventions, self.last_changed = 0, False
        self.rule_counts = dict.fromkeys(RULES, 0)

    def reset(self, env, seed: int | None) -> None:
        self.interventions, self.last_changed = 0, False
        self.policy.reset(env, seed)

    def act(self, obs: np.ndarray, env) -> np.ndarray:
        wanted = np.asarray(self.policy.act(obs, env)).reshape(-1)
        decided = [self.shield.decide(o, a) for o, a in zip(obs, wanted, strict=True)]
        taken = np.array([action for action, _ in decided])
        for _, rule in decided:
            if rule is not None:
                self.rule_counts[rule] += 1
        self.last_changed = bool((taken != wanted).any())
        self.interventions += int(self.last_changed)
        return taken


class ShieldVecEnv(VecEnvWrapper):
    """The shield inside a vector env of object lists (training): each action goes through
    `shield` on the observation the policy was given for it; `info["shield_changed"]` says
    whether the shield replaced it. SB3 stores the policy's own action, and the reward is what
    the action taken earned."""

    def __init__(self, venv: VecEnv, shield: GapShield):
        super().__init__(venv)
        self.shield = shield
        self._obs: np.ndarray | None = None
        self._changed = np.zeros(venv.num_envs, bool)

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        wanted = np.asarray(actions).reshape(-1)
        taken = np.array([self.shield(o, a) for o, a in zip(self._obs, wanted, strict=True)])
        self._changed = taken != wanted
        self.venv.step_async(taken.astype(np.asarray(actions).dtype).reshape(np.shape(actions)))

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info, changed in zip(infos, self._changed, strict=True):
            info["shield_changed"] = bool(changed)
        self._obs = obs  # a finished episode's slot already holds the next one's first list
        return obs, rewards, dones, infos


def sight_range(run_cfg: DictConfig, layout: ObjectListLayout) -> float:
    """How far ahead [m] the run's object list (`layout`) can show anything: its max_range,
    for a camera-scoped list from the bev camera (world-aligned, the ego heading along +x) no
    farther than its view ahead, width (1 - centering[0]) / scaling. A pinhole camera's list
    is bounded by max_range only."""
    camera = run_cfg.get("camera") or {}
    reach = float(layout.max_range)
    if run_cfg.observation.get("scope", "camera") == "camera" and str(
            camera.get("_target_", "")).endswith("BevCamera"):
        reach = min(reach, camera.width * (1.0 - camera.centering[0]) / camera.scaling)
    return reach


def build_shield(shield_cfg: DictConfig | None, run_cfg: DictConfig) -> GapShield | None:
    """The shield of `shield_cfg` (conf/shield/; None or `enabled: false`: none) for the
    object list of the run configured by `run_cfg`; lane_width null: the env's; sight_range
    null: `sight_range(run_cfg, layout)`."""
    from agents.build import OBJECT_LISTS

    if shield_cfg is None or not shield_cfg.get("enabled", True):
        return None
    if run_cfg.observation.name not in OBJECT_LISTS:
        raise ConfigError(f"shield: it reads the object list, and observation="
                          f"{run_cfg.observation.name} has none; use it with "
                          f"observation={' or '.join(OBJECT_LISTS)} policies")
    env = run_cfg.env.get("config", {})
    lane_width = shield_cfg.lane_width or env.get("lane_width") or 4.0
    period = shield_cfg.get("decision_period")
    speeds = shield_cfg.get("target_speeds")
    sight = shield_cfg.get("sight_range")
    layout = instantiate(run_cfg.observation.layout)
    return instantiate(shield_cfg, layout=layout,
                       sight_range=float(sight_range(run_cfg, layout) if sight is None else sight),
                       lane_width=float(lane_width),
                       decision_period=float(1.0 / env.get("policy_frequency", 1)
                                             if period is None else period),
                       target_speeds=tuple(float(v) for v in (
                           speeds or env.get("action", {}).get("target_speeds")
                           or HIGHWAY_TARGET_SPEEDS)))
