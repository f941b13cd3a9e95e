"""`pinhole`: an ego-mounted perspective camera drawn with OpenCV, with exact ground truth.

Mount pose in the ego frame (x forward, y left, z up, origin at the ego's centre on the ground):
`mount_x, mount_y, mount_z` [m]; `yaw_deg` turns the camera counter-clockwise seen from above
(0 = forward, +90 = left, 180 = rear, 270 or -90 = right); `pitch_deg` > 0 tilts it down.
Camera coordinates are OpenCV's (x right, y down, z forward).

Rendering is a painter's algorithm into one int32 *primitive-index* buffer (sky rows, ground
polygons in layer order, then object faces sorted far to near by object, part and face); RGB,
instance, class and depth images are then looked up from per-primitive tables, so each polygon
costs one `cv2.fillConvexPoly`. Depth is the z-depth along the optical axis [m], inf for sky.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from roadsight.errors import ConfigError
from sim.camera import raster
from sim.camera.base import check_camera_value
from sim.camera.ground import STRIPE_LENGTH
from sim.camera.scene3d import CLASS_IDS, Scene3D, build_scene, pack_rgba
from sim.truth import SceneRegistry
from sim.types import CameraInfo, Frame, ObjectTruth

EXTRAS = ("depth", "semantic", "instance")
SKY_ZENITH = np.array([95.0, 140.0, 205.0])
SKY_HORIZON = np.array([200.0, 212.0, 225.0])
GROUND = np.array([96.0, 116.0, 78.0])  # grass where the scene has no patch
DASH_PX = 1.0  # [px] dashes shorter than this on screen merge into one averaged line
DECAL_PX = 10.0  # [px] objects shorter than this on screen are drawn without decals
HAZE = 350.0  # [m] distance at which the ground is 63 % blended into the horizon colour


def mount_rotation(yaw: float, pitch: float) -> np.ndarray:
    """(3, 3) rotation taking ego-frame vectors into camera coordinates; angles in radians."""
    cy_, sy_, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    forward = np.array([cp * cy_, cp * sy_, -sp])
    right = np.array([sy_, -cy_, 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


class PinholeCamera:
    """A perspective camera on the ego: one Frame per call, with ground truth and extras."""

    def __init__(
        self,
        name: str = "front",
        width: int = 320,
        height: int = 160,
        fov_deg: float | None = 90.0,  # horizontal field of view, used when fx is not given
        fx: float | None = None,
        fy: float | None = None,
        cx: float | None = None,
        cy: float | None = None,
        mount_x: float = 1.2,  # [m] ego frame
        mount_y: float = 0.0,
        mount_z: float = 1.5,  # [m] height above the ground
        yaw_deg: float = 0.0,
        pitch_deg: float = 0.0,
        near: float = 0.1,  # [m]
        far: float = 250.0,  # [m] objects and ground beyond are not drawn
    ):
        for key, value in (("width", width), ("height", height)):
            check_camera_value(
                isinstance(value, (int, np.integer)) and value > 0,
                key,
                value,
                "a positive integer [px]",
            )
        if fx is None:
            check_camera_value(
                fov_deg is not None and 1 < fov_deg < 179, "fov_deg", fov_deg, "in (1, 179)"
            )
            fx = width / 2 / np.tan(np.radians(fov_deg) / 2)
        fy = fx if fy is None else fy
        check_camera_value(fx > 0, "fx", fx, "> 0 [px]")
        check_camera_value(fy > 0, "fy", fy, "> 0 [px]")
        check_camera_value(
            mount_z > 0, "mount_z", mount_z, "> 0 [m] (a camera inside the ground sees nothing)"
        )
        check_camera_value(near > 0, "near", near, "> 0 [m]")
        check_camera_value(far > near, "far", far, f"> near ({near}) [m]")
        self.name, self.width, self.height = name, int(width), int(height)
        self.names = (name,)
        self.image_shape = (self.height, self.width, 3)
        self.K = np.array(
            [
                [fx, 0.0, width / 2 if cx is None else cx],
                [0.0, fy, height / 2 if cy is None else cy],
                [0.0, 0.0, 1.0],
            ]
        )
        self.mount = np.array([mount_x, mount_y, mount_z], float)
        self.yaw, self.pitch = np.radians(yaw_deg), np.radians(pitch_deg)
        self.R = mount_rotation(self.yaw, self.pitch)
        self.near, self.far = float(near), float(far)
        # depth [m] where a dash of a dashed line shrinks to about DASH_PX pixels tall
        self.dash_range = float(np.sqrt(self.K[1, 1] * mount_z * STRIPE_LENGTH / DASH_PX))
        self._A, self._b = raster.frustum(self.K, self.width, self.height, self.near)
        self._background()

    # -- geometry ------------------------------------------------------------------------------
    def to_camera(self, ego_xyz: np.ndarray) -> np.ndarray:
        """(..., 3) ego-frame points [m] -> camera coordinates [m]."""
        return (np.asarray(ego_xyz, float) - self.mount) @ self.R.T

    def project(self, ego_xyz: np.ndarray) -> np.ndarray:
        """(..., 3) ego-frame points [m] in front of the camera -> (..., 2) pixel coords."""
        return raster.project(self.to_camera(ego_xyz), self.K)

    def horizon_row(self) -> float:
        """Image row [px] of the horizon (rows are level: the camera has no roll)."""
        return float(self.K[1, 2] - self.K[1, 1] * np.tan(self.pitch))

    def info(self) -> CameraInfo:
        return CameraInfo(
            name=self.name,
            kind="pinhole",
            width=self.width,
            height=self.height,
            K=self.K.tolist(),
            mount_xyz=tuple(float(v) for v in self.mount),
            yaw=float(self.yaw),
            pitch=float(self.pitch),
        )

    def _background(self) -> None:
        """Per-row sky gradient or hazy ground, with their depth planes (camera is roll-free)."""
        H = self.height
        v = np.arange(H) + 0.5
        rays = np.stack([np.zeros(H), (v - self.K[1, 2]) / self.K[1, 1], np.ones(H)], 1) @ self.R
        elev = np.arctan2(rays[:, 2], np.hypot(rays[:, 0], rays[:, 1]))
        sky = elev >= 0
        t = np.clip(elev / np.radians(35), 0, 1)[:, None]
        dist = self.mount[2] / np.tan(np.clip(-elev, 1e-4, None))
        haze = (1 - np.exp(-dist / HAZE))[:, None] * 0.75
        ground = GROUND * (1 - haze) + SKY_HORIZON * haze
        self._bg_colors = np.where(sky[:, None], SKY_HORIZON * (1 - t) + SKY_ZENITH * t, ground)
        self._bg_rgba = pack_rgba(self._bg_colors)
        self._bg_rows = np.repeat(np.arange(H, dtype=np.int32)[:, None], self.width, axis=1)
        n_c = self.R @ np.array([0.0, 0.0, 1.0])  # ground plane, in camera coords
        d_c = float(n_c @ (self.R @ -self.mount))
        self._bg_planes = np.where(sky[:, None], [0.0, 0.0, 1.0, np.inf], [*n_c, d_c])

    # -- rendering -----------------------------------------------------------------------------
    def frames(self, env, registry: SceneRegistry, extras: tuple[str, ...] = ()) -> list[Frame]:
        """Render one frame of `env` with ground truth (and the per-pixel `extras` asked for)."""
        return [self.render(build_scene(env, registry, self.far), extras)]

    def render(self, scene: Scene3D, extras: tuple[str, ...] = ()) -> Frame:
        """Render a prepared scene snapshot (shared by the cameras of a rig)."""
        unknown = set(extras) - set(EXTRAS)
        if unknown:
            raise ConfigError(
                f"camera '{self.name}': unknown extras {sorted(unknown)}; valid: {list(EXTRAS)}"
            )
        H = self.height
        buf = self._bg_rows.copy()
        # ground, in layer order; kerbs are the only ground faces that can face away
        gc = self.to_camera(scene.ground_polys)  # (G, M, 3)
        keep = ~raster.outside(gc, self._A, self._b)
        if len(gc):
            keep &= (
                np.einsum("ij,ij->i", scene.ground_normals, self.mount - scene.ground_polys[:, 0])
                > 0
            )
        # dashed lines: dashes nearer than dash_range, one averaged strip beyond
        z_min, z_max = gc[..., 2].min(1), gc[..., 2].max(1)
        lod = scene.ground_lod
        keep &= ~((lod == 1) & (z_min > self.dash_range))
        keep &= ~((lod == 2) & (z_max < self.dash_range))
        g_idx = np.flatnonzero(keep)
        polys = gc[g_idx]
        z_ok = polys[..., 2] >= np.where(lod[g_idx] == 2, self.dash_range, self.near)[:, None]
        fixed = raster.to_fixed(raster.project(np.where(z_ok[..., None], polys, 1.0), self.K))
        self._fill(buf, polys, fixed, z_ok.all(1), H + g_idx, lod[g_idx] == 2)
        # objects: front faces inside the frustum, far objects first; vertices projected once
        vc = self.to_camera(scene.verts)  # (V, 3)
        vals = vc @ self._A + self._b  # (V, 5) signed frustum-plane tests
        z_ok = vals[:, 0] >= 0
        uv = raster.project(np.where(z_ok[:, None], vc, 1.0), self.K)  # (V, 2)
        order = self._face_order(scene, vals)
        faces = scene.faces[order]
        self._fill(
            buf, vc[faces], raster.to_fixed(uv)[faces], z_ok[faces].all(1), H + len(gc) + order
        )
        return self._frame(scene, buf, gc, vc, uv.astype(np.float32), z_ok, extras)

    def _fill(self, buf, polys, fixed, whole, values, far=None) -> None:
        """Paint polygons (N, M, 3) camera coords with their fixed-point projections (N, M, 2);
        those not `whole`ly in front of the near plane are clipped first (`far` ones: clipped to
        z >= dash_range instead)."""
        far = [False] * len(polys) if far is None else far.tolist()
        for i, (ok, value) in enumerate(zip(whole.tolist(), values.tolist(), strict=True)):
            if ok:
                cv2.fillConvexPoly(buf, fixed[i], value, cv2.LINE_8, raster.SHIFT)
                continue
            clipped = raster.clip_near(polys[i], self.dash_range if far[i] else self.near)
            if len(clipped) >= 3:
                pts = raster.to_fixed(raster.project(clipped, self.K))
                cv2.fillConvexPoly(buf, pts, value, cv2.LINE_8, raster.SHIFT)

    def _face_order(self, scene: Scene3D, vals: np.ndarray) -> np.ndarray:
        """Indices of the faces to paint, in painter's order."""
        if len(scene.faces) == 0:
            return np.zeros(0, int)
        front = np.einsum("ij,ij->i", scene.normals, self.mount - scene.centroids) > 1e-9
        cand = np.flatnonzero(front)
        cand = cand[~(vals[scene.faces[cand]] < 0).all(axis=1).any(axis=1)]
        # object distance: camera to the nearest point of the object's footprint rectangle
        d = self.mount[:2] - scene.obj_xy
        c, s = np.cos(scene.obj_heading), np.sin(scene.obj_heading)
        local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1)
        gap = np.clip(np.abs(local) - scene.obj_half, 0, None)
        obj_dist = np.hypot(gap[:, 0], gap[:, 1])
        # level of detail: decals (wheels, lights) of objects under DECAL_PX pixels tall are skipped
        tall = self.K[1, 1] * scene.obj_height / np.maximum(obj_dist, self.near) >= DECAL_PX
        sel = tall[scene.face_obj[cand]] | ~scene.face_decal[cand]
        cand = cand[sel]
        part_dist = np.linalg.norm(scene.part_center - self.mount, axis=1)
        part = scene.face_part[cand]
        keys = (
            scene.face_decal[cand],
            -part_dist[part],
            scene.part_rank[part],
            -obj_dist[scene.face_obj[cand]],
        )
        return cand[np.lexsort(keys)]

    # -- ground truth and per-pixel outputs ----------------------------------------------------
    def _frame(self, scene: Scene3D, buf, gc, vc, uv, z_ok, extras) -> Frame:
        n_bg, n_o = self.height + len(gc), len(scene.objects)
        # per-primitive tables: background rows, ground polygons, object faces
        lut = np.concatenate([self._bg_rgba, scene.ground_rgba, scene.rgba])
        # one uint32 gather is ~10x faster than fancy-indexing (H, W, 3)
        packed = np.take(lut, buf)
        image = cv2.cvtColor(
            packed.view(np.uint8).reshape(self.height, self.width, 4), cv2.COLOR_RGBA2RGB
        )
        prim_px = np.bincount(buf.ravel(), minlength=n_bg + len(scene.faces))
        obj_px = np.add.reduceat(prim_px[n_bg:], scene.face_off[:-1]) if n_o else np.zeros(0, int)
        truths = []
        if n_o:
            in_front = np.logical_and.reduceat(z_ok, scene.vert_off[:-1])
            for k in np.flatnonzero(obj_px > 0):
                if scene.objects[k].cls == "ego":
                    continue
                hulls = self._hulls(scene, k, vc, uv, bool(in_front[k]))
                if hulls:
                    truths.append(self._truth(scene, k, buf, n_bg, int(obj_px[k]), hulls))
        out = {}
        if extras:
            inst_lut = np.concatenate([np.zeros(n_bg, np.int32), scene.face_obj + 1])
            inst = inst_lut[buf]
            if "instance" in extras:
                ids = [0 if o.cls == "ego" else o.track_id for o in scene.objects]
                out["instance"] = np.array([0, *ids], np.int32)[inst]
            if "semantic" in extras:
                cls = [CLASS_IDS.get(o.cls, 0) for o in scene.objects]
                out["semantic"] = np.array([0, *cls], np.uint8)[inst]
            if "depth" in extras:
                out["depth"] = self._depth(scene, buf, gc)
        return Frame(image=image, objects=truths, camera=self.info(), t=scene.t, extras=out)

    def _hulls(self, scene: Scene3D, k: int, vc, uv, in_front: bool) -> list[np.ndarray]:
        """Per part of object k, the convex hull (N, 2) [px] of its unoccluded projection."""
        parts = range(scene.part_off[k], scene.part_off[k + 1])
        if in_front:  # a convex part projects to the hull of its vertices
            return [cv2.convexHull(uv[a:b]).reshape(-1, 2) for a, b in scene.part_verts[parts]]
        # the object straddles the camera plane: hull of its near-clipped front faces per part
        faces = np.arange(scene.face_off[k], scene.face_off[k + 1])
        front = faces[
            np.einsum("ij,ij->i", scene.normals[faces], self.mount - scene.centroids[faces]) > 0
        ]
        hulls = []
        for p in parts:
            clipped = [
                raster.clip_near(vc[scene.faces[f]], self.near)
                for f in front[scene.face_part[front] == p]
            ]
            pts = [c for c in clipped if len(c)]
            if pts:
                px = raster.project(np.concatenate(pts), self.K).astype(np.float32)
                hulls.append(cv2.convexHull(px).reshape(-1, 2))
        return hulls

    def _truth(self, scene, k, buf, n_bg, count, hulls) -> ObjectTruth:
        pts = hulls[0] if len(hulls) == 1 else np.concatenate(hulls)
        lo_f, hi_f = pts.min(0).tolist(), pts.max(0).tolist()
        W, H = self.width, self.height
        x0, y0 = min(max(math.floor(lo_f[0]) - 1, 0), W), min(max(math.floor(lo_f[1]) - 1, 0), H)
        x1, y1 = min(max(math.ceil(hi_f[0]) + 2, 0), W), min(max(math.ceil(hi_f[1]) + 2, 0), H)
        f0, f1 = n_bg + int(scene.face_off[k]), n_bg + int(scene.face_off[k + 1])
        region = buf[y0:y1, x0:x1]
        mask = (region >= f0) & (region < f1)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            box = (
                float(x0 + cols[0]),
                float(y0 + rows[0]),
                float(x0 + cols[-1] + 1),
                float(y0 + rows[-1] + 1),
            )
        else:  # the hull missed its own pixels (cannot happen for a consistent raster)
            ys, xs = np.nonzero((buf >= f0) & (buf < f1))
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        tol = 0.5  # [px]
        truncated = lo_f[0] < -tol or lo_f[1] < -tol or hi_f[0] > W + tol or hi_f[1] > H + tol
        full = raster.silhouette_area(hulls, lo_f, hi_f)
        so = scene.objects[k]
        xy, vxy = scene.obj_xy[k].tolist(), scene.obj_vxy[k].tolist()
        return ObjectTruth(
            track_id=so.track_id,
            cls=so.cls,
            box_xyxy=box,
            visible=min(count / max(full, 1.0), 1.0),
            truncated=truncated,
            ego_xy=tuple(xy),
            ego_vxy=tuple(vxy),
            heading=float(scene.obj_heading[k]),
            size_lw=(float(so.style.length), float(so.style.width)),
            kind=so.style.kind,
        )

    def _depth(self, scene: Scene3D, buf: np.ndarray, gc: np.ndarray) -> np.ndarray:
        """(H, W) float32 z-depth [m] from each primitive's plane, inf for sky."""
        n_gc = scene.ground_normals @ self.R.T
        g_planes = (
            np.c_[n_gc, np.einsum("ij,ij->i", n_gc, gc[:, 0])] if len(gc) else np.zeros((0, 4))
        )
        n_fc = scene.normals @ self.R.T
        vc0 = (
            self.to_camera(scene.verts[scene.faces[:, 0]]) if len(scene.faces) else np.zeros((0, 3))
        )
        f_planes = np.c_[n_fc, np.einsum("ij,ij->i", n_fc, vc0)]
        planes = np.concatenate([self._bg_planes, g_planes, f_planes])[buf]  # (H, W, 4)
        u = (np.arange(self.width) + 0.5 - self.K[0, 2]) / self.K[0, 0]
        v = (np.arange(self.height) + 0.5 - self.K[1, 2]) / self.K[1, 1]
        denom = planes[..., 0] * u[None, :] + planes[..., 1] * v[:, None] + planes[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = planes[..., 3] / denom
        depth[~np.isfinite(depth) | (depth <= 0)] = np.inf
        return depth.astype(np.float32)
