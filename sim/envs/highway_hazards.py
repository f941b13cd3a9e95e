"""highway-hazards-v0: highway-fast-v0's traffic plus debris, cones and stalled cars in lanes."""

from __future__ import annotations

from highway_env import utils
from highway_env.envs.highway_env import HighwayEnvFast
from highway_env.road.road import RoadNetwork
from highway_env.vehicle.kinematics import Vehicle

from sim.envs.populate import add_obstacles, add_traffic, np_rng, style_ego
from sim.envs.rewards import RoadsightRewardsMixin
from sim.road import SimRoad


class HighwayHazardsEnv(RoadsightRewardsMixin, HighwayEnvFast):
    """highway-fast-v0 with `obstacles_count` static hazards ahead of the ego.

    Reward terms are highway-env's (`collision_reward`, `right_lane_reward`, `high_speed_reward`,
    `on_road_reward`), combined and normalised as highway-env does; `info["crashed_into"]` tells a
    crash into an obstacle from one into a vehicle.
    """

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        utils.update_config(
            config,
            {
                # down to a standstill: highway-fast-v0's 20-30 m/s leave a driver no way to
                # stop behind traffic queued at debris
                "action": {
                    "type": "DiscreteMetaAction",
                    "target_speeds": [0, 5, 10, 15, 20, 25, 30],  # [m/s]
                },
                "other_vehicles_type": "sim.vehicles.ObstacleAwareIDMVehicle",
                "obstacles_count": 6,
                "obstacles_range": [60.0, 700.0],  # [m] ahead of the ego's start
            },
        )
        return config

    _reward = HighwayEnvFast._reward  # highway-env's normalised reward over its named terms

    def _create_road(self) -> None:
        self.road = SimRoad(
            network=RoadNetwork.straight_road_network(self.config["lanes_count"], speed_limit=30),
            np_random=self.np_random,
            record_history=self.config["show_trajectories"],
        )

    def _create_vehicles(self) -> None:
        rng = np_rng(self)
        other_type = utils.class_from_path(self.config["other_vehicles_type"])
        lane_id = self.config["initial_lane_id"]
        start = Vehicle.create_random(
            self.road, speed=25.0, lane_id=lane_id, spacing=self.config["ego_spacing"]
        )
        ego = self.action_type.vehicle_class(self.road, start.position, start.heading, start.speed)
        style_ego(ego)
        self.controlled_vehicles = [ego]
        self.road.vehicles.append(ego)
        add_traffic(
            self.road,
            other_type,
            self.config["vehicles_count"],
            rng,
            spacing=1 / self.config["vehicles_density"],
        )
        for vehicle in self.road.vehicles:
            if vehicle is not ego:
                vehicle.check_collisions = False
        lo, hi = self.config["obstacles_range"]
        x0 = ego.position[0]
        lanes = self.road.network.lanes_list()
        lane_ids = [("0", "1", i) for i in range(len(lanes))]
        add_obstacles(self.road, rng, self.config["obstacles_count"], (x0 + lo, x0 + hi), lane_ids)
