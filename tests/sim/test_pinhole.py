"""Pinhole cameras: projection maths, occlusion ground truth, rigs, config errors, clipping."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import sim  # noqa: F401  (registers the envs)
from sim.appearance import Style
from sim.camera.examples import CONF, EXAMPLES, render_examples
from sim.camera.ground import MARKING
from sim.camera.pinhole import PinholeCamera, mount_rotation
from sim.camera.rig import CameraRig
from sim.objects import CrossingPlan, Pedestrian, StaticObstacle
from sim.truth import SceneRegistry

EGO_X = 40.0  # [m] world x of the ego in hand-made scenes (straight road, no crosswalk before 60 m)


def car(length=4.5, width=1.8, height=1.5, kind="car") -> Style:
    return Style("vehicle", kind, length, width, height, (170, 30, 35), (235, 235, 235))


def van() -> Style:
    return Style("vehicle", "van", 5.5, 2.1, 2.3, (235, 235, 235), (30, 30, 35))


def person(height=1.7) -> Style:
    return Style("pedestrian", "adult", 0.5, 0.7, height, (40, 70, 160), (25, 20, 15))


@pytest.fixture
def env():
    """A real urban-crossing scene emptied of everything but the ego, at x = EGO_X, heading 0."""
    e = gym.make("roadsight/urban-crossing-v0")
    e.reset(seed=0)
    road, ego = e.unwrapped.road, e.unwrapped.vehicle
    road.vehicles[:] = [ego]
    road.objects[:] = []
    ego.position = np.array([EGO_X, 0.0])
    ego.heading = 0.0
    yield e
    e.close()


def place(env, style: Style, ego_xy, heading=0.0):
    """Add a static object (parked car, person...) at `ego_xy` [m] in the ego frame."""
    road, ego = env.unwrapped.road, env.unwrapped.vehicle
    world = ego.position + np.array([ego_xy[0], -ego_xy[1]])  # ego y is left, world y right
    if style.cls == "pedestrian":
        plan = CrossingPlan(world[0], -1, (-1.75, 5.25), 3.0, True)
        obj = Pedestrian(road, world, style, plan, 1.2, 3.0, 10.0)
        obj.heading = heading
    else:
        obj = StaticObstacle(road, world, style, heading)
    road.objects.append(obj)
    return obj


def truth_of(frame, registry, obj):
    tid = registry.track_id(obj)
    return next((o for o in frame.objects if o.track_id == tid), None)


# -- projection maths -------------------------------------------------------------------------
def test_projection_matches_cv2_project_points():
    cam = PinholeCamera(
        width=640,
        height=360,
        fx=500.0,
        fy=480.0,
        cx=300.0,
        cy=190.0,
        mount_x=1.0,
        mount_y=0.3,
        mount_z=1.6,
        yaw_deg=25.0,
        pitch_deg=8.0,
    )
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(5, 60, 50), rng.uniform(-10, 30, 50), rng.uniform(-1, 4, 50)]
    pts = pts[cam.to_camera(pts)[:, 2] > 1.0]
    R = mount_rotation(np.radians(25.0), np.radians(8.0))
    rvec, _ = cv2.Rodrigues(R)
    tvec = -R @ cam.mount
    ref, _ = cv2.projectPoints(pts, rvec, tvec, cam.K, None)
    assert len(pts) > 20
    np.testing.assert_allclose(cam.project(pts), ref.reshape(-1, 2), atol=1e-6)


def test_yaw_convention_left_is_plus_90():
    cam = PinholeCamera(yaw_deg=90.0, mount_x=0.0, mount_y=0.0, mount_z=1.5)
    # a point 10 m to the left of the ego at camera height is on the optical axis
    np.testing.assert_allclose(
        cam.project(np.array([[0.0, 10.0, 1.5]]))[0], cam.K[:2, 2], atol=1e-9
    )


# -- occlusion and ground truth ---------------------------------------------------------------
def test_pedestrian_fully_behind_parked_van_is_not_labelled(env):
    reg, cam = SceneRegistry(0), PinholeCamera()
    parked = place(env, van(), (15.0, 0.0))
    ped = place(env, person(1.7), (19.0, 0.0))
    frame = cam.frames(env, reg, extras=("instance",))[0]
    assert truth_of(frame, reg, parked) is not None
    assert truth_of(frame, reg, ped) is None
    assert not (frame.extras["instance"] == reg.track_id(ped)).any()
    env.unwrapped.road.objects.remove(parked)  # the same person alone is plainly visible
    alone = truth_of(cam.frames(env, reg)[0], reg, ped)
    assert alone is not None and alone.visible > 0.95


def test_pedestrian_half_hidden_has_box_over_visible_half(env):
    reg, cam = SceneRegistry(0), PinholeCamera()
    v = van()
    x_van, x_ped = 14.0, 18.0
    parked = place(env, v, (x_van, 0.0))
    # put the person's centre on the ray through the van's right rear corner
    rear = x_van - v.length / 2 - cam.mount[0]
    y_ped = -v.width / 2 * (x_ped - cam.mount[0]) / rear
    ped = place(env, person(1.6), (x_ped, y_ped), heading=np.pi / 2)
    env.unwrapped.road.objects.remove(parked)
    full = truth_of(cam.frames(env, reg)[0], reg, ped)
    env.unwrapped.road.objects.append(parked)
    half = truth_of(cam.frames(env, reg)[0], reg, ped)
    assert full is not None and half is not None
    w_full = full.box_xyxy[2] - full.box_xyxy[0]
    w_half = half.box_xyxy[2] - half.box_xyxy[0]
    assert 0.3 < w_half / w_full < 0.7
    assert 0.3 < half.visible < 0.7
    assert half.box_xyxy[2] == pytest.approx(full.box_xyxy[2], abs=1.0)  # the right half shows
    assert half.box_xyxy[1] == pytest.approx(full.box_xyxy[1], abs=1.0)
    assert not half.truncated


def test_vehicle_ahead_is_centred_and_shrinks_with_distance(env):
    reg, cam = SceneRegistry(0), PinholeCamera()
    lead = place(env, car(), (15.0, 0.0))
    boxes = []
    for x in (15.0, 30.0, 60.0):
        lead.position = env.unwrapped.vehicle.position + np.array([x, 0.0])
        t = truth_of(cam.frames(env, reg)[0], reg, lead)
        assert t is not None and t.visible > 0.95 and not t.truncated
        boxes.append(np.array(t.box_xyxy))
        assert (t.box_xyxy[0] + t.box_xyxy[2]) / 2 == pytest.approx(cam.width / 2, abs=1.5)
        assert t.ego_xy[0] == pytest.approx(x)
    widths = [b[2] - b[0] for b in boxes]
    assert widths[0] > widths[1] > widths[2]
    # pinhole: size ~ 1 / distance to the car's rear face
    d = [x - 2.25 - cam.mount[0] for x in (15.0, 30.0, 60.0)]
    assert widths[0] / widths[1] == pytest.approx(d[1] / d[0], rel=0.15)


def test_vanishing_point_of_lane_lines_is_on_the_horizon(env):
    cam = PinholeCamera(mount_y=0.0)
    frame = cam.frames(env, SceneRegistry(0))[0]
    marking = (frame.image == np.array(MARKING, np.uint8)).all(-1).astype(np.uint8)
    # the two continuous road-edge lines are the two largest painted components (dashes are small)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(marking)
    biggest = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    assert len(biggest) == 2 and stats[biggest, cv2.CC_STAT_AREA].min() > 100
    lines = []
    for k in biggest:
        ys, xs = np.nonzero(labels == k)
        lines.append(np.polyfit(ys + 0.5, xs + 0.5, 1))  # u = a v + b
    (a1, b1), (a2, b2) = lines
    v_star = (b2 - b1) / (a1 - a2)
    assert v_star == pytest.approx(cam.horizon_row(), abs=1.5)
    assert a1 * v_star + b1 == pytest.approx(cam.width / 2, abs=2.0)  # heading along the road


def test_surround_cameras_each_see_the_object_in_their_direction(env):
    rig = instantiate(OmegaConf.load(CONF / "surround.yaml"))
    assert rig.names == ("front", "left", "right", "rear")
    reg = SceneRegistry(0)
    objs = {
        "front": place(env, car(), (15.0, 0.0)),
        "left": place(env, car(), (0.5, 9.0), 1.57),
        "right": place(env, car(), (0.5, -9.0), 1.57),
        "rear": place(env, car(), (-15.0, 0.0)),
    }
    frames = rig.frames(env, reg)
    assert [f.camera.name for f in frames] == list(rig.names)
    for frame in frames:
        seen = {o.track_id for o in frame.objects}
        assert seen == {reg.track_id(objs[frame.camera.name])}, frame.camera.name
        (t,) = frame.objects
        assert abs((t.box_xyxy[0] + t.box_xyxy[2]) / 2 - 160) < 20


def test_frames_are_not_blank_and_extras_are_consistent(env):
    reg, cam = SceneRegistry(0), PinholeCamera()
    lead = place(env, car(), (12.0, 0.0))
    place(env, person(), (20.0, -3.5))
    frame = cam.frames(env, reg, extras=("depth", "semantic", "instance"))[0]
    img = frame.image
    assert img.shape == (160, 320, 3) and img.dtype == np.uint8
    assert img[:40].mean(axis=(0, 1))[2] > img[:40].mean(axis=(0, 1))[0]  # blue sky on top
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 10
    depth, sem, inst = (frame.extras[k] for k in ("depth", "semantic", "instance"))
    assert depth.dtype == np.float32 and sem.dtype == np.uint8 and inst.dtype == np.int32
    assert np.isinf(depth[:20]).all() and np.isfinite(depth[-20:]).all()
    t = truth_of(frame, reg, lead)
    x0, y0, x1, y1 = (int(v) for v in t.box_xyxy)
    mine = inst == reg.track_id(lead)
    assert mine.sum() > 100 and (sem[mine] == 1).all()
    ys, xs = np.nonzero(mine)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
    # z-depth of the car's rear face: x distance from the camera
    assert np.median(depth[mine]) == pytest.approx(12.0 - 2.25 - cam.mount[0], abs=0.6)
    assert set(np.unique(sem)) >= {0, 1, 2}
    with pytest.raises(ValueError, match="unknown extras"):
        cam.frames(env, reg, extras=("normals",))


def test_object_straddling_the_camera_plane_is_clipped(env):
    reg, cam = SceneRegistry(0), PinholeCamera()
    # a truck alongside: from 3.3 m behind to 4.7 m ahead of the camera, 2.3 m to the left
    truck = place(env, car(9.0, 2.5, 3.4, "truck"), (cam.mount[0] + 0.7, 2.3))
    frame = cam.frames(env, reg)[0]
    t = truth_of(frame, reg, truck)
    assert t is not None and t.truncated
    x0, y0, x1, y1 = t.box_xyxy
    assert 0 <= x0 < x1 <= cam.width and 0 <= y0 < y1 <= cam.height
    assert x0 == 0 and 0 < t.visible <= 1
    # the camera inside another car (it sees that car's floor and bonnet): nothing breaks
    place(env, car(), (cam.mount[0], 0.0))
    for t in cam.frames(env, reg)[0].objects:
        x0, y0, x1, y1 = t.box_xyxy
        assert 0 <= x0 < x1 <= cam.width and 0 <= y0 < y1 <= cam.height and 0 < t.visible <= 1


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"fov_deg": 200}, "camera.fov_deg"),
        ({"fov_deg": 1}, "camera.fov_deg"),
        ({"width": 0}, "camera.width"),
        ({"height": -16}, "camera.height"),
        ({"mount_z": 0.0}, "camera.mount_z"),
        ({"mount_z": -1.0}, "camera.mount_z"),
        ({"near": 0.0}, "camera.near"),
        ({"far": 0.05}, "camera.far"),
    ],
)
def test_bad_config_fails_naming_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        PinholeCamera(**kwargs)


def test_configs_instantiate_and_report_bad_values():
    front = instantiate(OmegaConf.load(CONF / "front.yaml"))
    assert front.names == ("front",) and front.image_shape == (160, 320, 3)
    cfg = OmegaConf.load(CONF / "front.yaml")
    cfg.fov_deg = 200
    with pytest.raises(Exception, match=r"camera\.fov_deg must be in \(1, 179\), got 200"):
        instantiate(cfg)
    with pytest.raises(ValueError, match="unique names"):
        CameraRig([front, front])


def test_example_frames_regenerate(tmp_path):
    paths = render_examples(tmp_path, scale=1)
    assert [p.name for p in paths] == [e[0] for e in EXAMPLES]
    for p in paths:
        img = cv2.imread(str(p))
        assert img is not None and img.std() > 20
