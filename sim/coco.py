"""Writing frames and their ground truth as a COCO dataset (images/ + annotations.json)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from roadsight.io import atomic_write_bytes, atomic_write_json
from sim.types import CLASSES, Frame

CATEGORIES = [
    {"id": i + 1, "name": name, "supercategory": "road_user"} for i, name in enumerate(CLASSES)
]
CATEGORY_ID = {name: i + 1 for i, name in enumerate(CLASSES)}
EXTRA_KINDS = ("depth", "semantic", "instance")


def _png(image: np.ndarray) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _plain(value: Any) -> Any:
    """`value` as JSON types: numpy scalars and arrays become numbers and lists, anything else
    that JSON cannot hold its repr."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def env_info(env) -> dict:
    """The env id and its resolved config (defaults merged with the overrides), for a dataset's
    `info`: `{"env": "roadsight/urban-crossing-v0", "env_config": {...}}`."""
    spec = getattr(env.unwrapped, "spec", None) or getattr(env, "spec", None)
    return {"env": getattr(spec, "id", None),
            "env_config": _plain(getattr(env.unwrapped, "config", {}))}


class CocoWriter:
    """Accumulates frames; images are written as they come, annotations.json once, atomically.

    COCO fields plus roadsight's: image entries carry `episode`, `step`, `t`, `seed` and the
    `camera` (CameraInfo); annotations carry `track_id`, `visible`, `truncated`, `ego_xy`,
    `ego_vxy`, `heading`, `size_lw`, `kind`. `info` carries what `roadsight record` adds
    (`env_info`: the env id and its resolved config).
    """

    def __init__(self, root: str | Path, description: str = "roadsight record",
                 info: dict | None = None):
        self.root = Path(root)
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.description = description
        self.info = dict(info or {})  # extra `info` entries, e.g. `env_info(env)`

    def add(self, frame: Frame, episode: int, step: int, seed: int | None) -> int:
        image_id = len(self.images) + 1
        stem = f"{image_id - 1:06d}"
        file_name = f"images/{stem}.png"
        atomic_write_bytes(self.root / file_name, _png(frame.image))
        entry = {
            "id": image_id,
            "file_name": file_name,
            "width": int(frame.image.shape[1]),
            "height": int(frame.image.shape[0]),
            "episode": episode,
            "step": step,
            "t": round(frame.t, 6),
            "seed": seed,
            "camera": frame.camera.to_json(),
        }
        if frame.extras:
            entry["extras"] = self._write_extras(stem, frame.extras)
        self.images.append(entry)
        for obj in frame.objects:
            x0, y0, x1, y1 = obj.box_xyxy
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_ID[obj.cls],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "track_id": obj.track_id,
                    "visible": round(obj.visible, 4),
                    "truncated": obj.truncated,
                    "kind": obj.kind,
                    "ego_xy": [round(v, 4) for v in obj.ego_xy],
                    "ego_vxy": [round(v, 4) for v in obj.ego_vxy],
                    "heading": round(obj.heading, 5),
                    "size_lw": [round(v, 4) for v in obj.size_lw],
                }
            )
        return image_id

    def _write_extras(self, stem: str, extras: dict[str, np.ndarray]) -> dict[str, str]:
        written = {}
        for kind, array in sorted(extras.items()):
            if kind == "depth":  # float metres: lossless, compressed
                name = f"extras/{stem}_depth.npz"
                buf = io.BytesIO()
                np.savez_compressed(buf, depth=array.astype(np.float32))
                atomic_write_bytes(self.root / name, buf.getvalue())
            else:  # ids: 8-bit classes, 16-bit instances
                name = f"extras/{stem}_{kind}.png"
                dtype = np.uint8 if kind == "semantic" else np.uint16
                atomic_write_bytes(self.root / name, _png(array.astype(dtype)))
            written[kind] = name
        return written

    def save(self) -> Path:
        path = self.root / "annotations.json"
        atomic_write_json(
            path,
            {
                "info": {"description": self.description, "version": "1.0", **self.info},
                "licenses": [],
                "categories": CATEGORIES,
                "images": self.images,
                "annotations": self.annotations,
            },
            indent=None,
        )
        return path
