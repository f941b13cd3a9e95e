"""Tiny synthetic COCO datasets in `roadsight record`'s layout (coloured shapes on grey).

For tests and smoke runs of the detector tooling without the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# per class: colour (RGB) and (min, max) size in px (w, h) at 256 px image width
SHAPES = {
    0: ((40, 90, 220), (24, 14), (44, 22)),  # vehicle: blue rectangle
    1: ((220, 40, 40), (6, 6), (10, 10)),  # pedestrian: red disc
    2: ((240, 200, 30), (8, 8), (14, 14)),  # obstacle: yellow diamond
}


def draw_object(img: np.ndarray, cls: int, box: tuple[int, int, int, int]) -> None:
    colour, _, _ = SHAPES[cls]
    x1, y1, x2, y2 = box
    if cls == 0:
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    elif cls == 1:
        cv2.ellipse(img, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), colour, -1)
    else:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        pts = np.array([[cx, y1], [x2 - 1, cy], [cx, y2 - 1], [x1, cy]], np.int32)
        cv2.fillPoly(img, [pts], colour)


def write_synthetic_coco(directory: str | Path, n_images: int = 8, size: tuple[int, int] =
                         (256, 128), objects: tuple[int, int] = (2, 5), seed: int = 0) -> Path:
    """Write DIR/annotations.json + DIR/images/*.png; size is (W, H). Returns DIR.

    One object in five gets visible=0.2 (drawn half-transparent), for the min_visible path.
    """
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    images, anns = [], []
    for i in range(n_images):
        img = np.full((h, w, 3), 110, np.uint8)
        img += rng.integers(0, 12, img.shape, dtype=np.uint8)  # texture
        taken: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
            cls = int(rng.integers(0, 3))
            _, lo, hi = SHAPES[cls]
            bw, bh = int(rng.integers(lo[0], hi[0] + 1)), int(rng.integers(lo[1], hi[1] + 1))
            for _attempt in range(20):
                x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                box = (x1, y1, x1 + bw, y1 + bh)
                if all(box[2] + 4 < t[0] or t[2] + 4 < box[0] or box[3] + 4 < t[1]
                       or t[3] + 4 < box[1] for t in taken):
                    break
            else:
                continue
            taken.append(box)
            visible = 0.2 if rng.random() < 0.2 else 1.0
            layer = img.copy()
            draw_object(layer, cls, box)
            img = layer if visible == 1.0 else cv2.addWeighted(img, 0.6, layer, 0.4, 0)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1,
                         "bbox": [box[0], box[1], bw, bh], "area": bw * bh, "iscrowd": 0,
                         "track_id": len(taken), "visible": visible, "truncated": False})
        name = f"images/{i:06d}.png"
        cv2.imwrite(str(directory / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h, "episode": 0,
                       "step": i, "t": i * 0.1, "camera": {"name": "synthetic", "kind": "bev"}})
    cats = [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "pedestrian"},
            {"id": 3, "name": "obstacle"}]
    (directory / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": cats}))
    return directory
