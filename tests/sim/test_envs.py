"""Registered envs: API conformance, determinism, reward terms."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sim.camera.bev import BevCamera
from sim.envs import ENV_IDS
from sim.make import make_env
from sim.wrappers import CameraObservation
from tests.conftest import QUIET_URBAN
from tests.sim.test_pedestrians import _pedestrian


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_envs_pass_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_camera_env_passes_checkers():
    env = make_env("roadsight/urban-crossing-v0", camera=BevCamera(width=128, height=64))
    gym_check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 128, 3) and obs.dtype == np.uint8
    assert isinstance(info["objects"], list) and info["camera"].kind == "bev"
    env.close()


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_skipping_highway_envs_own_observation_changes_nothing_but_its_cost(env_id, monkeypatch):
    """CameraObservation throws highway-env's observation away, so it is not computed per step;
    the frames, ground truth, rewards and infos are those of a wrapper that lets it run."""
    def rollout(skip: bool):
        monkeypatch.setattr(CameraObservation, "skip_inner_observation", skip)
        env = make_env(env_id, camera=BevCamera(width=256, height=128))
        observe = type(env.unwrapped.observation_type).observe
        calls = []
        monkeypatch.setattr(type(env.unwrapped.observation_type), "observe",
                            lambda self: calls.append(1) or observe(self))
        obs, info = env.reset(seed=4)
        steps = [(obs, info["objects"], None)]
        for action in [3, 1, 0, 2, 1, 4, 1, 1]:
            obs, reward, term, trunc, info = env.step(action)
            steps.append((obs, info["objects"], (reward, term, trunc, info["rewards"],
                                                 info["crashed"], info["speed"])))
            if term or trunc:
                break
        env.close()
        return steps, len(calls)

    (skipped, calls_skipped), (full, calls_full) = rollout(True), rollout(False)
    assert calls_skipped == 1 and calls_full == len(full)  # reset's only, against every step's
    assert len(skipped) == len(full)
    for (obs_a, objects_a, rest_a), (obs_b, objects_b, rest_b) in zip(skipped, full, strict=True):
        assert np.array_equal(obs_a, obs_b) and objects_a == objects_b and rest_a == rest_b


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_same_seed_same_rollout(env_id):
    def rollout(seed):
        env = gym.make(env_id)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        states = []
        for _ in range(6):
            _, reward, term, trunc, _ = env.step(env.action_space.sample())
            road = env.unwrapped.road
            states.append([reward] + [x for o in road.vehicles + road.objects for x in o.position])
            if term or trunc:
                break
        env.close()
        return states

    a, b, c = rollout(5), rollout(5), rollout(6)
    assert a == b
    assert a != c


def test_step_reports_named_reward_terms(make_urban):
    env = make_urban()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)
    assert set(info["rewards"]) == {
        "progress",
        "speeding",
        "collision",
        "pedestrian_collision",
        "crosswalk_violation",
        "on_road",
    }
    assert info["rewards"]["progress"] > 0 and reward > 0


# Hand-built ego states on the quiet street (limit 13.9 m/s; weights: progress 0.4,
# speeding -0.4, collision -1, pedestrian_collision -3, crosswalk_violation -0.5, on_road 0):
# (speed [m/s], heading [rad], what it hit, expected non-zero terms besides on_road, reward)
HAND_BUILT = [
    (6.95, 0.0, None, {"progress": 0.5}, 0.2),
    (13.9, np.pi / 3, None, {"progress": 0.5}, 0.2),  # half of the speed is forward
    (17.375, 0.0, None, {"progress": 1.0, "speeding": 0.25}, 0.3),
    (0.0, 0.0, "vehicle", {"collision": 1.0}, -1.0),
    (0.0, 0.0, "obstacle", {"collision": 1.0}, -1.0),
    (6.95, 0.0, "pedestrian", {"progress": 0.5, "pedestrian_collision": 1.0}, -2.8),
]


@pytest.mark.parametrize("speed,heading,hit,terms,expected", HAND_BUILT)
def test_reward_of_a_hand_built_state(make_urban, speed, heading, hit, terms, expected):
    env = make_urban(**QUIET_URBAN)
    env.reset(seed=0)
    base = env.unwrapped
    ego = base.vehicle
    ego.speed, ego.heading = speed, heading
    if hit:
        ego.crashed = True
        base.road.crashed_into[id(ego)] = hit
    names = ("progress", "speeding", "collision", "pedestrian_collision", "crosswalk_violation")
    assert base._rewards(0) == pytest.approx({**dict.fromkeys(names, 0.0), **terms, "on_road": 1.0})
    assert base._reward(0) == pytest.approx(expected)


@pytest.mark.parametrize("ped_y_in_road,expected", [(True, 0.2 - 0.5), (False, 0.2)])
def test_passing_a_crosswalk_with_a_pedestrian_on_it_costs(make_urban, ped_y_in_road, expected):
    env = make_urban(**QUIET_URBAN)
    env.reset(seed=0)
    base = env.unwrapped
    ego, x = base.vehicle, base.crosswalks_x[0]
    y0, y1 = base.road_y
    _pedestrian(env, x, (y0 + y1) / 2 if ped_y_in_road else y0 - 1.0, "cross")
    ego.speed = 6.95  # progress 0.5
    base._prev_front_x = x - 3.0  # last step the front was short of the crosswalk ...
    ego.position = np.array([x - ego.LENGTH / 2, ego.position[1]])  # ... now it is on it
    violation = base._rewards(0)["crosswalk_violation"]
    assert violation == (1.0 if ped_y_in_road else 0.0)
    assert base._reward(0) == pytest.approx(expected)


def test_highway_hazards_has_obstacles_in_lanes():
    env = gym.make("roadsight/highway-hazards-v0")
    env.reset(seed=2)
    road = env.unwrapped.road
    kinds = {o.roadsight_style.kind for o in road.objects}
    assert len(road.objects) == env.unwrapped.config["obstacles_count"]
    assert kinds <= {"cone", "debris", "stalled_car"}
    for o in road.objects:
        assert road.network.get_lane(o.lane_index).on_lane(o.position)
    env.close()


def test_unknown_env_id_lists_valid_ids():
    with pytest.raises(ValueError, match="roadsight/urban-crossing-v0.*highway-fast-v0"):
        make_env("roadsight/nowhere-v0")
