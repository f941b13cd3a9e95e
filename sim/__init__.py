"""sim/: highway-env scenes with pedestrians and obstacles, cameras and exact ground truth."""

from sim.envs import register_envs
from sim.headless import ensure_headless_rendering

ensure_headless_rendering()  # before pygame's display is ever initialised
register_envs()
