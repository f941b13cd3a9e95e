"""`roadsight record`: drive episodes and write camera frames with COCO ground truth."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from roadsight.errors import ConfigError
from roadsight.io import RunRecord, atomic_write_json, check_writable
from roadsight.paths import CONF_DIR
from sim.coco import EXTRA_KINDS, CocoWriter, env_info
from sim.truth import SceneRegistry

log = logging.getLogger(__name__)


def record_dataset(
    env,
    camera,
    driver,
    out_dir: Path,
    episodes: int,
    seed: int,
    max_steps: int | None = None,
    extras: tuple[str, ...] = (),
    every: int = 1,
    progress: bool = True,
) -> dict:
    """Drive `episodes` episodes (seeds seed, seed+1, ...) and write a COCO dataset in `out_dir`.

    A frame is kept every `every` env steps, from the reset on. Returns counts for metrics.json.
    """
    if every < 1:
        raise ConfigError(f"record.every={every}: keep a frame every N env steps, N >= 1")
    bad = sorted(set(extras) - set(EXTRA_KINDS))
    if bad:
        raise ConfigError(f"record.extras: unknown {bad}; valid: {list(EXTRA_KINDS)}")
    writer = CocoWriter(out_dir, info=env_info(env))  # the env id and its resolved config
    registry = SceneRegistry()
    crashes = steps_total = 0
    bar = tqdm(range(episodes), desc="record", unit="ep", disable=not progress)
    for episode in bar:
        episode_seed = seed + episode
        registry.reset(episode_seed)
        env.reset(seed=episode_seed)
        driver.reset(env, episode_seed)
        step, done = 0, False
        while True:
            if step % every == 0:
                for frame in camera.frames(env, registry, extras):
                    writer.add(frame, episode, step, episode_seed)
            if done or (max_steps is not None and step >= max_steps):
                break
            _, _, terminated, truncated, info = env.step(driver.act(env))
            crashes += int(bool(info.get("crashed")))
            step += 1
            done = terminated or truncated
        steps_total += step
        bar.set_postfix(frames=len(writer.images), objects=len(writer.annotations))
    annotations = writer.save()
    return {
        "images": len(writer.images),
        "annotations": len(writer.annotations),
        "episodes": episodes,
        "env_steps": steps_total,
        "crashes": crashes,
        "annotations_file": str(annotations),
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="record")
def main(cfg: DictConfig) -> None:
    out_dir = check_writable(HydraConfig.get().runtime.output_dir)
    run = RunRecord(out_dir, "record", cfg.seed)
    with run.reporting():
        camera = instantiate(cfg.camera)
        driver = instantiate(cfg.driver)
        env = instantiate(cfg.env)
        try:
            metrics = record_dataset(env, camera, driver, out_dir, cfg.episodes, cfg.seed,
                                     cfg.max_steps, tuple(cfg.record.extras), cfg.record.every)
        finally:
            env.close()
    atomic_write_json(out_dir / "metrics.json", metrics)
    run.finish("ok")
    log.info("wrote %d images, %d boxes to %s", metrics["images"], metrics["annotations"], out_dir)
