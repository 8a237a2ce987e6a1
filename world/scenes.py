"""Scene families: random specs from a seed, and their exact motion (tracks, states and events).

A `SceneSpec` is plain data (JSON-able) drawn from a seeded generator; `simulate(spec)` turns it into a
`Scene` whose tracks hold every object's position, velocity, angle and state at every frame. The same
(spec, seed) always gives the same scene. Sizes, speeds and gravity scale with min(width, height) / 64,
so other sizes and aspect ratios show the same physics at their own resolution.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .physics import Body, Bounds, simulate as simulate_bodies

# Named colours of movable objects, far apart in hue so that perception and prompts can tell them apart.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 40),
    "green": (40, 160, 60),
    "blue": (45, 85, 215),
    "yellow": (235, 200, 35),
    "purple": (140, 55, 185),
    "orange": (240, 130, 25),
}
# Colours of props (not drawn from the palette).
PROP_COLOURS: dict[str, tuple[int, int, int]] = {
    "gray": (110, 110, 118),
    "white": (240, 236, 222),
    "brown": (176, 120, 62),
    "pink": (236, 120, 160),
    "black": (40, 40, 44),
}
SHAPES = ("ball", "square", "triangle")

FAMILIES = (
    "fall", "projectile", "roll", "topdown", "collision", "occlusion",  # motion and physics
    "knock", "candle", "cookie", "switch",  # causal events with lasting effects
)
CAUSAL_FAMILIES = ("knock", "candle", "cookie", "switch")


@dataclass
class ObjectSpec:
    id: int
    cls: str  # ball, square, triangle, block, wall, candle, puff, cookie, mouth, lamp, switch
    colour: str
    size: float  # radius (ball), half side (square), half height (triangle, block, candle, wall)
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    width: float = 0.0  # half width where it differs from size (block, wall, candle, switch)


@dataclass
class SceneSpec:
    family: str
    seed: int
    width: int = 64
    height: int = 64
    fps: float = 8.0
    n_frames: int = 17
    view: str = "side"  # side (gravity, floor) or top (a table seen from above)
    gravity: float = 0.0
    restitution: float = 1.0
    objects: list[ObjectSpec] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return min(self.width, self.height) / 64.0

    @property
    def duration(self) -> float:
        return (self.n_frames - 1) / self.fps

    @property
    def floor_y(self) -> float:
        return self.height - 8.0 * self.scale

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "SceneSpec":
        d = dict(d)
        d["objects"] = [ObjectSpec(**o) for o in d.get("objects", [])]
        return SceneSpec(**d)


@dataclass
class Track:
    """One object through the clip."""

    id: int
    cls: str
    colour: str
    size: float
    width: float
    pos: np.ndarray  # [T, 2] centre in pixels
    vel: np.ndarray  # [T, 2] px/s
    angle: np.ndarray  # [T] radians
    state: dict[str, np.ndarray] = field(default_factory=dict)  # per-frame states (lit, bitten, ...)
    alpha: np.ndarray | None = None  # [T] opacity, for puffs of air


@dataclass
class SceneEvent:
    kind: str
    time: float
    frame: int
    ids: list[int]


@dataclass
class Scene:
    spec: SceneSpec
    tracks: list[Track]
    events: list[SceneEvent]
    times: np.ndarray

    def track(self, cls: str) -> Track:
        return next(t for t in self.tracks if t.cls == cls)


# ----------------------------------------------------------------------------------------------
# sampling specs


def _pick_colours(rng: np.random.Generator, k: int) -> list[str]:
    names = list(PALETTE)
    return [names[i] for i in rng.choice(len(names), size=k, replace=False)]


def _pick_shapes(rng: np.random.Generator, k: int, balls_only: bool = False) -> list[str]:
    if balls_only:
        return ["ball"] * k
    return [SHAPES[i] for i in rng.choice(3, size=k, p=[0.5, 0.25, 0.25])]


def _count(rng: np.random.Generator, lo: int, hi: int) -> int:
    ks = np.arange(lo, hi + 1)
    w = 0.55 ** (ks - lo)
    return int(rng.choice(ks, p=w / w.sum()))


def sample_spec(
    seed: int,
    family: str | None = None,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    n_frames: int = 17,
    families: tuple[str, ...] = FAMILIES,
) -> SceneSpec:
    """A random scene of `family` (or of one of `families`), fully determined by the arguments."""
    rng = np.random.default_rng([seed, 7919])
    if family is None:
        family = families[int(rng.integers(len(families)))]
    if family not in FAMILIES:
        raise ValueError(f"unknown scene family {family!r}; choose from {', '.join(FAMILIES)}")
    spec = SceneSpec(family=family, seed=seed, width=width, height=height, fps=fps, n_frames=n_frames)
    _SAMPLERS[family](spec, rng)
    return spec


def _sample_fall(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    spec.gravity = float(rng.uniform(220, 360) * s)
    spec.restitution = float(rng.uniform(0.55, 0.8))
    k = _count(rng, 1, 3)
    colours, shapes = _pick_colours(rng, k), _pick_shapes(rng, k)
    sizes = rng.uniform(4.0, 6.5, size=k) * s
    # horizontal slots far enough apart that falling bodies never touch
    slot = W / k
    for i in range(k):
        r = float(sizes[i])
        lo, hi = i * slot + r + 2 * s, (i + 1) * slot - r - 2 * s
        x = float(rng.uniform(lo, max(lo, hi)))
        y = float(rng.uniform(r + 2 * s, spec.height * 0.45))
        spec.objects.append(ObjectSpec(i, shapes[i], colours[i], r, x, y, 0.0, float(rng.uniform(-10, 5) * s)))


def _sample_projectile(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    spec.gravity = float(rng.uniform(220, 340) * s)
    spec.restitution = float(rng.uniform(0.55, 0.75))
    d = 1 if rng.random() < 0.5 else -1
    r = float(rng.uniform(4.0, 6.0) * s)
    x = r + 2 * s if d > 0 else W - r - 2 * s
    y = float(spec.floor_y - r - rng.uniform(4, 20) * s)
    vx = d * float(rng.uniform(22, 40) * s * 2.0 / max(spec.duration, 0.5))
    vy = -float(rng.uniform(70, 115) * s)
    spec.objects.append(ObjectSpec(0, _pick_shapes(rng, 1)[0], _pick_colours(rng, 1)[0], r, x, y, vx, vy))


def _sample_roll(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    d = 1 if rng.random() < 0.5 else -1
    shape = _pick_shapes(rng, 1)[0]
    r = float(rng.uniform(4.0, 6.5) * s)
    # far enough to read the direction in one clip, without leaving the frame too early
    travel = float(rng.uniform(0.45, 0.7)) * W
    speed = travel / max(spec.duration, 0.5)
    x0 = float(rng.uniform(r + 1, W * 0.25)) if d > 0 else float(rng.uniform(W * 0.75, W - r - 1))
    spec.objects.append(
        ObjectSpec(0, shape, _pick_colours(rng, 1)[0], r, x0, spec.floor_y - r, d * speed, 0.0)
    )


def _sample_topdown(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W, H = spec.scale, spec.width, spec.height
    spec.view = "top"
    k = _count(rng, 1, 4)
    colours, shapes = _pick_colours(rng, k), _pick_shapes(rng, k)
    border = 3 * s
    placed: list[tuple[float, float, float]] = []
    for i in range(k):
        r = float(rng.uniform(3.5, 5.5) * s)
        br = _bound_radius(ObjectSpec(i, shapes[i], colours[i], r, 0.0, 0.0))  # what collisions use
        for _ in range(200):
            x = float(rng.uniform(border + r + 1, W - border - r - 1))
            y = float(rng.uniform(border + r + 1, H - border - r - 1))
            if all(math.hypot(x - px, y - py) > br + pr + 2 for px, py, pr in placed):
                break
        placed.append((x, y, br))
        ang = float(rng.uniform(0, 2 * math.pi))
        speed = float(rng.uniform(18, 40) * s)
        spec.objects.append(
            ObjectSpec(i, shapes[i], colours[i], r, x, y, speed * math.cos(ang), speed * math.sin(ang))
        )


def _sample_collision(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    colours = _pick_colours(rng, 2)
    r1, r2 = (float(v) for v in rng.uniform(4.0, 6.5, size=2) * s)
    T = spec.duration
    t_hit = float(rng.uniform(0.3, 0.55)) * T
    moving_both = rng.random() < 0.6
    v1 = float(rng.uniform(20, 38) * s)
    v2 = -float(rng.uniform(12, 30) * s) if moving_both else 0.0
    gap_at_hit = r1 + r2
    # place them so that they touch at t_hit, centred around the middle of the frame
    meet = float(rng.uniform(0.4, 0.6)) * W
    x1 = meet - r1 - v1 * t_hit
    x2 = meet + r2 - v2 * t_hit
    if x1 < r1 + 1 or x2 > W - r2 - 1:  # too fast for this frame: slow down to fit
        v1 = (meet - r1 - (r1 + 1)) / t_hit
        x1 = r1 + 1
        if moving_both:
            v2 = -((W - r2 - 1) - (meet + r2)) / t_hit
        x2 = meet + r2 - v2 * t_hit
    del gap_at_hit
    y = spec.floor_y
    spec.objects.append(ObjectSpec(0, "ball", colours[0], r1, x1, y - r1, v1, 0.0))
    spec.objects.append(ObjectSpec(1, "ball", colours[1], r2, x2, y - r2, v2, 0.0))


def _sample_occlusion(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W, H = spec.scale, spec.width, spec.height
    d = 1 if rng.random() < 0.5 else -1
    wall_x = float(rng.uniform(0.42, 0.58) * W)
    wall_hw = float(rng.uniform(5.0, 7.0) * s)
    wall_hh = float(rng.uniform(0.28, 0.36) * H)
    shape = _pick_shapes(rng, 1)[0]
    r = float(rng.uniform(3.5, min(5.5, wall_hw / s - 0.5)) * s)
    x0 = float(rng.uniform(r + 1, wall_x - wall_hw - r - 4 * s)) if d > 0 else float(
        rng.uniform(wall_x + wall_hw + r + 4 * s, W - r - 1)
    )
    x_end = wall_x + d * (wall_hw + r + 4 * s)
    speed = abs(x_end - x0) / (float(rng.uniform(0.6, 0.8)) * spec.duration)
    spec.objects.append(ObjectSpec(0, shape, _pick_colours(rng, 1)[0], r, x0, spec.floor_y - r, d * speed))
    spec.objects.append(ObjectSpec(1, "wall", "gray", wall_hh, wall_x, spec.floor_y - wall_hh, width=wall_hw))


def _sample_knock(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    d = 1 if rng.random() < 0.5 else -1
    ball_c, block_c = _pick_colours(rng, 2)
    r = float(rng.uniform(4.0, 5.5) * s)
    hw, hh = float(rng.uniform(2.5, 3.5) * s), float(rng.uniform(7.0, 10.0) * s)
    bx = float(rng.uniform(0.58, 0.7) * W) if d > 0 else float(rng.uniform(0.3, 0.42) * W)
    t_hit = float(rng.uniform(0.25, 0.45)) * spec.duration
    x0 = float(np.clip(bx - d * (hw + r) - d * rng.uniform(18, 40) * s, r + 1, W - r - 1))
    speed = abs((bx - d * (hw + r)) - x0) / t_hit
    spec.objects.append(ObjectSpec(0, "ball", ball_c, r, x0, spec.floor_y - r, d * speed))
    spec.objects.append(ObjectSpec(1, "block", block_c, hh, bx, spec.floor_y - hh, width=hw))
    spec.params["fall_time"] = float(rng.uniform(0.3, 0.45))


def _sample_candle(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    d = 1 if rng.random() < 0.5 else -1  # direction the wind blows
    hw, hh = float(rng.uniform(2.5, 3.5) * s), float(rng.uniform(6.0, 9.0) * s)
    cx = float(rng.uniform(0.5, 0.68) * W) if d > 0 else float(rng.uniform(0.32, 0.5) * W)
    spec.objects.append(ObjectSpec(0, "candle", "white", hh, cx, spec.floor_y - hh, width=hw))
    flame_y = spec.floor_y - 2 * hh - 4 * s
    t_out = float(rng.uniform(0.35, 0.55)) * spec.duration
    x_start = -4 * s if d > 0 else W + 4 * s
    speed = abs(cx - x_start) / t_out
    spec.objects.append(ObjectSpec(1, "puff", "white", 3.5 * s, x_start, flame_y, d * speed, 0.0))
    spec.params["t_out"] = t_out


def _sample_cookie(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W, H = spec.scale, spec.width, spec.height
    spec.view = "top"
    d = 1 if rng.random() < 0.5 else -1  # side the mouth comes from (+1: from the right)
    R = float(rng.uniform(8.0, 11.0) * s)
    cx = float(rng.uniform(0.35, 0.5) * W) if d > 0 else float(rng.uniform(0.5, 0.65) * W)
    cy = float(rng.uniform(0.4, 0.6) * H)
    spec.objects.append(ObjectSpec(0, "cookie", "brown", R, cx, cy))
    mr = float(rng.uniform(5.0, 6.5) * s)
    t_bite = float(rng.uniform(0.35, 0.55)) * spec.duration
    x_start = W + mr if d > 0 else -mr
    x_touch = cx + d * (R + mr * 0.3)
    speed = abs(x_start - x_touch) / t_bite
    spec.objects.append(ObjectSpec(1, "mouth", "pink", mr, x_start, cy, -d * speed, 0.0))
    spec.params.update(t_bite=t_bite, notch=float(rng.uniform(0.4, 0.5)) * R)


def _sample_switch(spec: SceneSpec, rng: np.random.Generator) -> None:
    s, W = spec.scale, spec.width
    d = 1 if rng.random() < 0.5 else -1  # the switch is on the right wall for +1
    r = float(rng.uniform(4.0, 5.5) * s)
    sw_x = W - 2 * s if d > 0 else 2 * s
    t_hit = float(rng.uniform(0.3, 0.5)) * spec.duration
    x0 = float(rng.uniform(r + 1, 0.3 * W)) if d > 0 else float(rng.uniform(0.7 * W, W - r - 1))
    x_touch = sw_x - d * (2 * s + r)
    speed = abs(x_touch - x0) / t_hit
    spec.objects.append(ObjectSpec(0, "ball", _pick_colours(rng, 1)[0], r, x0, spec.floor_y - r, d * speed))
    spec.objects.append(ObjectSpec(1, "switch", "gray", 4 * s, sw_x, spec.floor_y - 6 * s, width=2 * s))
    lamp_x = float(rng.uniform(0.3, 0.7) * W)
    spec.objects.append(ObjectSpec(2, "lamp", "yellow", float(rng.uniform(4.0, 5.0) * s), lamp_x, 14 * s))
    spec.params["delay"] = 0.05


_SAMPLERS = {
    "fall": _sample_fall,
    "projectile": _sample_projectile,
    "roll": _sample_roll,
    "topdown": _sample_topdown,
    "collision": _sample_collision,
    "occlusion": _sample_occlusion,
    "knock": _sample_knock,
    "candle": _sample_candle,
    "cookie": _sample_cookie,
    "switch": _sample_switch,
}

# ----------------------------------------------------------------------------------------------
# simulation


def _half_extents(o: ObjectSpec) -> tuple[float, float]:
    if o.cls == "triangle":
        return 2 * o.size / math.sqrt(3), o.size
    return (o.width or o.size), o.size


def _frame_of(t: float, fps: float) -> int:
    """The first frame whose time is at or after t: where an event's effect is first visible."""
    return int(math.ceil(t * fps - 1e-9))


def _bound_radius(o: ObjectSpec) -> float:
    """Radius of the circle about (x, y) that holds the whole shape."""
    if o.cls == "ball":
        return o.size
    return math.hypot(*_half_extents(o))  # square: its corners; triangle: its base corners


def _static(o: ObjectSpec, T: int) -> Track:
    return Track(o.id, o.cls, o.colour, o.size, o.width, np.tile([o.x, o.y], (T, 1)).astype(float),
                 np.zeros((T, 2)), np.zeros(T))


def _free_bodies(spec: SceneSpec, objs: list[ObjectSpec], times: np.ndarray, bounds: Bounds,
                 collide: bool = False) -> tuple[list[Track], list[SceneEvent]]:
    bodies = []
    for o in objs:
        hx, hy = _half_extents(o)
        # contacts between bodies use bounding circles: corners never pass into another body
        bodies.append(Body(o.id, o.x, o.y, o.vx, o.vy, hx, hy, radius=_bound_radius(o),
                           mass=o.size ** 2, resting=(abs(o.y + hy - (bounds.floor or 1e9)) < 1e-6 and o.vy == 0)))
    traj = simulate_bodies(bodies, bounds, times, gravity=spec.gravity, restitution=spec.restitution,
                           # a rebound under 1.5 px high is no visible bounce: the body comes to rest instead
                           collide=collide, rest_speed=max(8.0 * spec.scale, math.sqrt(2 * spec.gravity * 1.5 * spec.scale)))
    tracks = [Track(o.id, o.cls, o.colour, o.size, o.width, traj.pos[:, i], traj.vel[:, i], np.zeros(len(times)))
              for i, o in enumerate(objs)]
    events = [SceneEvent(e.kind, e.time, _frame_of(e.time, spec.fps), e.ids) for e in traj.events]
    return tracks, events


def simulate(spec: SceneSpec) -> Scene:
    """The exact motion of `spec`: a Track per object and the events, sampled at the frame times."""
    T = spec.n_frames
    times = np.arange(T) / spec.fps
    fam = spec.family
    objs = spec.objects
    floor = Bounds(floor=spec.floor_y)
    if fam in ("fall", "projectile", "roll"):
        tracks, events = _free_bodies(spec, objs, times, floor)
    elif fam == "topdown":
        b = 3 * spec.scale
        tracks, events = _free_bodies(spec, objs, times, Bounds(b, spec.width - b, b, spec.height - b), collide=True)
    elif fam == "collision":
        tracks, events = _free_bodies(spec, objs, times, floor, collide=True)
    elif fam == "occlusion":
        tracks, events = _free_bodies(spec, objs[:1], times, floor)
        tracks.append(_static(objs[1], T))
    else:
        tracks, events = _CAUSAL[fam](spec, times)
    events = [e for e in events if e.time <= times[-1] + 1e-9]
    events.sort(key=lambda e: (e.time, e.kind))
    return Scene(spec, tracks, events, times)


def _roll_and_rebound(o: ObjectSpec, times: np.ndarray, t_hit: float, rebound: float) -> tuple[np.ndarray, np.ndarray]:
    """A body rolling at constant speed that rebounds at t_hit with `rebound` times its speed."""
    x_hit = o.x + o.vx * t_hit
    before = times < t_hit
    x = np.where(before, o.x + o.vx * times, x_hit - rebound * o.vx * (times - t_hit))
    vx = np.where(before, o.vx, -rebound * o.vx)
    pos = np.stack([x, np.full_like(x, o.y)], 1)
    vel = np.stack([vx, np.zeros_like(x)], 1)
    return pos, vel


def _sim_knock(spec: SceneSpec, times: np.ndarray):
    ball_o, block_o = spec.objects
    d = 1.0 if ball_o.vx > 0 else -1.0
    t_hit = abs((block_o.x - d * (block_o.width + ball_o.size)) - ball_o.x) / abs(ball_o.vx)
    pos, vel = _roll_and_rebound(ball_o, times, t_hit, 0.25)
    ball = Track(ball_o.id, "ball", ball_o.colour, ball_o.size, 0.0, pos, vel, np.zeros(len(times)))
    # the block tips about its far bottom corner, accelerating like a falling rod, and lands flat
    tf = spec.params["fall_time"]
    tau = np.clip((times - t_hit) / tf, 0.0, 1.0)
    ang = d * (math.pi / 2) * tau ** 2
    pivot = np.array([block_o.x + d * block_o.width, spec.floor_y])
    rel = np.array([-d * block_o.width, -block_o.size])  # centre relative to the pivot, upright
    c, s_ = np.cos(ang), np.sin(ang)
    cx = pivot[0] + c * rel[0] - s_ * rel[1]
    cy = pivot[1] + s_ * rel[0] + c * rel[1]
    bpos = np.stack([cx, cy], 1)
    # exact velocity: d(centre)/dt = dR/d(angle) rel * d(angle)/dt (zero before the hit and after landing)
    dang = np.where((times > t_hit) & (times < t_hit + tf), d * (math.pi / 2) * 2 * tau / tf, 0.0)
    bvel = np.stack([(-s_ * rel[0] - c * rel[1]) * dang, (c * rel[0] - s_ * rel[1]) * dang], 1)
    fallen = times >= t_hit + tf - 1e-9
    block = Track(block_o.id, "block", block_o.colour, block_o.size, block_o.width, bpos, bvel, ang,
                  state={"knocked": times >= t_hit - 1e-9, "fallen": fallen})
    events = [SceneEvent("hit", t_hit, _frame_of(t_hit, spec.fps), [ball_o.id, block_o.id]),
              SceneEvent("fall_over", t_hit + tf, _frame_of(t_hit + tf, spec.fps), [block_o.id])]
    return [ball, block], events


def _sim_candle(spec: SceneSpec, times: np.ndarray):
    candle_o, puff_o = spec.objects
    t_out = spec.params["t_out"]
    lit = times < t_out - 1e-9
    candle = _static(candle_o, len(times))
    candle.state = {"lit": lit, "smoke": np.clip(1.0 - (times - t_out) / 1.5, 0, 1) * (~lit)}
    x = puff_o.x + puff_o.vx * times
    puff = Track(puff_o.id, "puff", "white", puff_o.size, 0.0, np.stack([x, np.full_like(x, puff_o.y)], 1),
                 np.tile([puff_o.vx, 0.0], (len(times), 1)), np.zeros(len(times)),
                 alpha=np.clip(1.0 - (times - t_out) / 0.6, 0.0, 1.0) * 0.55)
    events = [SceneEvent("blow_out", t_out, _frame_of(t_out, spec.fps), [puff_o.id, candle_o.id])]
    return [candle, puff], events


def _sim_cookie(spec: SceneSpec, times: np.ndarray):
    cookie_o, mouth_o = spec.objects
    t_bite = spec.params["t_bite"]
    pos, vel = _roll_and_rebound(mouth_o, times, t_bite, 0.8)
    pos[:, 1] = mouth_o.y
    d = -1.0 if mouth_o.vx < 0 else 1.0  # mouth moves in direction d; it came from the side -d
    # it faces the cookie: angle 0 opens toward +x (image right), pi toward -x
    mouth = Track(mouth_o.id, "mouth", "pink", mouth_o.size, 0.0, pos, vel, np.full(len(times), 0.0 if d > 0 else math.pi),
                  state={"open": 0.25 + 0.35 * np.abs(np.sin(times * 9.0))})
    bitten = times >= t_bite - 1e-9
    notch_r = spec.params["notch"]
    cookie = _static(cookie_o, len(times))
    cookie.state = {"bitten": bitten,
                    "notch_x": np.full(len(times), cookie_o.x - d * cookie_o.size),
                    "notch_y": np.full(len(times), cookie_o.y),
                    "notch_r": np.where(bitten, notch_r, 0.0)}
    events = [SceneEvent("bite", t_bite, _frame_of(t_bite, spec.fps), [mouth_o.id, cookie_o.id])]
    return [cookie, mouth], events


def _sim_switch(spec: SceneSpec, times: np.ndarray):
    ball_o, sw_o, lamp_o = spec.objects
    d = 1.0 if ball_o.vx > 0 else -1.0
    x_touch = sw_o.x - d * (sw_o.width + ball_o.size)
    t_hit = abs(x_touch - ball_o.x) / abs(ball_o.vx)
    pos, vel = _roll_and_rebound(ball_o, times, t_hit, 0.35)
    ball = Track(ball_o.id, "ball", ball_o.colour, ball_o.size, 0.0, pos, vel, np.zeros(len(times)))
    pressed = times >= t_hit - 1e-9
    switch = _static(sw_o, len(times))
    switch.state = {"pressed": pressed}
    t_on = t_hit + spec.params["delay"]
    lamp = _static(lamp_o, len(times))
    lamp.state = {"lit": times >= t_on - 1e-9}
    events = [SceneEvent("press", t_hit, _frame_of(t_hit, spec.fps), [ball_o.id, sw_o.id]),
              SceneEvent("lamp_on", t_on, _frame_of(t_on, spec.fps), [lamp_o.id])]
    return [ball, switch, lamp], events


_CAUSAL = {"knock": _sim_knock, "candle": _sim_candle, "cookie": _sim_cookie, "switch": _sim_switch}
