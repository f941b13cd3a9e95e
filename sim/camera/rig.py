"""Camera rigs: several pinhole cameras on the ego, rendered from one shared scene snapshot.

`CameraRig(cameras=[...])` follows the Camera protocol: `frames()` returns one Frame per member,
in the order given, each with its own ground truth.
`sim.annotate.tile_frames` lays a rig's frames out in one image (for viewing and docs); datasets
keep the frames separate.
"""

from __future__ import annotations

from collections.abc import Sequence

from roadsight.errors import ConfigError
from sim.camera.pinhole import PinholeCamera
from sim.camera.scene3d import build_scene
from sim.truth import SceneRegistry
from sim.types import Frame


class CameraRig:
    """Pinhole cameras sharing one scene snapshot per call (the scene is posed once)."""

    def __init__(self, cameras: Sequence[PinholeCamera]):
        cameras = list(cameras)
        if not cameras:
            raise ConfigError("camera.cameras must list at least one camera, got []")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ConfigError(f"camera.cameras must have unique names, got {names}")
        shapes = {c.image_shape for c in cameras}
        if len(shapes) != 1:
            raise ConfigError(f"camera.cameras must share one image size, got {sorted(shapes)}")
        self.cameras = cameras
        self.names = tuple(names)
        self.image_shape = cameras[0].image_shape
        self._radius = max(c.far for c in cameras)

    def frames(self, env, registry: SceneRegistry, extras: tuple[str, ...] = ()) -> list[Frame]:
        """One Frame per camera, in `names` order, each with its own ground truth."""
        scene = build_scene(env, registry, self._radius)
        return [camera.render(scene, extras) for camera in self.cameras]
