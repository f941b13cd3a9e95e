"""One snapshot of the scene in the ego frame as flat arrays, shared by every camera of a rig.

Ego frame: origin at the ego's centre on the ground, x forward, y left, z up, metres. Objects'
meshes (sim.camera.meshes) are posed and stacked into single vertex/face arrays so that cameras
transform, cull and sort them with a handful of numpy calls whatever the number of objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.camera.ground import ground_of
from sim.camera.meshes import Mesh, build_mesh
from sim.truth import SceneRegistry, ego_rotation, scene_objects

LIGHT = np.array([-0.35, 0.45, 0.82]) / np.linalg.norm([-0.35, 0.45, 0.82])  # ego frame, from above
AMBIENT, DIFFUSE = 0.58, 0.5
CLASS_IDS = {"vehicle": 1, "pedestrian": 2, "obstacle": 3}  # semantic ids; 0 is background/road


@dataclass
class SceneObject:
    obj: object
    track_id: int
    cls: str  # vehicle | pedestrian | obstacle | ego
    style: object


@dataclass
class Scene3D:
    t: float  # [s]
    ego: object
    registry: SceneRegistry
    # ground, in draw order
    ground_polys: np.ndarray  # (G, M, 3) ego frame [m]
    ground_normals: np.ndarray  # (G, 3)
    ground_lod: np.ndarray  # (G,) 0 always, 1 near dash, 2 far strip of a dashed line
    ground_colors: np.ndarray  # (G, 3) float RGB
    ground_rgba: np.ndarray  # (G,) uint32: the same colours packed as RGBA bytes
    # objects
    objects: list[SceneObject]
    obj_xy: np.ndarray  # (O, 2) ego-frame centre [m]
    obj_heading: np.ndarray  # (O,) [rad], ego frame, counter-clockwise
    obj_half: np.ndarray  # (O, 2) half length, half width of the footprint [m]
    obj_height: np.ndarray  # (O,) [m]
    obj_vxy: np.ndarray  # (O, 2) velocity relative to the ego [m/s], ego frame
    face_off: np.ndarray  # (O + 1,) object k owns faces [face_off[k], face_off[k+1])
    vert_off: np.ndarray  # (O + 1,) same for vertices
    part_off: np.ndarray  # (O + 1,) same for parts
    part_verts: np.ndarray  # (P, 2) [start, stop) of each part's ring vertices in `verts`
    verts: np.ndarray  # (V, 3) ego frame
    faces: np.ndarray  # (F, M) indices into verts
    normals: np.ndarray  # (F, 3)
    centroids: np.ndarray  # (F, 3)
    colors: np.ndarray  # (F, 3) shaded RGB float
    rgba: np.ndarray  # (F,) uint32: the same colours packed as RGBA bytes
    face_obj: np.ndarray  # (F,) object index
    face_part: np.ndarray  # (F,) global part index
    face_decal: np.ndarray  # (F,) bool
    part_rank: np.ndarray  # (P,)
    part_center: np.ndarray  # (P, 3)
    vert_part: np.ndarray  # (V,) global part index of every vertex


def _mesh(obj, style, track_id: int) -> Mesh:
    cached = getattr(obj, "_roadsight_mesh", None)
    if cached is None or cached[0] is not style:
        tone = track_id * 7919  # skin tone per person, stable over the episode
        cached = (style, build_mesh(style, getattr(obj, "outline", None), tone))
        obj._roadsight_mesh = cached
    return cached[1]


def pack_rgba(colors: np.ndarray) -> np.ndarray:
    """(N, 3) RGB floats -> (N,) uint32 whose bytes are R, G, B, 0 (one gather per pixel)."""
    rgba = np.zeros((len(colors), 4), np.uint8)
    rgba[:, :3] = np.clip(np.asarray(colors).reshape(-1, 3), 0, 255)
    return rgba.view(np.uint32).ravel()


RESELECT = 40.0  # [m] the ego may move this far before the ground near it is selected again


def _near_ground(g, origin: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the ground polygons within `radius` [m] of `origin`.

    Long roads hold thousands of dashes; the selection is made with a margin and reused until
    the ego has moved RESELECT metres, so most frames skip the search.
    """
    cached = getattr(g, "_selection", None)
    if cached is None or cached[1] != radius or np.hypot(*(origin - cached[0])) > RESELECT:
        dist = np.linalg.norm(g.centre - origin, axis=1) - g.radius
        cached = (origin.copy(), radius, np.flatnonzero(dist < radius + RESELECT))
        g._selection = cached
    return cached[2]


def build_scene(env, registry: SceneRegistry, radius: float = 250.0) -> Scene3D:
    """Pose every object and the ground within `radius` [m] of the ego, in the ego frame."""
    road, ego = env.unwrapped.road, env.unwrapped.vehicle
    rot = ego_rotation(ego)  # world -> ego (includes the y flip)
    origin = np.asarray(ego.position, float)

    g = ground_of(road)
    near = _near_ground(g, origin, radius)
    gp = g.polys[near]
    gxy = (gp[..., :2] - origin) @ rot.T
    ground_polys = np.concatenate([gxy, gp[..., 2:]], axis=-1)
    gn = g.normals[near]
    ground_normals = np.c_[gn[:, :2] @ rot.T, gn[:, 2]]

    every = scene_objects(env)
    pos = np.array([o.position for o in every], float).reshape(-1, 2)
    hw = np.array([o.heading for o in every], float)
    speed = np.array([o.speed for o in every], float)
    rel_all = (pos - origin) @ rot.T
    vel_all = (speed[:, None] * np.c_[np.cos(hw), np.sin(hw)] - ego.velocity) @ rot.T
    keep = np.flatnonzero(np.hypot(rel_all[:, 0], rel_all[:, 1]) <= radius + 10.0)
    objects, meshes = [], []
    for i in keep.tolist():
        obj = every[i]
        style = registry.style(obj)
        tid = registry.track_id(obj)
        objects.append(SceneObject(obj, tid, style.cls, style))
        meshes.append(_mesh(obj, style, tid))
    xy, heading, vel = rel_all[keep], ego.heading - hw[keep], vel_all[keep]
    n_v = np.array([len(m.verts) for m in meshes], int)
    n_f = np.array([len(m.faces) for m in meshes], int)
    n_p = np.array([len(m.part_rank) for m in meshes], int)
    xy_a = np.array(xy, float).reshape(-1, 2)
    head = (np.array(heading, float) + np.pi) % (2 * np.pi) - np.pi
    c, s = np.cos(head), np.sin(head)

    def pose(points: np.ndarray, counts: np.ndarray) -> np.ndarray:  # (N, 3) local -> ego
        cr, sr = np.repeat(c, counts), np.repeat(s, counts)
        t = np.repeat(xy_a, counts, axis=0)
        x, y = points[:, 0], points[:, 1]
        return np.stack([cr * x - sr * y + t[:, 0], sr * x + cr * y + t[:, 1], points[:, 2]], 1)

    def rotate(vecs: np.ndarray, counts: np.ndarray) -> np.ndarray:
        cr, sr = np.repeat(c, counts), np.repeat(s, counts)
        x, y = vecs[:, 0], vecs[:, 1]
        return np.stack([cr * x - sr * y, sr * x + cr * y, vecs[:, 2]], 1)

    if meshes:
        v_off = np.concatenate([[0], np.cumsum(n_v)[:-1]])
        p_off = np.concatenate([[0], np.cumsum(n_p)[:-1]])
        verts = pose(np.concatenate([m.verts for m in meshes]), n_v)
        faces = np.concatenate([m.faces for m in meshes]) + np.repeat(v_off, n_f)[:, None]
        normals = rotate(np.concatenate([m.normals for m in meshes]), n_f)
        centroids = pose(np.concatenate([m.centroids for m in meshes]), n_f)
        base = np.concatenate([m.colors for m in meshes])
        colors = base * (AMBIENT + DIFFUSE * np.clip(normals @ LIGHT, 0, None))[:, None]
        face_part = np.concatenate([m.part for m in meshes]) + np.repeat(p_off, n_f)
        vert_part = np.concatenate([m.vert_part for m in meshes]) + np.repeat(p_off, n_v)
        part_center = pose(np.concatenate([m.part_center for m in meshes]), n_p)
        part_rank = np.concatenate([m.part_rank for m in meshes])
        decal = np.concatenate([m.decal for m in meshes])
        part_verts = np.concatenate([m.part_verts for m in meshes]) + np.repeat(v_off, n_p)[:, None]
    else:
        verts = normals = centroids = colors = part_center = np.zeros((0, 3))
        faces = np.zeros((0, 1), int)
        face_part = vert_part = part_rank = np.zeros(0, int)
        decal = np.zeros(0, bool)
        part_verts = np.zeros((0, 2), int)
    half = np.array(
        [[o.style.length / 2, o.style.width / 2, o.style.height] for o in objects], float
    ).reshape(-1, 3)
    return Scene3D(
        t=float(env.unwrapped.time),
        ego=ego,
        registry=registry,
        ground_polys=ground_polys,
        ground_normals=ground_normals,
        ground_lod=g.lod[near],
        ground_colors=g.colors[near],
        ground_rgba=pack_rgba(g.colors[near]),
        objects=objects,
        obj_xy=xy_a,
        obj_heading=head,
        obj_half=half[:, :2],
        obj_height=half[:, 2],
        verts=verts,
        faces=faces,
        normals=normals,
        centroids=centroids,
        colors=np.clip(colors, 0, 255),
        rgba=pack_rgba(colors),
        face_obj=np.repeat(np.arange(len(objects)), n_f),
        face_part=face_part,
        face_decal=decal,
        part_rank=part_rank,
        part_center=part_center,
        vert_part=vert_part,
        obj_vxy=vel,
        face_off=np.concatenate([[0], np.cumsum(n_f)]),
        vert_off=np.concatenate([[0], np.cumsum(n_v)]),
        part_off=np.concatenate([[0], np.cumsum(n_p)]),
        part_verts=part_verts,
    )
