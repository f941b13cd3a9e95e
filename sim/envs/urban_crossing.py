"""urban-crossing-v0: a two-lane urban street with crosswalks, pedestrians, obstacles, traffic."""

from __future__ import annotations

import numpy as np
from highway_env import utils
from highway_env.envs.common.abstract import AbstractEnv
from highway_env.road.lane import LineType, StraightLane
from highway_env.road.road import RoadNetwork

from sim.envs.populate import add_obstacles, add_traffic, np_rng, spawn_pedestrian, style_ego
from sim.envs.rewards import RoadsightRewardsMixin
from sim.objects import Pedestrian
from sim.road import GroundPatch, SimRoad

SIDEWALK_COLOR = (150, 150, 145)
VERGE_COLOR = (80, 110, 70)
ZEBRA_COLOR = (235, 235, 235)


class UrbanCrossingEnv(RoadsightRewardsMixin, AbstractEnv):
    """Drive along a street at about 50 km/h; yield to pedestrians at crosswalks.

    Reward terms (`info["rewards"]`, weighted by `<term>_reward` in the config): `progress`
    (forward speed up to the limit, 0..1), `speeding` (fraction over the limit), `collision`
    (vehicle or obstacle), `pedestrian_collision`, `crosswalk_violation` (the ego passed a crosswalk
    while a pedestrian was crossing on it), `on_road`.
    """

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        utils.update_config(
            config,
            {
                "observation": {"type": "Kinematics", "vehicles_count": 10},
                "action": {"type": "DiscreteMetaAction", "target_speeds": [0, 4, 8, 11, 14]},
                "simulation_frequency": 10,  # [Hz]
                "policy_frequency": 2,  # [Hz]
                "duration": 40,  # [s]
                "lanes_count": 2,
                "lane_width": 3.5,  # [m]
                "road_length": 700.0,  # [m]
                "speed_limit": 13.9,  # [m/s] (50 km/h)
                "other_vehicles_type": "sim.vehicles.ObstacleAwareIDMVehicle",
                "vehicles_count": 10,
                "vehicles_density": 1.0,
                "crosswalk_spacing": [50.0, 110.0],  # [m] between crosswalks
                "crosswalk_width": 4.0,  # [m]
                "sidewalk_width": 3.0,  # [m]
                "pedestrians_count": 8,  # pedestrians kept around the ego
                "jaywalk_rate": 0.15,  # fraction crossing away from a crosswalk
                "obstacles_count": 5,
                "obstacles_range": [25.0, 250.0],  # [m] ahead of the ego's start
                "ego_start_x": 30.0,  # [m]
                "progress_reward": 0.4,
                "speeding_reward": -0.4,
                "collision_reward": -1.0,
                "pedestrian_collision_reward": -3.0,
                "crosswalk_violation_reward": -0.5,
                "on_road_reward": 0.0,
                "screen_width": 600,  # [px] highway-env viewer (env.render())
                "screen_height": 240,  # [px]
                "scaling": 8.0,  # [px/m]
            },
        )
        return config

    # -- scene ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._rng = np_rng(self)
        self._create_road()
        self._create_vehicles()
        self._pedestrian_x_cursor = self.vehicle.position[0]
        for _ in range(self.config["pedestrians_count"]):
            self._spawn_pedestrian(initial=True)

    @property
    def road_y(self) -> tuple[float, float]:
        width = self.config["lane_width"]
        return (-width / 2, width * (self.config["lanes_count"] - 0.5))

    def _create_road(self) -> None:
        cfg, rng = self.config, self._rng
        length, width, n = cfg["road_length"], cfg["lane_width"], cfg["lanes_count"]
        net = RoadNetwork()
        for i in range(n):
            lines = (
                LineType.CONTINUOUS_LINE if i == 0 else LineType.STRIPED,
                LineType.CONTINUOUS_LINE if i == n - 1 else LineType.NONE,
            )
            lane = StraightLane(
                [0, i * width],
                [length, i * width],
                width=width,
                line_types=lines,
                speed_limit=cfg["speed_limit"],
            )
            net.add_lane("a", "b", lane)
        self.crosswalks_x: list[float] = []
        x = float(rng.uniform(60, 90))
        while x < length - 30:
            self.crosswalks_x.append(x)
            x += float(rng.uniform(*cfg["crosswalk_spacing"]))
        self.road = SimRoad(
            network=net,
            np_random=self.np_random,
            record_history=cfg["show_trajectories"],
            patches=self._patches(),
        )

    def _patches(self) -> list[GroundPatch]:
        cfg = self.config
        y0, y1 = self.road_y
        sw, length, cw = cfg["sidewalk_width"], cfg["road_length"], cfg["crosswalk_width"]
        far = 60.0  # [m] of verge drawn beyond each sidewalk

        def rect(x0, x1, ya, yb):
            return np.array([[x0, ya], [x1, ya], [x1, yb], [x0, yb]], dtype=float)

        patches = [
            GroundPatch("verge", rect(-far, length + far, y0 - sw - far, y0 - sw), VERGE_COLOR),
            GroundPatch("verge", rect(-far, length + far, y1 + sw, y1 + sw + far), VERGE_COLOR),
            GroundPatch("sidewalk", rect(-far, length + far, y0 - sw, y0), SIDEWALK_COLOR),
            GroundPatch("sidewalk", rect(-far, length + far, y1, y1 + sw), SIDEWALK_COLOR),
        ]
        for x in self.crosswalks_x:
            stripes, y = [], y0 + 0.25
            while y + 0.5 <= y1:  # 0.5 m bars, 0.5 m apart, along the road's width
                stripes.append(rect(x - cw / 2, x + cw / 2, y, y + 0.5))
                y += 1.0
            patches.append(
                GroundPatch("crosswalk", rect(x - cw / 2, x + cw / 2, y0, y1), ZEBRA_COLOR, stripes)
            )
        return patches

    def _create_vehicles(self) -> None:
        cfg = self.config
        lane_index = ("a", "b", int(self._rng.integers(cfg["lanes_count"])))
        lane = self.road.network.get_lane(lane_index)
        ego = self.action_type.vehicle_class(
            self.road, lane.position(cfg["ego_start_x"], 0), lane.heading_at(0), speed=8.0
        )
        style_ego(ego)
        self.controlled_vehicles = [ego]
        self.road.vehicles.append(ego)
        vehicle_type = utils.class_from_path(cfg["other_vehicles_type"])
        add_traffic(
            self.road,
            vehicle_type,
            cfg["vehicles_count"],
            self._rng,
            spacing=1 / cfg["vehicles_density"],
        )
        lanes = [("a", "b", i) for i in range(cfg["lanes_count"])]
        lo, hi = (cfg["ego_start_x"] + d for d in cfg["obstacles_range"])
        add_obstacles(self.road, self._rng, cfg["obstacles_count"], (lo, hi), lanes)

    def _spawn_pedestrian(self, initial: bool = False) -> None:
        cfg = self.config
        ego_x = self.vehicle.position[0]
        lo = ego_x - 10 if initial else max(ego_x + 60, self._pedestrian_x_cursor)
        hi = lo + (160 if initial else 60)
        hi = min(hi, cfg["road_length"] - 10)
        if hi <= lo:
            return
        pedestrian = spawn_pedestrian(
            self.road,
            self._rng,
            (lo, hi),
            self.crosswalks_x,
            self.road_y,
            cfg["sidewalk_width"],
            cfg["jaywalk_rate"],
            cfg["crosswalk_width"],
        )
        if not initial:
            self._pedestrian_x_cursor = pedestrian.plan.cross_x + 10
        self.road.objects.append(pedestrian)

    def pedestrians(self) -> list[Pedestrian]:
        return [o for o in self.road.objects if isinstance(o, Pedestrian)]

    # -- dynamics ------------------------------------------------------------------------
    def _simulate(self, action=None) -> None:
        self._prev_front_x = self.vehicle.position[0] + self.vehicle.LENGTH / 2
        super()._simulate(action)
        ego_x = self.vehicle.position[0]
        for ped in self.pedestrians():  # people far behind the ego leave the scene
            if ped.position[0] < ego_x - 60:
                ped.done = True
        self.road.drop_done()
        while len(self.pedestrians()) < self.config["pedestrians_count"]:
            before = len(self.road.objects)
            self._spawn_pedestrian()
            if len(self.road.objects) == before:
                break

    # -- reward --------------------------------------------------------------------------
    def _rewards(self, action) -> dict[str, float]:
        ego, limit = self.vehicle, self.config["speed_limit"]
        forward_speed = ego.speed * np.cos(ego.heading)
        into = self.crashed_into()
        front_x = ego.position[0] + ego.LENGTH / 2
        prev_front_x = getattr(self, "_prev_front_x", front_x)
        half = self.config["crosswalk_width"] / 2
        violation = any(
            prev_front_x < x + half
            and front_x >= x - half
            and any(
                p.on_roadway and abs(p.position[0] - x) <= half + 0.5 for p in self.pedestrians()
            )
            for x in self.crosswalks_x
        )
        return {
            "progress": float(np.clip(forward_speed / limit, 0, 1)),
            "speeding": float(max(forward_speed - limit, 0.0) / limit),
            "collision": float(ego.crashed and into != "pedestrian"),
            "pedestrian_collision": float(into == "pedestrian"),
            "crosswalk_violation": float(violation),
            "on_road": float(ego.on_road),
        }

    def _is_terminated(self) -> bool:
        return bool(self.vehicle.crashed)

    def _is_truncated(self) -> bool:
        end = self.config["road_length"] - 30
        return bool(self.time >= self.config["duration"] or self.vehicle.position[0] >= end)
