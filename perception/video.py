"""Frame sources (any video OpenCV reads, or an image folder), drawing, and H.264 MP4 writing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from perception.decode import Detections
from roadsight.errors import UserInputError
from sim.annotate import draw_boxes
from sim.types import CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class SourceError(UserInputError):
    """A video or image folder cannot be read; the message names it."""


class FrameSource:
    """Iterate (H, W, 3) uint8 RGB frames from a video file or a folder of images (sorted)."""

    def __init__(self, source: str | Path, fps: float = 10.0):
        self.path = Path(source)
        if not self.path.exists():
            raise SourceError(f"source {self.path}: no such file or directory")
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir()
                                if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise SourceError(f"image folder {self.path}: empty (no {', '.join(IMAGE_SUFFIXES)}"
                                  f" files)")
            self.fps, self.count = float(fps), len(self.files)
        else:
            self.files = None
            cap = cv2.VideoCapture(str(self.path))
            ok = cap.isOpened() and cap.read()[0]
            video_fps, n = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            if not ok:
                raise SourceError(f"video {self.path}: unreadable (OpenCV cannot decode a frame; "
                                  f"not a video or an unsupported codec)")
            self.fps = float(video_fps) if video_fps and video_fps > 0 else float(fps)
            self.count = max(n, 0) or None  # some containers do not report a count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for p in self.files:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if img is None:
                    raise SourceError(f"image {p}: unreadable")
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


def draw_detections(image: np.ndarray, dets: Detections) -> np.ndarray:
    """A copy of `image` (RGB) with boxes, class names and scores, drawn like ground truth."""
    names = [CLASSES[int(c)] for c in dets.cls]
    texts = [f"{n} {s:.2f}" for n, s in zip(names, dets.score, strict=True)]
    return draw_boxes(image, dets.boxes, names, texts)


class Mp4Writer:
    """H.264 yuv420p MP4 (browser-playable) via imageio-ffmpeg, renamed into place on close.

    Frames are padded to even sizes (yuv420p) and resized to the first frame's size. As a
    context manager it keeps the file only when the block ends without an error.
    """

    def __init__(self, path: str | Path, fps: float):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self.writer = imageio.get_writer(str(self.tmp), fps=fps, codec="libx264",
                                         macro_block_size=1, pixelformat="yuv420p",
                                         ffmpeg_log_level="error")
        self.size: tuple[int, int] | None = None  # (W, H)
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (w + w % 2, h + h % 2)
        if (w, h) != self.size:
            if (w + w % 2, h + h % 2) == self.size:
                frame = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
            else:
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)  # an error mid-video leaves no half-written file

    def close(self, keep: bool = True) -> None:
        self.writer.close()
        if keep and self.frames:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
