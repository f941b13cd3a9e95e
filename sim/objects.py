"""Road objects roadsight adds to highway-env: pedestrians with a walking model, static obstacles.

Both live in `road.objects`, so highway-env's IDM traffic sees them in `Road.neighbour_vehicles`
and brakes for them, and the ego collides with them through highway-env's own collision check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import Obstacle, RoadObject

from sim.appearance import Style, apply_style


@dataclass
class CrossingPlan:
    """Where and how one pedestrian crosses a straight road that runs along world x.

    The road surface spans y in [road_y[0], road_y[1]]; sidewalks of `sidewalk_width` lie outside.
    """

    cross_x: float  # [m] where to cross
    from_side: int  # -1: start on the y < road_y[0] side; +1: start on the y > road_y[1] side
    road_y: tuple[float, float]  # [m]
    sidewalk_width: float  # [m]
    on_crosswalk: bool  # False: jaywalking


class Pedestrian(RoadObject):
    """A pedestrian that walks to a crossing point, waits for a gap, crosses and leaves.

    States: walk (along the sidewalk) -> wait (at the kerb) -> cross -> leave (off the road),
    then `done` so the env removes it. Speeds are drawn in [1.0, 1.8] m/s.
    """

    MIN_WAIT_OFFSET = 1.2  # [m] from the kerb: outside IDM's on-lane margin (1 m), so waiting
    # people do not stop cars
    LEAVE_DISTANCE = 2.0  # [m] beyond the sidewalk's outer edge, then gone
    CLEAR_AHEAD = 3.0  # [m] from a front bumper to my crossing line, even for a stopped car
    CLEAR_BEHIND = 1.0  # [m] from a rear bumper to my crossing line
    CLEAR_SIDE = 0.3  # [m] kept from a vehicle's side or bumper while crossing

    def __init__(
        self,
        road,
        position,
        style: Style,
        plan: CrossingPlan,
        walk_speed: float,
        gap_time: float,
        patience: float,
        wait_offset: float = MIN_WAIT_OFFSET,
    ):
        super().__init__(road, position, heading=0.0, speed=0.0)
        apply_style(self, style)
        self.plan = plan
        self.walk_speed = walk_speed  # [m/s]
        self.gap_time = gap_time  # [s] accepted time gap to approaching vehicles
        self.patience = patience  # [s] after this wait, a 60 % shorter gap is enough
        self.wait_offset = max(wait_offset, self.MIN_WAIT_OFFSET)  # [m] from the kerb
        self.state = "walk"
        self.waited = 0.0  # [s]
        self.done = False

    # -- geometry of the plan ------------------------------------------------------------
    def _kerb_y(self, side: int) -> float:
        return self.plan.road_y[0] if side < 0 else self.plan.road_y[1]

    def _wait_y(self) -> float:
        return self._kerb_y(self.plan.from_side) + self.plan.from_side * self.wait_offset

    @property
    def on_roadway(self) -> bool:
        """Is the pedestrian on the road surface (between the kerbs)?"""
        return self.plan.road_y[0] <= self.position[1] <= self.plan.road_y[1]

    def _gap_accepted(self) -> bool:
        """May I step off the kerb: is no vehicle on or near my crossing line, and can each one
        approaching stop before it (driver's reaction and comfortable braking) and is it at
        least my accepted time gap away? Impatience shortens the time gap, never the rest."""
        gap = self.gap_time if self.waited < self.patience else 0.4 * self.gap_time
        x_lo, x_hi = _extent(self, 0) - self.position[0] + self.plan.cross_x  # on my line
        for v in self.road.vehicles:
            rear, front = _extent(v, 0)
            if rear - self.CLEAR_BEHIND < x_hi and x_lo < front + self.CLEAR_AHEAD:
                return False  # on my crossing line, or about to be: stopped or not
            dist = x_lo - front  # [m] from its front bumper to my crossing line
            speed = max(float(v.speed), 0.0)
            if dist > 0 and (dist < stopping_distance(speed) or dist < max(speed, 0.1) * gap):
                return False
        return True

    def _blocked_by(self, position: np.ndarray):
        """The vehicle whose box (plus `CLEAR_SIDE`) my box would overlap at `position`."""
        offset = position - self.position
        (x_lo, x_hi), (y_lo, y_hi) = (_extent(self, axis) + offset[axis] for axis in (0, 1))
        for v in self.road.vehicles:
            (vx_lo, vx_hi), (vy_lo, vy_hi) = (_extent(v, axis) for axis in (0, 1))
            m = self.CLEAR_SIDE
            if vx_lo - m < x_hi and x_lo < vx_hi + m and vy_lo - m < y_hi and y_lo < vy_hi + m:
                return v
        return None

    def _move(self, direction: np.ndarray, dt: float) -> None:
        self.heading = float(np.arctan2(direction[1], direction[0]))
        self.speed = self.walk_speed
        self.position = self.position + self.walk_speed * dt * direction

    def step(self, dt: float) -> None:
        """Advance the walking model by `dt` seconds."""
        if self.crashed or self.done:
            self.speed = 0.0
            return
        side = self.plan.from_side
        if self.state == "walk":
            target = np.array([self.plan.cross_x, self._wait_y()])
            delta = target - self.position
            dist = float(np.linalg.norm(delta))
            if dist <= self.walk_speed * dt:
                self.position = target
                self.state, self.speed = "wait", 0.0
                self.heading = float(-side * np.pi / 2)  # facing the road
            else:
                self._move(delta / dist, dt)
        elif self.state == "wait":
            self.waited += dt
            self.speed = 0.0
            if self._gap_accepted():
                self.state = "cross"
        elif self.state == "cross":
            ahead = np.array([0.0, -float(side)])
            blocker = self._blocked_by(self.position + self.walk_speed * dt * ahead)
            if blocker is not None:
                # a car stands (or rolls) in my way: walk along it, around its nearer end
                along = 1.0 if self.position[0] >= blocker.position[0] else -1.0
                self._move(np.array([along, 0.0]), dt)
            else:
                self._move(ahead, dt)
            if -side * (self.position[1] - self._kerb_y(-side)) > 0.3:
                self.state = "leave"
        elif self.state == "leave":
            self._move(np.array([0.0, -float(side)]), dt)
            outer = self._kerb_y(-side) - side * (self.plan.sidewalk_width + self.LEAVE_DISTANCE)
            if -side * (self.position[1] - outer) > 0:
                self.done = True

    def to_dict(self, origin_vehicle=None, observe_intentions=True):
        d = super().to_dict(origin_vehicle, observe_intentions)
        vx, vy = self.velocity
        if origin_vehicle:
            ovx, ovy = origin_vehicle.velocity
            vx, vy = vx - ovx, vy - ovy
        d["vx"], d["vy"] = vx, vy
        return d


class StaticObstacle(Obstacle):
    """A static obstacle: cone, debris or stalled car (`style.kind`)."""

    def __init__(self, road, position, style: Style, heading: float = 0.0, outline=None):
        super().__init__(road, position, heading=heading, speed=0.0)
        apply_style(self, style)
        # debris is drawn as an irregular polygon: corner offsets in the object's own frame [m]
        self.outline = outline


def _extent(obj, axis: int) -> np.ndarray:
    """[m] (lo, hi) of `obj`'s box along world x (axis 0) or y (axis 1)."""
    c, s = abs(np.cos(obj.heading)), abs(np.sin(obj.heading))
    if axis == 1:
        c, s = s, c
    half = (c * obj.LENGTH + s * obj.WIDTH) / 2
    return np.array([obj.position[axis] - half, obj.position[axis] + half])


def stopping_distance(speed: float, reaction: float = 1.0, braking: float = 5.0) -> float:
    """[m] a driver covers before standing still: `reaction` [s], then `braking` [m/s2]."""
    return speed * reaction + speed**2 / (2 * braking)


def debris_outline(rng: np.random.Generator, length: float, width: float) -> np.ndarray:
    """An irregular convex-ish polygon (N, 2) [m] that touches its length x width box."""
    n = int(rng.integers(6, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.6, 1.0, n)
    pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    pts /= (pts.max(0) - pts.min(0)) / np.array([length, width])
    return pts


def object_class(obj) -> str | None:
    """The detection class of a road object, or None for things that are not labelled."""
    style = getattr(obj, "roadsight_style", None)
    if style is not None:
        return None if style.cls == "ego" else style.cls
    if isinstance(obj, Pedestrian):
        return "pedestrian"
    if isinstance(obj, Obstacle):
        return "obstacle"
    return "vehicle" if isinstance(obj, Vehicle) else None
