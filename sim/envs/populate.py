"""Populating roadsight scenes: styled traffic, static obstacles, pedestrians (straight roads)."""

from __future__ import annotations

import numpy as np
from highway_env.road.road import Road
from highway_env.vehicle.kinematics import Vehicle

from sim.appearance import apply_style, ego_style, obstacle_style, pedestrian_style, vehicle_style
from sim.objects import CrossingPlan, Pedestrian, StaticObstacle, debris_outline

MIN_GAP = 2.0  # [m] bumper to bumper between spawned vehicles in one lane


def np_rng(env) -> np.random.Generator:
    """A numpy Generator derived from the env's seeded `np_random` (one stream per scene)."""
    return np.random.default_rng(int(env.np_random.integers(2**63 - 1)))


def add_traffic(road: Road, vehicle_type, count: int, rng: np.random.Generator, spacing=1.0):
    """Add `count` IDM vehicles of random kinds (car, van, truck) and colours, ahead in x."""
    for _ in range(count):
        vehicle = vehicle_type.create_random(road, spacing=spacing)
        vehicle.randomize_behavior()
        apply_style(vehicle, vehicle_style(rng))
        road.vehicles.append(vehicle)
    spread_out(road.vehicles)


def style_ego(ego: Vehicle) -> None:
    apply_style(ego, ego_style(), resize=False)


def spread_out(vehicles: list[Vehicle]) -> None:
    """Push vehicles forward along x until each lane keeps MIN_GAP between its bumpers.

    Styling changes lengths after highway-env placed the vehicles for 5 m cars; a 10 m truck
    would otherwise spawn inside its neighbour.
    """
    last_in_lane: dict = {}
    for v in sorted(vehicles, key=lambda v: v.position[0]):
        prev = last_in_lane.get(v.lane_index)
        if prev is not None:
            need = (prev.LENGTH + v.LENGTH) / 2 + MIN_GAP
            gap = v.position[0] - prev.position[0]
            if gap < need:
                v.position = v.position + np.array([need - gap, 0.0])
        last_in_lane[v.lane_index] = v


def add_obstacles(
    road: Road,
    rng: np.random.Generator,
    count: int,
    x_range: tuple[float, float],
    lane_ids: list[tuple],
    clearance: float = 25.0,
) -> list[StaticObstacle]:
    """Place `count` static obstacles in lanes, away from vehicles by `clearance` [m] along x."""
    placed: list[StaticObstacle] = []
    for _ in range(count * 10):
        if len(placed) == count:
            break
        lane = road.network.get_lane(lane_ids[rng.integers(len(lane_ids))])
        x = float(rng.uniform(*x_range))
        if any(abs(v.position[0] - x) < clearance and v.lane is lane for v in road.vehicles):
            continue
        if any(abs(o.position[0] - x) < 15.0 for o in placed):
            continue
        style = obstacle_style(rng)
        # within 0.5 m of the lane centre: IDM (margin 1 m) must not see it from the next lane
        lateral = float(rng.uniform(-0.5, 0.5))
        heading = lane.heading_at(x) + float(rng.uniform(-0.35, 0.35))
        outline = debris_outline(rng, style.length, style.width) if style.kind == "debris" else None
        obstacle = StaticObstacle(road, lane.position(x, lateral), style, heading, outline)
        placed.append(obstacle)
    road.objects.extend(placed)
    return placed


def spawn_pedestrian(
    road: Road,
    rng: np.random.Generator,
    x_range: tuple[float, float],
    crosswalks_x: list[float],
    road_y: tuple[float, float],
    sidewalk_width: float,
    jaywalk_rate: float,
    crosswalk_width: float,
) -> Pedestrian:
    """A new pedestrian on a sidewalk who will cross at a crosswalk (or jaywalk) in `x_range`."""
    lo, hi = x_range
    inside = [x for x in crosswalks_x if lo <= x <= hi]
    on_crosswalk = bool(inside) and rng.random() >= jaywalk_rate
    if on_crosswalk:
        cross_x = float(inside[rng.integers(len(inside))])
        cross_x += float(rng.uniform(-0.35, 0.35)) * crosswalk_width
    else:
        cross_x = float(rng.uniform(lo, hi))
    side = int(rng.choice([-1, 1]))
    plan = CrossingPlan(cross_x, side, road_y, sidewalk_width, on_crosswalk)
    kerb = road_y[0] if side < 0 else road_y[1]
    y = kerb + side * float(rng.uniform(0.8, sidewalk_width - 0.4))
    x = cross_x + float(rng.choice([-1, 1])) * float(rng.uniform(2.0, 25.0))
    return Pedestrian(
        road,
        np.array([x, y]),
        pedestrian_style(rng),
        plan,
        walk_speed=float(rng.uniform(1.0, 1.8)),
        gap_time=float(rng.uniform(2.5, 5.0)),
        patience=float(rng.uniform(4.0, 15.0)),
        wait_offset=float(rng.uniform(Pedestrian.MIN_WAIT_OFFSET, min(2.4, sidewalk_width - 0.4))),
    )
