"""Ground truth shared by every camera: track ids, styles, and ego-frame kinematics."""

from __future__ import annotations

import numpy as np
from highway_env.vehicle.objects import Landmark

from sim.appearance import (
    Style,
    apply_style,
    ego_style,
    obstacle_style,
    pedestrian_style,
    vehicle_style,
)
from sim.objects import object_class
from sim.types import EgoState, ObjectTruth


class SceneRegistry:
    """Stable track ids and styles for the objects of one episode.

    roadsight's envs style their objects when they create them; objects of stock highway-env
    scenes are styled here, on first sight, from this registry's own seeded generator (so the
    simulation's random stream is never touched). Call `reset(seed)` at every env reset.
    """

    def __init__(self, seed: int | None = None):
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self._ids: dict[int, tuple[object, int]] = {}  # id(obj) -> (obj kept alive, track id)

    def track_id(self, obj) -> int:
        entry = self._ids.get(id(obj))
        if entry is None:
            entry = (obj, len(self._ids) + 1)
            self._ids[id(obj)] = entry
        return entry[1]

    def style(self, obj) -> Style:
        style = getattr(obj, "roadsight_style", None)
        if style is None:
            cls = object_class(obj)
            if cls == "pedestrian":
                style = pedestrian_style(self._rng)
            elif cls == "obstacle":
                style = obstacle_style(self._rng, kind="debris")
            else:
                style = vehicle_style(self._rng, kind="car")
            # keep the simulator's collision box: only the look changes
            style.length, style.width = float(obj.LENGTH), float(obj.WIDTH)
            apply_style(obj, style, resize=False)
        return style


def scene_objects(env) -> list:
    """Every road object a camera may label or draw: vehicles (ego included) then road objects.

    Controlled vehicles of stock highway-env scenes get the ego's look here, on first sight.
    """
    road = env.unwrapped.road
    for ego in env.unwrapped.controlled_vehicles:
        if getattr(ego, "roadsight_style", None) is None:
            apply_style(ego, ego_style(), resize=False)
    return [v for v in road.vehicles] + [o for o in road.objects if not isinstance(o, Landmark)]


def ego_rotation(ego) -> np.ndarray:
    """(2, 2) rotation taking world vectors into the ego frame (x forward, y left).

    highway-env's world has y to the right of travel, so the ego frame's y is the negated
    second coordinate after rotating by -heading.
    """
    c, s = np.cos(ego.heading), np.sin(ego.heading)
    return np.array([[c, s], [s, -c]])


def ego_frame_state(ego, obj) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Position [m], velocity relative to the ego [m/s] and heading [rad], in the ego frame."""
    rot = ego_rotation(ego)
    xy = rot @ (np.asarray(obj.position, float) - ego.position)
    vxy = rot @ (np.asarray(obj.velocity, float) - ego.velocity)
    heading = wrap_angle(-(obj.heading - ego.heading))
    return (float(xy[0]), float(xy[1])), (float(vxy[0]), float(vxy[1])), heading


def wrap_angle(angle: float) -> float:
    """`angle` [rad] wrapped to [-pi, pi)."""
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def odometry(vehicle) -> EgoState:
    """A vehicle's own odometry: speed, pose relative to its current lane, world pose.

    highway-env's lanes measure the lateral coordinate and headings with y to the right of
    travel; both are negated here into the ego frame's convention (y left, counter-clockwise).
    """
    lane = vehicle.lane
    longitudinal, lateral = lane.local_coordinates(vehicle.position)
    _from, _to, index = vehicle.lane_index
    lanes = len(vehicle.road.network.graph[_from][_to]) if vehicle.road is not None else 1
    return EgoState(
        speed=float(vehicle.speed),
        heading_to_lane=wrap_angle(-(vehicle.heading - lane.heading_at(longitudinal))),
        lateral_offset=-float(lateral),
        world_xy=(float(vehicle.position[0]), float(vehicle.position[1])),
        world_heading=float(vehicle.heading),
        lane_index=int(index),
        target_speed=float(getattr(vehicle, "target_speed", vehicle.speed)),
        lanes_left=int(index),  # highway-env numbers a road's lanes from the left
        lanes_right=int(lanes - 1 - index),
    )


def ego_state(env) -> EgoState:
    """The controlled vehicle's odometry (`odometry(env.unwrapped.vehicle)`)."""
    return odometry(env.unwrapped.vehicle)


def objects_within(
    env, max_range: float, registry: SceneRegistry | None = None
) -> list[ObjectTruth]:
    """Every labelled scene object within `max_range` [m] of the ego, whatever a camera sees.

    Records carry no image box (`box_xyxy` zeros, `visible` 1); `ego_vxy` is relative to the
    ego, as in a camera's ObjectTruth. Track ids come from `registry` when given, else -1.
    """
    ego = env.unwrapped.vehicle
    out = []
    for obj in scene_objects(env):
        cls = object_class(obj)
        if cls is None:  # the ego (styled as such) and unlabelled objects
            continue
        xy, vxy, heading = ego_frame_state(ego, obj)
        if np.hypot(*xy) > max_range:
            continue
        style = getattr(obj, "roadsight_style", None)
        out.append(
            ObjectTruth(
                track_id=registry.track_id(obj) if registry is not None else -1,
                cls=cls,
                box_xyxy=(0.0, 0.0, 0.0, 0.0),
                visible=1.0,
                truncated=False,
                ego_xy=xy,
                ego_vxy=vxy,
                heading=heading,
                size_lw=(float(obj.LENGTH), float(obj.WIDTH)),
                kind=style.kind if style is not None else "",
            )
        )
    return out
