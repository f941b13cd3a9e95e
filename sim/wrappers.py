"""Gymnasium wrapper that makes a camera the observation and its ground truth the info."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np

from sim.truth import SceneRegistry, ego_state
from sim.types import Frame


class CameraObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Observation: the camera's uint8 RGB image, (H, W, 3), or (n, H, W, 3) for an n-camera rig.

    `info["objects"]` holds the frame's ground truth (a list of ObjectTruth; a dict name -> list
    for rigs), `info["camera"]` its CameraInfo and `info["ego"]` the ego's EgoState (odometry),
    so a training loop never pays for them in the observation. `self.frames` keeps the last
    rendered Frames.

    highway-env still computes its own observation (`config["observation"]`) every step, which
    this wrapper throws away: with `skip_inner_observation` (the default) each episode's first
    one is returned again instead (a 'shuffled' Kinematics observation still runs: it draws
    from the env's random generator). Nothing in the scene changes; a step costs ~15% less.

    `highway_observation=True` keeps it instead: `info["highway_observation"]` holds it (and
    `self.highway_observation_space` its space), for policies that read highway-env's own
    observation, such as its documented SB3 recipes (agents: `observation=native`).
    """

    skip_inner_observation = True

    def __init__(self, env: gym.Env, camera, extras: tuple[str, ...] = (),
                 highway_observation: bool = False):
        gym.utils.RecordConstructorArgs.__init__(self, camera=camera, extras=tuple(extras),
                                                 highway_observation=highway_observation)
        gym.Wrapper.__init__(self, env)
        self.camera = camera
        self.extras = tuple(extras)
        self.highway_observation = bool(highway_observation)
        self.highway_observation_space = env.observation_space
        self.registry = SceneRegistry()
        shape = tuple(camera.image_shape)
        if len(camera.names) > 1:
            shape = (len(camera.names), *shape)
        self.observation_space = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
        self.frames: list[Frame] = []

    def _observe(self, info: dict) -> np.ndarray:
        info["ego"] = ego_state(self.env)
        self.frames = self.camera.frames(self.env, self.registry, self.extras)
        if len(self.frames) == 1:
            info["objects"], info["camera"] = self.frames[0].objects, self.frames[0].camera
            return self.frames[0].image
        info["objects"] = {f.camera.name: f.objects for f in self.frames}
        info["camera"] = {f.camera.name: f.camera for f in self.frames}
        return np.stack([f.image for f in self.frames])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.registry.reset(seed)
        inner, info = self.env.reset(seed=seed, options=options)
        observation_type = self.env.unwrapped.observation_type  # a new one every reset
        if self.highway_observation:
            info["highway_observation"] = inner
        elif self.skip_inner_observation and getattr(observation_type, "order", "") != "shuffled":
            observation_type.observe = lambda: copy.deepcopy(inner)  # a new one per call
        return self._observe(info), info

    def step(self, action):
        inner, reward, terminated, truncated, info = self.env.step(action)
        if self.highway_observation:
            info["highway_observation"] = inner
        return self._observe(info), reward, terminated, truncated, info
