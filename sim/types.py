"""Records that sim/ hands to perception/ and agents/: one documented contract.

Coordinates (see README "Design"):
- world: highway-env metres, x along the road, y to the right of travel as highway-env draws it;
- ego frame: origin at the ego's centre, x forward, y left, metres; velocities in m/s;
- image: pixels, origin top-left, x right, y down; boxes are xyxy floats in pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "obstacle")
"""Detection classes, in the order of their COCO category ids (1, 2, 3)."""


@dataclass
class ObjectTruth:
    """Exact ground truth for one object seen in one frame."""

    track_id: int  # stable across the episode
    cls: str  # one of CLASSES
    box_xyxy: tuple[float, float, float, float]  # visible extent in pixels
    visible: float  # visible fraction of the object's silhouette, 0..1
    truncated: bool  # the image edge cuts the object
    ego_xy: tuple[float, float]  # [m] ego frame (x forward, y left)
    ego_vxy: tuple[float, float]  # [m/s] ego frame
    heading: float  # [rad] relative to the ego's heading, counter-clockwise in the ego frame
    size_lw: tuple[float, float]  # [m] length, width
    kind: str = ""  # finer label: car, van, truck, adult, child, cone, debris, stalled_car, ...

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class EgoState:
    """The ego's own odometry (a car knows these); `info["ego"]` of CameraObservation."""

    speed: float  # [m/s] signed forward speed
    heading_to_lane: float  # [rad] ego heading minus lane heading, counter-clockwise (ego frame,
    # y left) positive, wrapped to [-pi, pi)
    lateral_offset: float  # [m] from the current lane's centre line, LEFT positive
    world_xy: tuple[float, float]  # [m] highway-env world position (odometry/GPS)
    world_heading: float  # [rad] highway-env world heading (as highway-env stores it)
    lane_index: int  # index of the current lane within its road segment
    target_speed: float = 0.0  # [m/s] the speed controller's setpoint (cruise control)
    lanes_left: int = 0  # lanes beside the current one on the left (the map knows)
    lanes_right: int = 0  # and on the right


@dataclass
class CameraInfo:
    """What perception needs to go from pixels back to the ego frame.

    bev: the image is world-aligned, not ego-aligned: image x is highway-env's world x, image y
    its world y (to the right of travel), `metres_per_pixel` apart; `ego_pixel` (x, y) is the
    ego's centre in box units (pixel i covers [i, i + 1]); `yaw` [rad] is the ego's WORLD
    heading (highway-env's `vehicle.heading`), so an image offset d (px) is the ego-frame point
    `sim.truth.ego_rotation(ego) @ (d * metres_per_pixel)` (see perception.geometry).
    pinhole: `K` (3x3), the mount pose in the ego frame (`mount_xyz` [m]; `yaw` [rad] the
    MOUNT's yaw, counter-clockwise from ego-forward; `pitch` [rad], > 0 looks down).
    """

    name: str  # rig member name: bev, front, left, right, rear, ...
    kind: str  # "bev" or "pinhole"
    width: int  # [px]
    height: int  # [px]
    metres_per_pixel: float | None = None
    ego_pixel: tuple[float, float] | None = None
    K: list[list[float]] | None = None
    mount_xyz: tuple[float, float, float] | None = None
    yaw: float | None = None
    pitch: float | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Frame:
    """One camera image with its ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    objects: list[ObjectTruth]
    camera: CameraInfo
    t: float  # [s] simulation time
    extras: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # per-pixel: instance, semantic, depth
