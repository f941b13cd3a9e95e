"""Traffic that gets past static obstacles."""

from __future__ import annotations

import numpy as np
from highway_env.vehicle.behavior import IDMVehicle

from sim.objects import StaticObstacle


class ObstacleAwareIDMVehicle(IDMVehicle):
    """highway-env's IDM/MOBIL vehicle that also changes lane when stopped behind an obstacle.

    highway-env's MOBIL only considers lane changes while moving (speed >= 1 m/s), so a car that
    stopped behind debris would wait there forever and jam the lane. And while it changes lane,
    IDM's braking for the obstacle in the lane it leaves is relaxed to a creep, else it never moves.

    It never drives backwards (highway-env's `MIN_SPEED` is -40 m/s, so IDM braking hard for
    someone stepping out would reverse it), and keeps IDM's jam distance between bumpers whatever
    the two vehicles' lengths (highway-env's is centre to centre, sized for 5 m cars: a truck
    behind a truck would stop touching it).
    """

    BLOCKED_DISTANCE = 20.0  # [m] centre to centre, to a static obstacle ahead in the lane

    CREEP_ACC = 1.5  # [m/s2] at most, while leaving a lane blocked by an obstacle
    CREEP_GAP = 2.0  # [m] bumper to obstacle, below which it brakes as IDM says
    JAM_GAP = IDMVehicle.DISTANCE_WANTED - IDMVehicle.LENGTH  # [m] bumper to bumper, standing

    def desired_gap(self, ego_vehicle, front_vehicle=None, projected: bool = True) -> float:
        """IDM's desired centre-to-centre distance, with the jam gap between bumpers."""
        gap = super().desired_gap(ego_vehicle, front_vehicle, projected)
        lengths = (ego_vehicle.LENGTH + front_vehicle.LENGTH) / 2
        return gap - self.DISTANCE_WANTED + self.JAM_GAP + lengths

    def act(self, action=None) -> None:
        super().act(action)
        if self.crashed or self.lane_index == self.target_lane_index:
            return
        front, _ = self.road.neighbour_vehicles(self, self.lane_index)
        if not isinstance(front, StaticObstacle):
            return
        gap = self.lane_distance_to(front) - (self.LENGTH + front.LENGTH) / 2
        if gap > self.CREEP_GAP:
            ahead, behind = self.road.neighbour_vehicles(self, self.target_lane_index)
            target_acc = self.acceleration(self, ahead, behind)
            self.action["acceleration"] = float(np.clip(target_acc, -self.ACC_MAX, self.CREEP_ACC))

    def step(self, dt: float) -> None:
        super().step(dt)
        self.speed = max(self.speed, 0.0)  # brakes stop a car, they do not reverse it

    def change_lane_policy(self) -> None:
        super().change_lane_policy()
        if self.lane_index != self.target_lane_index or abs(self.speed) >= 1:
            return
        front, _ = self.road.neighbour_vehicles(self, self.lane_index)
        blocked = isinstance(front, StaticObstacle) and (
            self.lane_distance_to(front) < self.BLOCKED_DISTANCE
        )
        if not blocked:
            return
        for lane_index in self.road.network.side_lanes(self.lane_index):
            lane = self.road.network.get_lane(lane_index)
            if lane.is_reachable_from(self.position) and self.mobil(lane_index):
                self.target_lane_index = lane_index
                return
