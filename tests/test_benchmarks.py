"""Artifact benchmark: perception against the world's truth, metrics on clips whose answer is known,
injected artifacts caught, the suite, the report and the CLI."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from benchmarks.inject import ARTIFACTS, TARGET, inject
from benchmarks.metrics import METRICS, measure, prompt_adherence
from benchmarks.perception import match_truth, perceive
from generator.defaults import DEFAULT_STEPS
from world import PALETTE, make_clip, render, split_seeds
from world.captions import a as a_noun
from world.scenes import Track

SEEDS = split_seeds("bench", 3, offset=95_000)


# ----------------------------------------------------------------------------------------------
# perception


@pytest.mark.parametrize("family", ["fall", "projectile", "topdown", "collision", "occlusion", "knock", "candle",
                                    "cookie", "switch"])
def test_perception_matches_truth(family):
    errs, res = [], []
    for seed in SEEDS[:2]:
        clip = make_clip(seed, family)
        m = match_truth(perceive(clip.frames, clip.fps), clip.truth())
        errs += m["pos_errors"]
        res.append(m)
    assert np.median(errs) <= 1.0
    assert sum(m["switches"] for m in res) == 0
    assert sum(m["colour_ok"] for m in res) == sum(m["n_colour"] for m in res)
    assert sum(m["cls_ok"] for m in res) == sum(m["n_cls"] for m in res)
    assert sum(m["missed"] for m in res) <= 0.05 * sum(m["n_obs"] for m in res)


def test_perception_states():
    """Candle flame, lamp light, cookie notch and block posture follow the truth's states."""
    T = 17
    c = make_clip(SEEDS[0], "switch")
    p = perceive(c.frames)
    lamp = max(p.by_class("lamp"), key=lambda t: len(t.dets))
    lit = np.array(c.truth()["objects"][2]["state"]["lit"])
    seen = lamp.series(T, "lit")
    ok = ~np.isnan(seen)
    assert ok.sum() >= T - 2 and (seen[ok] > 0.5).tolist() == lit[ok].tolist()
    c = make_clip(SEEDS[0], "cookie")
    cookie = perceive(c.frames).by_class("cookie")[0]
    notch = cookie.series(T, "notch")
    assert notch[0] < 0.03 and notch[-1] > 0.05
    c = make_clip(SEEDS[0], "knock")
    block = perceive(c.frames).by_class("block")[0]
    assert block.dets[0].state["upright"] and block.dets[T - 1].state["down"]
    c = make_clip(SEEDS[0], "candle")
    candle = perceive(c.frames).by_class("candle")[0]
    assert candle.dets[0].state["lit"] and not candle.dets[T - 1].state["lit"]


def test_perception_survives_h264(tmp_path):
    from daas.video import read_video, write_video

    clip = make_clip(SEEDS[1], "fall")
    write_video(tmp_path / "c.mp4", clip.frames, clip.fps, crf=18)
    frames, fps = read_video(tmp_path / "c.mp4")
    p = perceive(frames, fps)
    want = sorted((o["colour"], o["class"]) for o in clip.truth()["objects"])
    assert sorted((t.colour, t.cls) for t in p.solid_tracks() if len(t.dets) > 3) == want
    assert not measure(p, frames, clip.caption)["violations"]


# ----------------------------------------------------------------------------------------------
# metrics on hand-built clips


def _draw(paths: list[dict], T: int = 17, H: int = 64, W: int = 64, flicker: float = 0.0) -> np.ndarray:
    """Side-view clip: light wall, floor band from row 56, anti-aliased discs at the given positions
    (path: {"rgb": (r, g, b) or [T] of them, "xy": [T, 2] with NaN = not drawn, "r": radius})."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    bg = np.where((yy >= 56)[..., None], np.array([128, 108, 88.0]), np.array([205, 200, 188.0]))
    out = np.repeat(bg[None], T, 0)
    for p in paths:
        for t in range(T):
            x, y = p["xy"][t]
            if np.isnan(x) or np.isnan(y):
                continue
            rgb = np.asarray(p["rgb"][t] if np.ndim(p["rgb"]) == 2 else p["rgb"], float)
            a = np.clip(p.get("r", 5.0) + 0.5 - np.hypot(xx - x, yy - y), 0, 1)[..., None]
            out[t] = out[t] * (1 - a) + a * rgb
    out += flicker * (np.arange(T) % 2 * 2 - 1)[:, None, None, None]
    rng = np.random.default_rng(0)
    return np.clip(out + rng.normal(0, 1, out.shape) + 0.5, 0, 255).astype(np.uint8)


RED, BLUE = (215, 45, 40), (45, 85, 215)


def _roll(x0=10.0, v=2.0, y=50.0, T=17):
    return np.stack([x0 + v * np.arange(T), np.full(T, y)], 1)


def _violations(frames, prompt=None):
    r = measure(perceive(frames), frames, prompt)
    return {m: r["metrics"][m]["violations"] for m in METRICS}, r


def test_clean_hand_built_clip_has_no_violations():
    v, _ = _violations(_draw([{"rgb": RED, "xy": _roll()}]), "a red ball rolls to the right")
    assert sum(v.values()) == 0


def test_permanence_gap_and_spawn():
    xy = _roll()
    xy[6:9] = np.nan
    assert _violations(_draw([{"rgb": RED, "xy": xy}]))[0]["permanence"] == 1
    late = np.tile([40.0, 30.0], (17, 1))
    late[:8] = np.nan
    assert _violations(_draw([{"rgb": RED, "xy": _roll()}, {"rgb": BLUE, "xy": late}]))[0]["permanence"] == 1


def test_teleport():
    xy = _roll(v=1.0)
    xy[8:, 0] += 16
    assert _violations(_draw([{"rgb": RED, "xy": xy}]))[0]["teleport"] >= 1


def test_identity_colour_change():
    rgb = [RED] * 8 + [BLUE] * 9
    v, r = _violations(_draw([{"rgb": rgb, "xy": _roll()}]))
    assert v["identity"] >= 1 and any("red -> blue" in x["what"] or "turns into" in x["what"] for x in r["violations"])


@pytest.mark.parametrize("g,bad", [(290.0, False), (110.0, True), (640.0, True)])
def test_gravity_fit(g, bad):
    t = np.arange(17) / 8.0
    y = 20 - np.sqrt(24 * g) * t + 0.5 * g * t ** 2  # thrown up to y = 8, then falls
    y = np.where(y < 50, y, np.nan)  # and leaves the test before it reaches the floor
    xy = np.stack([np.full(17, 30.0), y], 1)
    v, r = _violations(_draw([{"rgb": RED, "xy": xy}]))
    assert abs(r["metrics"]["gravity"]["value"] - g) < 0.05 * g
    assert (v["gravity"] > 0) == bad


def test_flicker():
    assert _violations(_draw([{"rgb": RED, "xy": _roll()}], flicker=6.0))[0]["flicker"] == 1


def _prompt_whats(frames, prompt) -> list[str]:
    return [v.what for v in prompt_adherence(perceive(frames), prompt)[1]]


def test_prompt_adherence():
    frames = _draw([{"rgb": RED, "xy": _roll(x0=10)}, {"rgb": BLUE, "xy": _roll(x0=40, v=0.0)}])
    ok = "a red ball to the left of a blue ball; a red ball rolls to the right"
    assert _violations(frames, ok)[0]["prompt"] == 0
    assert _prompt_whats(frames, "a red ball to the right of a blue ball") == [
        "red ball is not to the right of the blue ball"]
    assert _prompt_whats(frames, "a red ball rolls to the left past a blue ball") == ["moves right, the prompt says left"]
    assert len(_prompt_whats(frames, "a green ball and a red ball")) == 2  # no green ball; a blue one unnamed
    assert _prompt_whats(frames, "three objects: a red ball and a blue ball") == ["2 objects, the prompt says three"]


def test_prompt_checks_say_their_kind_and_how_many_of_each_were_made():
    # issue 4 counts the objects named (colour, shape, count) apart from the motions named
    frames = _draw([{"rgb": RED, "xy": _roll(x0=10)}, {"rgb": BLUE, "xy": _roll(x0=40, v=0.0)}])
    p = perceive(frames)
    _, v, made = prompt_adherence(p, "a blue ball to the left of a red ball; a blue ball rolls along the floor")
    assert [(x.check, x.what) for x in v] == [("scene", "blue ball is not to the left of the red ball"),
                                              ("motion", "the blue ball does not roll or slide along the floor")]
    assert made["objects"] == 2 and made["extras"] == 1 and made["motion"] == 1  # blue, red; nothing else; a roll
    # no green ball (the named objects' check, issue 4's 80%), and a blue ball the prompt does not name (extras)
    _, v, made = prompt_adherence(p, "a green ball and a red ball")
    assert sorted(x.check for x in v) == ["extras", "objects"] and made["motion"] == made["scene"] == 0
    checks = _violations(frames, "a green ball and a red ball")[1]["metrics"]["prompt"]["checks"]
    assert checks["objects"] == {"made": 2, "failed": 1} and checks["extras"] == {"made": 1, "failed": 1}
    assert checks["motion"] == {"made": 0, "failed": 0}
    _, v, made = prompt_adherence(p, "a red ball and a blue ball")  # both named: the extras check passes
    assert v == [] and made["extras"] == 1
    assert prompt_adherence(p, None) == (None, [], {"objects": 0, "extras": 0, "scene": 0, "motion": 0})


# ----------------------------------------------------------------------------------------------
# prompt adherence on world clips: all that the caption names and nothing else


def _redrawn(clip, edit) -> np.ndarray:
    """The clip rendered again after edit(scene): same style and sensor noise, only the edit's pixels change."""
    scene = copy.deepcopy(clip.scene)
    edit(scene)
    return render(scene, clip.style)[0]


def test_prompt_names_every_object_with_its_count():
    clip = next(c for c in (make_clip(sd, "fall") for sd in split_seeds("bench", 40, offset=95_000))
                if len(c.scene.tracks) == 2)
    a, b = clip.scene.tracks
    free = next(c for c in PALETTE if c not in (a.colour, b.colour))
    p = perceive(clip.frames, clip.fps)
    passes = lambda prompt: not prompt_adherence(p, prompt)[1]
    assert all(passes(c) for c in clip.captions)
    assert not passes(clip.caption.replace(a.colour, free))  # another colour
    assert not passes(f"{a_noun(a)} falls and bounces")  # the other object is not in the prompt
    assert not passes(f"two {a.colour} {a.cls}s and {a_noun(b)} fall and bounce")  # a wrong count
    assert not passes(f"{a_noun(a)}, {a_noun(b)} and a {free} ball fall and bounce")  # an object that is not there
    assert not passes(f"seen from above, {a_noun(a)} and {a_noun(b)} bounce off the walls")  # the wrong view
    assert not passes(f"{a_noun(a)} rolls to the right and {a_noun(b)} rolls to the left")  # the wrong motion


def test_prompt_fails_an_extra_object_but_not_a_flash():
    clip = make_clip(SEEDS[0], "roll")
    T, s = clip.frames.shape[0], clip.spec.scale
    free = next(c for c in PALETTE if c != clip.scene.tracks[0].colour)

    def extra(frames_seen):
        def edit(scene):
            pos = np.full((T, 2), -1e4)  # far outside the frame: not drawn
            pos[frames_seen] = [clip.spec.width / 2, 16 * s]
            scene.tracks.append(Track(9, "ball", free, 5 * s, 0.0, pos, np.zeros((T, 2)), np.zeros(T)))
        return _redrawn(clip, edit)

    assert not _prompt_whats(clip.frames, clip.caption)
    whats = _prompt_whats(extra(slice(None)), clip.caption)
    assert len(whats) == 1 and whats[0].startswith(f"objects the prompt does not name: 1 {free}")
    assert not _prompt_whats(extra(slice(8, 10)), clip.caption)  # two frames: a glitch (permanence's), not an object


def test_prompt_counts_one_miss_once():
    """One object too many of a named kind fails the count check alone; one of another shape fails "extra"."""
    two_red = _draw([{"rgb": RED, "xy": _roll(x0=10)}, {"rgb": RED, "xy": _roll(x0=40, v=0.0)}])
    assert _prompt_whats(two_red, "a red ball") == ["red ball: 2 in the clip, the prompt says 1"]
    assert _prompt_whats(two_red, "two red balls") == []
    assert _prompt_whats(two_red, "a red ball and a blue ball") == [  # the second red ball stands in for the blue
        "red ball: 2 in the clip, the prompt says 1", "blue ball: 0 in the clip, the prompt says 1"]


def _relit_candle(clip):  # the flame painted back after the puff
    return next(inj.frames for k in range(20) if (inj := inject(clip, "candle_relight", k)) is not None)


def _regrown_cookie(clip):
    return next(inj.frames for k in range(20) if (inj := inject(clip, "cookie_regrow", k)) is not None)


def _dark_lamp(clip):
    return _redrawn(clip, lambda scene: scene.track("lamp").state["lit"].fill(False))


def _standing_block(clip):
    def edit(scene):
        blk = scene.track("block")
        blk.pos[:], blk.vel[:], blk.angle[:] = blk.pos[0], 0.0, 0.0
    return _redrawn(clip, edit)


def _ball_out_of_reach(clip):  # the second ball hangs in the air above the first one's path
    def edit(scene):
        scene.tracks[1].pos[:, 1] -= 30 * clip.spec.scale
    return _redrawn(clip, edit)


@pytest.mark.parametrize("family,breaks,what", [
    ("candle", _relit_candle, "the candle is not lit, then out"),
    ("cookie", _regrown_cookie, "the cookie is not whole, then bitten"),
    ("switch", _dark_lamp, "the lamp is not off, then lit"),
    ("knock", _standing_block, "the block is not upright, then down"),
    ("collision", _ball_out_of_reach, "never touches"),
])
def test_prompt_needs_the_named_event(family, breaks, what):
    clip = make_clip(SEEDS[0], family)
    assert not _prompt_whats(clip.frames, clip.caption)
    whats = _prompt_whats(breaks(clip), clip.caption)
    assert len(whats) == 1 and what in whats[0], whats


def test_prompt_of_another_family_fails():
    """World clips against another family's caption that names the same objects (and direction)."""
    for family, other in [("roll", "a {n} is thrown to the {d} and arcs down"),
                          ("roll", "a {n} falls and bounces once"),
                          ("roll", "a {n} rolls behind a gray wall and comes out the other side"),
                          ("projectile", "a {n} falls and bounces once"),
                          ("fall", "seen from above, a {n} bounces off the walls"),
                          ("occlusion", "a {n} rolls to the {d}")]:
        clip = make_clip(SEEDS[1], family)
        t = clip.scene.tracks[0]
        prompt = other.format(n=f"{t.colour} {t.cls}", d="right" if t.vel[0, 0] > 0 else "left")
        assert not _prompt_whats(clip.frames, clip.caption)
        assert _prompt_whats(clip.frames, prompt), (family, prompt)


# ----------------------------------------------------------------------------------------------
# injected artifacts


@pytest.mark.parametrize("artifact", list(ARTIFACTS))
def test_injected_artifact_is_caught(artifact):
    from benchmarks.inject import FAMILIES

    fams = FAMILIES[artifact]
    for j in range(20):
        seed = split_seeds("bench", 1, offset=96_000 + j)[0]
        clip = make_clip(seed, fams[j % len(fams)])
        inj = inject(clip, artifact, seed)
        if inj is not None:
            break
    assert inj is not None
    assert not np.array_equal(inj.frames, clip.frames)
    metric = TARGET[artifact]
    clean = _violations(clip.frames, clip.caption)[0]
    dirty = _violations(inj.frames, clip.caption)[0]
    assert clean[metric] == 0 and dirty[metric] > 0


def test_unknown_artifact():
    with pytest.raises(ValueError):
        inject(make_clip(SEEDS[0], "fall"), "melt")


@pytest.mark.slow
def test_validation_matrix_small():
    from benchmarks.inject import validate

    v = validate(n_clean=20, n_per_artifact=4)
    assert set(v["matrix"]) == set(ARTIFACTS)
    assert all(r >= 0.75 for r in v["recall"].values())
    assert all(c <= 0.1 for c in v["clean"].values())


# ----------------------------------------------------------------------------------------------
# suite, report, CLI


def test_suite_is_committed_and_reproducible():
    from benchmarks.suite import CATEGORIES, build_suite, load_suite

    items = load_suite()
    assert {i["category"] for i in items} == set(CATEGORIES)
    assert all(1_000_000 <= i["seed"] < 1_100_000 for i in items)  # the bench split, never training seeds
    fresh = build_suite(per_category=1)
    assert [i for i in fresh] == load_suite(per_category=1)
    assert len(load_suite(per_category=2, categories=["candle"])) == 2
    with pytest.raises(ValueError):
        load_suite(categories=["weather"])


def _fake_pipe(calls):
    """Stands in for generator.load_pipeline(): a rolling ball for any prompt; the weak setting freezes it."""
    def pipe(prompt, num_frames=17, height=64, width=64, num_inference_steps=16, guidance_scale=4.0, seed=0):
        calls.append((prompt, num_inference_steps, guidance_scale, seed))
        frames = make_clip(seed % 1000, "roll", width, height, n_frames=num_frames).frames
        frames = frames if num_inference_steps > 2 else frames[[0] * num_frames]
        return frames if isinstance(prompt, str) else np.stack([frames] * len(prompt))
    return pipe


def test_report_on_tiny_suite(tmp_path):
    from benchmarks.report import generator_source, run, world_source, write_report
    from benchmarks.suite import load_suite

    items = load_suite(per_category=1, categories=["gravity", "candle"])
    calls = []
    report, ex = run(items, {"generator": generator_source(_fake_pipe(calls)), "world": world_source})
    assert len(calls) == 2 and calls[0][1:3] == (DEFAULT_STEPS, 4.0)
    jp, hp = write_report(report, ex, tmp_path / "out")
    data = json.loads(jp.read_text())
    gen, world = data["sources"]["generator"]["summary"], data["sources"]["world"]["summary"]
    assert set(gen["categories"]) == {"gravity", "candle"}
    assert world["all"]["any"]["violation_rate"] == 0.0
    assert gen["all"]["any"]["violation_rate"] > 0  # a rolling ball is neither a fall nor a candle
    html = hp.read_text()
    assert html.count("data:image/png;base64,") >= 3 and "<table>" in html


def test_cli_videos_and_errors(tmp_path):
    from typer.testing import CliRunner

    from daas.cli import app
    from daas.errors import DaasError
    from daas.video import write_video

    for k, fam in enumerate(["fall", "switch"]):
        clip = make_clip(SEEDS[k], fam)
        write_video(tmp_path / f"c{k}.mkv", clip.frames, clip.fps, lossless=True)
        (tmp_path / f"c{k}.json").write_text(json.dumps({"prompt": clip.caption, "family": fam}))
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "artifacts", "--videos", str(tmp_path), "--json", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["summary"]["videos"]["all"]["any"]["violation_rate"] == 0.0
    assert set(out["summary"]["videos"]["categories"]) == {"gravity", "switch"}
    assert (tmp_path / "r" / "report.html").exists()
    res = runner.invoke(app, ["bench", "artifacts"])
    assert isinstance(res.exception, DaasError)
    res = runner.invoke(app, ["bench", "artifacts", "--videos", str(tmp_path / "nope")])
    assert isinstance(res.exception, DaasError)


def test_cli_generator_with_fake_pipeline(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import benchmarks.cli as bcli
    from daas.cli import app

    calls = []
    monkeypatch.setattr(bcli, "_load_pipeline", lambda ckpt: _fake_pipe(calls))
    res = CliRunner().invoke(app, ["bench", "artifacts", "--generator", "--per-category", "1", "--no-world",
                                   "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert set(out["summary"]) == {"generator", "generator (weak: 2 steps, cfg 1)"}
    assert {c[1] for c in calls} == {DEFAULT_STEPS, 2}
    assert len(calls) == 2 and len(calls[0][0]) == 8  # one batch of the 8 categories' prompts per setting
    weak = out["summary"]["generator (weak: 2 steps, cfg 1)"]["all"]
    assert weak["any"]["violation_rate"] == 1.0  # a frozen frame never does what a prompt asks
    assert (tmp_path / "report.json").exists()


@pytest.mark.skipif(not __import__("generator.weights", fromlist=["DIT_FILE"]).DIT_FILE.exists(),
                    reason="no shipped checkpoint")
def test_generator_quality_writes_its_report_into_a_new_folder(tmp_path):
    from benchmarks.generator_quality import main

    out = tmp_path / "new" / "folder"  # made up front: a missing folder used to fail after the measuring
    main(["--out", str(out), "--n", "1", "--steps", "1", "--precision", "32-true"])
    res = json.loads((out / "quality.json").read_text())
    assert res["dit"]["clips"] == 1 and res["dit"]["precision"] == "32-true" and res["dit"]["steps"] == 1
    assert len(res["dit"]["rows"]) == 1 and res["vae"]["clips"] == 1
    assert (out / "samples.png").stat().st_size > 0
    with pytest.raises(SystemExit):  # a bad precision is refused before anything is made or measured
        main(["--out", str(tmp_path / "x"), "--n", "1", "--precision", "fp8"])
    assert not (tmp_path / "x").exists()


def test_dit_quality_pools_several_seeds_per_prompt_and_says_what_any_seed_reaches():
    from benchmarks.generator_quality import SEED_STRIDE, dit_quality
    from world import make_clip, split_seeds

    class Stub:  # the world's own clip (which passes) for a prompt's first seed, a frozen frame for later seeds
        fps, precision = 8.0, "32-true"

        def __init__(self, always_real=()):
            self.seeds, self.always_real = [], set(always_real)

        def __call__(self, prompt, seed, **kw):
            self.seeds.append(seed)
            frames = make_clip(seed % SEED_STRIDE).frames
            real = seed < SEED_STRIDE or seed % SEED_STRIDE in self.always_real
            return frames if real else np.broadcast_to(frames[:1], frames.shape).copy()

    first, second = split_seeds("test", 2)
    pipe = Stub(always_real=[first])  # the first prompt passes with all 3 seeds, the second with 1
    res = dit_quality(pipe, 2, split="test", offset=0, seeds_per_prompt=3)
    assert len(res["rows"]) == 6 and len(set(pipe.seeds)) == 6  # every sample has its own noise
    assert sorted({r["seed"] for r in res["rows"]}) == [first, second]
    assert sorted({s % SEED_STRIDE for s in pipe.seeds}) == [first, second]
    assert res["prompt_all_checks_pass"] == pytest.approx(4 / 6)
    assert res["any_seed_prompt_all_checks_pass"] == 1.0  # every prompt passes with one of its seeds
    # prompts are the unit: per-prompt shares 1 and 1/3, sample std 0.471, over sqrt(2) prompts
    assert res["prompt_all_checks_pass_se"] == pytest.approx(np.std([1, 1 / 3], ddof=1) / np.sqrt(2))
    # a sample passes every check exactly when it passes every kind of check its prompt has
    kinds = res["prompt_checks_pass"]
    for r in res["rows"]:
        assert r["prompt_ok"] == all(r[f"{k}_ok"] is not False for k in kinds)
    assert kinds["objects"]["clips"] == 6 and 0 < kinds["objects"]["pass"] <= 1 and kinds["objects"]["se"] >= 0
    assert kinds["extras"]["clips"] == 6  # every prompt names its objects, so every clip is checked for others
    assert min(k["pass"] for k in kinds.values() if k["clips"]) < 1  # the frozen samples fail something
    one = dit_quality(Stub(), 2, split="test", offset=0)
    assert one["prompt_all_checks_pass"] == 1.0 and "any_seed_prompt_all_checks_pass" not in one
    assert all(k["pass"] in (None, 1.0) and "se" not in k for k in one["prompt_checks_pass"].values())
    with pytest.raises(ValueError, match="at least 1"):
        dit_quality(pipe, 2, split="test", seeds_per_prompt=0)


def test_dit_quality_reads_blocks_of_clips_and_draws_a_prompts_seeds_as_one_batch():
    from benchmarks.generator_quality import dit_quality
    from world import make_clip, split_seeds

    class BatchStub:  # the world's clip of the prompt for every sample; records how it was called
        fps, precision = 8.0, "32-true"

        def __init__(self, seeds):
            self.seeds, self.calls = seeds, []
            self.clips = {make_clip(s).caption: make_clip(s).frames for s in seeds}

        def __call__(self, prompt, seed, **kw):
            self.calls.append((prompt, seed))
            return np.stack([self.clips[prompt[0]]] * len(prompt))

    pipe = BatchStub([*split_seeds("val", 2, offset=5), *split_seeds("val", 1, offset=40)])
    res = dit_quality(pipe, [2, 1], split="val", offset=[5, 40], seeds_per_prompt=3, sample_seed_base=1000)
    assert [r["seed"] for r in res["rows"]] == [s for s in pipe.seeds for _ in range(3)]
    # one call per prompt, a batch of its 3 copies, seeded b + k * s: the pipeline gives clip j the seed + j
    assert [(len(p), seed) for p, seed in pipe.calls] == [(3, 1000 + 3 * s) for s in pipe.seeds]
    assert [r["sample_seed"] for r in res["rows"]] == [1000 + 3 * s + j for s in pipe.seeds for j in range(3)]
    assert res["clips"] == 3 and res["blocks"] == [[2, 5], [1, 40]] and res["prompt_all_checks_pass"] == 1.0
    one = dit_quality(pipe, [2], split="val", offset=5, sample_seed_base=0)  # a list of one and a plain offset
    assert one["blocks"] == [[2, 5]] and one["clips"] == 2
    with pytest.raises(ValueError, match="one count per offset"):
        dit_quality(pipe, [2, 1], split="val", offset=[5])
    with pytest.raises(ValueError, match="overlap"):
        dit_quality(pipe, [2, 2], split="val", offset=[5, 6])


def test_generator_quality_refuses_blocks_it_cannot_measure_before_any_work(tmp_path, capsys):
    from benchmarks.generator_quality import main

    for argv, says in ((["--n", "64", "128", "--offset", "10000"], "give one count per offset"),
                       (["--n", "4", "4", "--offset", "0", "2"], "overlap"),
                       (["--n", "4", "--offset", "99999999"], "holds"),
                       (["--n", "0"], "--n must be at least 1"),
                       (["--split", "train"], "invalid choice")):
        with pytest.raises(SystemExit) as e:
            main(["--out", str(tmp_path / "x"), *argv])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert e.value.code == 2 and says in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_paired_difference_pairs_samples_by_seed_and_counts_prompts_as_the_unit(tmp_path, capsys):
    from benchmarks.generator_quality import main, paired_difference

    def rows(ok):  # 3 prompts x 2 sampling seeds; the third prompt is an occlusion clip
        return [{"seed": s, "sample_seed": s + 10 * j, "family": "occlusion" if s == 3 else "fall",
                 "prompt_ok": ok[(s, j)], "permanence_ok": ok[(s, j)], "adherence": 0.5 + 0.5 * ok[(s, j)]}
                for s in (1, 2, 3) for j in (0, 1)]

    a = {(1, 0): 0, (1, 1): 0, (2, 0): 1, (2, 1): 0, (3, 0): 1, (3, 1): 1}
    b = {(1, 0): 1, (1, 1): 1, (2, 0): 1, (2, 1): 1, (3, 0): 0, (3, 1): 1}
    res = paired_difference(rows(a), list(reversed(rows(b))))  # the order of rows does not matter
    assert res["samples"] == 6 and res["prompts"] == 3
    ok = res["prompt_ok"]  # per-prompt differences 1, 0.5, -0.5
    assert ok["a"] == pytest.approx(0.5) and ok["b"] == pytest.approx(5 / 6)
    assert ok["diff"] == pytest.approx(1 / 3) and ok["se"] == pytest.approx(np.std([1, 0.5, -0.5], ddof=1) / np.sqrt(3))
    perm = res["permanence_ok"]  # the occlusion prompt left out: differences 1 and 0.5
    assert perm["prompts"] == 2 and perm["diff"] == pytest.approx(0.75)
    assert res["adherence"]["diff"] == pytest.approx(1 / 6)
    assert res["objects_ok"] is None  # rows of before the kinds of prompt check have no figure for them
    kinds = lambda rs: [{**r, "objects_ok": r["prompt_ok"], "extras_ok": True, "motion_ok": None} for r in rs]
    res = paired_difference(kinds(rows(a)), kinds(rows(b)))  # no motion named
    assert res["objects_ok"]["diff"] == pytest.approx(1 / 3) and res["motion_ok"] is None
    assert res["extras_ok"] == {"prompts": 3, "a": 1.0, "b": 1.0, "diff": 0.0, "se": 0.0}
    # rows of session 29 counted unnamed objects under objects_ok and have no extras_ok: not compared with new ones
    old = [{k: v for k, v in r.items() if k != "extras_ok"} for r in kinds(rows(a))]
    res = paired_difference(old, kinds(rows(b)))
    assert res["objects_ok"] is None and res["extras_ok"] is None and res["prompt_ok"]["diff"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="not of the same prompts"):  # one sample with another noise
        paired_difference(rows(a), rows(b)[:-1] + [{**rows(b)[-1], "sample_seed": 99}])
    with pytest.raises(ValueError, match="one sample twice"):  # a sample counted twice is not a pairing
        paired_difference(rows(a) + rows(a)[:1], rows(b) + rows(b)[:1])
    # the command line reads two quality.json files, or row lists, and refuses what it cannot pair in one line
    (tmp_path / "a.json").write_text(json.dumps({"dit": {"rows": rows(a)}}))
    (tmp_path / "b.json").write_text(json.dumps(rows(b)))
    main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert "B - A +33.3 (paired SE" in capsys.readouterr().out
    (tmp_path / "c.json").write_text("not json")
    with pytest.raises(SystemExit) as e:
        main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and err.endswith("c.json is not JSON") and "Traceback" not in err
    # a row without one of the figures every measurement has is refused (only the kinds of check may be absent)
    (tmp_path / "d.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "prompt_ok"} for r in rows(b)]))
    with pytest.raises(SystemExit) as e:
        main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "d.json")])
    assert e.value.code == 2 and "a row has no 'prompt_ok'" in capsys.readouterr().err


def test_compare_of_the_prompts_that_name_a_word(tmp_path, capsys):
    # session 30: a run that weights squares is judged on the prompts that name one, apart from the others
    from benchmarks.generator_quality import main, prompts_naming

    def rows(ok_square, ok_ball):
        return [{"seed": s, "sample_seed": j, "family": "fall", "prompt": prompt, "prompt_ok": ok, "adherence": 1.0,
                 "permanence_ok": True} for s, prompt, ok in ((1, "a red square falls", ok_square),
                                                              (2, "two Squares and a ball", ok_square),
                                                              (3, "a blue ball rolls", ok_ball)) for j in (0, 1)]

    assert [r["seed"] for r in prompts_naming(rows(1, 1), "square")] == [1, 1, 2, 2]  # plural, any case
    assert prompts_naming(rows(1, 1), "squ") == []  # whole words only
    (tmp_path / "a.json").write_text(json.dumps(rows(False, True)))
    (tmp_path / "b.json").write_text(json.dumps(rows(True, False)))
    main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--prompts-naming", "square"])
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["prompts"] == 2 and "B - A +100.0" in out
    main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])  # all prompts: +1/3
    assert "B - A +33.3" in capsys.readouterr().out
    for argv, message in ((["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--prompts-naming",
                            "triangle"], "no prompt of"), (["--prompts-naming", "square"], "goes with --compare")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_compare_by_family_pairs_each_scene_family_apart(tmp_path, capsys):
    # session 44: guidance scale 3 gained named objects on the whole and lost permanence, `fall` the most
    from benchmarks.generator_quality import main, paired_by_family

    def rows(fall_permanent, roll_ok):
        return [{"seed": s, "sample_seed": j, "family": family, "prompt": "p", "prompt_ok": ok, "adherence": 1.0,
                 "objects_ok": ok, "extras_ok": True, "motion_ok": True, "permanence_ok": permanent}
                for s, family, ok, permanent in ((1, "fall", True, fall_permanent), (2, "roll", roll_ok, True),
                                                 (3, "roll", True, True)) for j in (0, 1)]

    a, b = rows(True, False), rows(False, True)
    res = paired_by_family(a, list(reversed(b)))
    assert list(res) == ["fall", "roll"] and res["fall"]["prompts"] == 1 and res["roll"]["prompts"] == 2
    assert res["fall"]["permanence_ok"]["diff"] == -1.0 and res["fall"]["prompt_ok"]["diff"] == 0.0
    assert res["roll"]["prompt_ok"]["diff"] == 0.5 and res["roll"]["permanence_ok"]["diff"] == 0.0
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--by-family"])
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["by_family"]["fall"]["permanence_ok"]["b"] == 0.0
    fall = next(line for line in out if line.startswith("fall "))
    assert "permanence_ok 100.0 ->   0.0 (-100.0)" in fall
    # a family only one measurement has cannot be paired
    (tmp_path / "c.json").write_text(json.dumps([{**r, "family": "knock"} if r["seed"] == 3 else r for r in b]))
    for argv, message in ((["--compare", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--by-family"],
                           "not of the same prompts"), (["--by-family"], "goes with --compare")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_best_of_replays_the_choice_of_the_lowest_score_among_each_prompts_samples(tmp_path, capsys):
    from benchmarks.generator_quality import best_of_rows, main, paired_difference

    # 2 prompts x 4 samples (listed out of seed order): (passes, flicker score) by sample seed
    samples = {1: [(0, 0.5), (1, 0.1), (0, 0.3), (0, 0.9)], 2: [(1, 0.4), (0, 0.2), (1, 0.1), (1, 0.6)]}
    rows = [{"seed": s, "sample_seed": 100 * s + j, "family": "fall", "prompt_ok": bool(ok),
             "adherence": 0.5 + ok / 2, "permanence_ok": True, "flicker": sc, "drift": -sc}
            for s, v in samples.items() for j, (ok, sc) in reversed(list(enumerate(v)))]
    two = best_of_rows(rows, 2, "flicker")
    named = lambda rs: {(r["seed"], r["sample_seed"]) for r in rs}  # noqa: E731
    assert len(two) == 8 and named(two) == named(rows)
    kept = {(r["seed"], r["sample_seed"]): r["prompt_ok"] for r in two}
    # prompt 1: of seeds 100, 101 the lower score is 101 (passes), of 102, 103 it is 102 (fails)
    assert [kept[(1, 100 + j)] for j in range(4)] == [True, True, False, False]
    assert [kept[(2, 200 + j)] for j in range(4)] == [False, False, True, True]  # 201, then 202
    res = paired_difference(rows, two)
    assert res["prompt_ok"]["a"] == pytest.approx(4 / 8) and res["prompt_ok"]["b"] == pytest.approx(4 / 8)
    four = paired_difference(rows, best_of_rows(rows, 4, "flicker"))  # keeps 101 and 202, which pass
    assert four["prompt_ok"]["b"] == pytest.approx(1.0) and four["prompt_ok"]["diff"] == pytest.approx(0.5)
    drift = paired_difference(rows, best_of_rows(rows, 4, "drift"))  # the highest flicker: 103 and 203
    assert drift["prompt_ok"]["b"] == pytest.approx(0.5)
    assert best_of_rows(rows, 4) == best_of_rows(rows, 4, "drift")  # the pipeline's default score
    with pytest.raises(ValueError, match="not groups of 3"):
        best_of_rows(rows, 3)
    with pytest.raises(ValueError, match="without the 'flicker' score"):
        best_of_rows([{k: v for k, v in r.items() if k != "flicker"} for r in rows], 2, "flicker")
    (tmp_path / "q.json").write_text(json.dumps({"dit": {"rows": rows}}))
    main(["--best-of", "4", "--rows", str(tmp_path / "q.json"), "--score", "flicker"])
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["best_of"] == 4 and "B - A +50.0" in out
    for argv, message in ((["--best-of", "1", "--rows", str(tmp_path / "q.json")], "K >= 2"),
                          (["--best-of", "2"], "goes with --rows"),
                          (["--rows", str(tmp_path / "q.json")], "--best-of K"),
                          (["--best-of", "3", "--rows", str(tmp_path / "q.json")], "not groups of 3"),
                          (["--best-of", "2", "--rows", str(tmp_path / "q.json"), "--score", "x"], "unknown score")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and "Traceback" not in err


def test_generator_quality_refuses_zero_seeds_per_prompt_before_any_work(tmp_path, capsys):
    from benchmarks.generator_quality import main

    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "x"), "--seeds-per-prompt", "0"])
    assert e.value.code == 2 and "--seeds-per-prompt must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "x"), "--loss-by-family", "0"])
    assert e.value.code == 2 and "--loss-by-family must be at least 1" in capsys.readouterr().err


def test_dit_loss_by_family_puts_each_familys_error_under_its_name():
    import contextlib

    import torch

    from benchmarks.generator_quality import dit_loss_by_family
    from world.scenes import FAMILIES

    class Stub:  # latents: a coarse copy of the frames; a denoiser exact on top-view clips, zero elsewhere
        precision = "32-true"

        def __init__(self):
            self.z, self.calls = [], 0

        def encode(self, frames):
            z = torch.from_numpy(np.ascontiguousarray(frames[::4, ::16, ::16])).float().div(127.5).sub(1)
            self.z.append(z.permute(3, 0, 1, 2)[None])
            return self.z[-1]

        def text(self, captions):  # called once per family, after its clips are encoded
            self.batch, self.z = torch.cat(self.z), []
            self.known = torch.tensor([c.startswith("seen from above") for c in captions]).view(-1, 1, 1, 1, 1)
            return torch.zeros(len(captions), 1, 4), torch.ones(len(captions), 1)

        def autocast(self):
            return contextlib.nullcontext()

        def denoiser(self, xt, t, text, mask, cond, cond_mask):
            self.calls += 1
            exact = (xt - self.batch) / t.view(-1, 1, 1, 1, 1)  # x_t = (1 - t) z + t n, so v = n - z = (x_t - z) / t
            return torch.where(self.known, exact, torch.zeros_like(xt))

    stub = Stub()
    res = dit_loss_by_family(stub, per_family=2, times=(0.3, 0.9), draws=2)
    assert list(res["loss"]) == list(FAMILIES) and stub.calls == len(FAMILIES) * 2 * 2
    assert res["loss"]["topdown"] == pytest.approx([0, 0], abs=1e-6)  # the exact family costs nothing
    for fam in FAMILIES:  # a zero velocity costs E|n - z|^2 = 1 + E z^2 at every t
        if fam != "topdown":
            assert all(v > 1 for v in res["loss"][fam]), fam
    assert res["mean"] == pytest.approx([np.mean([res["loss"][f][i] for f in FAMILIES]) for i in range(2)])
    again = dit_loss_by_family(Stub(), per_family=2, times=(0.3, 0.9), draws=2)
    assert again["loss"] == res["loss"]  # the same clips and noises: two checkpoints compare paired
    with pytest.raises(ValueError, match="every time in"):
        dit_loss_by_family(stub, per_family=2, times=(0.0,))
    with pytest.raises(ValueError, match="from offset 49995 holds fewer than 2 clips of"):  # 5 seeds left
        dit_loss_by_family(stub, per_family=2, offset=49_995)


def test_loss_by_family_beyond_the_split_is_one_line_not_a_traceback(capsys):
    from benchmarks.generator_quality import main

    with pytest.raises(SystemExit) as e:  # 5,000 clips of each family: val holds 20,000 clips past offset 30,000
        main(["--loss-by-family", "5000"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "holds fewer than 5000 clips of" in err and "Traceback" not in err


def test_vae_quality_counts_objects_a_decoder_loses_in_later_frames():
    from benchmarks.generator_quality import vae_quality

    class Identity:  # a perfect VAE: every figure at its best
        def encode(self, x):
            return x, None

        def decode(self, z):
            return z

    class LosesLateFrames(Identity):  # moving objects vanish for three late frames (the background stays)
        def decode(self, z):
            z = z.clone()
            z[:, :, 10:13] = z.median(dim=2, keepdim=True).values
            return z

    good, bad = vae_quality(Identity(), 4), vae_quality(LosesLateFrames(), 4)
    assert good["reconstruction_permanence_ok_occlusion_free"] == 1.0
    assert good["reconstruction_prompt_all_checks_pass"] == 1.0 and good["psnr_db"] > 90
    kinds = good["reconstruction_prompt_checks_pass"]
    assert kinds["objects"] == {"clips": 4, "pass": 1.0} and all(k["pass"] in (None, 1.0) for k in kinds.values())
    assert bad["reconstruction_permanence_ok_occlusion_free"] < 1.0


def _load_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_replay_measures_a_decoder_on_the_recorded_samples_and_refuses_other_options(
        tmp_path, capsys, tiny_generator_files):
    """scripts/quality_replay.py: a replay decodes the recorded latents without the DiT (the same decoder gives the
    same rows), and a replay with other sampling options, or of a file that is no recording, is refused before
    anything is measured or written."""
    import generator.pipeline as gp

    vae, dit = tiny_generator_files
    replay = _load_script("quality_replay")
    common = ["--checkpoint", str(dit), "--vae", str(vae), "--n", "2", "--steps", "2", "--precision", "32-true"]
    rec, real, calls = tmp_path / "lat.pt", gp.sample, []
    replay.run("record", str(rec), ["--out", str(tmp_path / "a"), *common])
    assert gp.sample is real  # the pipeline's sampler is put back after a run
    gp.sample = lambda *a, **k: calls.append(1) or real(*a, **k)  # the DiT's sampler, counted
    try:
        replay.run("replay", str(rec), ["--out", str(tmp_path / "b"), *common])
    finally:
        gp.sample = real
    assert calls == []  # the replay sampled nothing: the latents are the recording's
    rows = [json.loads((tmp_path / d / "quality.json").read_text())["dit"]["rows"] for d in "ab"]
    assert len(rows[0]) == 2 and rows[0] == rows[1]
    capsys.readouterr()
    for options, message in ((["--steps", "3"], "--steps"), (["--n", "3"], "--n")):
        with pytest.raises(SystemExit) as e:
            replay.run("replay", str(rec), ["--out", str(tmp_path / "c"), *common, *options])
        assert e.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / "old.pt").write_bytes(b"not a recording")
    with pytest.raises(SystemExit):
        replay.run("replay", str(tmp_path / "old.pt"), ["--out", str(tmp_path / "c"), *common])
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
