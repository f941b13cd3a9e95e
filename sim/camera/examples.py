"""Example camera frames with ground-truth boxes, as committed under docs/ (and checked by a test).

Regenerate with `python -m sim.camera.examples [out_dir]` (default: docs/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import gymnasium as gym
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sim.annotate import draw_truth, tile_frames
from sim.truth import SceneRegistry

CONF = Path(__file__).resolve().parents[2] / "conf" / "camera"
# (file, env id, camera config, seed, steps before the shot)
EXAMPLES = (
    ("bev_example.png", "roadsight/urban-crossing-v0", "bev", 3, 14),
    ("pinhole_front_urban.png", "roadsight/urban-crossing-v0", "front", 2, 6),
    ("pinhole_front_highway.png", "roadsight/highway-hazards-v0", "front", 3, 4),
    ("pinhole_surround_highway.png", "roadsight/highway-hazards-v0", "surround", 4, 8),
)


def load_camera(name: str):
    """Instantiate conf/camera/<name>.yaml."""
    return instantiate(OmegaConf.load(CONF / f"{name}.yaml"))


def render_examples(out_dir: str | Path, scale: int = 2) -> list[Path]:
    """Write the example PNGs (RGB frames upscaled by `scale`, GT boxes drawn) into `out_dir`."""
    import sim  # noqa: F401  (registers the roadsight envs)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, env_id, camera_name, seed, steps in EXAMPLES:
        env = gym.make(env_id)
        try:
            env.reset(seed=seed)
            for _ in range(steps):
                env.step(1)  # IDLE for highway-env's meta actions
            camera = load_camera(camera_name)
            frames = camera.frames(env, SceneRegistry(seed))
        finally:
            env.close()
        if len(frames) == 1:
            image = draw_truth(frames[0], scale=scale)
        else:
            image = tile_frames(frames, cols=2, scale=scale)
        path = out_dir / filename
        cv2.imwrite(
            str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
        )
        written.append(path)
    return written


if __name__ == "__main__":
    for p in render_examples(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(p)
