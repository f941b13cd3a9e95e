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


def test_rewards_are_named_terms_and_sum_to_the_reward(make_urban):
    env = make_urban()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)
    terms = info["rewards"]
    assert set(terms) == {
        "progress",
        "speeding",
        "collision",
        "pedestrian_collision",
        "crosswalk_violation",
        "on_road",
    }
    config = env.unwrapped.config
    assert reward == pytest.approx(sum(config[f"{k}_reward"] * v for k, v in terms.items()))
    assert terms["progress"] > 0


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
