"""`bev`: an ego-centred top-down camera built on highway-env's renderer.

The road (lanes, markings) is drawn by highway-env's `LaneGraphics` on its `WorldSurface`; ground
patches (sidewalks, crosswalks) and every road object are then drawn with OpenCV at 1/16-pixel
precision, together with an instance-id buffer from which each object's box and visible
fraction are read. The image is world-aligned (highway-env's view), centred on the ego: image x
is world x, image y is world y (to the right of travel), whatever the ego's heading. Its
CameraInfo carries `metres_per_pixel`, `ego_pixel` (the ego's centre, in box units: pixel i
covers [i, i + 1]) and `yaw` = the ego's world heading, which turns image offsets into the ego
frame (perception.geometry does it).
"""

from __future__ import annotations

import cv2
import numpy as np
import pygame
from highway_env.road.graphics import LaneGraphics, WorldSurface

from roadsight.errors import ConfigError
from sim.camera.base import check_camera_value
from sim.graphics import top_down_shape
from sim.truth import SceneRegistry, ego_frame_state, scene_objects
from sim.types import CameraInfo, Frame, ObjectTruth

SHIFT = 4  # cv2 fixed-point bits: polygons are placed at 1/16 px
ROAD_GREY = (100, 100, 100)


class BevCamera:
    """Top-down camera: `width` x `height` px at `scaling` px/m, ego at `centering` of the image."""

    def __init__(
        self,
        width: int = 512,
        height: int = 256,
        scaling: float = 10.0,
        centering: tuple[float, float] = (0.35, 0.5),
        name: str = "bev",
    ):
        for key, value in (("width", width), ("height", height), ("scaling", scaling)):
            check_camera_value(value > 0, key, value, "> 0")
        self.width, self.height, self.scaling = int(width), int(height), float(scaling)
        self.centering = (float(centering[0]), float(centering[1]))
        self.names = (name,)
        self.image_shape = (self.height, self.width, 3)
        self._surface: WorldSurface | None = None
        self._origin = np.zeros(2)

    # -- geometry --------------------------------------------------------------------------
    def to_px(self, world_xy: np.ndarray) -> np.ndarray:
        """(N, 2) world metres -> (N, 2) float pixels of the last rendered frame."""
        return (np.asarray(world_xy, float) - self._origin) * self.scaling

    def _fill(self, img: np.ndarray, poly: np.ndarray, value) -> None:
        pts = np.round(self.to_px(poly) * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(img, [pts], value, lineType=cv2.LINE_8, shift=SHIFT)

    # -- rendering -------------------------------------------------------------------------
    def _draw_road(self, env) -> np.ndarray:
        if self._surface is None:
            size = (self.width, self.height)
            self._surface = WorldSurface(size, 0, pygame.Surface(size))
            self._surface.scaling = self.scaling
            self._surface.centering_position = list(self.centering)
        surface, road = self._surface, env.unwrapped.road
        surface.move_display_window_to(env.unwrapped.vehicle.position)
        self._origin = np.asarray(surface.origin, float)
        surface.fill(ROAD_GREY)
        patches = getattr(road, "patches", [])
        for patch in patches:
            if patch.kind != "crosswalk":
                pygame.draw.polygon(
                    surface, patch.color, [tuple(p) for p in self.to_px(patch.polygon)]
                )
        for lanes_to in road.network.graph.values():
            for lanes in lanes_to.values():
                for lane in lanes:
                    LaneGraphics.display(lane, surface)
        for patch in patches:
            for stripe in patch.stripes:
                pygame.draw.polygon(surface, patch.color, [tuple(p) for p in self.to_px(stripe)])
        return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))

    def _visible(self, obj) -> bool:
        half = np.array([self.width, self.height]) / self.scaling
        centre = self._origin + half / 2
        return bool(np.all(np.abs(np.asarray(obj.position) - centre) < half / 2 + 12.0))

    def frames(self, env, registry: SceneRegistry, extras: tuple[str, ...] = ()) -> list[Frame]:
        """Render one frame with ground truth for every object with a visible pixel."""
        if extras:
            raise ConfigError(f"camera 'bev' has no per-pixel extras; asked for {list(extras)}")
        image = self._draw_road(env)
        ego = env.unwrapped.vehicle
        ids = np.zeros((self.height, self.width), np.int32)
        drawn = []  # (instance id, object, style, silhouette px)
        # highway-env's order: road objects under vehicles; the ego is drawn (and occludes) too
        objects = scene_objects(env)
        for obj in (
            objects[len(env.unwrapped.road.vehicles) :]
            + objects[: len(env.unwrapped.road.vehicles)]
        ):
            if not self._visible(obj):
                continue
            style = registry.style(obj)
            shape = top_down_shape(obj, style, getattr(obj, "outline", None))
            inst = len(drawn) + 1
            for poly, color in shape.layers:
                self._fill(image, poly, color)
            if shape.outline is not None:
                pts = np.round(self.to_px(shape.silhouette) * (1 << SHIFT)).astype(np.int32)
                cv2.polylines(image, [pts], True, shape.outline, 1, cv2.LINE_8, SHIFT)
            self._fill(ids, shape.silhouette, inst)
            drawn.append((inst, obj, style, shape.silhouette))
        truths = [t for t in (self._truth(ids, *d, ego, registry) for d in drawn) if t]
        info = CameraInfo(
            name=self.names[0],
            kind="bev",
            width=self.width,
            height=self.height,
            metres_per_pixel=1.0 / self.scaling,
            # in box units (pixel i covers [i, i + 1]); `to_px` puts pixel centres at integers
            ego_pixel=tuple(float(v) + 0.5 for v in self.to_px(ego.position[None])[0]),
            yaw=float(ego.heading),  # the ego's world heading: the image is world-aligned
        )
        return [Frame(image=image, objects=truths, camera=info, t=float(env.unwrapped.time))]

    def _truth(self, ids, inst, obj, style, silhouette, ego, registry) -> ObjectTruth | None:
        if style.cls == "ego":
            return None
        px = self.to_px(silhouette)
        lo = np.floor(px.min(0)).astype(int) - 1
        hi = np.ceil(px.max(0)).astype(int) + 2
        full = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
        pts = np.round((px - lo) * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(full, [pts], 1, lineType=cv2.LINE_8, shift=SHIFT)
        full_area = int(full.sum())
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], self.width), min(hi[1], self.height)
        if full_area == 0 or x1 <= x0 or y1 <= y0:
            return None
        ys, xs = np.nonzero(ids[y0:y1, x0:x1] == inst)
        if len(xs) == 0:
            return None
        box = (
            float(x0 + xs.min()),
            float(y0 + ys.min()),
            float(x0 + xs.max() + 1),
            float(y0 + ys.max() + 1),
        )
        in_image = full[y0 - lo[1] : y1 - lo[1], x0 - lo[0] : x1 - lo[0]].sum()
        ego_xy, ego_vxy, heading = ego_frame_state(ego, obj)
        return ObjectTruth(
            track_id=registry.track_id(obj),
            cls=style.cls,
            box_xyxy=box,
            visible=float(min(len(xs) / full_area, 1.0)),
            truncated=bool(in_image < full_area),
            ego_xy=ego_xy,
            ego_vxy=ego_vxy,
            heading=heading,
            size_lw=(float(style.length), float(style.width)),
            kind=style.kind,
        )
