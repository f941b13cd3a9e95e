"""Atomic SB3 saves: checkpoints (with DQN's replay buffer) and the best model.

Every file is written to a temporary name and renamed (roadsight.io.atomic_write_bytes), and a
checkpoint's replay buffer is written before its model: a kill -9 at any moment leaves only
complete files, and a model checkpoint whose buffer it needs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from roadsight.io import atomic_write_bytes

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
