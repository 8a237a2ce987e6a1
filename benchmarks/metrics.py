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

from world.captions import article

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
    # a prompt violation's kind of check (PROMPT_CHECKS); "" for the other metrics
    check: str = ""


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


def _notch_series(p: Perception, cookie: ObjTrack, mouth: ObjTrack | None) -> np.ndarray:
    """The cookie's notch where the mouth is clear of it (a mouth over the cookie cuts its outline), above the
    lowest reading: a whole cookie's own reading."""
    s = p.scale
    free = lambda t: mouth is None or not (t in mouth.dets and _near(cookie.dets[t], mouth.dets[t], 2 * s))
    notch = _state_series(cookie, p.shape[0], "notch", free)
    return notch - (np.nanmin(notch) if np.any(~np.isnan(notch)) else 0.0)


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
        notch = _notch_series(p, c, m)
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


_NUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_SHAPE_WORDS = ("ball", "square", "triangle", "block")
_PAIR = re.compile(r"\b(?:(a|an|one|two|three|four|five) )?(" + "|".join(PALETTE_NAMES) + r") ("
                   + "|".join(_SHAPE_WORDS) + r")s?\b")
_REL = re.compile(r"\b(?:an? )?(" + "|".join(PALETTE_NAMES) + r") (\w+) (?:is )?(to the left of|to the right of|above|below) (?:an? )?("
                  + "|".join(PALETTE_NAMES) + r") (\w+)")
_DIR = re.compile(r"\b(?:to the |moving |rolls |slides |tossed |flies to the )?(left|right)(?:ward)?\b")
_WALL = re.compile(r"\b(?:a|the) (?:gray )?wall\b")  # one wall to pass behind ("the walls" of a table are its edges)
# the view of the prompt's scene: from above (a table, the cookie) or from the side (a floor, gravity, props)
_TOP = re.compile(r"\bseen from above\b|\btable\b|\bcookie\b|\bbit(?:e|ten)\b")
_SIDE = re.compile(r"\b(?:falls?|falling|drops?|floor|rolls?|slides?|thrown|tossed|arcs?|collid\w*|candle|switch|lamp"
                   r"|block|knock\w*)\b|" + _WALL.pattern)
_HIT = re.compile(r"\b(?:collid\w*|into|hits?|knock\w*|press\w*|push\w*)\b")
# props of the causal set-ups and the occlusion wall: what a scene family always holds besides the palette
# objects its captions name (world/scenes.py), so a caption may leave them unnamed ("a cookie is bitten" holds
# a mouth); a prop of another set-up is an extra object
PROPS = {"candle": ("candle",), "cookie": ("cookie", "mouth"), "switch": ("switch", "lamp"), "wall": ("wall",)}
PROP_CLASSES = tuple(c for props in PROPS.values() for c in props)
# a track is one of the clip's objects when seen in this share of its frames: perception's short-lived
# fragments stay out (a sliver of a mouth at the border), while every world object is seen in 59%+ of its
# clip's frames (balls that bounce apart out of view are the shortest)
LASTING = 0.25


def _lasting(p: Perception) -> list[ObjTrack]:
    """The clip's solid objects: tracks of anything but passing effects, seen in a LASTING share of the frames."""
    T = p.shape[0]
    return [t for t in p.solid_tracks() if len(t.dets) >= max(2, LASTING * T)]


def _how_many(tracks: list[ObjTrack], T: int) -> int:
    """Objects among these tracks: the most seen together in two frames or more. A track that perception broke
    in two over time (a switch that changes colour while the ball hides it) is one object, and so is a
    handoff in one frame (a blend at a ball's edge read as the lamp, which lights in the next frame)."""
    per_frame = sorted(sum(t in tr.dets for tr in tracks) for t in range(T))
    return per_frame[-min(2, T)]


def _find(tracks: list[ObjTrack], colour: str | None, cls: str) -> ObjTrack | None:
    """The longest track of this colour (None: any) and class (any for a shape word that is none)."""
    c = [t for t in tracks if colour in (None, t.colour) and (cls not in _SHAPE_WORDS + PROP_CLASSES or t.cls == cls)]
    return max(c, key=lambda t: len(t.dets)) if c else None


def _clean_xy(tr: ObjTrack) -> tuple[np.ndarray, np.ndarray]:
    """Centre of a track where it is whole (a partial object's centre moves with the cut), frame by frame."""
    ds = [tr.dets[t] for t in sorted(tr.dets)]
    ds = [d for d in ds if not d.partial] or ds
    return np.array([d.x for d in ds]), np.array([d.y for d in ds])


def _rebounds(y: np.ndarray, s: float) -> bool:
    """The body comes back up after going down: a lowest point followed by a rise of 1.5 px (scaled)."""
    return any(y[i] >= y[i - 1] + 0.5 * s and y[i] - y[i + 1:i + 3].min() >= 1.5 * s for i in range(1, len(y) - 1))


# motions a prompt names: (words, for every named object or only the first, test of its clean centre
# track x, y at scale s, what fails). Thresholds sit well inside the world's ranges: a fall drops 20+ px, a
# first bounce rises 6+ px, a throw rises 7+ px, a roll travels 18+ px at one height; a fall without a
# direction in the prompt is straight down (vx = 0 in world/scenes.py).
_MOTIONS = (
    (re.compile(r"\b(?:falls?|falling|drops?)\b"), "all",
     lambda x, y, s, named_dir: y.max() - y[0] >= 4 * s and (named_dir or np.ptp(x) <= 3 * s),
     "does not fall straight down"),
    (re.compile(r"\bbounces?\b(?! off| apart)"), "all",  # off the floor; "bounces off the walls" is a table's edges
     lambda x, y, s, named_dir: _rebounds(y, s), "does not bounce"),
    (re.compile(r"\bmoves?\b|\bbounces? off\b"), "all",
     lambda x, y, s, named_dir: np.hypot(x - x[0], y - y[0]).max() >= 4 * s, "does not move"),
    (re.compile(r"\b(?:thrown|tossed|arcs?)\b"), "first",
     lambda x, y, s, named_dir: y[: max(2, len(y) // 2)].min() <= y[0] - 2 * s, "does not rise into an arc"),
    (re.compile(r"\b(?:rolls?|slides?|rolling|sliding)\b|along the floor"), "first",
     lambda x, y, s, named_dir: np.ptp(y) <= 2 * s and np.ptp(x) >= 4 * s, "does not roll or slide along the floor"),
)


def _ends(v: np.ndarray, n: int = 2) -> tuple[float, float]:
    """Mean of a state series over its first and over its last n seen frames (NaN if never seen)."""
    seen = v[~np.isnan(v)]
    return (float(seen[:n].mean()), float(seen[-n:].mean())) if len(seen) else (math.nan, math.nan)


def _state_change(p: Perception, text: str, kind: str | None, objs: list[ObjTrack], named_objs: list[ObjTrack | None]):
    """The lasting change of state that the prompt's causal set-up names: (object, its state series, test of
    the series' mean over the first two seen frames, test over the last two, what fails), or None."""
    T = p.shape[0]
    one = lambda cls: _find(objs, None, cls)
    if kind == "candle" and re.search(r"\bblow", text) and one("candle"):
        c = one("candle")
        return c, _state_series(c, T, "lit"), lambda v: v > 0.5, lambda v: v < 0.5, "is not lit, then out"
    if kind == "cookie" and re.search(r"\bbit(?:e|ten)\b", text) and one("cookie"):
        c = one("cookie")  # (the causality metric's reading: a notch over 0.04 is a bite)
        return c, _notch_series(p, c, one("mouth")), lambda v: v <= 0.04, lambda v: v > 0.04, "is not whole, then bitten"
    if kind == "switch" and re.search(r"\blights? up\b|\bturns? on\b", text) and one("lamp"):
        lamp = one("lamp")  # (unseen is unlit: a lit lamp is the brightest thing in view, while an unlit one
        # blurred together with its cord reads as smoke)
        lit = np.nan_to_num(_state_series(lamp, T, "lit"))
        return lamp, lit, lambda v: v < 0.5, lambda v: v > 0.5, "is not off, then lit"
    knock = re.search(r"\bknock\w*(?: it)? (?:over|down)( by)?\b", text)
    # what is knocked over: the object of "X knocks over Y", the subject of "Y is knocked down by X"
    target = (named_objs[0] if knock.group(1) else named_objs[1]) if knock and len(named_objs) >= 2 else None
    if kind == "knock" and target is not None:
        return target, _state_series(target, T, "down"), lambda v: v < 0.5, lambda v: v > 0.5, "is not upright, then down"
    return None


# the kinds of prompt check, as the generator's quality targets count them (issue 4): "objects", the named ones
# with their colour, shape and count and the set-up's props (the target's words: "the objects the prompt names
# appear with the right colour, shape and count"); "extras", no object the prompt does not name (no target of
# its own; before session 30 part of "objects"); "scene", the view, spatial relations and direction; "motion",
# the motions and events named (falls, bounces, rolls, contact, lasting states)
PROMPT_CHECKS = ("objects", "extras", "scene", "motion")


def _prompt_violation(check: str, what: str, tr: ObjTrack | None = None, t: int | None = None) -> Violation:
    """A failed prompt check of this kind, placed on the track it concerns (at frame t, else its first) where
    there is one."""
    if check not in PROMPT_CHECKS:
        raise ValueError(f"unknown kind of prompt check: {check}")
    if tr is None:
        return Violation("prompt", 0, 0, 0, what, check=check)
    d = tr.dets[tr.first if t is None else t]
    return Violation("prompt", d.t, d.x, d.y, what, tr.id, check)


def prompt_adherence(p: Perception, prompt: str | None) -> tuple[float | None, list[Violation], dict[str, int]]:
    """Everything the prompt names must be in the clip, and nothing else: objects, counts, view, motions, events.

    Objects: each named (colour, shape) with its count, the props of the named set-up (PROPS); extras: no other
    solid object (a noisy clip shows "objects" of every colour and shape, and must fail rather than pass
    because the named ones are among them). Then the view (side or from above), spatial relations, the
    direction of the first named object, the motions named (_MOTIONS), contact where one object hits another,
    and the lasting states of the causal set-ups (_state_change: a candle lit, then out; a cookie whole, then
    notched; a lamp off, then on; a block upright, then down). Value: the share of checks that pass.
    Returns (value, violations, checks made of each kind in PROMPT_CHECKS).
    """
    if not prompt:
        return None, [], dict.fromkeys(PROMPT_CHECKS, 0)
    text = prompt.lower()
    T = p.shape[0]
    s = p.scale
    objs = _lasting(p)
    shapes = [t for t in objs if t.cls not in PROP_CLASSES]
    named: dict[tuple[str, str], int] = {}  # (colour, shape) -> count
    for num, colour, shape in _PAIR.findall(text):
        named[(colour, shape)] = max(named.get((colour, shape), 0), _NUM.get(num, 1))
    kind = next((k for k, ws in CAUSAL_WORDS.items() if any(w in text for w in ws)), None)
    props = set(PROPS.get(kind, ())) | (set(PROPS["wall"]) if _WALL.search(text) else set())
    checks: list[Violation | None] = []  # one entry per check: None where it passes

    # objects: the named ones with their counts, the set-up's props; then extras: nothing else
    for (colour, shape), n in named.items():
        have = _how_many([t for t in shapes if t.colour == colour and t.cls == shape], T)
        other = "/".join(sorted({t.cls for t in shapes if t.colour == colour} - {shape}))
        checks.append(None if have == n else _prompt_violation("objects",
            f"{colour} {shape}: {have} in the clip, the prompt says {n}" + (f" ({article(colour)} {colour} {other} instead)" if other else "")))
    for cls in sorted(props):
        have = _how_many([t for t in objs if t.cls == cls], T)
        checks.append(None if have == 1 else _prompt_violation("objects", f"{cls}: {have} in the clip, the prompt's scene has one"))
    # extra: per colour, objects of shapes the prompt does not name in it, less those standing in for a missing
    # named one (a named object seen with another shape, or one too many of a named shape, fails the count
    # check above and only that one); props of another set-up
    extra = []
    for colour in sorted({t.colour for t in shapes}):
        trs = [t for t in shapes if t.colour == colour and (colour, t.cls) not in named]
        missing = sum(max(0, k - _how_many([t for t in shapes if t.colour == c and t.cls == sh], T))
                      for (c, sh), k in named.items() if c == colour)
        n = _how_many(trs, T) - missing
        if n > 0:
            extra.append(f"{n} {colour} ({'/'.join(sorted({t.cls for t in trs}))})")
    for cls in sorted({t.cls for t in objs if t not in shapes} - props):
        extra.append(f"{_how_many([t for t in objs if t.cls == cls], T)} {cls}")
    m = re.search(r"\b(one|two|three|four|five) (objects|balls|shapes)\b", text)
    if m:
        n = _how_many([t for t in shapes if m.group(2) != "balls" or t.cls == "ball"], T)
        checks.append(None if n == _NUM[m.group(1)] else
                      _prompt_violation("objects", f"{n} {m.group(2)}, the prompt says {m.group(1)}"))
    n_objects = len(checks)
    checks.append(_prompt_violation("extras", "objects the prompt does not name: " + ", ".join(extra)) if extra else None)
    n_objects_extras = len(checks)

    # view, spatial relations, direction
    view = "top" if _TOP.search(text) else "side" if _SIDE.search(text) else None
    if view:
        checks.append(None if p.background.view == view else _prompt_violation("scene",
            f"a {p.background.view} view, the prompt's scene is seen {'from above' if view == 'top' else 'from the side'}"))
    for c1, s1, rel, c2, s2 in _REL.findall(text):
        a, b = _find(shapes, c1, s1), _find(shapes, c2, s2)
        both = sorted(set(a.dets) & set(b.dets)) if a and b else []
        if not both:
            checks.append(_prompt_violation("scene", f"cannot check '{c1} {s1} {rel} {c2} {s2}'"))
            continue
        t = both[0]
        da, db = a.dets[t], b.dets[t]
        ok = {"to the left of": da.x < db.x, "to the right of": da.x > db.x, "above": da.y < db.y, "below": da.y > db.y}[rel]
        checks.append(None if ok else _prompt_violation("scene", f"{c1} {s1} is not {rel} the {c2} {s2}", a, t))
    named_objs = [_find(shapes, c, sh) for c, sh in named]  # the named objects in order (None: not seen)
    main = named_objs[0] if named_objs else None
    dirs = _DIR.findall(_REL.sub(" ", text))
    if dirs and main is not None:
        dx = main.dets[main.last].x - main.dets[main.first].x
        moved = "does not move sideways" if abs(dx) < 2 * s else f"moves {'right' if dx > 0 else 'left'}"
        checks.append(None if dx * (1 if dirs[0] == "right" else -1) >= 2 * s else _prompt_violation("scene",
            f"{moved}, the prompt says {dirs[0]}", main, main.last))

    n_scene = len(checks) - n_objects_extras

    # motions and events
    for pattern, who, ok, what in _MOTIONS:
        if pattern.search(text):
            for tr in [t for t in (named_objs if who == "all" else named_objs[:1]) if t is not None]:
                checks.append(None if ok(*_clean_xy(tr), s, bool(dirs)) else
                              _prompt_violation("motion", f"the {tr.colour} {tr.cls} {what}", tr))
    if _HIT.search(text) and main is not None:
        other = _find(objs, None, "switch") if "switch" in text else (named_objs[1] if len(named_objs) > 1 else None)
        if other is not None:  # (a missing one fails its object check)
            touch = _contact(main, other, s) is not None or _contact(other, main, s) is not None
            checks.append(None if touch else _prompt_violation("motion",
                f"the {main.colour} {main.cls} never touches the {other.colour} {other.cls}", main))
    change = _state_change(p, text, kind, objs, named_objs)
    if change is not None:
        tr, v, at_start, at_end, what = change
        first, last = _ends(v)
        checks.append(None if at_start(first) and at_end(last) else _prompt_violation("motion", f"the {tr.cls} {what}", tr))
    out = [v for v in checks if v is not None]
    made = {"objects": n_objects, "extras": n_objects_extras - n_objects, "scene": n_scene,
            "motion": len(checks) - n_objects_extras - n_scene}
    return (1.0 - len(out) / len(checks)) if checks else None, out, made


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
    adh, prm, made = prompt_adherence(p, prompt)
    vals = {"gravity": None if g is None else g / p.scale, "flicker": flick_v, "prompt": adh}
    per = {"permanence": perm, "identity": ident, "gravity": grav, "bounce_energy": bounce, "momentum": mom,
           "teleport": tele, "causality": caus, "persistence": pers, "flicker": flick, "prompt": prm}
    metrics = {k: {"violations": len(v), "value": vals.get(k)} for k, v in per.items()}
    # per kind of prompt check: how many were made and how many failed
    metrics["prompt"]["checks"] = {k: {"made": n, "failed": sum(v.check == k for v in prm)} for k, n in made.items()}
    return {
        "metrics": metrics,
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
