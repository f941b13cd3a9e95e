"""Camera rigs: several pinhole cameras on the ego, rendered from one shared scene snapshot.

`CameraRig(cameras=[...])` follows the Camera protocol: `frames()` returns one Frame per member,
in the order given, each with its own ground truth. `tile_frames` lays a rig's frames out in one
image (for viewing and docs); datasets keep the frames separate.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sim.camera.pinhole import PinholeCamera
from sim.camera.scene3d import build_scene
from sim.truth import SceneRegistry
from sim.types import Frame, ObjectTruth

BOX_COLORS = {"vehicle": (255, 210, 0), "pedestrian": (255, 40, 200), "obstacle": (0, 230, 255)}


class CameraRig:
    """Pinhole cameras sharing one scene snapshot per call (the scene is posed once)."""

    def __init__(self, cameras: Sequence[PinholeCamera]):
        cameras = list(cameras)
        if not cameras:
            raise ValueError("camera.cameras must list at least one camera, got []")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera.cameras must have unique names, got {names}")
        shapes = {c.image_shape for c in cameras}
        if len(shapes) != 1:
            raise ValueError(f"camera.cameras must share one image size, got {sorted(shapes)}")
        self.cameras = cameras
        self.names = tuple(names)
        self.image_shape = cameras[0].image_shape
        self._radius = max(c.far for c in cameras)

    def frames(self, env, registry: SceneRegistry, extras: tuple[str, ...] = ()) -> list[Frame]:
        """One Frame per camera, in `names` order, each with its own ground truth."""
        scene = build_scene(env, registry, self._radius)
        return [camera.render(scene, extras) for camera in self.cameras]


def draw_boxes(image: np.ndarray, objects: list[ObjectTruth], scale: int = 1) -> np.ndarray:
    """A copy of an RGB image, upscaled by `scale` (nearest), with ground-truth boxes drawn."""
    out = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for obj in objects:
        x0, y0, x1, y1 = (int(round(v * scale)) for v in obj.box_xyxy)
        color = BOX_COLORS.get(obj.cls, (255, 255, 255))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, 1)
    return out


def tile_frames(frames: list[Frame], cols: int = 2, scale: int = 1, boxes: bool = True,
                labels: bool = True) -> np.ndarray:
    """Frames laid out row-major in a grid of `cols` columns (RGB), with GT boxes and names."""
    tiles = []
    for frame in frames:
        tile = draw_boxes(frame.image, frame.objects if boxes else [], scale)
        if labels:
            cv2.putText(tile, frame.camera.name, (4, 12 * scale), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35 * scale, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)
