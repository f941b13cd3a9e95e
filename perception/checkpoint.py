"""Detector checkpoints: self-describing files that val/detect/export rebuild without arguments.

A checkpoint holds the model's `_target_` config (architecture), its weights, the class names, the
preprocess config and the metrics; training checkpoints add optimizer/scheduler/RNG state.
Optional entries: `camera`, the camera it was trained for (`perception.provenance`), and
`score_thresh`, per-class score thresholds at its F1-best operating point on a validation split
(`val-detector write_thresholds=true`), with `score_thresh_from` saying where they came from;
decoding uses them when its own `score_thresh` is null.
"""

from __future__ import annotations

import inspect
import io
import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from perception.model import CenterNet
from roadsight.errors import UserInputError
from roadsight.io import atomic_write_bytes
from roadsight.paths import MODELS_DIR, REPO_ROOT
from sim.types import CLASSES

FORMAT = "roadsight-detector/1"
REQUIRED = ("format", "model_cfg", "state_dict", "classes", "preprocess_cfg")
# how the shipped default for a camera is made: the Makefile holds the one recipe (datasets, then
# roadsight train-detector with that camera's preprocess, epochs and detector options)
MAKE_RECIPE = {camera: f"make datasets-{camera} models/detector_{camera}.pt"
               for camera in ("bev", "front", "surround")}
TRAIN_COMMAND = ("roadsight record camera={camera} ... hydra.run.dir=DATA, then roadsight "
                 "train-detector data=DATA val_data=VAL hydra.run.dir=OUT and copy OUT/best.pt "
                 "to {path}")


class CheckpointError(UserInputError):
    """A checkpoint is missing, unreadable or does not fit; the message names the file."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save into memory, then an atomic replace: `path` is never left half-written."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint state for {path} lacks {missing}")
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def update_checkpoint(path: str | Path, **entries: Any) -> None:
    """Set top-level entries of an existing checkpoint (atomically); everything else, weights
    included, is written back unchanged."""
    state = load_checkpoint(path)
    state.update(entries)
    mode = Path(path).stat().st_mode & 0o777
    save_checkpoint(path, state)
    Path(path).chmod(mode)  # the atomic replace writes a private temporary file


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and validate a detector checkpoint, or raise CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    try:
        # weights_only: a checkpoint is data, never code
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(f"checkpoint {path}: not a readable torch file "
                              f"(corrupt or truncated?): {str(e).splitlines()[0]}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path}: not a roadsight detector checkpoint "
                              f"(format {found!r}, expected {FORMAT!r})")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing entries {missing}")
    if tuple(state["classes"]) != CLASSES:
        raise CheckpointError(f"checkpoint {path}: classes {state['classes']} differ from "
                              f"this code's {CLASSES}")
    return state


def build_model(state: dict, path: str | Path = "<checkpoint>") -> CenterNet:
    """Instantiate the checkpoint's architecture and load its weights (strict)."""
    cfg = dict(state["model_cfg"])
    if not str(cfg.get("_target_", "")).startswith("perception.model."):
        raise CheckpointError(f"checkpoint {path}: model _target_ {cfg.get('_target_')!r} is "
                              f"not a perception.model class")
    model = instantiate(cfg)
    check_state_dict(model, state["state_dict"], path)
    model.load_state_dict(state["state_dict"])
    return model


def check_state_dict(model: torch.nn.Module, state_dict: dict, path: str | Path) -> None:
    """Raise CheckpointError listing the first mismatches if weights do not fit `model`."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in own]
    problems += [f"{k}: shape {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                 for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    if problems:
        raise CheckpointError(
            f"checkpoint {path}: weights from another architecture ({len(problems)} mismatches, "
            f"e.g. {'; '.join(problems[:3])})")


def architecture(model_cfg: dict) -> dict:
    """A detector config with every constructor default filled in: configs written before an
    option existed compare equal to ones that set it to its default."""
    from hydra.utils import get_class

    params = inspect.signature(get_class(model_cfg["_target_"])).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **model_cfg}


def check_architecture(state: dict, model_cfg: dict, path: str | Path, cannot: str,
                       hint: str = "") -> None:
    """CheckpointError "checkpoint PATH: cannot CANNOT, ..." unless the checkpoint's detector
    config is the same architecture as `model_cfg` (constructor defaults filled in)."""
    if architecture(state["model_cfg"]) != architecture(model_cfg):
        raise CheckpointError(f"checkpoint {path}: cannot {cannot}, its detector config "
                              f"{state['model_cfg']} differs from detector={model_cfg}{hint}")


def repo_file(path: str | Path) -> Path:
    """`path`; a relative one that is not there from the working directory but is from the
    repository's root (models/detector_bev_tiny.pt run from elsewhere) is the repo's."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def resolve_checkpoint(checkpoint: str | None, camera: str = "bev") -> Path:
    """The given checkpoint (`repo_file`), or the shipped default models/detector_<camera>.pt."""
    if checkpoint:
        return repo_file(checkpoint)
    path = MODELS_DIR / f"detector_{camera}.pt"
    if not path.is_file():
        cmd = MAKE_RECIPE.get(camera) or TRAIN_COMMAND.format(camera=camera, path=path)
        raise CheckpointError(f"no checkpoint= given and the default for camera={camera}, "
                              f"{path}, does not exist; train it with: {cmd}")
    return path


def camera_choice(default: str = "bev") -> str:
    """The `camera=` group chosen on the command line of the running Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return default
    return HydraConfig.get().runtime.choices.get("camera") or default


def camera_override() -> str | None:
    """The `camera=` group given explicitly on the running Hydra app's command line, or None."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        if key.lstrip("+~") == "camera":
            return value
    return None
