"""Anti-aliased rendering of a Scene into uint8 RGB frames, vectorised over all frames at once.

Every shape is a signed distance function evaluated on the pixel grid for all T frames in one numpy
expression; coverage = clip(0.5 - distance, 0, 1) is a one-pixel box filter, which is what makes edges
anti-aliased. The "camera" adds what real footage has and flat synthetic colour lacks: a textured,
unevenly lit background, shading on balls and sensor noise (all optional, all seeded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .scenes import PALETTE, PROP_COLOURS, Scene, Track

F32 = np.float32
# the standard normal's quantiles at the centres of 256 equal-probability bins
_NORMAL_LUT = np.asarray([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=F32)


@dataclass
class Style:
    texture: float = 1.0  # amplitude of the static background texture (0 = flat)
    lighting: float = 1.0  # strength of the lighting gradient across the frame
    noise: float = 1.0  # sensor noise standard deviation, in 8-bit levels

    @staticmethod
    def clean() -> "Style":
        return Style(0.0, 0.0, 0.0)


def colour_rgb(name: str) -> np.ndarray:
    return np.asarray(PALETTE.get(name) or PROP_COLOURS[name], dtype=F32)


class Canvas:
    """Pixel-centre coordinates and compositing for [T, H, W, 3] float frames."""

    def __init__(self, T: int, H: int, W: int):
        self.T, self.H, self.W = T, H, W
        self.X = (np.arange(W, dtype=F32) + 0.5)[None, None, :]
        self.Y = (np.arange(H, dtype=F32) + 0.5)[None, :, None]
        self.img = np.zeros((T, H, W, 3), dtype=F32)

    @staticmethod
    def col(v) -> np.ndarray:
        """Per-frame parameter [T] -> [T, 1, 1] for broadcasting over the grid."""
        return np.asarray(v, dtype=F32).reshape(-1, 1, 1)

    def paint(self, cov: np.ndarray, rgb) -> None:
        """Blend colour `rgb` ([3], [T,1,1,3] or [T,H,W,3], or a function of the (ys, xs) slices of the
        box being painted that returns [T,h,w,3]) over the frames with coverage `cov`."""
        # blend only inside the box the shape touches in any frame: most of the frame is untouched
        m = cov.max(axis=0) > 0
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if len(rows) == 0:
            return
        ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        if callable(rgb):
            rgb = rgb(ys, xs)
        elif rgb.ndim == 4 and rgb.shape[1] > 1:
            rgb = rgb[:, ys, xs]
        view = self.img[:, ys, xs]
        view += cov[:, ys, xs, None] * (rgb - view)

    # signed distances ------------------------------------------------------------------------
    def sd_circle(self, cx, cy, r) -> np.ndarray:
        return np.sqrt((self.X - self.col(cx)) ** 2 + (self.Y - self.col(cy)) ** 2) - self.col(r)

    def sd_box(self, cx, cy, hx, hy, angle=0.0) -> np.ndarray:
        dx, dy = self.X - self.col(cx), self.Y - self.col(cy)
        c, s = self.col(np.cos(angle)), self.col(np.sin(angle))
        u, v = np.abs(c * dx + s * dy) - self.col(hx), np.abs(-s * dx + c * dy) - self.col(hy)
        outside = np.sqrt(np.maximum(u, 0) ** 2 + np.maximum(v, 0) ** 2)
        return outside + np.minimum(np.maximum(u, v), 0)

    def sd_triangle(self, cx, cy, r) -> np.ndarray:
        """Equilateral triangle pointing up, bounding box centred at (cx, cy), half height r."""
        cx, cy, r = self.col(cx), self.col(cy), self.col(r)
        w = 2 * r / math.sqrt(3)
        dx, dy = self.X - cx, self.Y - cy
        # outward normals of the three edges; each edge passes through a known point
        n = 2 * r / np.sqrt(4 * r * r + w * w)
        m = w / np.sqrt(4 * r * r + w * w)
        right = n * dx - m * (dy + r)  # the edge from the apex (0, -r) to (w, r)
        left = -n * dx - m * (dy + r)
        bottom = dy - r
        return np.maximum(np.maximum(right, left), bottom)

    def sd_teardrop(self, cx, cy, r, h, r_tip=0.0) -> np.ndarray:
        """A drop pointing up: a disc of radius r at (cx, cy) joined by tangent lines to a tip of radius
        r_tip at (cx, cy - h) (an uneven capsule; exact distance)."""
        cx, cy, r, h = self.col(cx), self.col(cy), self.col(r), self.col(h)
        px, py = np.abs(self.X - cx), cy - self.Y  # y up, toward the tip
        b = (r - r_tip) / h
        a = np.sqrt(np.clip(1.0 - b * b, 0.0, 1.0))
        k = -b * px + a * py
        return np.where(k < 0, np.sqrt(px * px + py * py) - r,
                        np.where(k > a * h, np.sqrt(px * px + (py - h) ** 2) - r_tip, a * px + b * py - r))

    @staticmethod
    def cover(sd: np.ndarray) -> np.ndarray:
        c = np.subtract(F32(0.5), sd, dtype=F32)
        np.maximum(c, F32(0.0), out=c)  # (ufuncs in place: np.clip costs twice as much here)
        return np.minimum(c, F32(1.0), out=c)


def _background(scene: Scene, style: Style, rng: np.random.Generator) -> np.ndarray:
    spec = scene.spec
    H, W, s = spec.height, spec.width, spec.scale
    y = (np.arange(H, dtype=F32) + 0.5)[:, None] / H
    x = (np.arange(W, dtype=F32) + 0.5)[None, :] / W
    if spec.view == "side":
        base = np.asarray((205, 200, 188), F32) + rng.uniform(-12, 12, 3).astype(F32)
        floor = np.asarray((128, 108, 88), F32) + rng.uniform(-10, 10, 3).astype(F32)
    else:
        base = np.asarray((150, 175, 140), F32) + rng.uniform(-15, 15, 3).astype(F32)
        floor = np.asarray((70, 62, 55), F32)  # the table's rim
    bg = np.broadcast_to(base, (H, W, 3)).astype(F32).copy()
    if style.texture > 0:
        # static low-frequency texture: bilinear upsampling of a coarse random grid
        g = rng.normal(0, 1, (6, 6)).astype(F32)
        gy = np.linspace(0, 5, H, dtype=F32)
        gx = np.linspace(0, 5, W, dtype=F32)
        iy, ix = np.minimum(gy.astype(int), 4), np.minimum(gx.astype(int), 4)
        fy, fx = (gy - iy)[:, None], (gx - ix)[None, :]
        tex = (g[iy][:, ix] * (1 - fy) * (1 - fx) + g[iy + 1][:, ix] * fy * (1 - fx)
               + g[iy][:, ix + 1] * (1 - fy) * fx + g[iy + 1][:, ix + 1] * fy * fx)
        tex += 0.35 * rng.normal(0, 1, (H, W)).astype(F32)  # fine grain
        bg += (3.0 * style.texture * tex)[..., None]
    if style.lighting > 0:
        lx, ly = rng.uniform(0.1, 0.9), rng.uniform(-0.2, 0.4)
        light = 1.0 + 0.1 * style.lighting * (1.0 - 2.0 * np.sqrt((x - lx) ** 2 + (y - ly) ** 2))
        bg *= light[..., None]
    if spec.view == "side":
        fy = spec.floor_y
        a = np.clip(y * H - fy + 0.5, 0, 1)[..., None]
        bg = bg * (1 - a) + a * floor * (bg / base)  # the floor keeps the texture and lighting
    else:
        b = 3 * s
        d = np.minimum(np.minimum(x * W, W - x * W), np.minimum(y * H, H - y * H))
        a = np.clip(b - d + 0.5, 0, 1)[..., None]
        bg = bg * (1 - a) + a * floor
    return bg


def _shade_ball(cv: Canvas, t: Track, rgb: np.ndarray):
    """A ball lit from the upper left: brighter there, darker at the lower right rim (a function of the
    box being painted, so that only that box is shaded)."""

    def shaded(ys: slice, xs: slice) -> np.ndarray:
        r = F32(t.size)
        dx = (cv.X[..., xs] - cv.col(t.pos[:, 0])) / r
        dy = (cv.Y[:, ys] - cv.col(t.pos[:, 1])) / r
        shade = 1.0 - 0.18 * (dx + dy) * 0.7 - 0.08 * np.clip(dx * dx + dy * dy, 0, 1)
        return np.clip(rgb * shade[..., None], 0, 255)

    return shaded


def _draw(cv: Canvas, t: Track, scene: Scene) -> np.ndarray | None:
    """Paint one track; return its coverage (for visibility), or None for scenery."""
    T = cv.T
    x, y, angle = t.pos[:, 0], t.pos[:, 1], t.angle
    if T > 1 and np.all(t.pos == t.pos[0]) and np.all(t.angle == t.angle[0]):
        # a static shape: one frame's distances, broadcast over time (props are half of all work)
        x, y, angle = x[:1], y[:1], angle[:1]
    n = len(x)
    rgb = colour_rgb(t.colour)
    s = scene.spec.scale
    if t.cls == "ball":
        cov = cv.cover(cv.sd_circle(x, y, np.full(n, t.size)))
        cv.paint(cov, _shade_ball(cv, t, rgb))
        return cov
    if t.cls == "square":
        cov = cv.cover(cv.sd_box(x, y, t.size, t.size, angle))
        cv.paint(cov, rgb)
        return cov
    if t.cls == "triangle":
        cov = cv.cover(cv.sd_triangle(x, y, np.full(n, t.size)))
        cv.paint(cov, rgb)
        return cov
    if t.cls in ("block", "wall"):
        cov = cv.cover(cv.sd_box(x, y, t.width, t.size, angle))
        cv.paint(cov, rgb)
        return cov
    if t.cls == "candle":
        cov = cv.cover(cv.sd_box(x, y, t.width, t.size))
        cv.paint(cov, rgb)
        top = y - t.size
        wick = cv.cover(cv.sd_box(x, top - 1.0 * s, np.full(n, 0.5 * s), np.full(n, 1.0 * s)))
        cv.paint(wick, colour_rgb("black"))
        lit = t.state["lit"].astype(F32)
        flicker = 1.0 + 0.12 * np.sin(np.arange(T) * 2.3)
        fr = 1.8 * s * flicker
        flame = cv.sd_teardrop(x, top - 3.0 * s, fr, 2.6 * fr, 0.15 * s)  # a drop with its tip up
        cv.paint(cv.cover(flame) * cv.col(lit), np.asarray((255, 170, 40), F32))
        core = cv.sd_circle(x, top - 2.8 * s, fr * 0.55)
        cv.paint(cv.cover(core) * cv.col(lit), np.asarray((255, 240, 170), F32))
        smoke = t.state["smoke"].astype(F32)
        age = np.clip(np.arange(T) / scene.spec.fps - (scene.events[0].time if scene.events else 0), 0, None)
        for k in range(3):  # three puffs of smoke rising and spreading from the wick
            sy = top - 3 * s - (6 + 10 * k) * s * np.minimum(age, 3) * 0.8 - k * 2 * s
            sx = x + np.sin(age * 2.0 + k) * 1.5 * s
            sc = cv.cover(cv.sd_circle(sx, sy, (1.2 + 0.8 * k) * s + age * s))
            cv.paint(sc * cv.col(smoke * (0.55 - 0.12 * k)), np.asarray((120, 120, 125), F32))
        return cov
    if t.cls == "puff":
        a = t.alpha if t.alpha is not None else np.ones(T)
        cov_all = np.zeros((T, cv.H, cv.W), F32)
        d = np.sign(t.vel[0, 0]) or 1.0
        for k, (ox, oy, rr) in enumerate(((0, 0, 1.0), (-4, -2.5, 0.8), (-7, 2, 0.7), (-10, -1, 0.6))):
            c = cv.cover(cv.sd_circle(x + d * ox * s, y + oy * s, np.full(n, t.size * rr)))
            cov_all = np.maximum(cov_all, c)
        cv.paint(cov_all * cv.col(a), np.asarray((250, 252, 255), F32))
        return cov_all
    if t.cls == "cookie":
        keys = np.stack([t.state["notch_x"], t.state["notch_y"], t.state["notch_r"]], 1)
        if n == 1:  # a cookie at rest: draw each distinct notch once (before and after the bite)
            keys, inv = np.unique(keys, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
        else:
            inv = np.arange(T)
        notch = cv.sd_circle(keys[:, 0], keys[:, 1], keys[:, 2])
        sd = np.maximum(cv.sd_circle(x, y, np.full(n, t.size)), -notch)
        cov = cv.cover(sd)[inv]
        cv.paint(cov, rgb)
        rng = np.random.default_rng(scene.spec.seed)
        for _ in range(5):  # chocolate chips, gone where the bite is
            ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.7) * t.size
            chip = np.maximum(cv.sd_circle(x + rad * np.cos(ang), y + rad * np.sin(ang), np.full(n, 1.2 * s)), -notch)
            cv.paint(cv.cover(chip)[inv], np.asarray((80, 45, 25), F32))
        return cov
    if t.cls == "mouth":
        # a disc with a wedge cut out, opening and closing, facing its direction of travel
        body = cv.sd_circle(x, y, np.full(n, t.size))
        dx, dy = cv.X - cv.col(x), cv.Y - cv.col(y)
        face = cv.col(t.angle)
        rel = np.arctan2(dy, dx) - face
        rel = np.abs((rel + np.pi) % (2 * np.pi) - np.pi)
        wedge = (cv.col(t.state["open"]) - rel) * np.sqrt(dx * dx + dy * dy)
        cov = cv.cover(np.maximum(body, wedge))
        cv.paint(cov, rgb)
        return cov
    if t.cls == "switch":
        pressed = t.state["pressed"].astype(F32)
        d = 1.0 if x[0] > scene.spec.width / 2 else -1.0
        px = x + d * pressed * 1.0 * s
        cov = cv.cover(cv.sd_box(px, y, t.width, t.size))
        sw_rgb = np.where(pressed[:, None] > 0, np.asarray((60, 190, 80), F32), np.asarray((200, 50, 45), F32))
        cv.paint(cov, sw_rgb[:, None, None, :])
        return cov
    if t.cls == "lamp":
        lit = t.state["lit"].astype(F32)
        cord = cv.cover(cv.sd_box(x, (y - t.size) / 2, np.full(n, 0.5 * s), (y - t.size) / 2))
        cv.paint(cord, colour_rgb("black"))
        glow = np.exp(-np.clip(cv.sd_circle(x, y, np.full(n, t.size)), 0, None) / (4.0 * s)) * 0.45
        cv.paint(glow * cv.col(lit), np.asarray((255, 235, 120), F32))
        cov = cv.cover(cv.sd_circle(x, y, np.full(n, t.size)))
        off, on = np.asarray((85, 85, 90), F32), np.asarray((255, 228, 80), F32)
        cv.paint(cov, (off + cv.col(lit)[..., None] * (on - off)))
        return cov
    raise ValueError(f"no renderer for class {t.cls!r}")


# objects drawn in front of movers (they hide what passes behind them)
_FRONT = ("wall",)


def render(scene: Scene, style: Style | None = None, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T, H, W, 3] uint8 and the visibility [T, N] of each track (share of its area seen)."""
    frames, vis, _ = _render(scene, style, seed)
    return frames, vis


def render_coverage(scene: Scene, style: Style | None = None, seed: int | None = None) -> np.ndarray:
    """The visible coverage [T, N, H, W] in [0, 1] of each track at each pixel (what hides behind a wall is
    not seen; scenery that is not a track, such as the floor, is not in it): the world's exact label maps."""
    T, H, W = scene.spec.n_frames, scene.spec.height, scene.spec.width
    _, _, seen = _render(scene, style, seed)
    out = np.zeros((T, len(scene.tracks), H, W), F32)
    for i, c in enumerate(seen):
        if c is not None:
            out[:, i] = c  # a static shape's single frame broadcasts over time
    return out


def _render(scene: Scene, style: Style | None, seed: int | None):
    style = style or Style()
    spec = scene.spec
    rng = np.random.default_rng([spec.seed if seed is None else seed, 104729])
    cv = Canvas(spec.n_frames, spec.height, spec.width)
    cv.img[:] = _background(scene, style, rng)
    order = sorted(range(len(scene.tracks)), key=lambda i: scene.tracks[i].cls in _FRONT)
    covs: dict[int, np.ndarray] = {}
    for i in order:
        covs[i] = _draw(cv, scene.tracks[i], scene)
    front = None  # coverage of what hides the movers
    for i in order:
        if scene.tracks[i].cls in _FRONT:
            front = covs[i] if front is None else np.maximum(front, covs[i])
    vis = np.zeros((cv.T, len(scene.tracks)))
    seen_all = []
    for i, t in enumerate(scene.tracks):
        seen = covs[i] if t.cls in _FRONT or front is None else covs[i] * (1.0 - front)
        seen_all.append(seen)
        vis[:, i] = np.clip(seen.sum(axis=(1, 2)) / max(_area(t), 1e-6), 0.0, 1.0)
    img = cv.img
    if style.noise > 0:
        # Gaussian sensor noise from random bytes through the normal quantile table (2x faster)
        # (+ 0.5 for rounding, folded into the table)
        b = np.frombuffer(rng.bytes(img.size), dtype=np.uint8).reshape(img.shape)
        img += (_NORMAL_LUT * F32(style.noise) + F32(0.5))[b]
    else:
        img += F32(0.5)
    np.maximum(img, F32(0), out=img)
    np.minimum(img, F32(255), out=img)
    return img.astype(np.uint8), vis, seen_all


def _area(t: Track) -> float:
    """The full area of a track's shape in px^2 (what a fully visible object covers)."""
    if t.cls in ("ball", "lamp", "mouth", "cookie"):
        return math.pi * t.size ** 2 * (0.85 if t.cls == "mouth" else 1.0)
    if t.cls == "square":
        return 4 * t.size ** 2
    if t.cls == "triangle":
        return 2 * t.size * (2 * t.size / math.sqrt(3))
    if t.cls == "puff":
        return math.pi * t.size ** 2 * 2.5
    return 4 * t.size * t.width
