"""Gymnasium wrappers that run in the env workers for the agents' observations."""

from __future__ import annotations

import gymnasium as gym

from sim.truth import ego_state, objects_within


class SceneObjectsInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Puts every labelled scene object within `max_range` [m] into `info["scene_objects"]`.

    The source of kinematics with `scope=all`: ObjectTruth records (relative `ego_vxy`, as a
    camera's, `visible` 1, no box) whatever the camera sees. Track ids match `info["objects"]`
    when a CameraObservation lies underneath; `info["ego"]` is added when it is missing.
    """

    def __init__(self, env: gym.Env, max_range: float = 60.0):
        gym.utils.RecordConstructorArgs.__init__(self, max_range=max_range)
        gym.Wrapper.__init__(self, env)
        self.max_range = float(max_range)

    def _annotate(self, info: dict) -> dict:
        try:
            registry = self.env.get_wrapper_attr("registry")
        except AttributeError:
            registry = None
        info["scene_objects"] = objects_within(self.env, self.max_range, registry)
        if "ego" not in info:
            info["ego"] = ego_state(self.env)
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._annotate(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._annotate(info)


class FrameDetections(gym.Wrapper):
    """Runs a detector on every frame the worker renders: `info["detections"]`, one
    perception.decode.Detections per camera (a rig's frames in its cameras' order).

    `perception.placement=workers`: each SubprocVecEnv worker detects its own frames on its own
    core(s) while the others do the same, instead of the main process running one batched
    forward while the workers wait. `build_detector()` (picklable; agents.build.DetectorSpec)
    makes the detector in the worker; it uses `threads` torch threads.
    """

    def __init__(self, env: gym.Env, build_detector, threads: int = 1):
        import torch

        super().__init__(env)
        torch.set_num_threads(max(1, int(threads)))
        self.detector = build_detector()

    def _detect(self, frame, info: dict) -> dict:
        info["detections"] = self.detector(list(frame) if frame.ndim == 4 else [frame])
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._detect(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._detect(obs, info)
