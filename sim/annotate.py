"""Drawing boxes on frames: ground truth here, detections in perception/ (same look)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sim.types import Frame

CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "vehicle": (0, 140, 255),
    "pedestrian": (255, 40, 40),
    "obstacle": (255, 220, 0),
}


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: Sequence[str],
    texts: Sequence[str] | None = None,
    scale: int = 1,
    label_min_height: int = 10,
) -> np.ndarray:
    """A copy of `image` (RGB), upscaled `scale` times, with xyxy `boxes` drawn per class.

    Boxes drawn lower than `label_min_height` px get no text: far objects crowd the horizon, and
    their labels would cover each other (the box colour still gives the class).
    """
    out = (
        image
        if scale == 1
        else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    )
    out = np.ascontiguousarray(out).copy()
    font = 0.3 + 0.1 * scale
    for i, (box, cls) in enumerate(zip(boxes, classes, strict=True)):
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        color = CLASS_COLORS.get(cls, (255, 255, 255))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, 1)
        if texts is not None and y1 - y0 >= label_min_height:
            cv2.putText(
                out,
                texts[i],
                (x0, max(y0 - 3, 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                font,
                color,
                1,
                cv2.LINE_AA,
            )
    return out


def draw_truth(frame: Frame, scale: int = 2, min_visible: float = 0.0) -> np.ndarray:
    """The frame's image with its ground-truth boxes and track ids."""
    objs = [o for o in frame.objects if o.visible >= min_visible]
    boxes = np.array([o.box_xyxy for o in objs], float).reshape(-1, 4)
    return draw_boxes(
        frame.image,
        boxes,
        [o.cls for o in objs],
        [f"{o.cls[0]}{o.track_id}" for o in objs],
        scale=scale,
    )


def tile_frames(frames: list[Frame], cols: int = 2, scale: int = 1) -> np.ndarray:
    """A rig's frames laid out row-major, `cols` per row (RGB), with GT boxes and camera names."""
    tiles = []
    for frame in frames:
        tile = draw_truth(frame, scale=scale)
        cv2.putText(
            tile,
            frame.camera.name,
            (4, 12 * scale),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35 * scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)
