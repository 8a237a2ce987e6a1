"""The procedural world: determinism, sizes, exact physics, lasting causal effects, captions, splits, data sets."""
from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from world import FAMILIES, PALETTE, SHAPES, SPLITS, Style, make_clip, split_of, split_seeds, split_size
from world.scenes import PROP_COLOURS

SEEDS = range(6)
MOVERS = ("ball", "square", "triangle")


def clean(seed: int, family: str, **kw):
    return make_clip(seed, family, style=Style.clean(), **kw)


def near(rgb, colour, tol=6.0) -> bool:
    return float(np.abs(np.asarray(rgb, float) - np.asarray(colour, float)).max()) <= tol


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_per_family_and_seed(family):
    a, b = make_clip(11, family), make_clip(11, family)
    assert np.array_equal(a.frames, b.frames)
    assert json.dumps(a.truth()) == json.dumps(b.truth())
    assert a.captions == b.captions
    c = make_clip(12, family)
    assert not np.array_equal(a.frames, c.frames)


def test_family_drawn_from_seed_is_deterministic():
    fams = [make_clip(s).spec.family for s in range(40)]
    assert fams == [make_clip(s).spec.family for s in range(40)]
    assert set(fams) == set(FAMILIES)  # 40 seeds reach every family


# ------------------------------------------------------------------------------------------ sizes and rates


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", [(64, 64), (96, 64), (64, 96)])
def test_every_family_renders_at_every_size(family, size):
    w, h = size
    for fps, seed in ((8, 0), (12, 1), (16, 2)):
        n = int(2 * fps) + 1
        c = clean(seed, family, width=w, height=h, fps=fps, n_frames=n)
        assert c.frames.shape == (n, h, w, 3) and c.frames.dtype == np.uint8
        t = c.truth()
        assert (t["width"], t["height"], t["n_frames"], t["fps"]) == (w, h, n, fps)
        assert c.visibility.shape == (n, len(c.scene.tracks))
        assert np.all((c.visibility >= 0) & (c.visibility <= 1))
        assert c.frames.std() > 5  # not a flat frame
        # every mover and block is drawn where the truth says: its colour at its centre pixel
        for i, tr in enumerate(c.scene.tracks):
            if tr.cls not in MOVERS + ("block",):
                continue
            assert c.visibility[:, i].max() > 0.5, (tr.cls, tr.colour)
            for k in np.flatnonzero(c.visibility[:, i] > 0.999):
                x, y = tr.pos[k]
                assert near(c.frames[k, int(y), int(x)], PALETTE[tr.colour], 8), (family, size, fps, k, tr.cls)


def test_bad_sizes_are_refused():
    for kw in (dict(width=8), dict(height=5000), dict(n_frames=0), dict(fps=0.5)):
        with pytest.raises(ValueError):
            make_clip(0, "fall", **kw)
    with pytest.raises(ValueError, match="unknown scene family"):
        make_clip(0, "nope")


def test_style_adds_texture_and_noise():
    plain, real = clean(3, "roll"), make_clip(3, "roll")
    # a flat-colour background in the clean style; texture, lighting and noise otherwise
    sky = (slice(None), slice(2, 20), slice(2, 60))
    assert plain.frames[sky].astype(float).std(axis=(0, 1, 2)).max() < 1.0
    assert real.frames[sky].astype(float).std(axis=(0, 1, 2)).min() > 1.5
    assert not np.array_equal(real.frames[0], real.frames[1])  # noise differs frame to frame
    assert np.array_equal(plain.scene.tracks[0].pos, real.scene.tracks[0].pos)


# ------------------------------------------------------------------------------------------ physics truth


def segments(times, event_times):
    """Index ranges of frames between consecutive events (no event strictly inside)."""
    edges = [-np.inf, *sorted(event_times), np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        idx = np.flatnonzero((times >= lo - 1e-12) & (times < hi - 1e-12))
        idx = idx[times[idx] > lo + 1e-12] if np.isfinite(lo) else idx
        if len(idx):
            yield idx


@pytest.mark.parametrize("family", ["fall", "projectile"])
@pytest.mark.parametrize("seed", SEEDS)
def test_free_fall_is_a_parabola_between_bounces(family, seed):
    c = make_clip(seed, family)
    g, times = c.spec.gravity, c.scene.times
    assert g > 0
    truth = c.truth()
    for tr, obj in zip(c.scene.tracks, truth["objects"]):
        bounces = [e.time for e in c.scene.events if e.kind == "bounce" and tr.id in e.ids]
        assert bounces, "every body reaches the floor in a 2 s clip"
        for idx in segments(times, bounces):
            k0 = idx[0]
            x0, y0 = tr.pos[k0]
            vx0, vy0 = tr.vel[k0]
            dt = times[idx] - times[k0]
            resting = vy0 == 0 and np.all(tr.vel[idx, 1] == 0)
            a = 0.0 if resting else g
            np.testing.assert_allclose(tr.pos[idx, 1], y0 + vy0 * dt + 0.5 * a * dt ** 2, atol=1e-6)
            np.testing.assert_allclose(tr.pos[idx, 0], x0 + vx0 * dt, atol=1e-6)
            np.testing.assert_allclose(tr.vel[idx, 1], vy0 + a * dt, atol=1e-6)
            # the JSON truth carries the same numbers (to its 4 decimals)
            np.testing.assert_allclose(np.array(obj["y"])[idx], tr.pos[idx, 1], atol=1e-4)
        # never below the floor
        hy = tr.size
        assert np.all(tr.pos[:, 1] + hy <= c.spec.floor_y + 1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_bounce_heights_decrease(seed):
    c = make_clip(seed, "fall")
    g, times, floor = c.spec.gravity, c.scene.times, c.spec.floor_y
    for tr in c.scene.tracks:
        bounces = [e for e in c.scene.events if e.kind == "bounce" and tr.id in e.ids]
        heights = []
        for idx in list(segments(times, [e.time for e in bounces]))[1:]:  # the flights after each bounce
            k = idx[0]
            y_top = tr.pos[k, 1] - tr.vel[k, 1] ** 2 / (2 * g)  # the apex of this parabola (y grows downward)
            heights.append((floor - tr.size) - y_top)
        heights = [h for h in heights if h > 1e-9]  # a body at rest has no flight
        assert len(heights) >= 1
        assert all(b < a for a, b in zip(heights, heights[1:])), heights
        # the first rebound is lower than the drop (restitution < 1)
        y_start = tr.pos[0, 1] - min(tr.vel[0, 1], 0) ** 2 / (2 * g)
        assert heights[0] < (floor - tr.size) - y_start


def momentum(c, k):
    return sum(t.size ** 2 * t.vel[k] for t in c.scene.tracks if t.cls in MOVERS)


def energy(c, k):
    return sum(0.5 * t.size ** 2 * (t.vel[k] ** 2).sum() for t in c.scene.tracks if t.cls in MOVERS)


@pytest.mark.parametrize("seed", range(10))
def test_momentum_conserved_in_collisions(seed):
    c = make_clip(seed, "collision")
    hits = [e for e in c.scene.events if e.kind == "collision"]
    assert len(hits) == 1 and hits[0].ids == [0, 1]
    k = hits[0].frame
    assert 0 < k < c.spec.n_frames
    p0, p1 = momentum(c, k - 1), momentum(c, k)
    np.testing.assert_allclose(p1, p0, atol=1e-6)
    assert energy(c, k) == pytest.approx(energy(c, k - 1), rel=1e-9)  # elastic
    v0, v1 = c.scene.tracks[0].vel[k - 1, 0], c.scene.tracks[0].vel[k, 0]
    assert v0 != pytest.approx(v1)  # the collision did change the motion
    # they touch, never overlap
    a, b = c.scene.tracks
    gap = np.abs(a.pos[:, 0] - b.pos[:, 0]) - (a.size + b.size)
    assert gap.min() > -1e-6


@pytest.mark.parametrize("seed", range(20))
def test_topdown_momentum_between_wall_contacts(seed):
    c = make_clip(seed, "topdown")
    T = c.spec.n_frames
    wall_frames = {e.frame for e in c.scene.events if e.kind in ("wall", "bounce")}
    assert not any(e.kind == "bounce" for e in c.scene.events)  # no floor in a top view
    for k in range(1, T):
        if k not in wall_frames:
            np.testing.assert_allclose(momentum(c, k), momentum(c, k - 1), atol=1e-6)
        assert energy(c, k) == pytest.approx(energy(c, 0), rel=1e-9)  # all contacts elastic


def state_switches_at(state: np.ndarray, frame: int) -> bool:
    s = np.asarray(state, bool)
    return bool(np.all(~s[:frame]) and np.all(s[frame:]))


@pytest.mark.parametrize("seed", SEEDS)
def test_candle_stays_out(seed):
    c = clean(seed, "candle")
    (ev,) = c.scene.events
    assert ev.kind == "blow_out" and 0 < ev.frame < c.spec.n_frames
    candle = c.scene.track("candle")
    assert state_switches_at(~candle.state["lit"], ev.frame)
    f = c.frames.astype(int)
    flame = (f[..., 0] > 235) & (f[..., 1] > 110) & (f[..., 1] < 215) & (f[..., 2] < 120)  # orange
    per_frame = flame.sum(axis=(1, 2))
    assert np.all(per_frame[: ev.frame - 1] >= 3)  # (in the last lit frame the puff may cover it)
    assert np.all(per_frame[ev.frame:] == 0)
    # the flame sits above the wick
    ys, xs = np.nonzero(flame[0])
    top = candle.pos[0, 1] - candle.size
    assert ys.max() < top and abs(xs.mean() + 0.5 - candle.pos[0, 0]) < 1.0
    # smoke rises after it goes out, never before
    smoke = candle.state["smoke"]
    assert np.all(smoke[: ev.frame] == 0) and np.all(smoke[ev.frame:][:4] > 0)


def pixel(c, k, x, y):
    return c.frames[k, int(y), int(x)].astype(int)


@pytest.mark.parametrize("seed", SEEDS)
def test_cookie_notch_stays(seed):
    c = clean(seed, "cookie")
    (ev,) = c.scene.events
    assert ev.kind == "bite"
    cookie, mouth = c.scene.track("cookie"), c.scene.track("mouth")
    assert state_switches_at(cookie.state["bitten"], ev.frame)
    nx, ny, nr = cookie.state["notch_x"][-1], cookie.state["notch_y"][-1], cookie.state["notch_r"][-1]
    assert nr > 0 and np.all(cookie.state["notch_r"][ev.frame:] == nr)
    # a point inside the cookie and inside the bite
    d = np.sign(cookie.pos[0, 0] - nx)
    px, py = nx + d * nr * 0.5, ny
    assert math.hypot(px - cookie.pos[0, 0], py - cookie.pos[0, 1]) < cookie.size - 1
    brown = np.asarray(PROP_COLOURS["brown"])
    before = pixel(c, 0, px, py)
    assert before[0] > before[1]  # cookie (brown or a chip), not the green table
    n_checked = 0
    for k in range(ev.frame, c.spec.n_frames):
        if math.hypot(mouth.pos[k, 0] - px, mouth.pos[k, 1] - py) < mouth.size + 1.5:
            continue  # the mouth is in front of the spot
        p = pixel(c, k, px, py)
        assert p[1] > p[0] and np.abs(p - brown).max() > 40, (k, p)  # the table shows through, every frame
        n_checked += 1
    assert n_checked >= 3
    # the mouth opens toward the cookie: ahead of its centre is the open wedge, behind it is pink
    pink = PROP_COLOURS["pink"]
    rim = 3 * c.spec.scale + 1
    n_checked = 0
    for k in range(ev.frame):
        mx, my, r = mouth.pos[k, 0], mouth.pos[k, 1], mouth.size
        if rim + r < mx < c.spec.width - rim - r:
            d = np.sign(mouth.vel[k, 0])
            assert not near(pixel(c, k, mx + d * 0.7 * r, my), pink, 30), k
            assert near(pixel(c, k, mx - d * 0.7 * r, my), pink, 6), k
            n_checked += 1
    assert n_checked >= 1


@pytest.mark.parametrize("seed", SEEDS)
def test_lamp_stays_lit(seed):
    c = clean(seed, "switch")
    press, on = c.scene.events
    assert (press.kind, on.kind) == ("press", "lamp_on") and press.time < on.time
    lamp, switch = c.scene.track("lamp"), c.scene.track("switch")
    assert state_switches_at(switch.state["pressed"], press.frame)
    assert state_switches_at(lamp.state["lit"], on.frame)
    lx, ly = lamp.pos[0]
    for k in range(c.spec.n_frames):
        p = pixel(c, k, lx, ly)
        assert near(p, (255, 228, 80)) if k >= on.frame else near(p, (85, 85, 90)), (k, p)
    # the ball stops short of the wall: it touches the switch at the press, then rebounds
    ball = c.scene.track("ball")
    assert np.sign(ball.vel[press.frame - 1, 0]) == -np.sign(ball.vel[press.frame, 0])


@pytest.mark.parametrize("seed", SEEDS)
def test_block_stays_down(seed):
    c = clean(seed, "knock")
    hit, fall = c.scene.events
    assert (hit.kind, fall.kind) == ("hit", "fall_over")
    block = c.scene.track("block")
    assert state_switches_at(block.state["knocked"], hit.frame)
    assert state_switches_at(block.state["fallen"], fall.frame)
    assert np.all(block.angle[: hit.frame] == 0)
    np.testing.assert_allclose(np.abs(block.angle[fall.frame:]), math.pi / 2)
    assert np.all(block.vel[: hit.frame] == 0) and np.all(block.vel[fall.frame:] == 0)
    # the block tips away from the ball
    ball = c.scene.track("ball")
    assert np.sign(block.pos[-1, 0] - block.pos[0, 0]) == np.sign(ball.vel[0, 0])
    # its pixels: tall (2 * half height) before the hit, short (2 * half width) from the fall on
    colour = PALETTE[block.colour]
    mask = (np.abs(c.frames.astype(int) - colour).max(-1) < 20)
    heights = np.array([np.any(m, axis=1).sum() for m in mask])
    assert np.all(np.abs(heights[: hit.frame] - 2 * block.size) <= 2)
    assert np.all(np.abs(heights[fall.frame:] - 2 * block.width) <= 2)
    # it lies on the floor
    assert np.all(np.abs(block.pos[fall.frame:, 1] + block.width - c.spec.floor_y) < 1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_occluded_body_re_emerges(seed):
    c = clean(seed, "occlusion")
    vis = c.visibility[:, 0]
    assert vis[0] > 0.99 and vis.min() < 0.2
    k_hidden = int(np.flatnonzero(vis < 0.2)[0])  # behind the wall
    assert vis[k_hidden:].max() > 0.99  # fully in view again on the other side (it may leave the frame later)
    wall = c.scene.track("wall")
    body = c.scene.track(c.scene.tracks[0].cls)
    assert np.sign(body.pos[0, 0] - wall.pos[0, 0]) == -np.sign(body.pos[-1, 0] - wall.pos[0, 0])
    # while hidden, no pixel of its colour shows
    col = PALETTE[body.colour]
    for k in np.flatnonzero(vis < 1e-3):
        assert (np.abs(c.frames[k].astype(int) - col).max(-1) < 30).sum() == 0


# ------------------------------------------------------------------------------------------ captions


def named(caption: str) -> list[tuple[str, str]]:
    words = "|".join(PALETTE)
    return re.findall(rf"\b({words}) ({'|'.join(SHAPES)})\b", caption)


@pytest.mark.parametrize("family", FAMILIES)
def test_captions_agree_with_truth(family):
    for seed in range(15):
        c = make_clip(seed, family)
        t = c.truth()
        movers = [(o["colour"], o["class"]) for o in t["objects"] if o["class"] in MOVERS]
        assert len(c.captions) >= 2 and len(set(c.captions)) == len(c.captions)
        for cap in c.captions:
            # every coloured shape named is in the clip; no colour named that is not
            for pair in named(cap):
                assert pair in movers, (cap, movers)
            for colour in PALETTE:
                if re.search(rf"\b{colour}\b", cap):
                    assert any(o["colour"] == colour for o in t["objects"]), cap
            for number, k in (("two", 2), ("three", 3), ("four", 4)):
                if re.search(rf"\b{number} objects\b", cap):
                    assert len(movers) == k, cap
            if " to the left of " in cap or " to the right of " in cap:
                (a, b) = named(cap)[:2]
                xa = next(o["x"][0] for o in t["objects"] if (o["colour"], o["class"]) == a)
                xb = next(o["x"][0] for o in t["objects"] if (o["colour"], o["class"]) == b)
                assert (xa < xb) == (" to the left of " in cap), cap
        # the canonical caption names every mover (counts agree)
        assert sorted(named(c.caption)) == sorted(movers), (c.caption, movers)


def test_caption_bounce_counts_and_directions():
    for seed in range(40):
        c = make_clip(seed, "fall")
        if len(c.scene.tracks) == 1:
            tr = c.scene.tracks[0]
            n = sum(1 for e in c.scene.events if e.kind == "bounce")
            at_rest = tr.vel[-1, 1] == 0 and abs(tr.pos[-1, 1] + tr.size - c.spec.floor_y) < 1e-9
            flights = n - at_rest  # the contact where it comes to rest is a landing, not a bounce
            times = {1: "once", 2: "twice", 3: "three times", 4: "four times"}
            m = re.search(r"bounces (once|twice|three times|four times|several times)", c.caption)
            assert m, c.caption
            assert m.group(1) == times.get(flights, "several times"), (seed, c.caption, flights)
        for fam in ("roll", "projectile", "occlusion"):
            c = make_clip(seed, fam)
            d = "right" if c.scene.tracks[0].vel[0, 0] > 0 else "left"
            other = "left" if d == "right" else "right"
            assert all(other not in cap for cap in c.captions), c.captions
            assert any(d in cap for cap in c.captions)


# ------------------------------------------------------------------------------------------ splits


def test_split_seeds_are_disjoint():
    ranges = {name: set(split_seeds(name, min(hi - lo, 5000))) for name, (lo, hi) in SPLITS.items()}
    for a, b in itertools.combinations(ranges, 2):
        assert not ranges[a] & ranges[b], (a, b)
    for (a, (lo_a, hi_a)), (b, (lo_b, hi_b)) in itertools.combinations(SPLITS.items(), 2):
        assert hi_a <= lo_b or hi_b <= lo_a, (a, b)
    for name in SPLITS:
        for s in split_seeds(name, 50, offset=17):
            assert split_of(s) == name
    with pytest.raises(ValueError):
        split_seeds("val", 10 ** 7)
    with pytest.raises(ValueError):
        split_seeds("nope", 1)


def test_split_size_is_the_last_offset_split_seeds_accepts():
    for name in SPLITS:
        size = split_size(name)
        assert len(split_seeds(name, 1, offset=size - 1)) == 1
        with pytest.raises(ValueError, match=f"holds {size} seeds"):
            split_seeds(name, 1, offset=size)
    with pytest.raises(ValueError, match="unknown split"):
        split_size("nope")


# ------------------------------------------------------------------------------------------ data sets


def test_world_dataset_cli_and_torch_datasets(tmp_path):
    import torch

    from world.dataset import OnTheFlyWorld, WorldVideoDataset, read_index, to_tensor

    out = tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "daas.cli", "world", "dataset", "--n", "20", "--out", str(out),
                        "--split", "val"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    items = read_index(out)
    assert len(items) == 20
    assert [i["seed"] for i in items] == list(split_seeds("val", 20))
    assert all(split_of(i["seed"]) == "val" for i in items)
    for it in items:
        assert (out / it["video"]).exists() and (out / it["truth"]).exists()
        truth = json.loads((out / it["truth"]).read_text())
        assert truth["seed"] == it["seed"] and truth["captions"][0] == it["caption"]
    assert not list(out.rglob("*.tmp*")) and not list(out.rglob(".*"))

    ds = WorldVideoDataset(out)
    assert len(ds) == 20
    fly = OnTheFlyWorld("val", n=20, random_caption=False)
    assert len(fly) == 20
    for i in (0, 7, 19):
        x = ds[i]
        assert x["video"].shape == (3, 17, 64, 64) and x["video"].dtype == torch.float32
        assert float(x["video"].min()) >= -1.0 and float(x["video"].max()) <= 1.0
        assert x["seed"] == items[i]["seed"] and x["caption"] == items[i]["caption"]
        clip = make_clip(items[i]["seed"])
        assert torch.equal(x["video"], to_tensor(clip.frames))  # lossless: exactly the rendered clip
        y = fly[i]
        assert y["seed"] == x["seed"] and y["caption"] == x["caption"]
        assert torch.equal(y["video"], x["video"])
    # a second write into the same folder is refused, and the first set is untouched
    r = subprocess.run([sys.executable, "-m", "daas.cli", "world", "dataset", "--n", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert len(read_index(out)) == 20


def test_hflip_swaps_directions():
    from world.dataset import OnTheFlyWorld, swap_left_right

    assert swap_left_right("a red ball to the left of a blue square, rolling right") == \
        "a red ball to the right of a blue square, rolling left"
    fly = OnTheFlyWorld("train", n=4, hflip=True, random_caption=False)
    plain = OnTheFlyWorld("train", n=4, hflip=False, random_caption=False)
    import random

    random.seed(0)
    for i in range(4):
        a, b = fly[i], plain[i]
        flipped = bool((a["video"] != b["video"]).any())
        if flipped:
            assert (a["video"] == b["video"].flip(-1)).all()
            assert a["caption"] == swap_left_right(b["caption"])
        else:
            assert a["caption"] == b["caption"]


def test_world_render_cli(tmp_path):
    out = tmp_path / "c.mp4"
    cmd = [sys.executable, "-m", "daas.cli", "world", "render", "--family", "candle", "--seed", "3", "-o", str(out),
           "--size", "96x64", "--fps", "12", "--frames", "25"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    from daas.video import probe

    info = probe(out)
    assert (info.width, info.height, info.n_frames) == (96, 64, 25) and info.fps == pytest.approx(12)
    truth = json.loads(out.with_suffix(".json").read_text())
    assert truth["family"] == "candle" and truth["events"][0]["kind"] == "blow_out"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # no overwrite
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr


def test_world_render_leaves_no_clip_without_its_truth(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import daas.fileio
    from daas.cli import app

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(daas.fileio, "write_json", disk_full)
    out = tmp_path / "c.mp4"
    r = CliRunner().invoke(app, ["world", "render", "--seed", "3", "-o", str(out)])
    assert r.exit_code != 0
    assert list(tmp_path.iterdir()) == []  # neither the video nor a temp file is left behind


@pytest.mark.parametrize("argv, needle", [
    (["world", "render", "--seed", "x", "-o", "c.mp4"], "Invalid value for '--seed'"),  # a click type check
    (["detector", "dataset", "out", "--watermark-share", "2"], "--watermark-share"),  # a range check
    (["world", "render", "--bogus"], "No such option: --bogus"),
    (["generate"], "Missing argument"),
    (["no-such-command"], "No such command"),
])
def test_cli_usage_errors_are_one_line_with_status_2(tmp_path, monkeypatch, capsys, argv, needle):
    from daas.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["daas", *argv])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == ""
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_group_without_a_command_shows_its_help_and_help_exits_0(monkeypatch, capsys):
    from daas.cli import main

    monkeypatch.setattr(sys, "argv", ["daas", "world"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "render" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["daas", "world", "render", "--help"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0 and "--seed" in capsys.readouterr().out
