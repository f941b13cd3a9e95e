"""Atomic file writes and the run record every command leaves in its run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf.errors import MissingMandatoryValue

from roadsight import __version__
from roadsight.device import resolve_device_name
from roadsight.errors import ConfigError, UserInputError, user_input_error


def flatten_keys(metrics: Mapping, prefix: str = "") -> dict:
    """Nested mappings (e.g. collision_rate_by_class) become dotted keys: {"a.b": 1}."""
    flat = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_keys(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """JSON with sorted keys (byte-identical for identical content), written atomically."""
    text = json.dumps(
        obj, indent=indent, sort_keys=True, separators=(",", ": ") if indent else (",", ":")
    )
    atomic_write_bytes(path, (text + "\n").encode())


def check_writable(directory: str | Path) -> Path:
    """Create `directory` if needed and prove it is writable, or raise naming it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as e:
        raise PermissionError(f"output directory {directory} is not writable: {e}") from e
    return directory


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def bad_input(error: BaseException) -> UserInputError | None:
    """The user-input error behind `error`, or None; a config value left at `???` counts."""
    found = user_input_error(error)
    if found is None and isinstance(error, MissingMandatoryValue):
        key = error.full_key or "a config value"
        found = ConfigError(f"{key}: no value given; add {key}=... to the command line")
    return found


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun (-m)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class RunRecord:
    """`run.json` in a run directory: command, version, commit, seed, device, start/end times.

    `device` is the command's `device=` setting; the record holds the device it resolves to
    (`auto` -> `cuda` or `cpu`). A bad setting ends the command at once, like any bad input.
    """

    def __init__(self, out_dir: str | Path, command: str, seed: int | None, device: str = "cpu"):
        self.path = Path(out_dir) / "run.json"
        try:
            resolved, error = resolve_device_name(device), None
        except ConfigError as e:
            resolved, error = str(device), e
        self.data = {
            "command": command,
            "roadsight_version": __version__,
            "git_commit": git_commit(),
            "seed": seed,
            "device": resolved,
            "start": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "end": None,
            "status": "running",
        }
        atomic_write_json(self.path, self.data)
        if error is not None:
            with self.reporting():
                raise error

    def finish(self, status: str = "ok", **extra: Any) -> None:
        self.data.update(extra, end=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status=status)
        atomic_write_json(self.path, self.data)

    @contextmanager
    def reporting(self) -> Iterator[None]:
        """Run the command's body and record how it ended.

        Bad input (a `UserInputError`, also from inside `instantiate`, or a `???` config value
        left unset): status "error", and the
        process exits with one line, "roadsight COMMAND: message", as the input, not the code, is
        wrong. Anything else (a bug, Ctrl-C): status "failed", and the exception propagates with
        its traceback.
        """
        try:
            yield
        except BaseException as e:
            found = bad_input(e)
            self.finish(status="error" if found else "failed",
                        error=str(found) if found else repr(e))
            if found is None:
                raise
            if in_multirun():  # SystemExit would cancel the sweep's pending jobs
                raise found from None
            sys.exit(f"roadsight {self.data['command']}: {found}")
