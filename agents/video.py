"""Evaluation video frames: camera view(s) with detections and ground truth, a bev panel, a strip.

One frame (uint8 RGB, even width and height) per policy decision:
- the camera image, or a rig's images side by side, enlarged `FrameLayout.scale` times, with the
  perception's tracks drawn solid in their class colour (`sim.annotate.CLASS_COLORS`) and labelled
  "class score #track_id", and the ground-truth boxes drawn under them as thin grey dashes;
- an optional bev panel (a `sim.camera.bev.BevCamera` image of the same step), right of or below
  the camera row;
- a strip at the bottom: time [s], speed [m/s], the action's name, the step reward and its named
  terms (`info["rewards"]`);
- on a crash step, a red COLLISION banner across the top naming the class that was hit (and an
  optional note, e.g. the crash's attribution).
`episode_writer` writes one episode's frames to `DIR/videos/episode_XXX.mp4` (H.264, yuv420p) at
the simulation's real frame rate (`policy_fps`), atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from perception.video import Mp4Writer
from roadsight.errors import ConfigError
from sim.annotate import draw_boxes
from sim.types import CLASSES, ObjectTruth

TRUTH_COLOR = (200, 200, 200)  # ground-truth boxes: light grey dashes
BANNER_COLOR = (200, 0, 0)  # crash banner: red, darker than the pedestrian class colour
STRIP_COLOR = (24, 24, 24)
TEXT_COLOR = (240, 240, 240)
FONT = cv2.FONT_HERSHEY_SIMPLEX
DASH = 4  # [px] dash and gap length of ground-truth boxes
BEV_POSITIONS = ("right", "below")


class TrackLike(Protocol):
    """What a drawn detection needs (perception.track.Track has it)."""

    track_id: int
    cls: int
    box_xyxy: np.ndarray
    score: float


@dataclass
class FrameLayout:
    """Which panels a frame shows, and how large.

    scale: integer enlargement of the camera image(s) (nearest neighbour); bev_scale: factor on
    the bev panel's own size; font: text scale of the strip and banner (OpenCV units), multiplied
    by `scale` so the text keeps its size relative to the image.
    """

    detections: bool = True
    truth: bool = True
    bev: bool = True  # show the bev panel when one is given
    bev_position: str = "right"  # right | below
    scale: int = 1
    bev_scale: float = 1.0
    font: float = 0.4

    def __post_init__(self) -> None:
        if self.bev_position not in BEV_POSITIONS:
            raise ConfigError(f"video.bev_position: {self.bev_position!r} is not one of "
                              f"{', '.join(BEV_POSITIONS)}")
        if int(self.scale) != self.scale or self.scale < 1:
            raise ConfigError(f"video.scale: {self.scale!r} must be an integer >= 1")
        for key in ("bev_scale", "font"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"video.{key}: {getattr(self, key)!r} must be > 0")


@dataclass
class StepText:
    """What the strip says about one step."""

    t: float  # [s] simulation time
    speed: float  # [m/s]
    action: str  # e.g. FASTER (see `action_name`)
    reward: float | None = None
    rewards: dict[str, float] = field(default_factory=dict)  # named terms, info["rewards"]
    crashed_into: str | None = None  # class hit on this step: the COLLISION banner
    note: str = ""  # shown in the banner, e.g. "perception miss"

    @classmethod
    def from_info(cls, info: Mapping[str, Any], t: float, action: str,
                  reward: float | None = None, note: str = "") -> StepText:
        """From a step's info: the ego's speed (`info["ego"]`, else `info["speed"]`), the
        reward terms, and `info["crashed_into"]` (or "object" for a crash of unknown class)."""
        ego = info.get("ego")
        speed = ego.speed if ego is not None else info.get("speed", 0.0)
        into = info.get("crashed_into") or ("object" if info.get("crashed") else None)
        return cls(float(t), float(speed), action, reward, dict(info.get("rewards", {})),
                   into, note)


def action_name(env, action) -> str:
    """The name of a discrete meta-action (LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER) in
    `env`'s action type, or the action's value as text for other action types."""
    actions = getattr(getattr(env.unwrapped, "action_type", None), "actions", None)
    if actions is None:
        return str(np.asarray(action).round(2).tolist())
    return actions[int(np.asarray(action).item())]


def policy_fps(env) -> float:
    """The simulation's real frame rate for a video of one frame per decision [Hz]."""
    return float(env.unwrapped.config["policy_frequency"])


def episode_path(out_dir: str | Path, episode: int) -> Path:
    """DIR/videos/episode_XXX.mp4."""
    return Path(out_dir) / "videos" / f"episode_{episode:03d}.mp4"


def episode_writer(out_dir: str | Path, episode: int, fps: float) -> Mp4Writer:
    """An H.264 writer for one episode's frames at `fps`; written to a temporary name and
    renamed into place on close (use it as a context manager: an error leaves no file)."""
    if not fps > 0:
        raise ConfigError(f"video fps: {fps!r} must be > 0 (the env's policy_frequency)")
    path = episode_path(out_dir, episode)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Mp4Writer(path, fps)


def compose_frame(
    images: np.ndarray | Sequence[np.ndarray],
    step: StepText,
    tracks: Sequence[TrackLike] | Sequence[Sequence[TrackLike]] | None = None,
    truth: Sequence[ObjectTruth] | Mapping[str, Sequence[ObjectTruth]] | None = None,
    bev: np.ndarray | None = None,
    layout: FrameLayout | None = None,
) -> np.ndarray:
    """One evaluation frame (H, W, 3) uint8 RGB with even H and W.

    images: one (H, W, 3) image or a rig's (n, H, W, 3) / list of images; tracks and truth: for
    one image a list, for a rig one list per image (truth may be info["objects"]'s dict).
    """
    layout = layout or FrameLayout()
    views = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    per_view_tracks = _per_view(tracks, len(views), "tracks")
    per_view_truth = _per_view(truth, len(views), "truth")
    panels = [_camera_panel(v, tr, gt, layout)
              for v, tr, gt in zip(views, per_view_tracks, per_view_truth, strict=True)]
    out = _join(panels, axis=1)
    if bev is not None and layout.bev:
        panel = bev if layout.bev_scale == 1 else cv2.resize(
            bev, None, fx=layout.bev_scale, fy=layout.bev_scale, interpolation=cv2.INTER_AREA)
        out = _join([out, panel], axis=1 if layout.bev_position == "right" else 0)
    font = layout.font * layout.scale
    if step.crashed_into:
        _banner(out, step, font)
    out = _join([out, _strip(step, out.shape[1], font)], axis=0)
    h, w = out.shape[:2]
    return cv2.copyMakeBorder(out, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def _per_view(items, n: int, key: str) -> list[list]:
    if items is None:
        return [[] for _ in range(n)]
    if isinstance(items, Mapping):
        items = list(items.values())
    items = list(items)
    if n == 1 and not (items and isinstance(items[0], Sequence | Mapping)):
        return [items]
    if len(items) != n:
        raise ValueError(f"{key}: {len(items)} lists for {n} camera images (one list per image)")
    return [list(x) for x in items]


def _camera_panel(image: np.ndarray, tracks: list, truth: list, layout: FrameLayout) -> np.ndarray:
    """The image with dashed ground truth (at the camera's resolution) under the tracks."""
    image = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if layout.truth:
        for obj in truth:
            _dashed_rect(image, obj.box_xyxy, TRUTH_COLOR)
    shown = tracks if layout.detections else []
    boxes = np.array([np.asarray(t.box_xyxy, float) for t in shown]).reshape(-1, 4)
    names = [CLASSES[int(t.cls)] for t in shown]
    texts = [f"{n} {t.score:.2f} #{t.track_id}" for n, t in zip(names, shown, strict=True)]
    return draw_boxes(image, boxes, names, texts, scale=int(layout.scale))


def _dashed_rect(image: np.ndarray, box, color: tuple[int, int, int]) -> None:
    """A 1 px dashed rectangle on the pixels that `sim.annotate.draw_boxes` would outline."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x1, y1 = x1 - 1, y1 - 1
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True),
                                    (y0, y1, x0, False), (y0, y1, x1, False)):
        for s in range(a, b + 1, 2 * DASH):
            e = min(s + DASH - 1, b)
            p, q = ((s, fixed), (e, fixed)) if horizontal else ((fixed, s), (fixed, e))
            cv2.line(image, p, q, color, 1, cv2.LINE_8)


def _join(panels: list[np.ndarray], axis: int) -> np.ndarray:
    """Panels side by side (axis 1) or stacked (axis 0), padded with black, top-left aligned."""
    other = 1 - axis
    size = max(p.shape[other] for p in panels)
    padded = []
    for p in panels:
        pad = size - p.shape[other]
        bottom, right = (pad, 0) if other == 0 else (0, pad)
        padded.append(cv2.copyMakeBorder(p, 0, bottom, 0, right, cv2.BORDER_CONSTANT,
                                         value=(0, 0, 0)))
    return np.concatenate(padded, axis=axis)


def _line_height(font: float) -> int:
    return int(round(36 * font))


def _strip(step: StepText, width: int, font: float) -> np.ndarray:
    """Text lines: time, speed, action and reward, then the reward terms wrapped to `width`.

    Numbers have fixed widths, so an episode's frames keep one size."""
    head = f"t {step.t:6.1f} s   speed {step.speed:5.1f} m/s   action {step.action}"
    if step.reward is not None:
        head += f"   reward {step.reward:+.2f}"
    lines, line = [head], ""
    for name, value in step.rewards.items():
        item = f"{name} {float(value):+.2f}"
        candidate = f"{line}   {item}" if line else item
        if line and cv2.getTextSize(candidate, FONT, font, 1)[0][0] > width - 8:
            lines.append(line)
            candidate = item
        line = candidate
    if line:
        lines.append(line)
    lh = _line_height(font)
    strip = np.full((lh * len(lines) + lh // 2, width, 3), STRIP_COLOR, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(strip, text, (4, lh * (i + 1)), FONT, font, TEXT_COLOR, 1, cv2.LINE_AA)
    return strip


def _banner(image: np.ndarray, step: StepText, font: float) -> None:
    """A red band across the top of `image` (in place): COLLISION, the class hit, the note."""
    lh = _line_height(font)
    cv2.rectangle(image, (0, 0), (image.shape[1] - 1, lh + lh // 2), BANNER_COLOR, cv2.FILLED)
    text = f"COLLISION: {step.crashed_into}" + (f" ({step.note})" if step.note else "")
    cv2.putText(image, text, (4, lh), FONT, font * 1.2, (255, 255, 255), 1, cv2.LINE_AA)
