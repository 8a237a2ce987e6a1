"""Exact 2D rigid-body motion, event by event.

Between events every body moves on an exact parabola (side view, gravity g down) or a straight line (top
view), so positions sampled at frame times are the closed-form ones: a free-fall test can compare them
with y0 + v0 t + g t^2 / 2 to machine precision. Events are found analytically (roots of quadratics):
floor and wall contacts, and contacts between pairs of bodies, which are resolved as elastic impulses
with masses proportional to area, so momentum and energy are conserved exactly.

Units: pixels and seconds; image coordinates (x right, y down).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-9


@dataclass
class Body:
    id: int
    x: float
    y: float
    vx: float
    vy: float
    hx: float  # half extents used for contacts with the floor and walls
    hy: float
    radius: float  # radius used for contacts between bodies
    mass: float = 1.0
    resting: bool = False  # on the floor with no vertical motion left


@dataclass
class Bounds:
    """The box bodies live in; None on a side means open (bodies may leave the frame there)."""

    left: float | None = None
    right: float | None = None
    top: float | None = None
    floor: float | None = None


@dataclass
class Event:
    kind: str  # "bounce" (floor), "wall", "collision"
    time: float
    ids: list[int]


@dataclass
class Trajectory:
    times: np.ndarray  # [T]
    pos: np.ndarray  # [T, N, 2]
    vel: np.ndarray  # [T, N, 2]
    events: list[Event] = field(default_factory=list)


def _first_root(a: float, b: float, c: float) -> float:
    """Smallest t > EPS with a t^2 + b t + c = 0, or inf."""
    if abs(a) < 1e-12:
        if abs(b) < 1e-12:
            return math.inf
        t = -c / b
        return t if t > EPS else math.inf
    disc = b * b - 4 * a * c
    if disc < 0:
        return math.inf
    sq = math.sqrt(disc)
    roots = sorted(((-b - sq) / (2 * a), (-b + sq) / (2 * a)))
    for t in roots:
        if t > EPS:
            return t
    return math.inf


def simulate(
    bodies: list[Body],
    bounds: Bounds,
    times: np.ndarray,
    gravity: float = 0.0,
    restitution: float = 1.0,
    wall_restitution: float = 1.0,
    collide: bool = False,
    rest_speed: float = 8.0,
    max_events: int = 2000,
) -> Trajectory:
    """Advance the bodies through `times` (seconds, increasing), recording exact states at each time.

    restitution applies at the floor; wall_restitution at side walls and the ceiling; body contacts are
    elastic. A floor bounce slower than rest_speed (px/s) puts the body to rest on the floor, which
    ends the otherwise endless series of ever smaller bounces.
    """
    times = np.asarray(times, dtype=np.float64)
    n = len(bodies)
    pos = np.zeros((len(times), n, 2))
    vel = np.zeros((len(times), n, 2))
    events: list[Event] = []
    t = 0.0
    k = 0  # next sample index
    t_end = float(times[-1]) if len(times) else 0.0

    def accel(b: Body) -> float:
        return 0.0 if b.resting else gravity

    while True:
        # the earliest event after t
        best, what = math.inf, None
        for i, b in enumerate(bodies):
            a = accel(b)
            if bounds.floor is not None and not b.resting:
                # y + vy s + a s^2 / 2 = floor - hy, moving down
                s = _first_root(0.5 * a, b.vy, b.y - (bounds.floor - b.hy))
                if s < best and (b.vy + a * s) > 0:
                    best, what = s, ("bounce", i)
            if bounds.top is not None and b.vy < 0 and a == 0:
                s = (bounds.top + b.hy - b.y) / b.vy
                if EPS < s < best:
                    best, what = s, ("wall_y", i)
            if bounds.left is not None and b.vx < 0:
                s = (bounds.left + b.hx - b.x) / b.vx
                if EPS < s < best:
                    best, what = s, ("wall_x", i)
            if bounds.right is not None and b.vx > 0:
                s = (bounds.right - b.hx - b.x) / b.vx
                if EPS < s < best:
                    best, what = s, ("wall_x", i)
        if collide:
            for i in range(n):
                for j in range(i + 1, n):
                    bi, bj = bodies[i], bodies[j]
                    if accel(bi) != accel(bj):
                        continue  # relative motion is a straight line only under equal acceleration
                    px, py = bj.x - bi.x, bj.y - bi.y
                    vx, vy = bj.vx - bi.vx, bj.vy - bi.vy
                    if px * vx + py * vy >= 0:
                        continue  # not approaching
                    rr = bi.radius + bj.radius
                    s = _first_root(vx * vx + vy * vy, 2 * (px * vx + py * vy), px * px + py * py - rr * rr)
                    if s < best:
                        best, what = s, ("collision", i, j)

        t_next = min(t + best, t_end + 1.0)
        # record samples that fall before the event
        while k < len(times) and times[k] <= t_next:
            dt = times[k] - t
            for i, b in enumerate(bodies):
                a = accel(b)
                pos[k, i] = (b.x + b.vx * dt, b.y + b.vy * dt + 0.5 * a * dt * dt)
                vel[k, i] = (b.vx, b.vy + a * dt)
            k += 1
        if k >= len(times) or what is None or len(events) >= max_events:
            break
        dt = best
        for b in bodies:
            a = accel(b)
            b.x += b.vx * dt
            b.y += b.vy * dt + 0.5 * a * dt * dt
            b.vy += a * dt
        t += dt
        kind = what[0]
        if kind == "bounce":
            b = bodies[what[1]]
            b.y = bounds.floor - b.hy
            if gravity > 0:  # a floor under gravity: inelastic, and slow bodies come to rest
                b.vy = -restitution * b.vy
                if abs(b.vy) < rest_speed:
                    b.vy, b.resting = 0.0, True
                events.append(Event("bounce", t, [b.id]))
            else:  # no gravity (top view): the bottom edge is a wall like the others
                b.vy = -wall_restitution * b.vy
                events.append(Event("wall", t, [b.id]))
        elif kind == "wall_x":
            b = bodies[what[1]]
            b.vx = -wall_restitution * b.vx
            events.append(Event("wall", t, [b.id]))
        elif kind == "wall_y":
            b = bodies[what[1]]
            b.vy = -wall_restitution * b.vy
            events.append(Event("wall", t, [b.id]))
        else:
            bi, bj = bodies[what[1]], bodies[what[2]]
            nx, ny = bj.x - bi.x, bj.y - bi.y
            if bi.resting and bj.resting:
                ny = 0.0  # both on the floor: it takes the vertical part of the impulse (balls of two sizes)
            d = math.hypot(nx, ny) or 1.0
            nx, ny = nx / d, ny / d
            rel = (bi.vx - bj.vx) * nx + (bi.vy - bj.vy) * ny
            imp = 2.0 * rel / (1.0 / bi.mass + 1.0 / bj.mass)
            bi.vx -= imp / bi.mass * nx
            bi.vy -= imp / bi.mass * ny
            bj.vx += imp / bj.mass * nx
            bj.vy += imp / bj.mass * ny
            events.append(Event("collision", t, [bi.id, bj.id]))
    return Trajectory(times=times, pos=pos, vel=vel, events=events)
