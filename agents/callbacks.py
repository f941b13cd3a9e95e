"""Atomic SB3 saves: checkpoints (with DQN's replay buffer) and the best model.

Every file is written to a temporary name and renamed (roadsight.io.atomic_write_bytes), and a
checkpoint's replay buffer is written before its model: a kill -9 at any moment leaves only
complete files, and a model checkpoint whose buffer it needs.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from roadsight.io import atomic_write_bytes, atomic_write_json

CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip")


def save_model(model: BaseAlgorithm, path: str | Path) -> None:
    buf = io.BytesIO()
    model.save(buf)
    atomic_write_bytes(path, buf.getvalue())


def save_replay_buffer(model: BaseAlgorithm, path: str | Path) -> None:
    buf = io.BytesIO()
    model.save_replay_buffer(buf)
    atomic_write_bytes(path, buf.getvalue())


@dataclass
class Checkpoint:
    steps: int
    model: Path
    replay_buffer: Path | None


def checkpoints(directory: str | Path) -> list[Checkpoint]:
    """The checkpoints in `directory`, oldest first."""
    found = []
    for path in Path(directory).glob("model_*_steps.zip"):
        if m := CHECKPOINT.fullmatch(path.name):
            steps = int(m.group(1))
            buffer = path.with_name(f"replay_buffer_{steps}_steps.pkl")
            found.append(Checkpoint(steps, path, buffer if buffer.is_file() else None))
    return sorted(found, key=lambda c: c.steps)


class AtomicCheckpoint(BaseCallback):
    """Saves `model_<steps>_steps.zip` (+ `replay_buffer_<steps>_steps.pkl` for off-policy
    algorithms) every `every` env steps, at the start of a rollout: after the previous update,
    so that a resumed run continues exactly where this one was, on a rollout boundary.
    `keep`: how many of the newest checkpoints stay on disk (0: all); older ones are deleted
    after the new one is complete."""

    def __init__(self, directory: str | Path, every: int, keep: int = 0):
        super().__init__()
        self.directory, self.every, self.keep = Path(directory), int(every), int(keep)
        self.last = 0

    def _init_callback(self) -> None:
        self.last = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.every > 0 and self.model.num_timesteps >= self.last + self.every:
            self.save()

    def save(self) -> None:
        steps = self.model.num_timesteps
        if hasattr(self.model, "replay_buffer") and self.model.replay_buffer is not None:
            save_replay_buffer(self.model, self.directory / f"replay_buffer_{steps}_steps.pkl")
        save_model(self.model, self.directory / f"model_{steps}_steps.zip")
        self.last = steps
        if self.keep > 0:
            for old in checkpoints(self.directory)[: -self.keep]:
                old.model.unlink()
                if old.replay_buffer is not None:
                    old.replay_buffer.unlink()

    def _on_step(self) -> bool:
        return True


class SaveBest(BaseCallback):
    """EvalCallback's `callback_on_new_best`: the model, atomically, to `path`."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)

    def _on_step(self) -> bool:
        save_model(self.model, self.path)
        return True


class TrainClock(BaseCallback):
    """Wall seconds spent in `learn`, summed over a run's sittings: written (atomically) to
    `path` as {"seconds", "steps", "log": [[steps, seconds], ...]} at a rollout start at most
    every `every` seconds (a DQN's rollout is one step: logging each would rewrite a growing
    file every step) and at the end. A resumed run (`resumed=True`) starts from the seconds at
    the step it resumes from, interpolated between the log's entries around it, not from the
    time the interrupted sitting ran on after it; a fresh one starts from 0."""

    def __init__(self, path: str | Path, resumed: bool = False, every: float = 10.0):
        super().__init__()
        self.path, self.resumed, self.every = Path(path), resumed, float(every)
        self.base, self.t0, self.log = 0.0, 0.0, []
        self.written: float | None = None  # time.monotonic() of the last write

    @property
    def seconds(self) -> float:
        return self.base + time.monotonic() - self.t0

    def _on_training_start(self) -> None:
        self.base, self.log = 0.0, []
        if self.resumed and self.path.is_file():
            stored = json.loads(self.path.read_text())
            steps = self.model.num_timesteps
            logged = stored.get("log", [])
            self.log = [e for e in logged if e[0] <= steps]
            if logged and steps <= logged[-1][0]:  # between two entries: linear in steps
                self.base = float(np.interp(steps, *zip(*logged, strict=True)))
            elif logged:  # beyond the last entry: pro rata
                self.base = logged[-1][1] * steps / max(logged[-1][0], 1)
            elif stored.get("steps"):
                self.base = float(stored["seconds"]) * min(steps / stored["steps"], 1.0)
        self.t0 = time.monotonic()

    def _write(self) -> None:
        steps, seconds = int(self.model.num_timesteps), round(self.seconds, 1)
        if not self.log or self.log[-1][0] != steps:
            self.log.append([steps, seconds])
        atomic_write_json(self.path, {"seconds": seconds, "steps": steps, "log": self.log})
        self.written = time.monotonic()

    def _on_rollout_start(self) -> None:
        if self.written is None or time.monotonic() - self.written >= self.every:
            self._write()

    def _on_training_end(self) -> None:
        self._write()

    def _on_step(self) -> bool:
        return True


class ShieldMetrics(BaseCallback):
    """TensorBoard `rollout/shield_intervention_rate`: the share of env steps, between two
    logger dumps, whose action the shield replaced (agents.shield.ShieldVecEnv's
    `info["shield_changed"]`)."""

    def _on_step(self) -> bool:
        flags = [bool(info.get("shield_changed")) for info in self.locals.get("infos", [])]
        if flags:
            self.logger.record_mean("rollout/shield_intervention_rate", sum(flags) / len(flags))
        return True
