"""Captions generated from a scene's spec and its simulated truth, in several phrasings.

The first caption is the canonical one (used in reports and prompt suites); the others are paraphrases
that a text-conditioned generator trains on, so that it learns the words, not one sentence pattern.
Every fact a caption states (colours, shapes, counts, directions, bounces, relations) is true of the clip.
"""
from __future__ import annotations

import re

import numpy as np

from .scenes import Scene, Track

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
TIMES = {1: "once", 2: "twice", 3: "three times", 4: "four times"}


def noun(t: Track) -> str:
    return f"{t.colour} {t.cls}"


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def a(t: Track) -> str:
    n = noun(t)
    return f"{article(n)} {n}"


def names_word(word: str) -> re.Pattern:
    """A pattern that finds `word` in a caption or prompt: the whole word or its plural, in any case."""
    return re.compile(rf"\b{re.escape(word.strip().lower())}s?\b", re.IGNORECASE)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _direction(vx: float) -> str:
    return "right" if vx > 0 else "left"


def _bounces(scene: Scene, tid: int) -> int:
    """Floor contacts the body rebounds from (the last contact, where it comes to rest, is a landing)."""
    frames = [e.frame for e in scene.events if e.kind == "bounce" and tid in e.ids]
    t = next(t for t in scene.tracks if t.id == tid)
    if frames and np.all(t.vel[frames[-1]:, 1] == 0.0):  # at rest from the last contact on
        return len(frames) - 1
    return len(frames)


def relation(scene: Scene, i: Track, j: Track) -> str | None:
    """A spatial relation between two objects at the first frame, where it clearly holds."""
    dx = j.pos[0, 0] - i.pos[0, 0]
    dy = j.pos[0, 1] - i.pos[0, 1]
    gap = (i.size + j.size) * 0.5
    if abs(dx) > abs(dy) and abs(dx) > gap:
        return f"{a(i)} to the {'left' if dx > 0 else 'right'} of {a(j)}"
    if abs(dy) > gap:
        return f"{a(i)} {'above' if dy > 0 else 'below'} {a(j)}"
    return None


def captions(scene: Scene) -> list[str]:
    return _CAPTIONERS[scene.spec.family](scene)


def _cap_fall(scene: Scene) -> list[str]:
    ts = scene.tracks
    if len(ts) == 1:
        t = ts[0]
        b = _bounces(scene, t.id)
        tail = f" and bounces {TIMES.get(b, 'several times')}" if b else " and lands on the floor"
        return [f"{a(t)} falls{tail}", f"{a(t)} drops to the floor" + (" and bounces" if b else ""),
                f"{a(t)} falling under gravity"]
    names = _join([a(t) for t in ts])
    caps = [f"{names} fall and bounce", f"{NUMBERS[len(ts)]} objects fall to the floor: {names}"]
    rel = relation(scene, ts[0], ts[1])
    if rel and len(ts) == 2:  # a caption names every object of its clip ("both" of two, not two of three)
        caps.insert(1, f"{rel}, both falling")
    return caps


def _cap_projectile(scene: Scene) -> list[str]:
    t = scene.tracks[0]
    d = _direction(t.vel[0, 0])
    return [f"{a(t)} is thrown to the {d} and arcs down", f"{a(t)} flies to the {d} in an arc and bounces",
            f"{a(t)} is tossed {d}ward"]


def _cap_roll(scene: Scene) -> list[str]:
    t = scene.tracks[0]
    d = _direction(t.vel[0, 0])
    verb = "rolls" if t.cls == "ball" else "slides"
    return [f"{a(t)} {verb} to the {d}", f"{a(t)} moving {d} along the floor", f"{a(t)} {verb} {d}"]


def _cap_topdown(scene: Scene) -> list[str]:
    ts = scene.tracks
    names = _join([a(t) for t in ts])
    if len(ts) == 1:
        caps = [f"seen from above, {names} bounces off the walls", f"{names} moves on a table and bounces off the edges"]
    else:
        caps = [f"seen from above, {names} bounce off the walls and each other",
                f"{NUMBERS[len(ts)]} objects move on a table: {names}"]
        rel = relation(scene, ts[0], ts[1])
        if rel and len(ts) == 2:  # a caption names every object of its clip
            caps.append(f"seen from above, {rel}")
    return caps


def _cap_collision(scene: Scene) -> list[str]:
    t1, t2 = scene.tracks
    moving = abs(t2.vel[0, 0]) > 1e-6
    if moving:
        return [f"{a(t1)} and {a(t2)} roll toward each other and collide",
                f"{a(t1)} collides with {a(t2)} and they bounce apart", f"two balls collide: {a(t1)} and {a(t2)}"]
    return [f"{a(t1)} rolls into {a(t2)} and pushes it", f"{a(t1)} hits a resting {noun(t2)}",
            f"{a(t1)} collides with {a(t2)}"]


def _cap_occlusion(scene: Scene) -> list[str]:
    t = scene.tracks[0]
    verb = "rolls" if t.cls == "ball" else "slides"
    d = _direction(t.vel[0, 0])
    return [f"{a(t)} {verb} behind a gray wall and comes out the other side",
            f"{a(t)} passes behind a gray wall moving {d}", f"{a(t)} {verb} to the {d} behind a wall"]


def _cap_knock(scene: Scene) -> list[str]:
    ball, block = scene.tracks
    fell = bool(block.state["fallen"][-1])
    if fell:
        return [f"{a(ball)} rolls into {a(block)} and knocks it over", f"{a(ball)} knocks over {a(block)}",
                f"{a(block)} is knocked down by {a(ball)}"]
    return [f"{a(ball)} rolls into {a(block)} and tips it", f"{a(ball)} hits {a(block)}"]


def _cap_candle(scene: Scene) -> list[str]:
    return ["a puff of wind blows out a candle", "a gust of wind blows a candle out and smoke rises",
            "a candle flame is blown out by the wind"]


def _cap_cookie(scene: Scene) -> list[str]:
    return ["a mouth takes a bite out of a cookie", "a cookie gets bitten and keeps the bite mark",
            "seen from above, a cookie is bitten"]


def _cap_switch(scene: Scene) -> list[str]:
    ball = scene.tracks[0]
    return [f"{a(ball)} rolls into a switch and a lamp lights up", f"{a(ball)} hits a switch that turns on a lamp",
            f"a lamp turns on when {a(ball)} presses the switch"]


_CAPTIONERS = {
    "fall": _cap_fall,
    "projectile": _cap_projectile,
    "roll": _cap_roll,
    "topdown": _cap_topdown,
    "collision": _cap_collision,
    "occlusion": _cap_occlusion,
    "knock": _cap_knock,
    "candle": _cap_candle,
    "cookie": _cap_cookie,
    "switch": _cap_switch,
}


def pick_caption(caps: list[str], rng: np.random.Generator) -> str:
    return caps[int(rng.integers(len(caps)))]
