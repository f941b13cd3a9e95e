"""Evaluation frames and videos: boxes where they belong, crash banner, H.264 at the env rate."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from agents.video import (
    BANNER_COLOR,
    DASH,
    TRUTH_COLOR,
    FrameLayout,
    StepText,
    action_name,
    compose_frame,
    episode_path,
    episode_writer,
    policy_fps,
)
from perception.track import Track
from roadsight.errors import ConfigError
from sim.annotate import CLASS_COLORS
from sim.camera.bev import BevCamera
from sim.make import make_env
from sim.truth import SceneRegistry
from sim.types import CLASSES, ObjectTruth

GREY = (90, 90, 90)
STEP = StepText(t=1.5, speed=7.25, action="FASTER", reward=0.4,
                rewards={"progress": 0.8, "collision": 0.0})


def _track(cls: str, box, track_id: int = 7, score: float = 0.9) -> Track:
    return Track(track_id, CLASSES.index(cls), np.array(box, float), np.zeros(2), np.zeros(2),
                 score, 3, 3, 0)


def _truth(cls: str, box, track_id: int = 1) -> ObjectTruth:
    return ObjectTruth(track_id, cls, tuple(box), 1.0, False, (10.0, 0.0), (0.0, 0.0), 0.0,
                       (4.0, 2.0))


def _image(h: int = 100, w: int = 160) -> np.ndarray:
    return np.full((h, w, 3), GREY, np.uint8)


def _episode(seed: int, steps: int) -> tuple[list[np.ndarray], float]:
    """Composed frames of a real urban-crossing-v0 drive (bev camera, tracks from the truth)."""
    env = make_env("roadsight/urban-crossing-v0", {"pedestrians_count": 6}, BevCamera())
    panel, registry = BevCamera(width=128, height=64, scaling=3.0), SceneRegistry(seed)
    image, info = env.reset(seed=seed)
    frames = []
    for _ in range(steps):
        image, reward, _, _, info = env.step(3)  # FASTER
        tracks = [_track(o.cls, o.box_xyxy, o.track_id) for o in info["objects"]]
        step = StepText.from_info(info, env.unwrapped.time, action_name(env, 3), reward)
        bev = panel.frames(env, registry)[0].image
        frames.append(compose_frame(image, step, tracks, info["objects"], bev))
    fps = policy_fps(env)
    env.close()
    return frames, fps


def test_episode_mp4_is_h264_at_the_policy_rate_and_frames_repeat(tmp_path):
    frames, fps = _episode(seed=5, steps=5)
    assert fps == 2.0  # urban-crossing-v0 decides at 2 Hz
    h, w = frames[0].shape[:2]
    assert h % 2 == 0 and w % 2 == 0 and w == 512 + 128  # camera, bev panel to its right
    with episode_writer(tmp_path, 3, fps) as writer:
        for frame in frames:
            writer.append(frame)
    path = tmp_path / "videos" / "episode_003.mp4"
    assert episode_path(tmp_path, 3) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["episode_003.mp4"]  # no temp left
    with imageio.get_reader(str(path)) as reader:
        meta = reader.get_meta_data()
        decoded = [frame for frame in reader]  # (len() is inf for a stream)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == pytest.approx(2.0) and meta["size"] == (w, h)
    assert len(decoded) == 5
    assert np.abs(decoded[2].astype(int) - frames[2]).mean() < 4  # the composed picture
    again, _ = _episode(seed=5, steps=5)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(frames, again, strict=True))


def test_detections_take_their_class_colour_and_truth_is_dashed_grey():
    tracks = [_track("pedestrian", (20, 30, 50, 80)), _track("vehicle", (60, 10, 100, 40))]
    truth = [_truth("vehicle", (110, 60, 150, 95))]
    frame = compose_frame(_image(), STEP, tracks, truth, layout=FrameLayout())
    assert tuple(frame[55, 20]) == CLASS_COLORS["pedestrian"]  # left edge
    assert tuple(frame[79, 35]) == CLASS_COLORS["pedestrian"]  # bottom edge (x1 - 1, y1 - 1)
    assert tuple(frame[25, 99]) == CLASS_COLORS["vehicle"]
    assert tuple(frame[60, 110]) == TRUTH_COLOR  # a dash ...
    assert tuple(frame[60, 110 + DASH + 1]) == GREY  # ... and its gap
    assert tuple(frame[60, 35]) == GREY  # inside a box: untouched
    off = compose_frame(_image(), STEP, tracks, truth, layout=FrameLayout(detections=False,
                                                                          truth=False))
    assert tuple(off[55, 20]) == GREY and tuple(off[60, 110]) == GREY
    big = compose_frame(_image(), STEP, tracks, truth, layout=FrameLayout(scale=2))
    assert tuple(big[110, 40]) == CLASS_COLORS["pedestrian"] and big.shape[1] == 320


def test_rig_images_side_by_side_with_their_own_boxes_and_bev_below():
    rig = np.stack([_image(), _image()])
    tracks = [[], [_track("obstacle", (20, 30, 50, 80))]]
    bev = np.full((40, 200, 3), 200, np.uint8)
    frame = compose_frame(rig, STEP, tracks, {"front": [], "rear": []}, bev,
                          FrameLayout(bev_position="below"))
    assert tuple(frame[55, 160 + 20]) == CLASS_COLORS["obstacle"]
    assert tuple(frame[55, 20]) == GREY
    assert frame.shape[1] == 320 and tuple(frame[100 + 5, 10]) == (200, 200, 200)
    with pytest.raises(ValueError, match="tracks: 1 lists for 2 camera images"):
        compose_frame(rig, STEP, [[]])


def test_crash_step_shows_the_banner_and_the_strip_changes_with_the_step():
    image = _image(101, 161)  # odd: the frame is padded to even sizes
    calm = compose_frame(image, STEP)
    crash = compose_frame(image, StepText(**{**vars(STEP), "crashed_into": "pedestrian"}))
    assert calm.shape == crash.shape and calm.shape[0] % 2 == 0 and calm.shape[1] == 162
    assert calm.shape[0] > 101  # the strip below the image
    assert tuple(crash[3, 158]) == BANNER_COLOR and tuple(calm[3, 158]) == GREY
    faster = compose_frame(image, StepText(**{**vars(STEP), "speed": 9.5}))
    assert not np.array_equal(faster[101:], calm[101:]) and np.array_equal(faster[:101], calm[:101])
    assert compose_frame(image, STEP).tobytes() == calm.tobytes()


def test_step_text_from_info_and_action_names():
    env = make_env("roadsight/urban-crossing-v0", {"vehicles_count": 0}, BevCamera())
    _, info = env.reset(seed=0)
    assert [action_name(env, a) for a in range(5)] == [
        "LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]
    env.close()
    step = StepText.from_info({**info, "speed": -1.0, "crashed_into": "obstacle"}, 2.0, "IDLE")
    assert step.speed == info["ego"].speed > 0 and step.crashed_into == "obstacle"  # odometry
    assert StepText.from_info({"speed": 3.0, "crashed": True}, 0.0, "IDLE").crashed_into


def test_a_failed_episode_leaves_no_video(tmp_path):
    with pytest.raises(RuntimeError), episode_writer(tmp_path, 0, 2.0) as writer:
        writer.append(_image())
        raise RuntimeError("episode failed")
    assert list((tmp_path / "videos").iterdir()) == []


@pytest.mark.parametrize("layout, key", [({"bev_position": "left"}, "bev_position"),
                                         ({"scale": 0}, "scale"), ({"scale": 1.5}, "scale"),
                                         ({"bev_scale": 0.0}, "bev_scale")])
def test_bad_layout_names_the_key(layout, key):
    with pytest.raises(ConfigError, match=f"video.{key}"):
        FrameLayout(**layout)
    with pytest.raises(ConfigError, match="fps"):
        episode_writer("/tmp", 0, 0.0)
