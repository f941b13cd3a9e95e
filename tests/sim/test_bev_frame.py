"""The bev camera's frame: world-aligned image, CameraInfo.yaw = the ego's world heading.

Checked on highway-env's roundabout, where the ego drives round (headings far from 0), through
perception.geometry (the code that maps detections back to the ego frame).
"""

from __future__ import annotations

import numpy as np
import pytest

from perception.geometry import boxes_to_ego, ego_to_pixels, world_to_ego
from sim.camera.bev import BevCamera
from sim.make import make_env

TOL = 0.1  # [m] one pixel at 10 px/m: a fully visible box's centre is its object's centre


@pytest.fixture(scope="module")
def roundabout_frames():
    """(CameraInfo, ObjectTruth) for every fully visible, untruncated object of 2 short drives."""
    pairs, headings = [], []
    for seed in (0, 1):
        env = make_env("roundabout-v0", camera=BevCamera())
        _, info = env.reset(seed=seed)
        for _ in range(20):
            headings.append(info["camera"].yaw)
            ego = env.unwrapped.vehicle
            assert info["camera"].yaw == ego.heading  # the contract: the ego's world heading
            pairs += [
                (info["camera"], o) for o in info["objects"] if o.visible == 1.0 and not o.truncated
            ]
            _, _, terminated, truncated, info = env.step(1)
            if terminated or truncated:
                break
        env.close()
    return pairs, np.array(headings)


def test_the_drive_turns(roundabout_frames):
    pairs, headings = roundabout_frames
    wrapped = np.angle(np.exp(1j * headings))
    assert np.ptp(wrapped) > 1.0 and np.abs(wrapped).max() > 1.5  # far from "heading 0"
    assert all(abs(np.angle(np.exp(1j * cam.yaw))) > 0.3 for cam, _ in pairs)


def test_box_centres_map_to_the_objects_ego_position(roundabout_frames):
    pairs, _ = roundabout_frames
    assert len(pairs) >= 12  # enough labelled objects checked (21 on these seeds)
    err = np.array(
        [boxes_to_ego(np.array([o.box_xyxy]), cam)[0] - np.array(o.ego_xy) for cam, o in pairs]
    )
    assert np.hypot(err[:, 0], err[:, 1]).max() < TOL
    # no half-pixel offset between boxes and ego_pixel: the mean error in world axes is ~0
    world = np.array([e @ world_to_ego(cam.yaw).T for e, (cam, _) in zip(err, pairs, strict=True)])
    assert np.abs(world.mean(0)).max() < 0.025


def test_ego_positions_map_inside_their_boxes(roundabout_frames):
    pairs, _ = roundabout_frames
    for cam, o in pairs:
        u, v = ego_to_pixels(np.array([o.ego_xy]), cam)[0]
        x0, y0, x1, y1 = o.box_xyxy
        assert x0 < u < x1 and y0 < v < y1, (o, cam)
        # and back: pixels -> ego frame is the inverse
        assert boxes_to_ego(np.array([[u, v, u, v]]), cam)[0] == pytest.approx(o.ego_xy, abs=1e-9)


def test_image_axes_are_world_axes_not_ego_axes(roundabout_frames):
    """A point 10 m ahead of the ego lies along the ego's world heading in the image."""
    pairs, _ = roundabout_frames
    cam = pairs[0][0]
    u, v = ego_to_pixels(np.array([[10.0, 0.0]]), cam)[0] - np.array(cam.ego_pixel)
    # highway-env: world y (image y, down) is to the right of travel; heading turns x towards y
    expected = 10.0 / cam.metres_per_pixel * np.array([np.cos(cam.yaw), np.sin(cam.yaw)])
    assert (u, v) == pytest.approx(tuple(expected), abs=1e-6)
