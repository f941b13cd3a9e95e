"""How objects look: sizes per kind and colour palettes that overlap between classes.

Colours are drawn per object from palettes that share hues across classes, so a detector has to
use shape, size and context (a cone is small and round, a pedestrian has a head and shoulders, a
stalled car stands at an angle with its hazard lights on) rather than colour thresholding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]

EGO_COLOR: RGB = (40, 220, 60)  # no palette holds a green this saturated: the ego is unmistakable
EGO_ROOF: RGB = (250, 250, 250)

# Common car paints; several of them are reused by clothing and by obstacles on purpose.
VEHICLE_PALETTE: tuple[RGB, ...] = (
    (235, 235, 235),
    (30, 30, 35),
    (175, 178, 185),
    (75, 78, 85),
    (170, 30, 35),
    (40, 70, 160),
    (25, 50, 90),
    (220, 190, 40),
    (230, 120, 30),
    (120, 20, 30),
    (200, 185, 150),
    (60, 110, 60),
    (110, 160, 210),
    (150, 90, 50),
)
CLOTHING_PALETTE: tuple[RGB, ...] = (
    (30, 30, 35),
    (235, 235, 235),
    (170, 30, 35),
    (40, 70, 160),
    (220, 190, 40),
    (230, 120, 30),
    (200, 185, 150),
    (60, 110, 60),
    (110, 160, 210),
    (150, 90, 50),
    (175, 178, 185),
    (120, 20, 30),
)
HAIR_PALETTE: tuple[RGB, ...] = ((25, 20, 15), (70, 45, 25), (160, 120, 60), (200, 200, 200))
CONE_PALETTE: tuple[RGB, ...] = ((230, 120, 30), (220, 190, 40), (235, 235, 235), (170, 30, 35))
DEBRIS_PALETTE: tuple[RGB, ...] = (
    (150, 90, 50),
    (75, 78, 85),
    (30, 30, 35),
    (40, 70, 160),
    (200, 185, 150),
    (175, 178, 185),
)

# kind: (length range [m], width range [m], height range [m])
VEHICLE_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "car": ((4.0, 4.9), (1.75, 1.95), (1.4, 1.6)),
    "van": ((5.2, 6.0), (2.0, 2.15), (2.0, 2.5)),
    "truck": ((8.0, 10.0), (2.45, 2.55), (3.0, 3.8)),
}
VEHICLE_KIND_WEIGHTS = (0.7, 0.2, 0.1)
PEDESTRIAN_SIZE = ((0.40, 0.55), (0.60, 0.75), (1.5, 1.9))  # depth, shoulder width, height [m]
OBSTACLE_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "cone": ((0.40, 0.50), (0.40, 0.50), (0.6, 0.8)),
    "debris": ((0.8, 1.8), (0.6, 1.2), (0.2, 0.5)),
    "stalled_car": ((4.0, 4.9), (1.75, 1.95), (1.4, 1.6)),
}
OBSTACLE_KIND_WEIGHTS = (0.4, 0.35, 0.25)


@dataclass
class Style:
    """Appearance of one road object; the simulator's collision box is (length, width)."""

    cls: str  # vehicle | pedestrian | obstacle
    kind: str
    length: float  # [m]
    width: float  # [m]
    height: float  # [m] (for the pinhole cameras)
    color: RGB
    accent: RGB  # hair for pedestrians, stripe or roof for the others


def _pick(rng: np.random.Generator, palette: tuple[RGB, ...]) -> RGB:
    return tuple(int(c) for c in palette[rng.integers(len(palette))])


def _sizes(rng: np.random.Generator, ranges) -> tuple[float, float, float]:
    return tuple(float(rng.uniform(lo, hi)) for lo, hi in ranges)


def vehicle_style(rng: np.random.Generator, kind: str | None = None) -> Style:
    kind = kind or str(rng.choice(list(VEHICLE_KINDS), p=VEHICLE_KIND_WEIGHTS))
    length, width, height = _sizes(rng, VEHICLE_KINDS[kind])
    color = _pick(rng, VEHICLE_PALETTE)
    return Style("vehicle", kind, length, width, height, color, _pick(rng, VEHICLE_PALETTE))


def pedestrian_style(rng: np.random.Generator) -> Style:
    depth, width, height = _sizes(rng, PEDESTRIAN_SIZE)
    return Style(
        "pedestrian",
        "adult",
        depth,
        width,
        height,
        _pick(rng, CLOTHING_PALETTE),
        _pick(rng, HAIR_PALETTE),
    )


def obstacle_style(rng: np.random.Generator, kind: str | None = None) -> Style:
    kind = kind or str(rng.choice(list(OBSTACLE_KINDS), p=OBSTACLE_KIND_WEIGHTS))
    length, width, height = _sizes(rng, OBSTACLE_KINDS[kind])
    palette = {"cone": CONE_PALETTE, "debris": DEBRIS_PALETTE}.get(kind, VEHICLE_PALETTE)
    return Style("obstacle", kind, length, width, height, _pick(rng, palette), (235, 235, 235))


def ego_style() -> Style:
    length, width, height = 5.0, 2.0, 1.5  # highway-env's Vehicle.LENGTH / WIDTH
    return Style("ego", "car", length, width, height, EGO_COLOR, EGO_ROOF)


def apply_style(obj, style: Style, resize: bool = True) -> None:
    """Attach `style` to a highway-env road object; `resize` also sets its collision box."""
    obj.roadsight_style = style
    obj.color = style.color  # highway-env's VehicleGraphics honours `color`
    if resize:
        obj.LENGTH, obj.WIDTH = style.length, style.width
        obj.diagonal = float(np.hypot(style.length, style.width))
