"""Pixels <-> ego frame (x forward, y left, metres) for roadsight's cameras.

bev: the image is world-aligned (highway-env's view): image x is world x, image y is world y
(to the right of travel as highway-env draws it), `metres_per_pixel` apart, with the ego's
centre at `ego_pixel`. `CameraInfo.yaw` is the ego's world heading, which turns world offsets
into the ego frame. A box's centre is the object's centre.

pinhole: the centre of a box's bottom pixel row (u = (x0 + x1) / 2, v = y1 - 0.5: pixel j covers
[j, j + 1]) is where the object meets the road; its ray through `K` and the mount pose
(`mount_xyz`, `yaw`, `pitch`: the conventions of sim/camera/pinhole.py) meets the ground plane
z = 0 at the object's nearest visible ground point. Given the class, that point is pushed
back along the viewing ray by half the class's typical depth to estimate the object's centre.
Rays at or above the horizon never meet the ground: their rows are NaN.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from roadsight.errors import ConfigError
from sim.camera.pinhole import mount_rotation
from sim.camera.raster import project
from sim.truth import ego_rotation
from sim.types import CLASSES, CameraInfo

# [m] an object's typical extent along a viewing ray, per class (CLASSES order): a car ahead is
# seen from behind (its length), a pedestrian or a cone is about as deep as wide
TYPICAL_DEPTH = {"vehicle": 4.5, "pedestrian": 0.5, "obstacle": 0.6}


def world_to_ego(heading: float) -> np.ndarray:
    """(2, 2) rotation taking highway-env world vectors into the frame of a body at `heading`."""
    return ego_rotation(SimpleNamespace(heading=heading))


def _check(camera: CameraInfo) -> None:
    if camera.kind not in ("bev", "pinhole"):
        raise ConfigError(f"camera {camera.name!r}: kind {camera.kind!r}; valid: bev, pinhole")


def boxes_to_ego(boxes_xyxy, camera: CameraInfo, cls=None) -> np.ndarray:
    """(N, 4) xyxy pixel boxes -> (N, 2) ego-frame positions [m] of the objects' centres.

    `cls`: (N,) CLASSES indices; for a pinhole, pushes each ground point back by half the
    class's TYPICAL_DEPTH (None: the nearest ground point itself). bev ignores it.
    """
    _check(camera)
    boxes = np.asarray(boxes_xyxy, float).reshape(-1, 4)
    if camera.kind == "bev":
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        return pixels_to_ego(centre, camera)
    # the contact lies somewhere in the bottom row; its centre removes a half-pixel bias (about
    # 0.4 m at 15 m for the front camera: measured on rendered cones and pedestrians)
    bottom = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3] - 0.5], 1)
    ground = pixels_to_ego(bottom, camera)
    if cls is None:
        return ground
    depth = np.array([TYPICAL_DEPTH[c] for c in CLASSES])[np.asarray(cls, int).reshape(-1)]
    ray = ground - np.asarray(camera.mount_xyz, float)[:2]
    norm = np.linalg.norm(ray, axis=1, keepdims=True)
    return ground + ray / np.maximum(norm, 1e-9) * depth[:, None] / 2


def pixels_to_ego(uv, camera: CameraInfo) -> np.ndarray:
    """(N, 2) pixel coordinates -> (N, 2) ego-frame points [m]: for a pinhole, on the ground."""
    _check(camera)
    uv = np.asarray(uv, float).reshape(-1, 2)
    if camera.kind == "bev":
        offset = (uv - np.asarray(camera.ego_pixel, float)) * camera.metres_per_pixel  # world
        return offset @ world_to_ego(camera.yaw).T
    K = np.asarray(camera.K, float)
    rays = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0], (uv[:, 1] - K[1, 2]) / K[1, 1]], 1)
    rays = np.c_[rays, np.ones(len(uv))] @ mount_rotation(camera.yaw, camera.pitch)  # ego frame
    mount = np.asarray(camera.mount_xyz, float)
    down = rays[:, 2] < -1e-9
    t = np.where(down, -mount[2] / np.where(down, rays[:, 2], -1.0), np.nan)
    return mount[:2] + t[:, None] * rays[:, :2]


def ego_to_pixels(xy, camera: CameraInfo) -> np.ndarray:
    """(N, 2) ego-frame points [m] (on the ground, for a pinhole) -> (N, 2) pixel coordinates.

    The inverse of `pixels_to_ego`; a point behind a pinhole camera gives NaN.
    """
    _check(camera)
    xy = np.asarray(xy, float).reshape(-1, 2)
    if camera.kind == "bev":
        world = xy @ world_to_ego(camera.yaw).T  # the rotation is a reflection: its own inverse
        return np.asarray(camera.ego_pixel, float) + world / camera.metres_per_pixel
    cam = (np.c_[xy, np.zeros(len(xy))] - np.asarray(camera.mount_xyz, float)) @ mount_rotation(
        camera.yaw, camera.pitch
    ).T
    ahead = cam[:, 2] > 1e-9
    uv = project(np.where(ahead[:, None], cam, 1.0), np.asarray(camera.K, float))
    return np.where(ahead[:, None], uv, np.nan)
