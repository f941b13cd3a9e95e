"""Detection datasets written by `roadsight record`: COCO `annotations.json` + `images/*.png`.

`load_coco_dirs` reads and validates one or several dataset directories into `ImageRecord`s;
`DetectionDataset` turns them into network inputs and CenterNet targets (with augmentation for
training); `prepare_image` is the one preprocessing path of training, evaluation and `detect`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from perception.decode import encode_targets
from perception.model import STRIDE
from roadsight.errors import UserInputError
from sim.types import CLASSES

log = logging.getLogger(__name__)


class DatasetError(UserInputError):
    """A dataset file is missing or invalid; the message names the file and the problem."""


@dataclass
class ImageRecord:
    """One image and its ground truth, boxes in the image's pixels."""

    id: int  # unique over all loaded directories
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32 xyxy
    cls: np.ndarray  # (N,) int64 index into CLASSES
    visible: np.ndarray  # (N,) float32 visible fraction 0..1
    # (N,) float32 [m] distance from the ego's centre (|ego_xy|); NaN where the file has no ego_xy
    distance: np.ndarray | None = None
    camera: str | None = None  # the camera's name ("front", "rear", ...) when the file gives it
    dataset: str | None = None  # the dataset directory it was loaded from
    episode: int | None = None  # the recorded episode it belongs to, when the file gives it

    def __post_init__(self):
        if self.distance is None:
            self.distance = np.full(len(self.cls), np.nan, np.float32)


def read_image_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or DatasetError naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"image {path}: missing or not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def prepare_image(image: np.ndarray, preprocessor: Callable) -> tuple[torch.Tensor, object]:
    """The single preprocessing path: (H, W, 3) uint8 RGB -> ((3, H', W') float32, Letterbox).

    Training (`DetectionDataset`), evaluation and `detect` all call this function.
    """
    x, letterbox = preprocessor(image)
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32), letterbox


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (expected a COCO annotations file written by "
                           f"`roadsight record`)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: corrupt JSON ({e})") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: not a COCO file (no list {key!r})")
    return data


def _camera_name(image: dict) -> str | None:
    """The name of the camera an image entry was taken with (sim.coco writes a dict with
    "name"), or None."""
    camera = image.get("camera")
    return camera.get("name") if isinstance(camera, dict) else camera


def load_coco_dir(
    directory: str | Path, id_offset: int = 0, check_images: bool = True
) -> list[ImageRecord]:
    """Read and validate one dataset directory; raise DatasetError naming the file and problem."""
    directory = Path(directory)
    ann_path = directory / "annotations.json"
    data = _load_json(ann_path)
    cat_to_cls = {}
    for cat in data["categories"]:
        if cat.get("name") not in CLASSES:
            raise DatasetError(f"{ann_path}: unknown category {cat!r}; valid names: {CLASSES}")
        cat_to_cls[cat["id"]] = CLASSES.index(cat["name"])
    images: dict[int, dict] = {}
    for im in data["images"]:
        images[im["id"]] = {"im": im, "boxes": [], "cls": [], "vis": [], "dist": []}
    for ann in data["annotations"]:
        where = f"{ann_path}: annotation id={ann.get('id')}"
        entry = images.get(ann.get("image_id"))
        if entry is None:
            raise DatasetError(f"{where}: refers to unknown image_id {ann.get('image_id')}")
        if ann.get("category_id") not in cat_to_cls:
            raise DatasetError(f"{where}: unknown category_id {ann.get('category_id')}; "
                               f"valid ids: {sorted(cat_to_cls)}")
        x, y, w, h = (float(v) for v in ann["bbox"])
        iw, ih = entry["im"]["width"], entry["im"]["height"]
        tol = 0.5  # [px] rounding slack
        if w < 0 or h < 0 or x < -tol or y < -tol or x + w > iw + tol or y + h > ih + tol:
            raise DatasetError(f"{where}: box {ann['bbox']} (xywh) outside its image "
                               f"{entry['im']['file_name']} of {iw}x{ih}")
        entry["boxes"].append([x, y, x + w, y + h])
        entry["cls"].append(cat_to_cls[ann["category_id"]])
        entry["vis"].append(float(ann.get("visible", 1.0)))
        ego_xy = ann.get("ego_xy")
        entry["dist"].append(float(np.hypot(*ego_xy)) if ego_xy is not None else np.nan)
    records = []
    for i, (_, e) in enumerate(sorted(images.items())):
        path = directory / e["im"]["file_name"]
        if check_images and not path.is_file():
            raise DatasetError(f"{ann_path}: image file {path} is missing")
        records.append(ImageRecord(
            id=id_offset + i + 1, path=path, width=int(e["im"]["width"]),
            height=int(e["im"]["height"]),
            boxes=np.asarray(e["boxes"], np.float32).reshape(-1, 4),
            cls=np.asarray(e["cls"], np.int64), visible=np.asarray(e["vis"], np.float32),
            distance=np.asarray(e["dist"], np.float32), camera=_camera_name(e["im"]),
            dataset=str(directory), episode=e["im"].get("episode"),
        ))
    if not records:
        raise DatasetError(f"{ann_path}: no images")
    return records


def load_coco_dirs(directories: str | Path | Sequence[str | Path]) -> list[ImageRecord]:
    """Records of one or several dataset directories, with ids unique across them."""
    if isinstance(directories, (str, Path)):
        directories = [directories]
    records: list[ImageRecord] = []
    for d in directories:
        records += load_coco_dir(d, id_offset=len(records))
    return records


class Augment:
    """Training augmentation on the raw uint8 image (before preprocessing), seeded per sample.

    Args:
        hflip: probability of a horizontal flip (fine for bev; road scenes are mirror-plausible).
        photometric: probability of a random brightness/contrast/saturation jitter.
        corruption: a `RandomCorruption`-like callable (image, rng) -> image, or None.
    """

    def __init__(self, hflip: float = 0.5, photometric: float = 0.5, corruption=None):
        self.hflip, self.photometric, self.corruption = hflip, photometric, corruption

    def __call__(self, image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator):
        if self.hflip and rng.random() < self.hflip:
            w = image.shape[1]
            image = np.ascontiguousarray(image[:, ::-1])
            boxes = boxes.copy()
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        if self.photometric and rng.random() < self.photometric:
            img = image.astype(np.float32)
            gray = img.mean(axis=2, keepdims=True)
            img = gray + (img - gray) * rng.uniform(0.6, 1.4)  # saturation
            img = (img - img.mean()) * rng.uniform(0.7, 1.3) + img.mean()  # contrast
            img = img + rng.uniform(-30, 30)  # brightness [grey levels]
            image = img.clip(0, 255).astype(np.uint8)
        if self.corruption is not None:
            image = self.corruption(image, rng)
        return image, boxes


class DetectionDataset(Dataset):
    """Records -> (input (3, H, W) float32, targets dict); objects below `min_visible` ignored.

    Each sample's augmentation is seeded from (seed, epoch, index), so results do not depend on
    the number of DataLoader workers. Call `set_epoch` before each epoch.
    """

    def __init__(self, records: list[ImageRecord], preprocessor: Callable,
                 min_visible: float = 0.3, augment: Augment | None = None, seed: int = 0,
                 max_objects: int = 128, stride: int = STRIDE, neighbour_weight: float = 0.0):
        self.records, self.preprocessor = records, preprocessor
        self.neighbour_weight = neighbour_weight  # box regression at the cells around centres
        self.stride = stride  # the detector's output stride (CenterNet.stride)
        self.min_visible, self.augment, self.seed = min_visible, augment, seed
        self.max_objects, self.epoch = max_objects, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r = self.records[i]
        image, boxes = read_image_rgb(r.path), r.boxes
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            image, boxes = self.augment(image, boxes, rng)
        x, letterbox = prepare_image(image, self.preprocessor)
        boxes_in = letterbox.to_input(boxes).reshape(-1, 4) if len(boxes) else boxes
        keep = r.visible >= self.min_visible
        t = encode_targets(boxes_in[keep], r.cls[keep], tuple(x.shape[1:]),
                           max_objects=self.max_objects,
                           ignore_boxes=boxes_in[~keep], ignore_cls=r.cls[~keep],
                           stride=self.stride, neighbour_weight=self.neighbour_weight)
        targets = {k: torch.from_numpy(v) for k, v in t.items()}
        targets["image_id"] = torch.tensor(r.id)
        return x, targets


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int, seed: int,
                device: torch.device) -> DataLoader:
    """DataLoader with seeded shuffling; pinned memory only when training on CUDA."""
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      pin_memory=device.type == "cuda", generator=g, drop_last=False)
