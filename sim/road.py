"""A highway-env Road that also moves pedestrians and remembers what each vehicle crashed into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.road.road import Road

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


class SimRoad(Road):
    """Road whose step also advances `Pedestrian`s and records `crashed_into` per vehicle.

    `crashed_into[id(vehicle)]` is the class of the first thing that vehicle hit
    (vehicle | pedestrian | obstacle).
    """

    def __init__(self, *args, patches: list[GroundPatch] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.patches = patches or []
        self.crashed_into: dict[int, str] = {}

    def step(self, dt: float) -> None:
        for vehicle in self.vehicles:
            vehicle.step(dt)
        for obj in self.objects:
            if isinstance(obj, Pedestrian):
                obj.step(dt)
        for i, vehicle in enumerate(self.vehicles):
            for other in self.vehicles[i + 1 :]:
                self._collide(vehicle, other, dt)
            for other in self.objects:
                self._collide(vehicle, other, dt)
        self.drop_done()

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
        vehicle.handle_collisions(other, dt)
        for (obj, crashed, impact), partner in zip(before, (other, vehicle), strict=True):
            hit = (obj.crashed and not crashed) or getattr(obj, "impact", None) is not impact
            if hit:
                self.crashed_into.setdefault(id(obj), object_class(partner) or "vehicle")
