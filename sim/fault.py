"""Who was at fault in a collision, from the two bodies' geometry and velocities at contact.

The contact normal is the axis (of either box) on which the two bodies overlap least: across
`me`'s front, rear or a side, or across a face of the other. Each body's share of the closing
speed along that normal is its own velocity's component toward the other. `me` is at fault when
it was moving into the other (its share above `MOVING` m/s) at least as fast as the other was
moving into it: a car that rear-ends another is at fault, one hit from behind is not; a
pedestrian who walks into a stopped car is at fault, a car that drives into someone crossing
ahead of it is; a car that steers into the side of a neighbour is at fault, one that is cut into
from the side is not. A car hit by one behind it within `CUT_IN` seconds of heading for that
car's lane (a lane change) is at fault too: it cut in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOVING = 0.2  # [m/s] a closing share below this is standing still (or drifting), not driving in
CUT_IN = 3.0  # [s] after a lane change began, a hit from behind is the lane changer's doing


@dataclass(frozen=True)
class Body:
    """A road object's state at the moment of contact, in world metres and m/s."""

    position: tuple[float, float]  # [m] centre
    heading: float  # [rad]
    velocity: tuple[float, float]  # [m/s]
    length: float  # [m]
    width: float  # [m]

    @classmethod
    def of(cls, obj) -> Body:
        """The state of a highway-env road object (vehicle, pedestrian, obstacle)."""
        return cls(
            (float(obj.position[0]), float(obj.position[1])),
            float(obj.heading),
            (float(obj.velocity[0]), float(obj.velocity[1])),
            float(obj.LENGTH),
            float(obj.WIDTH),
        )


def _axes(body: Body) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(body.heading), np.sin(body.heading)
    return np.array([c, s]), np.array([-s, c])  # forward, left


def _half_extent(body: Body, axis: np.ndarray) -> float:
    forward, left = _axes(body)
    return abs(forward @ axis) * body.length / 2 + abs(left @ axis) * body.width / 2


def contact_normal(me: Body, other: Body) -> np.ndarray:
    """Unit world vector from `me` toward `other` across the face where the two boxes touch.

    Separating-axis test over both boxes' axes: the axis on which they overlap least (or are
    furthest apart, for a contact highway-env predicted one step ahead) is the contact normal.
    """
    delta = np.asarray(other.position) - np.asarray(me.position)
    best, normal = np.inf, None
    for axis in (*_axes(me), *_axes(other)):
        overlap = _half_extent(me, axis) + _half_extent(other, axis) - abs(delta @ axis)
        if overlap < best:
            best, normal = overlap, axis if delta @ axis >= 0 else -axis
    return normal


def closing_shares(me: Body, other: Body) -> tuple[float, float]:
    """[m/s] how fast `me` moved toward `other` and `other` toward `me`, along the normal."""
    n = contact_normal(me, other)
    return float(np.asarray(me.velocity) @ n), float(-np.asarray(other.velocity) @ n)


def at_fault(
    me: Body, other: Body, me_in_lane: float = np.inf, other_in_lane: float = np.inf
) -> bool:
    """Did `me` cause the collision: was it moving into `other` at least as fast as the reverse?

    `me_in_lane`: [s] since `me` headed for the lane `other` drives in (inf: it did not);
    `other_in_lane`: [s] since `other` headed for its lane.
    """
    mine, theirs = closing_shares(me, other)
    if mine > MOVING and mine >= theirs:
        return True
    forward = np.array([np.cos(me.heading), np.sin(me.heading)])
    behind = (np.asarray(other.position) - np.asarray(me.position)) @ forward < 0
    return bool(behind and me_in_lane < min(CUT_IN, other_in_lane))
