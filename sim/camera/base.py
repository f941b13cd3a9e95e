"""The camera interface every camera (bev, pinhole, rigs) follows."""

from __future__ import annotations

from typing import Protocol

from roadsight.errors import ConfigError
from sim.truth import SceneRegistry
from sim.types import Frame


def check_camera_value(ok: bool, key: str, value, valid: str) -> None:
    """Raise a ConfigError naming `camera.<key>`, the bad value and what is valid, unless `ok`."""
    if not ok:
        raise ConfigError(f"camera.{key} must be {valid}, got {value!r}")


class Camera(Protocol):
    """A camera renders the scene of `env` into frames with exact ground truth.

    `frames` returns one Frame per rig member (one for single cameras); `names` lists the members
    and `image_shape` is the (H, W, 3) shape of every member's image.
    """

    names: tuple[str, ...]
    image_shape: tuple[int, int, int]

    def frames(self, env, registry: SceneRegistry, extras: tuple[str, ...] = ()) -> list[Frame]: ...
