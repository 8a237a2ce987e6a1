"""Artifact metrics of one clip, computed from what perception saw (no truth needed), and their aggregation.

Every metric returns a list of violations (frame, place, what) and, where it measures a quantity, a value;
a clip "violates" a metric when the list is not empty. Tolerances are set from the world's own clips
(which must score no violations) and its physical ranges (gravity 220..360 px/s^2 at 64 px, restitution
below 1, elastic collisions), so a violation means the clip shows something the world never does.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from .perception import EPHEMERAL, PALETTE_NAMES, SHAPE_CLASSES, Detection, ObjTrack, Perception, _near

METRICS = ("permanence", "identity", "gravity", "bounce_energy", "momentum", "teleport", "causality",
           "persistence", "flicker", "prompt")
# the world's gravity range at 64 px (scenes.py samples 220..360 for falls, 220..340 for throws), widened by
# the fit's tolerance
G_RANGE = (220.0, 360.0)
G_TOL = 0.12


@dataclass
class Violation:
    metric: str
    frame: int
    x: float
    y: float
    what: str
    track: int = -1


def _movers(p: Perception) -> list[ObjTrack]:
    """Tracks of bodies that move by physics: balls, squares, triangles."""
    return [t for t in p.tracks if t.cls in SHAPE_CLASSES]


def _walls(p: Perception) -> list[Detection]:
    """Occluders: every wall seen in any frame (they are static, so one sighting stands for all frames)."""
    return p.occluders()


def _excused(p: Perception, tr: ObjTrack, t: int, pos: np.ndarray, d: Detection, tight: bool = False) -> bool:
    """Is a (dis)appearance at frame t explained: frame border, an occluder, or merging into another object?

    tight: the object's centre must lie on the other object (for a gap, whose path is known at both ends).
    """
    T, H, W = p.shape
    s = p.scale
    r = max(d.w, d.h) / 2 + 1 * s
    x, y = pos
    if d.border or x - r < 0 or y - r < 0 or x + r > W or y + r > H:
        return True
    if any(_near(d, w, 2 * s) for w in _walls(p)):
        return True
    ts = [tt for tt in (t - 1, t, t + 1) if 0 <= tt < T]
    for tt in ts:
        for o in p.detections[tt]:
            if o is d or o in tr.dets.values() or o.cls == "detail":
                continue
            ox0, oy0, ox1, oy1 = o.bbox
            if tight:  # the centre is on the other object: hidden by it
                if ox0 - 1 <= x <= ox1 + 1 and oy0 - 1 <= y <= oy1 + 1:
                    return True
            else:  # touching the other object: came out of it or went into it
                dx, dy = x - d.x, y - d.y
                x0, y0, x1, y1 = d.bbox[0] + dx, d.bbox[1] + dy, d.bbox[2] + dx, d.bbox[3] + dy
                if max(ox0 - x1, x0 - ox1, oy0 - y1, y0 - oy1) <= 1.5 * s:
                    return True
    return False


def _velocity(tr: ObjTrack, t: int) -> np.ndarray:
    fr = [f for f in sorted(tr.dets) if f <= t][-2:]
    if len(fr) < 2:
        fr = sorted(tr.dets)[:2]
    if len(fr) < 2:
        return np.zeros(2)
    a, b = tr.dets[fr[0]], tr.dets[fr[1]]
    return np.array([b.x - a.x, b.y - a.y]) / (fr[1] - fr[0])


def permanence_and_identity(p: Perception) -> tuple[list[Violation], list[Violation]]:
    """Spontaneous appearances / disappearances / gaps, failure to re-emerge; colour, shape, size changes,
    splits, merges and one object turning into another."""
    T, H, W = p.shape
    s = p.scale
    perm: list[Violation] = []
    ident: list[Violation] = []
    solid = [t for t in p.tracks if t.cls not in EPHEMERAL and t.cls != "?" and t.size >= 2.5 * s]
    handled: set[tuple[int, int]] = set()  # (track id, frame) explained as identity events
    # handoffs: one track ends and another (different colour or class) starts where it was heading
    for a in solid:
        if a.last >= T - 1:
            continue
        da = a.dets[a.last]
        pred = np.array([da.x, da.y]) + _velocity(a, a.last)
        for b in solid:
            if b is a or b.first not in (a.last + 1, a.last + 2):
                continue
            db = b.dets[b.first]
            if da.border or db.border or any(_near(dd, w, 2 * s) for w in _walls(p) for dd in (da, db)):
                continue
            reach = max(6 * s, 0.8 * max(da.w, da.h)) + 0.5 * np.linalg.norm(_velocity(a, a.last))
            near = min(math.hypot(db.x - pred[0], db.y - pred[1]), math.hypot(db.x - da.x, db.y - da.y)) < reach
            if near and (b.colour != a.colour or b.cls != a.cls):
                ident.append(Violation("identity", b.first, db.x, db.y, f"{a.colour} {a.cls} turns into {b.colour} {b.cls}", b.id))
                handled |= {(a.id, a.last), (b.id, b.first)}
            elif near and b.colour == a.colour:  # the tracker missed a link: not an event
                handled |= {(a.id, a.last), (b.id, b.first)}
    for tr in solid:
        fr = sorted(tr.dets)
        # splits and merges: a same-coloured object appears / disappears right next to this one
        for other in solid:
            if other is tr or other.colour != tr.colour:
                continue
            for t_ev, kind in ((other.first, "splits off"), (other.last, "merges into")):
                if t_ev in tr.dets and (kind == "splits off" and other.first > 0 or kind == "merges into" and other.last < T - 1):
                    if _near(tr.dets[t_ev], other.dets[t_ev], 2 * s) and (other.id, t_ev) not in handled \
                            and not (other.dets[t_ev].border or tr.dets[t_ev].border) \
                            and not any(_near(other.dets[t_ev], w, 2 * s) for w in _walls(p)):
                        d = other.dets[t_ev]
                        ident.append(Violation("identity", t_ev, d.x, d.y, f"{other.colour} {other.cls} {kind} another", other.id))
                        handled.add((other.id, t_ev))
        # appearance
        d0 = tr.dets[fr[0]]
        if fr[0] > 0 and (tr.id, fr[0]) not in handled and not _excused(p, tr, fr[0], np.array([d0.x, d0.y]), d0):
            perm.append(Violation("permanence", fr[0], d0.x, d0.y, f"{tr.colour} {tr.cls} appears from nothing", tr.id))
        # disappearance (at the end, or for a while)
        d1 = tr.dets[fr[-1]]
        v = _velocity(tr, fr[-1])
        if fr[-1] < T - 1 and (tr.id, fr[-1]) not in handled:
            nxt = np.array([d1.x, d1.y]) + v
            if not _excused(p, tr, fr[-1], nxt, d1) and not _excused(p, tr, fr[-1], np.array([d1.x, d1.y]), d1):
                perm.append(Violation("permanence", fr[-1] + 1, d1.x, d1.y, f"{tr.colour} {tr.cls} vanishes", tr.id))
            elif any(_near(d1, w, 2 * s) for w in _walls(p)) and abs(v[0]) > 0.5 * s:
                # went behind a wall: it must come out the far side in time
                w = min(_walls(p), key=lambda w: abs((w.bbox[0] + w.bbox[2]) / 2 - d1.x))
                span = (w.bbox[2] - w.bbox[0] + 1) + max(d1.w, d1.h) + 4 * s
                due = fr[-1] + int(math.ceil(span / abs(v[0]))) + 2
                if due < T - 1:
                    perm.append(Violation("permanence", due, d1.x, d1.y, f"{tr.colour} {tr.cls} never re-emerges", tr.id))
        for a, b in zip(fr[:-1], fr[1:]):
            if b - a > 1:
                da, db = tr.dets[a], tr.dets[b]
                pa, pb = np.array([da.x, da.y]), np.array([db.x, db.y])
                mids = [pa + (pb - pa) * k / (b - a) for k in range(1, b - a)]
                ok = any(_near(dd, w, 2 * s) for w in _walls(p) for dd in (da, db)) or da.border or db.border \
                    or any(_excused(p, tr, a + k + 1, m, da, tight=True) for k, m in enumerate(mids))
                if not ok:
                    perm.append(Violation("permanence", a + 1, da.x, da.y, f"{tr.colour} {tr.cls} vanishes for {b - a - 1} frames", tr.id))
        # drift along the track, over frames where the object is whole and alone
        clean = [t for t in fr if not tr.dets[t].partial and not any(
            o is not tr.dets[t] and o.cls != "detail" and _near(tr.dets[t], o, 1.0) for o in p.detections[t])]
        for key in ("colour", "cls"):
            seq = [getattr(tr.dets[t], key) for t in clean]
            if key == "cls" and (tr.cls not in SHAPE_CLASSES or "block" in seq):
                continue
            ch = _persistent_change(seq)
            if ch is not None:
                k, a, b = ch
                d = tr.dets[clean[k]]
                ident.append(Violation("identity", clean[k], d.x, d.y, f"{'shape' if key == 'cls' else key} changes {a} -> {b}", tr.id))
        if tr.cls in SHAPE_CLASSES and len(clean) >= 4:
            areas = np.array([tr.dets[t].area for t in clean])
            lo, hi = np.percentile(areas, 10), np.percentile(areas, 90)
            if hi > 1.8 * lo:
                t_ch = clean[int(np.argmax(areas))]
                ident.append(Violation("identity", t_ch, tr.dets[t_ch].x, tr.dets[t_ch].y, f"size changes x{hi / lo:.1f}", tr.id))
    return perm, ident


def _persistent_change(seq: list, share: float = 0.7) -> tuple[int, str, str] | None:
    """A split k where seq[:k] is mostly a (2+ items) and seq[k:] mostly b != a (3+ items), starting with b.

    Single-frame misreadings (a blurred triangle read as a ball) never pass; a real change of colour or
    shape for the rest of the clip does.
    """
    for k in range(2, len(seq) - 2):
        a, b = _mode_of(seq[:k]), _mode_of(seq[k:])
        if a != b and seq[k] == b and np.mean([v == a for v in seq[:k]]) >= share \
                and np.mean([v == b for v in seq[k:]]) >= share:
            return k, a, b
    return None


def _mode_of(vals: list):
    u, c = np.unique(vals, return_counts=True)
    return u[np.argmax(c)]


# ----------------------------------------------------------------------------------------------
# physics


def _flight_samples(p: Perception, tr: ObjTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, y and 'airborne' flags of a mover's clean sightings (side view)."""
    floor = p.background.floor_y
    fr = np.array([t for t in sorted(tr.dets) if not tr.dets[t].partial])
    if len(fr) == 0:
        return fr, np.zeros(0), np.zeros(0, bool)
    y = np.array([tr.dets[t].y for t in fr])
    bottom = np.array([tr.dets[t].bbox[3] + 1 for t in fr])
    air = bottom < floor - 1.0
    return fr, y, air


def gravity(p: Perception) -> tuple[float | None, list[Violation]]:
    """g from second differences of airborne movers, against the world's range.

    A bounce (or any contact) inside a triple of frames only ever adds an upward kick, so it lowers the
    triple's second difference: free-flight triples are the top cluster, and g is that cluster's median.
    """
    if p.background.view != "side":
        return None, []
    s, dt = p.scale, 1.0 / p.fps
    floor = p.background.floor_y
    acc, safe, where = [], [], []
    for tr in _movers(p):
        fr, y, air = _flight_samples(p, tr)
        for i in range(1, len(fr) - 1):
            # (a body moving less than 3 px over two frames tells nothing about gravity: it may rest on
            # something; the world's own collision clips have balls that float off the floor that way)
            if fr[i - 1] + 1 == fr[i] and fr[i] + 1 == fr[i + 1] and air[i] \
                    and abs(y[i + 1] - y[i]) + abs(y[i] - y[i - 1]) >= 3 * s:
                acc.append((y[i + 1] - 2 * y[i] + y[i - 1]) / dt ** 2)
                where.append((fr[i], tr))
                # too far above the floor to reach it between these samples: certainly free flight
                up = y[i] < y[i - 1] and y[i + 1] < y[i]  # rising throughout: a bounce would need a fall first
                reach = max(abs(y[i] - y[i - 1]), abs(y[i + 1] - y[i])) * (0.5 if up else 1.0) + s
                safe.append(all(floor - (tr.dets[int(f)].bbox[3] + 1) > reach for f in fr[i - 1:i + 2]))
    acc, safe = np.asarray(acc), np.asarray(safe, bool)
    if len(acc) >= 3 and (acc >= 0.8 * np.percentile(acc, 90)).sum() >= 2:
        g = float(np.median(acc[acc >= 0.8 * np.percentile(acc, 90)]))
    elif safe.any():
        g = float(np.median(acc[safe]))
    else:
        return None, []
    lo, hi = G_RANGE[0] * s * (1 - G_TOL), G_RANGE[1] * s * (1 + G_TOL)
    if lo <= g <= hi:
        return g, []
    t, tr = where[len(where) // 2]
    d = tr.dets[t]
    return g, [Violation("gravity", int(t), d.x, d.y, f"gravity {g / s:.0f} px/s^2 (world {G_RANGE[0]:.0f}..{G_RANGE[1]:.0f})", tr.id)]


def bounce_energy(p: Perception, g: float | None) -> list[Violation]:
    """Apex height of each flight between floor bounces (parabola with the clip's g): must not grow."""
    if p.background.view != "side":
        return []
    s, dt = p.scale, 1.0 / p.fps
    g = g if g and g > 0 else 0.5 * sum(G_RANGE) * s
    out = []
    for tr in _movers(p):
        fr, y, air = _flight_samples(p, tr)
        fr, y = fr[air], y[air]  # resting and rolling samples carry no apex
        if len(fr) < 4:
            continue
        # split where the second difference turns negative (free flight only ever accelerates downwards:
        # that is a bounce); the sample in the middle is ambiguous and dropped
        segs, cur = [], [0]
        for i in range(1, len(fr)):
            if fr[i] - fr[i - 1] > 1:
                segs.append(cur)
                cur = [i]
                continue
            if i < len(fr) - 1 and fr[i + 1] - fr[i] == 1 and (y[i + 1] - y[i]) - (y[i] - y[i - 1]) < -1.0 * s:
                segs.append(cur)
                cur = []
                continue
            cur.append(i)
        segs.append(cur)
        segs = [g_ for g_ in segs if len(g_) >= 2]
        rest_y = max(y)  # lowest centre seen: resting on the floor
        apex = []
        for seg in segs:
            t = fr[seg] * dt
            yy = y[seg] - 0.5 * g * t ** 2
            b, a = np.polyfit(t, yy, 1)  # y = a + b t + g t^2 / 2
            t_apex = -b / g
            apex.append((rest_y - (a + b * t_apex + 0.5 * g * t_apex ** 2), seg))
        for k in range(1, len(apex)):
            h0, h1 = apex[k - 1][0], apex[k][0]
            if h0 > 2 * s and h1 > 1.1 * h0 + 1.5 * s:
                i = apex[k][1][0]
                d = tr.dets[int(fr[i])]
                out.append(Violation("bounce_energy", int(fr[i]), d.x, d.y, f"bounces higher: {h0:.1f} -> {h1:.1f} px", tr.id))
    return out


def _mass(d: Detection, cls: str) -> float:
    """Mass as the world defines it (size^2, size = radius / half side / half height) from the seen area."""
    return d.area / {"ball": math.pi, "square": 4.0, "triangle": 2 / math.sqrt(3)}.get(cls, 4.0)


def momentum(p: Perception) -> list[Violation]:
    """Horizontal and vertical momentum of two bodies just before and after they touch (elastic world)."""
    s = p.scale
    out = []
    movers = [t for t in _movers(p) if len(t.dets) >= 5]
    for i, a in enumerate(movers):
        for b in movers[i + 1:]:
            both = sorted(set(a.dets) & set(b.dets))
            gaps = [(math.hypot(a.dets[t].x - b.dets[t].x, a.dets[t].y - b.dets[t].y)
                     - (max(a.dets[t].w, a.dets[t].h) + max(b.dets[t].w, b.dets[t].h)) / 2, t) for t in both]
            touch = [t for gp, t in gaps if gp < 2.0 * s]
            if not touch:
                continue
            tc = touch[0]
            pre, post = [tc - 3, tc - 1], [tc + 1, tc + 3]
            if not all(t in a.dets and t in b.dets and not a.dets[t].partial and not b.dets[t].partial for t in pre + post):
                continue
            window = range(pre[0], post[1] + 1)
            if any(min(d.bbox[0], d.bbox[1], p.shape[2] - 1 - d.bbox[2], p.shape[1] - 1 - d.bbox[3])
                   < 3 * s + 2 + np.linalg.norm(_velocity(tr, t)) for tr in (a, b) for t in window if t in tr.dets
                   for d in [tr.dets[t]]) and p.background.view == "top":
                continue  # a bounce off the table's edge in the window changes momentum legitimately
            if any(c is not a and c is not b and t in c.dets and t in tr.dets and _near(c.dets[t], tr.dets[t], 3 * s)
                   for c in movers for tr in (a, b) for t in window):
                continue  # a third body joins in: not a two-body collision
            ma, mb = _mass(a.dets[tc], a.cls), _mass(b.dets[tc], b.cls)

            def vel(tr, f0, f1):
                return np.array([tr.dets[f1].x - tr.dets[f0].x, tr.dets[f1].y - tr.dets[f0].y]) / (f1 - f0)

            va0, vb0, va1, vb1 = vel(a, *pre), vel(b, *pre), vel(a, *post), vel(b, *post)
            if p.background.view == "side":
                va0[1] = vb0[1] = va1[1] = vb1[1] = 0.0  # the floor takes vertical momentum
            p0, p1 = ma * va0 + mb * vb0, ma * va1 + mb * vb1
            scale = ma * np.linalg.norm(va0) + mb * np.linalg.norm(vb0) + 1e-6
            if np.linalg.norm(p1 - p0) > 0.35 * scale + 0.5 * (ma + mb) * s:
                d = a.dets[tc]
                out.append(Violation("momentum", tc, d.x, d.y, f"momentum changes by {np.linalg.norm(p1 - p0) / scale:.0%} in a collision", a.id))
    return out


def teleports(p: Perception) -> list[Violation]:
    """Single steps far off the motion before and after them (positions jump; velocities never do)."""
    s = p.scale
    out = []
    for tr in p.tracks:
        if tr.cls in EPHEMERAL or tr.cls in ("wall", "?"):
            continue
        fr = [t for t in sorted(tr.dets) if not tr.dets[t].partial]
        P = {t: np.array([tr.dets[t].x, tr.dets[t].y]) for t in fr}
        for t in fr:
            if t - 1 not in P:
                continue
            d = P[t] - P[t - 1]
            nb = [P[t - 1] - P[t - 2]] if t - 2 in P else []
            nb += [P[t + 1] - P[t]] if t + 1 in P else []
            if not nb:
                continue
            ref = np.mean(nb, 0)
            if len(nb) == 2:  # a bounce or collision changes the motion around the step: widen the tolerance
                tau = 6 * s + 0.5 * np.linalg.norm(nb[1] - nb[0]) + 0.25 * max(np.linalg.norm(n) for n in nb)
            else:
                tau = 10 * s + np.linalg.norm(nb[0])
            r = np.linalg.norm(d - ref)
            if r > tau:
                out.append(Violation("teleport", t, P[t][0], P[t][1], f"{tr.colour} {tr.cls} jumps {np.linalg.norm(d):.0f} px", tr.id))
    return out


# ----------------------------------------------------------------------------------------------
# causality and persistence


def _state_series(tr: ObjTrack, T: int, key: str, ok=lambda t: True) -> np.ndarray:
    v = np.full(T, np.nan)
    for t, d in tr.dets.items():
        if key in d.state and ok(t):
            v[t] = float(d.state[key])
    return v


def _first_run(v: np.ndarray, cond, n: int = 2, strict: bool = False) -> int | None:
    """First seen frame from which cond holds for n seen frames in a row (fewer at the clip's end unless
    strict: a reversal of state must be seen for n frames before it counts)."""
    idx = [t for t in range(len(v)) if not np.isnan(v[t])]
    flags = [bool(cond(v[t])) for t in idx]
    for i in range(len(idx)):
        if flags[i] and all(flags[i:i + n]) and (not strict or len(flags[i:i + n]) == n):
            return idx[i]
    return None


def _contact(a: ObjTrack, b: ObjTrack, s: float) -> int | None:
    """First frame where `a` (the cause, moving) touches `b`.

    Frames sample the motion, so the touch itself usually falls between two frames: a sampled gap as large
    as one frame's travel of the mover counts as touching.
    """
    for t in sorted(set(a.dets) & set(b.dets)):
        x0, y0, x1, y1 = a.dets[t].bbox
        X0, Y0, X1, Y1 = b.dets[t].bbox
        gap = max(X0 - x1, x0 - X1, Y0 - y1, y0 - Y1, 0)
        speed = np.linalg.norm(_velocity(a, t)) if len(a.dets) > 1 else 0.0
        if gap <= 2 * s + 1.2 * speed:
            return t
    return None


def causal_scene(p: Perception) -> dict:
    """The causal set-up perception sees: which objects play cause and effect."""
    one = lambda cls: max(p.by_class(cls), key=lambda t: len(t.dets), default=None)
    ball = max(_movers(p), key=lambda t: len(t.dets), default=None)
    for kind, need in (("candle", ("candle",)), ("cookie", ("cookie", "mouth")), ("switch", ("lamp", "switch")), ("knock", ("block",))):
        objs = {c: one(c) for c in need}
        if all(objs.values()):
            if kind == "candle":
                objs["puff"] = one("puff")
            if kind in ("switch", "knock"):
                objs["ball"] = ball
            return {"kind": kind, **objs}
    return {"kind": None}


CAUSAL_WORDS = {"candle": ("candle",), "cookie": ("cookie", "bite"), "switch": ("switch", "lamp"), "knock": ("knock",)}


def causality_and_persistence(p: Perception, prompt: str | None = None) -> tuple[list[Violation], list[Violation]]:
    """Effects (flame out, notch, lamp on, block down) must happen, only after contact with their cause, and last."""
    T = p.shape[0]
    s = p.scale
    cs = causal_scene(p)
    caus: list[Violation] = []
    pers: list[Violation] = []
    want = None
    if prompt:
        low = prompt.lower()
        want = next((k for k, ws in CAUSAL_WORDS.items() if any(w in low for w in ws)), None)
    kind = cs["kind"]
    if want and kind != want:
        caus.append(Violation("causality", 0, 0, 0, f"the prompt's {want} set-up is not in the clip"))
        return caus, pers
    if kind is None:
        return caus, pers
    cause_t, effect_t, where = None, None, None
    if kind == "candle":
        c = cs["candle"]
        lit = _state_series(c, T, "lit")
        # out: two unlit frames in a row after which it stays mostly out (a stray flame-coloured pixel
        # blob in the smoke must not postpone it)
        effect_t = next((t for t in range(T - 1) if lit[t] < 0.5 and lit[t + 1] < 0.5
                         and np.nanmean(lit[t:]) < 0.3), None) if np.nanmax(np.nan_to_num(lit, nan=0)) > 0.5 else None
        if np.nansum(lit > 0.5) == 0 and np.any(~np.isnan(lit)):
            effect_t = 0  # never lit: out from the start
        if cs.get("puff") is not None:
            # the wind reaches the flame when a puff (it may break up around the candle) spans its axis
            cx = c.dets[c.first].x
            cause_t = min((t for pf in p.by_class("puff") for t, d in pf.dets.items()
                           if d.bbox[0] - 2 * s <= cx <= d.bbox[2] + 1 + 2 * s), default=None)
        # relighting: lit for 2+ frames after being out for 2+
        out_t = _first_run(lit, lambda v: v < 0.5)
        if out_t is not None:
            back = _first_run(np.where(np.arange(T) > out_t, lit, np.nan), lambda v: v > 0.5, strict=True)
            if back is not None:
                pers.append(Violation("persistence", back, c.dets[back].x, c.dets[back].y, "the candle relights", c.id))
        where = c
    elif kind == "cookie":
        c, m = cs["cookie"], cs["mouth"]
        free = lambda t: not (t in m.dets and _near(c.dets[t], m.dets[t], 2 * s))
        notch = _state_series(c, T, "notch", free)
        notch = notch - (np.nanmin(notch) if np.any(~np.isnan(notch)) else 0.0)  # a whole cookie's own reading
        effect_t = _first_run(notch, lambda v: v > 0.04)
        cause_t = _contact(m, c, s)
        if effect_t is not None:
            regrow = _first_run(np.where(np.arange(T) > effect_t, notch, np.nan), lambda v: v < 0.02, strict=True)
            if regrow is not None:
                pers.append(Violation("persistence", regrow, c.dets[regrow].x, c.dets[regrow].y, "the bitten cookie grows back", c.id))
        where = c
    elif kind == "switch":
        lamp, sw, ball = cs["lamp"], cs["switch"], cs.get("ball")
        lit = _state_series(lamp, T, "lit")
        effect_t = _first_run(lit, lambda v: v > 0.5)
        if ball is not None:
            cause_t = _contact(ball, sw, s)
        if effect_t is not None:
            off = _first_run(np.where(np.arange(T) > effect_t, lit, np.nan), lambda v: v < 0.5, strict=True)
            if off is not None:
                pers.append(Violation("persistence", off, lamp.dets[off].x, lamp.dets[off].y, "the lamp goes out again", lamp.id))
        where = lamp
    elif kind == "knock":
        blk, ball = cs["block"], cs.get("ball")
        fr = sorted(blk.dets)
        d0 = blk.dets[fr[0]]
        moved = np.full(T, np.nan)
        for t in fr:
            d = blk.dets[t]
            moved[t] = float(abs(d.x - d0.x) > 1.0 * s or abs(d.h - d0.h) > 1.0 * s or abs(d.w - d0.w) > 1.0 * s)
        effect_t = _first_run(moved, lambda v: v > 0.5)
        if ball is not None:
            cause_t = _contact(ball, blk, s)
        down = _state_series(blk, T, "down")
        dn = _first_run(down, lambda v: v > 0.5)
        if dn is not None:
            up = _first_run(np.where(np.arange(T) > dn, _state_series(blk, T, "upright"), np.nan), lambda v: v > 0.5,
                            strict=True)
            if up is not None:
                pers.append(Violation("persistence", up, blk.dets[up].x, blk.dets[up].y, "the fallen block stands up again", blk.id))
        where = blk
    wx, wy = (where.dets[where.first].x, where.dets[where.first].y) if where else (0, 0)
    if effect_t is None:
        caus.append(Violation("causality", T - 1, wx, wy, f"{kind}: the effect never happens"))
    elif cause_t is None:
        caus.append(Violation("causality", effect_t, wx, wy, f"{kind}: effect without its cause"))
    elif effect_t < cause_t:
        caus.append(Violation("causality", effect_t, wx, wy, f"{kind}: effect at frame {effect_t} before its cause at {cause_t}"))
    return caus, pers


# ----------------------------------------------------------------------------------------------
# flicker and prompt adherence


def flicker(p: Perception, frames: np.ndarray) -> tuple[float, list[Violation]]:
    """Frame-to-frame change of the static background, in 8-bit levels.

    Per frame pair, the median over pixels of |f_t - f_t-1| (objects cover well under half the frame, so the
    median is a background pixel: sensor noise gives ~1, a flickering background more) and of the signed
    change (a global brightness jump). No segmentation involved, so heavy flicker cannot hide itself.
    """
    if len(frames) < 2:
        return 0.0, []
    f = frames.astype(np.float32).mean(-1)
    step = np.diff(f, axis=0).reshape(len(f) - 1, -1)
    level = np.median(np.abs(step), axis=1)
    drift = np.abs(np.median(step, axis=1))
    t = int(np.argmax(level))
    out = []
    if level.max() > 4.0 or drift.max() > 3.0:
        out.append(Violation("flicker", t + 1, 0, 0, f"background changes by {max(level.max(), drift.max()):.1f} levels per frame"))
    return float(level.mean()), out


_NUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_SHAPE_WORDS = ("ball", "square", "triangle", "block")
_PAIR = re.compile(r"\b(" + "|".join(PALETTE_NAMES) + r") (" + "|".join(_SHAPE_WORDS) + r")s?\b")
_REL = re.compile(r"\b(?:an? )?(" + "|".join(PALETTE_NAMES) + r") (\w+) (?:is )?(to the left of|to the right of|above|below) (?:an? )?("
                  + "|".join(PALETTE_NAMES) + r") (\w+)")
_DIR = re.compile(r"\b(?:to the |moving |rolls |slides |tossed |flies to the )?(left|right)(?:ward)?\b")


def prompt_adherence(p: Perception, prompt: str | None) -> tuple[float | None, list[Violation]]:
    """Colours, shapes, counts, direction of motion and spatial relations that the prompt names."""
    if not prompt:
        return None, []
    text = prompt.lower()
    objs = [t for t in p.tracks if t.cls in SHAPE_CLASSES + ("block",) and t.colour in PALETTE_NAMES and len(t.dets) >= 2]
    checks, out = 0, []

    def find(colour, shape):
        c = [t for t in objs if t.colour == colour and (shape not in _SHAPE_WORDS or t.cls == shape)]
        return max(c, key=lambda t: len(t.dets)) if c else None

    pairs = _PAIR.findall(text)
    for colour, shape in dict.fromkeys(pairs):
        checks += 1
        if find(colour, shape) is None:
            have = [t for t in objs if t.colour == colour]
            what = f"no {colour} {shape}" + (f" (a {colour} {have[0].cls})" if have else "")
            out.append(Violation("prompt", 0, 0, 0, what))
    m = re.search(r"\b(one|two|three|four|five) (objects|balls|shapes)\b", text)
    if m:
        checks += 1
        n = sum(1 for t in objs if len(t.dets) >= 3)
        if n != _NUM[m.group(1)]:
            out.append(Violation("prompt", 0, 0, 0, f"{n} objects, the prompt says {m.group(1)}"))
    for c1, s1, rel, c2, s2 in _REL.findall(text):
        checks += 1
        a, b = find(c1, s1), find(c2, s2)
        both = sorted(set(a.dets) & set(b.dets)) if a and b else []
        if not both:
            out.append(Violation("prompt", 0, 0, 0, f"cannot check '{c1} {s1} {rel} {c2} {s2}'"))
            continue
        t = both[0]
        da, db = a.dets[t], b.dets[t]
        ok = {"to the left of": da.x < db.x, "to the right of": da.x > db.x, "above": da.y < db.y, "below": da.y > db.y}[rel]
        if not ok:
            out.append(Violation("prompt", t, da.x, da.y, f"{c1} {s1} is not {rel} the {c2} {s2}", a.id))
    rest = _REL.sub(" ", text)
    dirs = _DIR.findall(rest)
    if dirs and pairs:
        checks += 1
        main = find(*pairs[0])
        if main is not None and len(main.dets) >= 2:
            d0, d1 = main.dets[main.first], main.dets[main.last]
            dx = d1.x - d0.x
            want = 1 if dirs[0] == "right" else -1
            if dx * want < 2 * p.scale:
                out.append(Violation("prompt", main.last, d1.x, d1.y, f"moves {'right' if dx > 0 else 'left'}, the prompt says {dirs[0]}", main.id))
    return (1.0 - len(out) / checks) if checks else None, out


# ----------------------------------------------------------------------------------------------


def measure(p: Perception, frames: np.ndarray, prompt: str | None = None) -> dict:
    """All metrics of one clip: {metric: {"violations": [...], "value": ...}} plus a flat list."""
    perm, ident = permanence_and_identity(p)
    g, grav = gravity(p)
    bounce = bounce_energy(p, g)
    mom = momentum(p)
    tele = teleports(p)
    caus, pers = causality_and_persistence(p, prompt)
    flick_v, flick = flicker(p, frames)
    adh, prm = prompt_adherence(p, prompt)
    vals = {"gravity": None if g is None else g / p.scale, "flicker": flick_v, "prompt": adh}
    per = {"permanence": perm, "identity": ident, "gravity": grav, "bounce_energy": bounce, "momentum": mom,
           "teleport": tele, "causality": caus, "persistence": pers, "flicker": flick, "prompt": prm}
    return {
        "metrics": {k: {"violations": len(v), "value": vals.get(k)} for k, v in per.items()},
        "violations": [asdict(v) for k in METRICS for v in per[k]],
    }


def measure_clip(frames: np.ndarray, fps: float = 8.0, prompt: str | None = None) -> dict:
    """Perception plus metrics for one clip [T, H, W, 3] uint8."""
    from .perception import perceive

    p = perceive(frames, fps)
    out = measure(p, frames, prompt)
    out["objects"] = [{"id": t.id, "class": t.cls, "colour": t.colour, "frames": len(t.dets)} for t in p.solid_tracks()]
    return out


def aggregate(results: list[dict]) -> dict:
    """Per metric: share of clips with a violation, mean violations per clip, and the mean value."""
    out = {}
    for m in METRICS:
        flags = [r["metrics"][m]["violations"] > 0 for r in results]
        vals = [r["metrics"][m]["value"] for r in results if r["metrics"][m]["value"] is not None]
        out[m] = {"violation_rate": float(np.mean(flags)) if flags else 0.0,
                  "violations_per_clip": float(np.mean([r["metrics"][m]["violations"] for r in results])) if results else 0.0,
                  "mean_value": float(np.mean(vals)) if vals else None, "n": len(results)}
    out["any"] = {"violation_rate": float(np.mean([any(r["metrics"][m]["violations"] for m in METRICS) for r in results])) if results else 0.0}
    return out
