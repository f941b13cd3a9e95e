"""A highway-env Road that also moves pedestrians and remembers what each vehicle crashed into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.road.lane import StraightLane
from highway_env.road.road import Road
from highway_env.vehicle.objects import Landmark

from sim.fault import Body, at_fault
from sim.objects import Pedestrian, object_class

RGB = tuple[int, int, int]


@dataclass
class GroundPatch:
    """A flat painted area of the scene in world metres: sidewalk, verge or crosswalk.

    Cameras draw patches under the lane markings (sidewalk, verge) or over them (crosswalk).
    """

    kind: str  # sidewalk | verge | crosswalk
    polygon: np.ndarray  # (N, 2) world [m]
    color: RGB
    stripes: list[np.ndarray] = field(default_factory=list)  # (4, 2) polygons painted on top


def _heading_for(obj):
    """The lane a vehicle drives in or is changing into (None for other road objects)."""
    return getattr(obj, "target_lane_index", None) or getattr(obj, "lane_index", None)


class SimRoad(Road):
    """Road whose step also advances `Pedestrian`s and records `crashed_into` per vehicle.

    `crashed_into[id(vehicle)]` is the class of the first thing that vehicle hit
    (vehicle | pedestrian | obstacle), `at_fault[id(vehicle)]` whether that vehicle caused that
    collision (`sim.fault.at_fault`, judged from both bodies at the moment of contact).
    """

    def __init__(self, *args, patches: list[GroundPatch] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.patches = patches or []
        self.crashed_into: dict[int, str] = {}
        self.at_fault: dict[int, bool] = {}
        self.clock = 0.0  # [s] simulated time
        self._lane_since: dict[int, tuple] = {}  # id -> (lane it heads for, since when [s])

    def step(self, dt: float) -> None:
        for vehicle in self.vehicles:
            vehicle.step(dt)
        self.clock += dt
        for vehicle in self.vehicles:
            # first seen: in its lane since ever; a lane change decided before it counts from now
            lane, _ = self._lane_since.setdefault(id(vehicle), (vehicle.lane_index, -np.inf))
            if lane != _heading_for(vehicle):
                self._lane_since[id(vehicle)] = (_heading_for(vehicle), self.clock)
        for obj in self.objects:
            if isinstance(obj, Pedestrian):
                obj.step(dt)
        for i, vehicle in enumerate(self.vehicles):
            for other in self.vehicles[i + 1 :]:
                self._collide(vehicle, other, dt)
            for other in self.objects:
                self._collide(vehicle, other, dt)
        self.drop_done()

    def neighbour_vehicles(self, vehicle, lane_index=None):
        """highway-env's `Road.neighbour_vehicles` (the nearest road object ahead and behind
        `vehicle` on a lane), with the same answer, for a straight lane as one numpy pass over
        all objects instead of a Python loop: IDM and MOBIL ask it several times per vehicle and
        physics step, which made it half of highway_hazards' simulation time. Other lanes, and
        `neighbour_vehicles_connected_lanes`, go to highway-env's loop."""
        lane_index = lane_index or vehicle.lane_index
        if not lane_index:
            return None, None
        lane = self.network.get_lane(lane_index)
        if type(lane) is not StraightLane or self.neighbour_vehicles_connected_lanes:
            return super().neighbour_vehicles(vehicle, lane_index)
        others = [v for v in self.vehicles + self.objects
                  if v is not vehicle and not isinstance(v, Landmark)]
        if not others:
            return None, None
        s = lane.local_coordinates(vehicle.position)[0]
        delta = np.array([v.position for v in others]) - lane.start
        # elementwise, not a matrix product: the same float64 rounding as highway-env's np.dot
        s_v = delta[:, 0] * lane.direction[0] + delta[:, 1] * lane.direction[1]
        lat_v = delta[:, 0] * lane.direction_lateral[0] + delta[:, 1] * lane.direction_lateral[1]
        on = ((np.abs(lat_v) <= lane.width / 2 + 1)  # AbstractLane.on_lane(margin=1)
              & (-lane.VEHICLE_LENGTH <= s_v) & (s_v < lane.length + lane.VEHICLE_LENGTH))
        front = np.flatnonzero(on & (s_v >= s))
        rear = np.flatnonzero(on & (s_v < s))
        v_front = v_rear = None
        if len(front):  # highway-env keeps the last of equally near ones ahead, the first behind
            nearest = front[s_v[front] == s_v[front].min()]
            v_front = others[nearest[-1]]
        if len(rear):
            v_rear = others[rear[np.argmax(s_v[rear])]]
        return v_front, v_rear

    def drop_done(self) -> None:
        """Remove road objects that have left the scene (`done`, e.g. pedestrians gone home)."""
        self.objects = [o for o in self.objects if not getattr(o, "done", False)]

    def _collide(self, vehicle, other, dt: float) -> None:
        # highway-env crashes a vehicle either now (overlap) or at its next step (a predicted
        # overlap leaves an `impact`): both name the partner.
        if not (vehicle.check_collisions or other.check_collisions):
            return
        # cheap bound before highway-env's own test: |dx| or |dy| beyond it means no contact
        reach = (vehicle.diagonal + other.diagonal) / 2 + (
            abs(vehicle.speed) + abs(other.speed)
        ) * dt
        delta = other.position - vehicle.position
        if abs(delta[0]) > reach or abs(delta[1]) > reach:
            return
        before = [(o, o.crashed, getattr(o, "impact", None)) for o in (vehicle, other)]
        bodies = (Body.of(vehicle), Body.of(other))  # the state at contact, before any impact
        vehicle.handle_collisions(other, dt)
        for (obj, crashed, impact), partner, me, them in zip(
            before, (other, vehicle), bodies, bodies[::-1], strict=True
        ):
            hit = (obj.crashed and not crashed) or getattr(obj, "impact", None) is not impact
            if hit and id(obj) not in self.crashed_into:
                self.crashed_into[id(obj)] = object_class(partner) or "vehicle"
                self.at_fault[id(obj)] = at_fault(
                    me, them, self.in_lane(obj, _heading_for(partner)), self.in_lane(partner)
                )

    def in_lane(self, obj, lane=None) -> float:
        """[s] since `obj` headed for its lane (`lane`, if given; inf: since the start, or never,
        or not a vehicle)."""
        heading_for, since = self._lane_since.get(id(obj), (None, -np.inf))
        if lane is not None and heading_for != lane:
            return np.inf
        return self.clock - since
