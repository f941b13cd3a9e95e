"""Regenerate docs/bev_example.png: `python docs/make_examples.py` (needs `pip install -e .`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import gymnasium as gym

import sim  # noqa: F401
from sim.annotate import draw_truth
from sim.camera.bev import BevCamera
from sim.drivers import IDMDriver
from sim.truth import SceneRegistry

DOCS = Path(__file__).resolve().parent


def bev_example(seed: int = 3, steps: int = 14) -> None:
    env = gym.make("roadsight/urban-crossing-v0", config={"pedestrians_count": 12})
    env.reset(seed=seed)
    driver = IDMDriver()
    driver.reset(env, seed)
    for _ in range(steps):
        env.step(driver.act(env))
    frame = BevCamera().frames(env, SceneRegistry(seed))[0]
    image = draw_truth(frame, scale=2)
    cv2.imwrite(str(DOCS / "bev_example.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    bev_example()
