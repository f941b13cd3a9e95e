"""Which camera a detector checkpoint was trained for, and the checks that data fits it.

A checkpoint's `camera` entry (`camera_entry`): `name` (the camera's, or "front+left+..." for a
rig), `kind` (bev | pinhole), `width`, `height` [px] and `members`, each rig member's
`CameraInfo` JSON as `roadsight record` writes it into annotations.json (without the bev `yaw`,
which is the ego's heading at one frame, not a property of the camera). `val-detector`, `detect`
and `export` refuse data from another camera with the reason (`check_data`, `check_source`,
`check_camera_choice`); `check_camera=false` scores anyway (e.g. a front model on a rig's views).
Checkpoints without the entry (written before it existed) are not checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from roadsight.errors import UserInputError

log = logging.getLogger(__name__)

PER_FRAME = {"bev": ("yaw",)}  # CameraInfo fields that change from frame to frame
REL_TOL = 0.01  # relative difference of metres per pixel or focal length that makes another camera


class CameraMismatchError(UserInputError):
    """Data from another camera than the checkpoint's; the message gives the reason."""


def camera_entry(infos: Iterable[Mapping]) -> dict:
    """The checkpoint's `camera` entry from CameraInfo JSON dicts (one per image or per member;
    repeated names are merged, the first one kept)."""
    members: dict[str, dict] = {}
    for info in infos:
        name = str(info.get("name") or "unnamed")
        skip = PER_FRAME.get(info.get("kind"), ())
        members.setdefault(name, {k: v for k, v in info.items() if k not in skip})
    if not members:
        raise UserInputError("no camera to record: the data has no images")
    members = json.loads(json.dumps(members))  # plain lists and numbers, as in annotations.json
    first = next(iter(members.values()))
    return {"name": "+".join(members), "kind": first.get("kind"), "width": first.get("width"),
            "height": first.get("height"), "members": members}


def dataset_cameras(directories: str | Path | Sequence[str | Path]) -> dict[str, list[dict]]:
    """Per dataset directory, its distinct cameras: each image's CameraInfo JSON with the image's
    own width and height (the camera entry of older or hand-made files may lack them)."""
    if isinstance(directories, (str, Path)):
        directories = [directories]
    out = {}
    for d in directories:
        path = Path(d) / "annotations.json"
        try:
            images = json.loads(path.read_text()).get("images", [])
        except (OSError, ValueError, AttributeError) as e:
            raise UserInputError(f"{path}: not a readable COCO annotations file ({e})") from e
        seen: dict[object, dict] = {}
        for im in images:
            camera = im.get("camera")
            info = dict(camera) if isinstance(camera, dict) else {"name": camera}
            info.update(width=im.get("width"), height=im.get("height"))
            seen.setdefault((info.get("name"), info["width"], info["height"]), info)
        out[str(d)] = list(seen.values())
    return out


def describe(camera: Mapping) -> str:
    """"bev camera 'bev', 512x256 px" for a camera entry or a CameraInfo dict."""
    kind = f"{camera['kind']} " if camera.get("kind") else ""
    return f"{kind}camera {camera.get('name')!r}, {camera.get('width')}x{camera.get('height')} px"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def _difference(member: Mapping, info: Mapping) -> str | None:
    """What differs between a checkpoint member and a data camera, or None."""
    if (info.get("width"), info.get("height")) != (member.get("width"), member.get("height")):
        return (f"images of {info.get('width')}x{info.get('height')} px, not "
                f"{member.get('width')}x{member.get('height')}")
    if info.get("kind") and member.get("kind") and info["kind"] != member["kind"]:
        return f"a {info['kind']} camera, not a {member['kind']} one"
    a, b = info.get("metres_per_pixel"), member.get("metres_per_pixel")
    if a is not None and b is not None and not _close(a, b):
        return f"{a:g} m/px, not {b:g} m/px"
    if info.get("K") is not None and member.get("K") is not None \
            and not _close(info["K"][0][0], member["K"][0][0]):
        return f"focal length {info['K'][0][0]:.1f} px, not {member['K'][0][0]:.1f} px"
    return None


def camera_mismatch(entry: Mapping, info: Mapping) -> str | None:
    """Why images of camera `info` (CameraInfo JSON; a missing name matches any member) are not
    what the checkpoint's camera `entry` was trained on, or None when they are."""
    members = entry["members"]
    name = info.get("name")
    if name is not None and name not in members:
        return f"camera {name!r} is not among the checkpoint's {sorted(members)}"
    candidates = [members[name]] if name is not None else list(members.values())
    reasons = [_difference(m, info) for m in candidates]
    return None if None in reasons else reasons[0]


HINT = ("use that camera's checkpoint (checkpoint=FILE or camera=NAME), or check_camera=false "
        "to go ahead anyway")


def _refuse(what: str, info: Mapping, reason: str, entry: Mapping, checkpoint: str | Path,
            hint: str = HINT) -> None:
    seen = describe(info) if info.get("name") else f"{info['width']}x{info['height']} px images"
    raise CameraMismatchError(
        f"{what}: {seen}, not the camera checkpoint {checkpoint} was trained for, "
        f"{describe(entry)} ({reason}); {hint}")


def _entry(state: Mapping, checkpoint: str | Path) -> dict | None:
    entry = state.get("camera")
    if entry is None:
        log.warning("checkpoint %s records no camera (written before checkpoints did): the data's "
                    "camera is not checked", checkpoint)
    return entry


def check_data(state: Mapping, directories: str | Path | Sequence[str | Path],
               checkpoint: str | Path) -> None:
    """CameraMismatchError unless every camera in the dataset dirs is the checkpoint's."""
    entry = _entry(state, checkpoint)
    if entry is None:
        return
    for directory, cameras in dataset_cameras(directories).items():
        for info in cameras:
            reason = camera_mismatch(entry, info)
            if reason:
                _refuse(f"data {directory}", info, reason, entry, checkpoint)


def training_camera(data: str | Path | Sequence[str | Path],
                    val_data: str | Path | Sequence[str | Path] | None = None) -> dict:
    """The `camera` entry of a checkpoint trained on `data` (train-detector); CameraMismatchError
    when `val_data` comes from another camera."""
    entry = camera_entry(info for infos in dataset_cameras(data).values() for info in infos)
    for directory, cameras in (dataset_cameras(val_data).items() if val_data else ()):
        for info in cameras:
            if reason := camera_mismatch(entry, info):
                raise CameraMismatchError(f"val_data {directory}: {describe(info)}, not the "
                                          f"training data's {describe(entry)} ({reason})")
    return entry


def dataset_dir(source: str | Path) -> Path | None:
    """The dataset directory of `source` (itself, or an `images/` folder's parent) when it holds
    an annotations.json, else None."""
    source = Path(source)
    for d in (source, source.parent):
        if (d / "annotations.json").is_file():
            return d
    return None


def check_source(state: Mapping, source: str | Path, checkpoint: str | Path) -> None:
    """`detect`'s check: a recorded dataset's cameras (`check_data`), else the size of the
    source's first frame against the checkpoint's camera."""
    entry = _entry(state, checkpoint)
    if entry is None:
        return
    if (d := dataset_dir(source)) is not None:
        check_data(state, d, checkpoint)
        return
    from perception.video import FrameSource

    first = next(iter(FrameSource(source)), None)
    if first is None:
        return
    info = {"width": int(first.shape[1]), "height": int(first.shape[0])}
    reason = camera_mismatch(entry, info)
    if reason:
        _refuse(f"source {source}", info, reason, entry, checkpoint)


def check_camera_choice(state: Mapping, names: Sequence[str], image_hw: tuple[int, int],
                        checkpoint: str | Path, choice: str) -> None:
    """CameraMismatchError when an explicit `camera=CHOICE` (members `names`, images `image_hw`)
    is not the checkpoint's camera."""
    entry = _entry(state, checkpoint)
    if entry is None:
        return
    for name in names:
        info = {"name": name, "width": image_hw[1], "height": image_hw[0]}
        if reason := camera_mismatch(entry, info):
            _refuse(f"camera={choice}", info, reason, entry, checkpoint,
                    "leave camera= out, or give that camera's checkpoint")


def check_rendered_camera(state: Mapping, camera, checkpoint: str | Path, choice: str,
                          env_id: str, tiled: bool = False) -> None:
    """CameraMismatchError when `camera` (a sim camera object), rendered once in `env_id`, is not
    the checkpoint's camera: image size, kind, and the scale (bev metres per pixel, pinhole
    focal length), which `check_camera_choice` cannot see from the image size alone. `tiled`:
    frames are cut into the checkpoint's image size (perception.tiles), so only kind and scale
    must match."""
    entry = _entry(state, checkpoint)
    if entry is None:
        return
    for info in render_cameras(camera, env_id):
        if tiled:
            info = {**info, "width": entry["width"], "height": entry["height"]}
        if reason := camera_mismatch(entry, info):
            _refuse(f"camera={choice}", info, reason, entry, checkpoint,
                    "leave camera= and its settings as the checkpoint's, or give that "
                    "camera's checkpoint")


def check_chosen_camera(state: Mapping, camera_cfg, checkpoint: str | Path) -> None:
    """`check_camera_choice` for the app's `camera=` group, when given on the command line
    (without it the group only picks the default checkpoint)."""
    from hydra.utils import instantiate

    from perception.checkpoint import camera_override

    choice = camera_override()
    if choice is None or camera_cfg is None or state.get("camera") is None:
        return
    camera = instantiate(camera_cfg)
    check_camera_choice(state, camera.names, camera.image_shape[:2], checkpoint, choice)


def render_cameras(camera, env_id: str = "roadsight/urban-crossing-v0", seed: int = 0) -> list:
    """The CameraInfo JSON of each member of `camera` (a sim camera object), from one frame."""
    import gymnasium as gym

    import sim  # noqa: F401  (env registration, headless rendering)
    from sim.truth import SceneRegistry

    env = gym.make(env_id)
    try:
        env.reset(seed=seed)
        registry = SceneRegistry()
        registry.reset(seed)
        return [f.camera.to_json() for f in camera.frames(env, registry)]
    finally:
        env.close()


def add_camera(checkpoint: str | Path, camera: str) -> dict:
    """Write the `camera` entry of conf/camera/CAMERA.yaml into an existing checkpoint (one
    rendered frame gives each member's CameraInfo); everything else, weights included, is kept.

    How the shipped checkpoints got theirs without retraining:
    `python -m perception.provenance models/detector_front_small.pt front`.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from perception.checkpoint import update_checkpoint
    from roadsight.paths import CONF_DIR

    cam = instantiate(OmegaConf.load(CONF_DIR / "camera" / f"{camera}.yaml"))
    entry = camera_entry(render_cameras(cam))
    update_checkpoint(checkpoint, camera=entry)
    return entry


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=add_camera.__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("camera", help="a conf/camera/*.yaml name: bev, front, surround")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    log.info("%s: %s", args.checkpoint, describe(add_camera(args.checkpoint, args.camera)))
