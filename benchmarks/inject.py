"""Artifacts injected into world clips, and the validation of the metrics against them.

Each artifact edits the clip's simulated scene (a track hidden for some frames, a track split in two with
a new colour or shape, a state flipped, the spec's gravity or restitution changed) and renders it again
with the clip's own style and seed. Rendering is deterministic, so the background, texture and sensor
noise are bit-identical: only the pixels of the artifact change, exactly as a pixel-level edit would,
but with the world's own anti-aliasing and shading instead of pasted sprites.

`validate` measures every metric on clean clips (false alarms) and on each artifact (recall): the
artifact x metric matrix the benchmark reports.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .metrics import METRICS

SHAPES = ("ball", "square", "triangle")
MOTION = ("fall", "projectile", "roll", "topdown", "collision", "occlusion", "knock", "switch")
# the metric each artifact is meant to trip
TARGET = {
    "vanish": "permanence", "spawn": "permanence", "teleport": "teleport", "colour_swap": "identity",
    "shape_morph": "identity", "cookie_regrow": "persistence", "candle_relight": "persistence",
    "effect_before_cause": "causality", "bounce_gain": "bounce_energy", "gravity_x0.5": "gravity",
    "gravity_x2": "gravity",
}
FAMILIES = {
    "vanish": MOTION, "spawn": MOTION, "teleport": MOTION, "colour_swap": MOTION, "shape_morph": MOTION,
    "cookie_regrow": ("cookie",), "candle_relight": ("candle",),
    "effect_before_cause": ("knock", "candle", "cookie", "switch"),
    "bounce_gain": ("fall", "projectile"), "gravity_x0.5": ("fall", "projectile"), "gravity_x2": ("fall", "projectile"),
}
HIDDEN = -1e4  # a position far outside the frame: the renderer draws nothing there


@dataclass
class Injected:
    frames: np.ndarray
    artifact: str
    frame: int  # first frame showing the artifact
    info: dict = field(default_factory=dict)


def _render(clip, scene) -> np.ndarray:
    from world import render

    return render(scene, clip.style)[0]


def _movers(scene, clip, rng) -> list[int]:
    """Indices of shape tracks (ball / square / triangle), shuffled."""
    idx = [i for i, t in enumerate(scene.tracks) if t.cls in SHAPES]
    rng.shuffle(idx)
    return idx


def _clear(clip, i: int, t: int, margin: float) -> bool:
    """Track i is fully in view at frame t, `margin` px from the border and from any wall."""
    tr = clip.scene.tracks[i]
    x, y = tr.pos[t]
    W, H = clip.spec.width, clip.spec.height
    r = tr.size * 1.2 + margin
    if clip.visibility[t, i] < 0.99 or x - r < 0 or y - r < 0 or x + r > W or y + r > H:
        return False
    for w in clip.scene.tracks:
        if w.cls == "wall" and abs(w.pos[t, 0] - x) < w.width + r and abs(w.pos[t, 1] - y) < w.size + r:
            return False
    return True


def _unused_colour(scene, rng) -> str:
    from world import PALETTE

    used = {t.colour for t in scene.tracks}
    free = [c for c in PALETTE if c not in used]
    return str(rng.choice(free))


def _split_track(scene, i: int, k: int, **change) -> None:
    """From frame k on, track i is replaced by a copy with `change` (colour, cls) in the same place."""
    old = scene.tracks[i]
    new = copy.deepcopy(old)
    for key, v in change.items():
        setattr(new, key, v)
    new.id = max(t.id for t in scene.tracks) + 1
    new.pos[:k] = HIDDEN
    old.pos[k:] = HIDDEN
    scene.tracks.append(new)


def _window(clip, i: int, lo: int, hi: int, rng, need: Iterable[int] = (0,), margin: float = 3.0) -> int | None:
    """A random frame k in [lo, hi] such that the track is clear at every k + d for d in need."""
    T = clip.frames.shape[0]
    ks = [k for k in range(lo, hi + 1) if all(0 <= k + d < T and _clear(clip, i, k + d, margin) for d in need)]
    return int(rng.choice(ks)) if ks else None


def vanish(clip, rng) -> Injected | None:
    T = clip.frames.shape[0]
    for i in _movers(clip.scene, clip, rng):
        K = int(rng.integers(1, 4))
        k = _window(clip, i, 2, T - K - 2, rng, need=range(-1, K + 1))
        if k is not None:
            scene = copy.deepcopy(clip.scene)
            scene.tracks[i].pos[k:k + K] = HIDDEN
            return Injected(_render(clip, scene), "vanish", k, {"track": i, "frames": K})
    return None


def spawn(clip, rng) -> Injected | None:
    from world.scenes import Track

    spec, T = clip.spec, clip.frames.shape[0]
    s = spec.scale
    scene = copy.deepcopy(clip.scene)
    r = float(rng.uniform(4.0, 5.5) * s)
    for _ in range(100):
        x = float(rng.uniform(r + 4 * s, spec.width - r - 4 * s))
        y = spec.floor_y - r if spec.view == "side" else float(rng.uniform(r + 6 * s, spec.height - r - 6 * s))
        far = all(np.min(np.hypot(t.pos[:, 0] - x, t.pos[:, 1] - y)) > r + max(t.size, t.width) + 6 * s
                  for t in scene.tracks)
        if far:
            break
    else:
        return None
    k = int(rng.integers(3, T - 3))
    pos = np.tile([x, y], (T, 1)).astype(float)
    pos[:k] = HIDDEN
    cls = str(rng.choice(SHAPES))
    scene.tracks.append(Track(max(t.id for t in scene.tracks) + 1, cls, _unused_colour(scene, rng), r, 0.0, pos,
                              np.zeros((T, 2)), np.zeros(T)))
    return Injected(_render(clip, scene), "spawn", k, {"class": cls})


def teleport(clip, rng) -> Injected | None:
    spec, T = clip.spec, clip.frames.shape[0]
    s = spec.scale
    for i in _movers(clip.scene, clip, rng):
        for _ in range(20):
            k = _window(clip, i, 2, T - 3, rng, need=(-2, -1, 0, 1))
            if k is None:
                break
            dist = float(rng.uniform(16, 22) * s)
            ang = 0.0 if spec.view == "side" else float(rng.uniform(0, 2 * math.pi))
            sign = 1 if rng.random() < 0.5 else -1
            off = np.array([sign * dist * math.cos(ang), dist * math.sin(ang)])
            scene = copy.deepcopy(clip.scene)
            tr = scene.tracks[i]
            x, y = tr.pos[k] + off
            r = tr.size * 1.3 + 2 * s
            if not (r < x < spec.width - r and r < y < spec.height - r):
                continue
            walls = [w for w in scene.tracks if w.cls == "wall" and abs(w.pos[k, 0] - x) < w.width + r + 2 * s]
            others = [o for j, o in enumerate(scene.tracks) if j != i and np.hypot(*(o.pos[k] - [x, y])) < r + o.size + 3 * s]
            if walls or others:
                continue
            tr.pos[k:] += off
            return Injected(_render(clip, scene), "teleport", k, {"track": i, "offset": off.round(2).tolist()})
    return None


def colour_swap(clip, rng) -> Injected | None:
    T = clip.frames.shape[0]
    for i in _movers(clip.scene, clip, rng):
        k = _window(clip, i, 3, T - 3, rng, need=(-1, 0, 1))
        if k is not None:
            scene = copy.deepcopy(clip.scene)
            c = _unused_colour(scene, rng)
            _split_track(scene, i, k, colour=c)
            return Injected(_render(clip, scene), "colour_swap", k, {"track": i, "colour": c})
    return None


def shape_morph(clip, rng) -> Injected | None:
    T = clip.frames.shape[0]
    for i in _movers(clip.scene, clip, rng):
        k = _window(clip, i, 3, T - 3, rng, need=(-2, -1, 0, 1, 2))
        if k is not None:
            scene = copy.deepcopy(clip.scene)
            cls = str(rng.choice([c for c in SHAPES if c != scene.tracks[i].cls]))
            _split_track(scene, i, k, cls=cls)
            return Injected(_render(clip, scene), "shape_morph", k, {"track": i, "class": cls})
    return None


def _event_frame(clip, kind: str) -> int | None:
    return next((e.frame for e in clip.scene.events if e.kind == kind), None)


def cookie_regrow(clip, rng) -> Injected | None:
    if clip.spec.family != "cookie":
        return None
    T = clip.frames.shape[0]
    scene = copy.deepcopy(clip.scene)
    cookie, mouth = scene.tracks
    bite = _event_frame(clip, "bite")
    if bite is None:
        return None
    # the bite mark must first be seen clear of the mouth (two frames), then it grows back for 2+ frames
    clear = [t for t in range(bite + 1, T - 2)
             if np.hypot(*(mouth.pos[t] - cookie.pos[t])) > cookie.size + mouth.size + 2 * clip.spec.scale]
    if len(clear) < 3:
        return None
    k = int(rng.choice(clear[2:5]))
    cookie.state["notch_r"][k:] = 0.0
    cookie.state["bitten"][k:] = False
    return Injected(_render(clip, scene), "cookie_regrow", k)


def candle_relight(clip, rng) -> Injected | None:
    if clip.spec.family != "candle":
        return None
    T = clip.frames.shape[0]
    out = _event_frame(clip, "blow_out")
    if out is None or out + 2 > T - 3:
        return None
    k = int(rng.integers(out + 2, T - 2))
    scene = copy.deepcopy(clip.scene)
    scene.tracks[0].state["lit"][k:] = True
    return Injected(_render(clip, scene), "candle_relight", k)


def effect_before_cause(clip, rng) -> Injected | None:
    """The effect (flame out, bite mark, lamp on, block tipping) starts 3-5 frames before its cause."""
    fam, T = clip.spec.family, clip.frames.shape[0]
    shift = int(rng.integers(3, 6))
    scene = copy.deepcopy(clip.scene)
    if fam == "candle":
        e = _event_frame(clip, "blow_out")
        k = max(1, e - shift)
        c = scene.tracks[0]
        c.state["lit"] = np.arange(T) < k
        c.state["smoke"] = np.roll(c.state["smoke"], k - e) * (np.arange(T) >= k)
    elif fam == "cookie":
        e = _event_frame(clip, "bite")
        k = max(1, e - shift)
        c = scene.tracks[0]
        r = c.state["notch_r"][-1]
        c.state["notch_r"] = np.where(np.arange(T) >= k, r, 0.0)
    elif fam == "switch":
        e = _event_frame(clip, "press")
        k = max(1, e - shift)
        scene.tracks[2].state["lit"] = np.arange(T) >= k
    elif fam == "knock":
        e = _event_frame(clip, "hit")
        k = max(1, e - shift)
        b = scene.tracks[1]
        src = np.clip(np.arange(T) + (e - k), 0, T - 1)
        b.pos, b.angle = b.pos[src], b.angle[src]
    else:
        return None
    if e is None or e - k < 2:
        return None
    return Injected(_render(clip, scene), "effect_before_cause", k, {"shift": e - k})


def _respec(clip, **change):
    from world import render_spec

    spec = copy.deepcopy(clip.spec)
    for key, v in change.items():
        setattr(spec, key, v)
    return render_spec(spec, clip.style)


def bounce_gain(clip, rng) -> Injected | None:
    if clip.spec.family not in ("fall", "projectile"):
        return None
    b = _event_frame(clip, "bounce")
    if b is None or b > clip.frames.shape[0] - 4:
        return None
    new = _respec(clip, restitution=1.3)
    return Injected(new.frames, "bounce_gain", b, {"restitution": 1.3})


def _gravity(factor: float):
    def inject(clip, rng) -> Injected | None:
        if clip.spec.family not in ("fall", "projectile"):
            return None
        new = _respec(clip, gravity=clip.spec.gravity * factor)
        return Injected(new.frames, f"gravity_x{factor:g}", 0, {"gravity": new.spec.gravity})
    return inject


ARTIFACTS: dict[str, Callable] = {
    "vanish": vanish, "spawn": spawn, "teleport": teleport, "colour_swap": colour_swap, "shape_morph": shape_morph,
    "cookie_regrow": cookie_regrow, "candle_relight": candle_relight, "effect_before_cause": effect_before_cause,
    "bounce_gain": bounce_gain, "gravity_x0.5": _gravity(0.5), "gravity_x2": _gravity(2.0),
}


def inject(clip, artifact: str, seed: int = 0) -> Injected | None:
    """Inject `artifact` into a world clip (None where it does not apply to the clip's scene)."""
    if artifact not in ARTIFACTS:
        raise ValueError(f"unknown artifact {artifact!r}; choose from {', '.join(ARTIFACTS)}")
    return ARTIFACTS[artifact](clip, np.random.default_rng([seed, 31337]))


# ----------------------------------------------------------------------------------------------


def validate(n_clean: int = 200, n_per_artifact: int = 40, offset: int = 20_000,
             artifacts: Iterable[str] = tuple(ARTIFACTS), progress: Callable[[Iterable], Iterable] = lambda it: it) -> dict:
    """The artifact x metric matrix on world clips of the bench split.

    clean[m]: share of clean clips (all families, round robin) that violate metric m (false alarms);
    matrix[a][m]: share of clips with artifact a that violate m; recall[a] = matrix[a][TARGET[a]].
    Seeds: clean clips from `offset` into the bench split, artifact a from offset + 10000 + 5000 * index(a)
    (disjoint from each other and from the prompt suite's first 10000 seeds).
    """
    from world import FAMILIES as ALL_FAMILIES
    from world import make_clip, split_seeds

    from .metrics import measure
    from .perception import perceive

    def flags(frames, fps, prompt):
        r = measure(perceive(frames, fps), frames, prompt)
        return {m: r["metrics"][m]["violations"] > 0 for m in METRICS}

    artifacts = list(artifacts)
    jobs = [("clean", i) for i in range(n_clean)] + [(a, i) for a in artifacts for i in range(n_per_artifact)]
    clean_f, per_art = [], {a: [] for a in artifacts}
    tries = {a: 0 for a in artifacts}
    if n_clean > 10_000 or n_per_artifact > 1_000:
        raise ValueError("at most 10000 clean clips and 1000 per artifact")
    split_seeds("bench", 10_000 + 5_000 * len(ARTIFACTS), offset)  # raises if the seeds leave the split
    seeds = split_seeds("bench", 1, offset)[0]
    for kind, i in progress(jobs):
        if kind == "clean":
            clip = make_clip(seeds + i, ALL_FAMILIES[i % len(ALL_FAMILIES)])
            clean_f.append(flags(clip.frames, clip.fps, clip.caption))
            continue
        fams = FAMILIES[kind]
        for _ in range(20):  # find a clip the artifact applies to
            j = tries[kind]
            tries[kind] += 1
            seed = seeds + 10_000 + 5_000 * list(ARTIFACTS).index(kind) + j
            clip = make_clip(seed, fams[j % len(fams)])
            inj = inject(clip, kind, seed)
            if inj is not None:
                per_art[kind].append(flags(inj.frames, clip.fps, clip.caption))
                break
    clean = {m: float(np.mean([f[m] for f in clean_f])) if clean_f else 0.0 for m in METRICS}
    matrix = {a: {m: float(np.mean([f[m] for f in fl])) if fl else float("nan") for m in METRICS} for a, fl in per_art.items()}
    recall = {a: matrix[a][TARGET[a]] for a in artifacts}
    any_recall = {a: float(np.mean([any(f.values()) for f in fl])) if fl else float("nan") for a, fl in per_art.items()}
    return {"clean": clean, "clean_any": float(np.mean([any(f.values()) for f in clean_f])) if clean_f else 0.0,
            "matrix": matrix, "recall": recall, "recall_any_metric": any_recall, "target": {a: TARGET[a] for a in artifacts},
            "n_clean": len(clean_f), "n": {a: len(per_art[a]) for a in artifacts}}
