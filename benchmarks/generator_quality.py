"""Quality figures of the generator's model card, on held-out data:

- VAE: reconstruction PSNR on test-split world clips (whole frame, and the pixels of moving objects), and the
  share of reconstructions passing every prompt check (a ceiling for any DiT on this latent space) and the
  class accuracy of the objects perception reads off them, matched to the world's truth (shapes kept or lost);
- DiT: prompt adherence (every object the prompt names, with its count, and no other; the view, directions,
  motions, contacts and the causal set-ups' lasting states: benchmarks.metrics.prompt_adherence; all checks, and
  each kind apart: the objects named, objects not named, the scene, the motions and events, as issue 4 states
  its targets) and object
  permanence (no appearance or disappearance without cause, on occlusion-free prompts), measured by the
  artifact benchmark's perception on clips generated from test-split captions with fresh seeds;
- a contact sheet of 8 fixed prompts.

    python -m benchmarks.generator_quality --out generator/weights [--n 64] [--steps 12 --sampler dpm2m] [--checkpoint DIT --vae VAE]
        [--seeds-per-prompt K]
    python -m benchmarks.generator_quality --out DIR --split test --n 64 128 --offset 10000 20000 \
        --seeds-per-prompt 4 --sample-seed-base 5000000 [--checkpoint DIT]
    python -m benchmarks.generator_quality --vae-only runs/vae/checkpoints/last.ckpt --n 40
    python -m benchmarks.generator_quality --loss-by-family 16 [--checkpoint DIT]
    python -m benchmarks.generator_quality --compare A/quality.json B/quality.json [--prompts-naming square]
        [--by-family]
    python -m benchmarks.generator_quality --best-of 2 --rows A/quality.json [--score drift]

The last is the DiT's denoising error by scene family and noise level on held-out clips (1-2 minutes on 2 cores,
where the figures above take 15 or more): which families a run should weight, and whether a candidate learnt them.
The second is the protocol of the model card's tables since session 22 (192 prompts of a split, 4 noises each;
12 minutes a split on 2 cores). The compare form pairs two candidates' figures measured with the same settings
(--split, --n, --offset, --seeds-per-prompt, --sample-seed-base, sampler; a different --out each), sample by
sample: paired_difference. The best-of form replays best-of-K selection (generator.selection) on one measurement's
samples, paired with one sample a prompt: best_of_rows.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from daas.errors import DaasError
from daas.fileio import atomic_path, write_json
from generator.defaults import (DEFAULT_GUIDANCE, DEFAULT_GUIDANCE_INTERVAL, DEFAULT_GUIDANCE_REUSE,
                                DEFAULT_PRECISION, DEFAULT_RESTART, DEFAULT_RESTARTS, DEFAULT_SAMPLER,
                                DEFAULT_SELECTION_SCORE, DEFAULT_SHIFT, DEFAULT_STEPS)
from generator.pipeline import PRECISIONS

from .metrics import PROMPT_CHECKS

SHEET_PROMPTS = [
    "a red ball falls and bounces twice",
    "a blue square slides to the left",
    "a green ball rolls to the right",
    "a yellow ball rolls behind a gray wall and comes out the other side",
    "a purple ball rolls into an orange block and knocks it over",
    "a puff of wind blows out a candle",
    "a mouth takes a bite out of a cookie",
    "a red ball rolls into a switch and a lamp lights up",
]
# dit_quality's further sampling seeds of a prompt: seed + j * SEED_STRIDE, far above every split's seeds
# (world/splits.py), so no two prompts share a noise
SEED_STRIDE = 100_000_000


def load_vae_any(path: Path):
    """A VideoVAE from shipped fp16 weights (.safetensors) or a training run's Lightning checkpoint (.ckpt)."""
    from generator.weights import load_vae, vae_from_training_checkpoint

    if path.suffix == ".ckpt":
        return vae_from_training_checkpoint(path)[0].requires_grad_(False)
    return load_vae(path)[0]


def vae_quality(vae, n: int = 64) -> dict:
    """Reconstruction PSNR (whole frame and moving-object pixels), the share of reconstructions that pass
    every prompt check of the artifact benchmark and the share of occlusion-free ones with no object appearing
    or vanishing without cause: the ceilings of any DiT on this VAE's latent space (its samples go through the
    same decoder). Whole 17-frame clips: a decoder trained on shorter windows can fail only in later frames."""
    from world import make_clip, split_seeds
    from world.dataset import to_tensor

    from .metrics import measure
    from .perception import match_truth, perceive

    whole, moving, prompt_ok, perm_ok, cls_ok, n_cls, kinds = [], [], [], [], 0, 0, []
    for seed in split_seeds("test", n):
        clip = make_clip(seed)
        f = clip.frames
        x = to_tensor(f)[None]
        with torch.no_grad():
            r = vae.decode(vae.encode(x)[0])[0].clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 3, 0).numpy()
        x, y = f.astype(np.float64), r.astype(np.float64)
        whole.append(10 * np.log10(255 ** 2 / max(np.mean((x - y) ** 2), 1e-10)))
        mask = np.abs(x - np.median(x, axis=0, keepdims=True)).max(-1) > 30
        if mask.any():
            moving.append(10 * np.log10(255 ** 2 / max(np.mean(((x - y) ** 2)[mask]), 1e-10)))
        p = perceive(r, clip.fps)  # once, for the prompt checks and the truth match
        metrics = measure(p, r, clip.caption)["metrics"]
        prompt_ok.append(metrics["prompt"]["violations"] == 0)
        kinds.append(_kinds_ok(metrics["prompt"]["checks"]))
        if clip.spec.family != "occlusion":  # as in dit_quality
            perm_ok.append(metrics["permanence"]["violations"] == 0)
        m = match_truth(p, clip.truth())
        cls_ok, n_cls = cls_ok + m["cls_ok"], n_cls + m["n_cls"]
    return {"clips": n, "psnr_db": float(np.mean(whole)), "psnr_db_min": float(np.min(whole)),
            "psnr_moving_objects_db": float(np.mean(moving)) if moving else None,
            # each true object's class (ball, square, triangle, block, props) read off the reconstruction
            "object_class_accuracy": cls_ok / max(n_cls, 1),
            "reconstruction_prompt_all_checks_pass": float(np.mean(prompt_ok)),
            "reconstruction_prompt_checks_pass": {k: _kind_figures(kinds, f"{k}_ok", 1) for k in PROMPT_CHECKS},
            "reconstruction_permanence_ok_occlusion_free": float(np.mean(perm_ok)) if perm_ok else None}


def block_seeds(split: str, ns: Sequence[int], offsets: Sequence[int]) -> list[int]:
    """The clip seeds of blocks of consecutive clips of a split (ns[i] clips from offsets[i] on); ValueError where
    the counts and offsets do not pair, a block runs past the split, or two blocks overlap."""
    from world import split_seeds

    if len(ns) != len(offsets):
        raise ValueError(f"{len(ns)} clip counts for {len(offsets)} offsets: give one count per offset")
    seeds = [s for k, o in zip(ns, offsets) for s in split_seeds(split, k, offset=o)]
    if len(set(seeds)) != len(seeds):
        raise ValueError("the blocks of clips overlap: a prompt would be counted twice")
    return seeds


def dit_quality(pipe, n: int | Sequence[int] = 64, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                sampler: str = DEFAULT_SAMPLER, shift: float = DEFAULT_SHIFT,
                guidance_interval: tuple[float, float] = DEFAULT_GUIDANCE_INTERVAL,
                offset: int | Sequence[int] = 10_000, split: str = "test",
                restart: tuple[float, float] | None = DEFAULT_RESTART, restarts: int = DEFAULT_RESTARTS,
                seeds_per_prompt: int = 1, sample_seed_base: int | None = None,
                guidance_reuse: bool = DEFAULT_GUIDANCE_REUSE) -> dict:
    """Prompts and seeds of n clips of `split` from `offset` on; n and offset may be lists of equal length, one
    block of consecutive clips each (the model card's tables since session 22: 64 clips from offset 10,000 and 128
    from 20,000, of "test" and of "val"); sampler settings are chosen on "val" so that the test figures stay held out.

    With `seeds_per_prompt` k > 1 each prompt is sampled k times (the clip's seed, then seed + j * SEED_STRIDE):
    the figures pool all n * k samples, with a standard error over prompts beside them, and `any_seed_*` says
    how many prompts pass with at least one of their k seeds. One sample per prompt leaves a standard error of
    about 3.5 points on 192 clips, as large as most differences between two checkpoints or samplers (session 22:
    192 `val` prompts, 4 seeds each, all checks 50.5% to 58.3% by seed).
    With `sample_seed_base` b the k samples of the prompt of clip seed s have the seeds b + k * s + j, j < k, and
    are drawn as one batch: the noises of the model card's paired tables (b = 5,000,000, k = 4)."""
    from generator.selection import clip_scores
    from world import make_clip

    from .metrics import measure_clip

    if seeds_per_prompt < 1:
        raise ValueError(f"seeds_per_prompt must be at least 1, not {seeds_per_prompt}")
    ns, offsets = ([n] if isinstance(n, int) else list(n)), ([offset] if isinstance(offset, int) else list(offset))
    seeds = block_seeds(split, ns, offsets)
    kw = dict(num_inference_steps=steps, guidance_scale=guidance, sampler=sampler, shift=shift,
              guidance_interval=guidance_interval, restart=restart, restarts=restarts, guidance_reuse=guidance_reuse)
    rows = []
    for seed in seeds:
        clip = make_clip(seed)
        prompt = clip.caption
        if sample_seed_base is None:
            samples = [(seed + j * SEED_STRIDE,
                        pipe(prompt, seed=seed + j * SEED_STRIDE, **kw)) for j in range(seeds_per_prompt)]
        else:  # one batch; the pipeline gives its i-th clip the seed seed + i (the same clip as alone)
            first = sample_seed_base + seeds_per_prompt * seed
            batch = pipe([prompt] * seeds_per_prompt, seed=first, **kw)
            samples = [(first + j, batch[j]) for j in range(seeds_per_prompt)]
        for sample_seed, frames in samples:
            res = measure_clip(frames, pipe.fps, prompt)
            m = res["metrics"]
            kinds = _kinds_ok(m["prompt"]["checks"])
            rows.append({"family": clip.spec.family, "prompt": prompt, "seed": seed, "sample_seed": sample_seed,
                         "adherence": m["prompt"]["value"], "prompt_ok": m["prompt"]["violations"] == 0, **kinds,
                         "permanence_ok": m["permanence"]["violations"] == 0,
                         # best-of-N's prompt-blind scores of this sample (generator.selection), for best_of_rows
                         **clip_scores(frames),
                         "prompt_misses": [v["what"] for v in res["violations"] if v["metric"] == "prompt"]})
    fams = sorted({r["family"] for r in rows})
    no_occ = [r for r in rows if r["family"] != "occlusion"]
    spread = {}
    if seeds_per_prompt > 1:
        spread = {"prompt_all_checks_pass_se": _se_over_prompts(rows, "prompt_ok"),
                  "permanence_ok_occlusion_free_se": _se_over_prompts(no_occ, "permanence_ok") if no_occ else None,
                  "any_seed_prompt_all_checks_pass": _any_seed(rows, "prompt_ok"),
                  "any_seed_permanence_ok_occlusion_free": _any_seed(no_occ, "permanence_ok") if no_occ else None}
    return {
        "clips": len(seeds), "seeds_per_prompt": seeds_per_prompt, "sample_seed_base": sample_seed_base,
        "split": split, "offset": offset if isinstance(offset, int) else offsets,
        "blocks": [[k, o] for k, o in zip(ns, offsets)], "steps": steps,
        "guidance": guidance,
        "guidance_interval": list(guidance_interval), "sampler": sampler, "shift": shift,
        "restart": None if restart is None else list(restart), "restarts": restarts,
        "guidance_reuse": guidance_reuse, "precision": pipe.precision,
        "prompt_all_checks_pass": float(np.mean([r["prompt_ok"] for r in rows])),
        "prompt_mean_adherence": float(np.mean([r["adherence"] for r in rows if r["adherence"] is not None] or [0])),
        "permanence_ok_occlusion_free": float(np.mean([r["permanence_ok"] for r in no_occ])) if no_occ else None,
        # issue 4's targets by kind of check: the objects named (colour, shape, count: >= 80%), no object
        # unnamed, the motions and events named, the scene; each over the clips whose prompt has such checks
        "prompt_checks_pass": {k: _kind_figures(rows, f"{k}_ok", seeds_per_prompt) for k in PROMPT_CHECKS},
        **spread,
        "per_family_prompt_ok": {f: float(np.mean([r["prompt_ok"] for r in rows if r["family"] == f])) for f in fams},
        "rows": rows,
    }


LOSS_TIMES = (0.1, 0.3, 0.5, 0.7, 0.85, 0.95)


def dit_loss_by_family(pipe, per_family: int = 16, times: tuple[float, ...] = LOSS_TIMES, split: str = "val",
                       offset: int = 30_000, draws: int = 2, seed: int = 0) -> dict:
    """The DiT's flow loss (mean squared velocity error, conditioned on each clip's caption, no guidance) on
    `per_family` clips of every scene family of `split` from `offset` on (beyond the seeds dit_quality reads), at
    each noise level t in `times`, averaged over `draws` noises. The noises come from `seed` alone, so two
    checkpoints are compared on the same clips and noises. A family whose loss stays high at every t is one the
    DiT has not learnt, whatever the sampler does (session 24: `fall` and `topdown`, 1.8-5.4x `roll`'s loss)."""
    from world import make_clip, split_seeds, split_size
    from world.scenes import FAMILIES, sample_spec

    if per_family < 1 or draws < 1 or not times or not all(0 < t <= 1 for t in times):
        raise ValueError("per_family and draws must be >= 1 and every time in (0, 1]")
    chosen: dict[str, list[int]] = {f: [] for f in FAMILIES}
    # families are drawn with about equal odds: 100x the clips needed is never exhausted by chance
    scan = max(0, min(100 * per_family * len(FAMILIES), split_size(split) - offset))
    for s in split_seeds(split, scan, offset=offset):
        fam = sample_spec(s).family
        if len(chosen[fam]) < per_family:
            chosen[fam].append(s)
        if all(len(v) == per_family for v in chosen.values()):
            break
    short = [f for f, v in chosen.items() if len(v) < per_family]
    if short:
        raise ValueError(f"split {split!r} from offset {offset} holds fewer than {per_family} clips of "
                         f"{', '.join(short)}")
    g = torch.Generator().manual_seed(seed)
    losses = {}
    for fam, seeds in chosen.items():
        clips = [make_clip(s) for s in seeds]
        with torch.no_grad():
            z = torch.cat([pipe.encode(np.asarray(c.frames)) for c in clips])
            text, mask = pipe.text([c.caption for c in clips])
            row = []
            for t in times:
                err = 0.0
                for _ in range(draws):
                    noise = torch.randn(z.shape, generator=g)
                    with pipe.autocast():
                        v = pipe.denoiser((1 - t) * z + t * noise, torch.full((len(clips),), float(t)), text, mask,
                                          None, None)
                    err += (v.float() - (noise - z)).pow(2).mean().item() / draws
                row.append(err)
        losses[fam] = row
    return {"split": split, "offset": offset, "per_family": per_family, "draws": draws, "times": list(times),
            "precision": pipe.precision, "loss": losses,
            "mean": [float(np.mean([losses[f][i] for f in losses])) for i in range(len(times))]}


def _kinds_ok(checks: dict) -> dict:
    """{"objects_ok": ..., ...} of a clip's prompt checks by kind: passed, or None where it has none of that kind."""
    return {f"{k}_ok": None if c["made"] == 0 else c["failed"] == 0 for k, c in checks.items()}


def _kind_figures(rows: list[dict], key: str, seeds_per_prompt: int) -> dict:
    """Share of the clips that pass one kind of prompt check, over the clips that have such checks."""
    have = [r for r in rows if r[key] is not None]
    out = {"clips": len(have), "pass": float(np.mean([r[key] for r in have])) if have else None}
    if seeds_per_prompt > 1:
        out["se"] = _se_over_prompts(have, key) if have else None
    return out


def _by_prompt(rows: list[dict], key: str) -> list[list[bool]]:
    out: dict[int, list[bool]] = {}
    for r in rows:
        out.setdefault(r["seed"], []).append(r[key])
    return list(out.values())


def _se_over_prompts(rows: list[dict], key: str) -> float:
    """The standard error of the pooled share when prompts are the sampled unit (a prompt's seeds are not
    independent draws: some prompts pass with every seed, some with none)."""
    means = [np.mean(v) for v in _by_prompt(rows, key)]
    return float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else 0.0


def _any_seed(rows: list[dict], key: str) -> float:
    """The share of prompts that pass with at least one of their seeds: what the model can do, against how
    reliably it does it (the pooled share)."""
    return float(np.mean([any(v) for v in _by_prompt(rows, key)]))


PAIRED_FIGURES = (("prompt_ok", True), ("adherence", True), ("objects_ok", True), ("extras_ok", True),
                  ("motion_ok", True), ("permanence_ok", False))  # (row key, occlusion too)
# figures that older rows lack or count otherwise, each with the key that rows of its meaning carry: compared
# only where every row of both has that key. The kinds of prompt check came in session 29; until session 30
# "objects" counted unnamed objects too, so an objects_ok of a row without extras_ok means something else.
# A row without one of the other figures is an error.
LATER_FIGURES = {"objects_ok": "extras_ok", "extras_ok": "extras_ok", "motion_ok": "motion_ok"}
BY_FAMILY_FIGURES = ("prompt_ok", "objects_ok", "permanence_ok")  # --by-family's table (its JSON has them all)


def prompts_naming(rows: list[dict], word: str) -> list[dict]:
    """The rows whose prompt names `word` (a whole word, or its plural; any case): e.g. "square", to see a
    change on the prompts it concerns apart from the others."""
    from world.captions import names_word

    pat = names_word(word)
    return [r for r in rows if pat.search(str(r.get("prompt", "")))]


def paired_difference(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Two checkpoints measured on the same prompts and sampling seeds (the `rows` of two dit_quality results made
    with the same n, split, offset, seeds per prompt and sampler), compared as the model card compares candidates:
    per figure the mean of A and of B and the mean paired difference B - A with its standard error, prompts being
    the sampled unit (each prompt's difference of its per-seed means). Pairing removes the prompt-to-prompt and
    noise-to-noise spread that two independent measurements carry, so differences of 1-2 points become visible.
    Permanence counts occlusion-free prompts only, as dit_quality does."""
    def keyed(rows: list[dict]) -> dict:
        # a sample is named by its prompt's seed and its own seed (or its place in a batch of the prompt)
        return {(r["seed"], r["sample_seed"] if "sample_seed" in r else r["cand"]): r for r in rows}

    a, b = keyed(rows_a), keyed(rows_b)
    if len(a) != len(rows_a) or len(b) != len(rows_b):
        raise ValueError("a measurement names one sample twice (the same prompt seed and sampling seed)")
    if not a or set(a) != set(b):
        raise ValueError("the two measurements are not of the same prompts and sampling seeds "
                         f"({len(a)} and {len(b)} samples, {len(set(a) & set(b))} shared)")
    out: dict = {"samples": len(a), "prompts": len({k[0] for k in a})}
    for name, with_occlusion in PAIRED_FIGURES:
        if name in LATER_FIGURES and not all(LATER_FIGURES[name] in r for r in (*rows_a, *rows_b)):
            out[name] = None
            continue
        per_prompt: dict[int, list[tuple[float, float]]] = {}
        for k, ra in a.items():
            rb = b[k]
            if ra[name] is None or rb[name] is None or (not with_occlusion and ra["family"] == "occlusion"):
                continue
            per_prompt.setdefault(k[0], []).append((float(ra[name]), float(rb[name])))
        if not per_prompt:
            out[name] = None
            continue
        ma = np.array([np.mean([x for x, _ in v]) for v in per_prompt.values()])
        mb = np.array([np.mean([y for _, y in v]) for v in per_prompt.values()])
        d = mb - ma
        out[name] = {"prompts": len(d), "a": float(ma.mean()), "b": float(mb.mean()), "diff": float(d.mean()),
                     "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0}
    return out


def paired_by_family(rows_a: list[dict], rows_b: list[dict]) -> dict[str, dict]:
    """paired_difference within each scene family: where a change gains and where it loses (session 44: guidance
    scale 3 gained named objects on the whole, and of the permanence it cost `fall` lost the most)."""
    families = sorted({r["family"] for r in (*rows_a, *rows_b)})
    return {f: paired_difference([r for r in rows_a if r["family"] == f], [r for r in rows_b if r["family"] == f])
            for f in families}


def best_of_rows(rows: list[dict], k: int, score: str = DEFAULT_SELECTION_SCORE) -> list[dict]:
    """Best-of-k selection replayed on measured samples: each prompt's samples, in the order of their seeds, are
    taken k at a time, and every sample of such a group is given the figures of the group's sample with the lowest
    `score` (generator.selection, recorded in the rows since session 37). Paired with the rows themselves
    (paired_difference(rows, best_of_rows(rows, k))), it gives what choosing among k noises changes against one
    noise, on the same samples: the 4-seed protocol's rows give best-of-2 (two groups a prompt) and best-of-4."""
    from generator.selection import check_score

    check_score(score)
    by_prompt: dict[int, list[dict]] = {}
    for r in rows:
        by_prompt.setdefault(r["seed"], []).append(r)
    out = []
    for seed, group in by_prompt.items():
        if k < 1 or len(group) % k:
            raise ValueError(f"prompt seed {seed} has {len(group)} samples, not groups of {k}")
        if any(score not in r for r in group):
            raise ValueError(f"rows without the {score!r} score (measured before session 37?)")
        group = sorted(group, key=lambda r: r.get("sample_seed", r.get("cand", 0)))
        for i in range(0, len(group), k):
            chunk = group[i:i + k]
            best = min(chunk, key=lambda r: r[score])
            out += [{**best, "seed": r["seed"], **{key: r[key] for key in ("sample_seed", "cand") if key in r}}
                    for r in chunk]
    return out


def _read_rows(path: Path) -> list[dict]:
    """The rows of a quality.json (its `dit.rows`) or of a JSON list of rows."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ValueError(f"{path} is not JSON") from None
    rows = (data.get("dit") or {}).get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "seed" in r for r in rows):
        raise ValueError("no rows of per-sample figures")
    return rows


def contact_sheet(pipe, path: Path, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE, seed: int = 0,
                  sampler: str = DEFAULT_SAMPLER, shift: float = DEFAULT_SHIFT,
                  guidance_interval: tuple[float, float] = DEFAULT_GUIDANCE_INTERVAL,
                  restart: tuple[float, float] | None = DEFAULT_RESTART, restarts: int = DEFAULT_RESTARTS,
                  guidance_reuse: bool = DEFAULT_GUIDANCE_REUSE) -> Path:
    from PIL import Image, ImageDraw

    rows = []
    for i, prompt in enumerate(SHEET_PROMPTS):
        f = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, seed=seed + i, sampler=sampler,
                 shift=shift, guidance_interval=guidance_interval, restart=restart, restarts=restarts,
                 guidance_reuse=guidance_reuse)
        strip = np.concatenate(list(f[::2]), axis=1)
        label = Image.new("RGB", (strip.shape[1], 12), (255, 255, 255))
        ImageDraw.Draw(label).text((2, 0), prompt, fill=(0, 0, 0))
        rows += [np.asarray(label), strip]
    img = Image.fromarray(np.concatenate(rows, axis=0))
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    with atomic_path(path, overwrite=True) as tmp:
        img.save(tmp)
    return path


def _print_paired(res: dict) -> None:
    print(json.dumps(res), flush=True)
    for name, _ in PAIRED_FIGURES:
        f = res[name]
        if f:
            print(f"{name:14s} prompts {f['prompts']:4d}  A {f['a'] * 100:5.1f}  B {f['b'] * 100:5.1f}  "
                  f"B - A {f['diff'] * 100:+5.1f} (paired SE {f['se'] * 100:.1f})")
    for family, fig in res.get("by_family", {}).items():  # A -> B (B - A): all checks and issue 4's two targets
        cells = [f"{n} " + (f"{fig[n]['a'] * 100:5.1f} -> {fig[n]['b'] * 100:5.1f} ({fig[n]['diff'] * 100:+5.1f})"
                            if fig[n] else f"{'-':>22s}") for n in BY_FAMILY_FIGURES]
        print(f"{family:11s} prompts {fig['prompts']:3d}  " + "  ".join(cells))


def build_parser() -> argparse.ArgumentParser:
    """The command line of main (scripts/quality_replay.py reads a measurement's options with it)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("generator/weights"))
    ap.add_argument("--n", type=int, nargs="+", default=[64], metavar="N",
                    help="how many clips (one count per --offset: blocks of consecutive clips of the split)")
    ap.add_argument("--offset", type=int, nargs="+", default=[10_000], metavar="OFFSET",
                    help="where each block of clips starts in the split (default 10000)")
    ap.add_argument("--split", default="test", choices=("val", "test"),
                    help="the prompts' split: choose settings on val, report on test")
    ap.add_argument("--seeds-per-prompt", type=int, default=1, metavar="K",
                    help="sample each prompt K times and pool the figures (with standard errors over prompts)")
    ap.add_argument("--sample-seed-base", type=int, metavar="B",
                    help="the K samples of clip seed s get seeds B + K*s + j, drawn as one batch "
                         "(the model card's paired tables: B = 5000000, K = 4)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--sampler", default=DEFAULT_SAMPLER)
    ap.add_argument("--shift", type=float, default=DEFAULT_SHIFT, help="timestep shift of the sampler")
    ap.add_argument("--guidance-interval", type=float, nargs=2, default=DEFAULT_GUIDANCE_INTERVAL, metavar=("LO", "HI"),
                    help="guide only at times t in (LO, HI]")
    ap.add_argument("--restart", type=float, nargs=2, default=DEFAULT_RESTART, metavar=("LO", "HI"),
                    help="restart sampling: back from t = LO to t = HI with fresh noise")
    ap.add_argument("--restarts", type=int, default=DEFAULT_RESTARTS, help="how many restarts (0: none)")
    ap.add_argument("--guidance-reuse", action=argparse.BooleanOptionalAction, default=DEFAULT_GUIDANCE_REUSE,
                    help="reuse the guidance direction at Heun's repeated times (generator.flow.sample)")
    ap.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS, help="the DiT's precision")
    ap.add_argument("--checkpoint", type=Path, help="DiT weights (default: the shipped ones)")
    ap.add_argument("--vae", type=Path, help="VAE weights for the pipeline (default: the shipped ones)")
    ap.add_argument("--vae-only", type=Path, metavar="VAE",
                    help="only the VAE figures of this .safetensors or training .ckpt (printed, nothing written)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"),
                    help="paired figures of two quality.json files (or row lists) of the same prompts and seeds")
    ap.add_argument("--best-of", type=int, metavar="K",
                    help="best-of-K selection replayed on the samples of --rows (a quality.json measured with a "
                         "multiple of K seeds per prompt), paired with one sample each (best_of_rows)")
    ap.add_argument("--rows", type=Path, metavar="QUALITY_JSON", help="with --best-of: the measured samples")
    ap.add_argument("--score", default=DEFAULT_SELECTION_SCORE,
                    help="with --best-of: the selection score (drift or flicker)")
    ap.add_argument("--prompts-naming", metavar="WORD",
                    help="with --compare: only the prompts that name WORD (e.g. square)")
    ap.add_argument("--by-family", action="store_true",
                    help="with --compare: the paired figures of each scene family too (paired_by_family)")
    ap.add_argument("--loss-by-family", type=int, metavar="N",
                    help="only the DiT's flow loss by scene family and noise level, on N val clips per family "
                         "(printed, nothing written)")
    return ap


def main(argv=None) -> None:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.seeds_per_prompt < 1:
        ap.error("--seeds-per-prompt must be at least 1")
    if min(args.n) < 1 or min(args.offset) < 0 or (args.sample_seed_base or 0) < 0:
        ap.error("--n must be at least 1, --offset and --sample-seed-base at least 0")
    try:  # the --n/--offset blocks exist and do not overlap, before minutes of measuring
        seeds = block_seeds(args.split, args.n, args.offset)
    except ValueError as e:
        ap.error(str(e))
    if args.loss_by_family is not None and args.loss_by_family < 1:
        ap.error("--loss-by-family must be at least 1")
    if args.rows is not None and args.best_of is None:
        ap.error("--rows goes with --best-of K")
    if args.prompts_naming is not None and not (args.compare and args.prompts_naming.strip()):
        ap.error("--prompts-naming takes a word, and goes with --compare")
    if args.by_family and not args.compare:
        ap.error("--by-family goes with --compare")
    if args.compare:
        try:
            rows = [_read_rows(p) for p in args.compare]
            if args.prompts_naming:
                rows = [prompts_naming(r, args.prompts_naming) for r in rows]
                if not rows[0]:
                    raise ValueError(f"no prompt of {args.compare[0]} names '{args.prompts_naming}'")
            res = paired_difference(*rows)
            if args.by_family:
                res["by_family"] = paired_by_family(*rows)
        except KeyError as e:  # a row without a figure the comparison reads
            ap.error(f"cannot compare {args.compare[0]} with {args.compare[1]}: a row has no {e}")
        except (OSError, ValueError, TypeError) as e:  # missing, not JSON, not rows, not paired
            ap.error(f"cannot compare {args.compare[0]} with {args.compare[1]}: {e}")
        _print_paired(res)
        return
    if args.best_of is not None:
        if args.best_of < 2 or args.rows is None:
            ap.error("--best-of takes K >= 2 and goes with --rows QUALITY_JSON")
        try:
            rows = _read_rows(args.rows)
            res = paired_difference(rows, best_of_rows(rows, args.best_of, args.score))
        except KeyError as e:
            ap.error(f"cannot replay best-of-{args.best_of} on {args.rows}: a row has no {e}")
        except (OSError, ValueError, TypeError) as e:
            ap.error(f"cannot replay best-of-{args.best_of} on {args.rows}: {e}")
        _print_paired({"best_of": args.best_of, "score": args.score, **res})  # A: one sample, B: best of K
        return
    for p in (args.vae_only, args.checkpoint, args.vae):
        if p is not None and not p.is_file():
            ap.error(f"{p} not found")
    if not (args.vae_only or args.loss_by_family):  # made now, not found missing after minutes of measuring
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            ap.error(f"cannot create {args.out}: {e.strerror}")
    torch.manual_seed(0)
    if args.vae_only:
        print(json.dumps(vae_quality(load_vae_any(args.vae_only), len(seeds))), flush=True)
        return
    from generator import load_pipeline

    pipe = load_pipeline(args.checkpoint, vae_checkpoint=args.vae, precision=args.precision)
    try:  # the settings, before minutes of measuring
        pipe.check(["a prompt"], 17, 64, 64, args.steps, args.guidance, args.shift, args.sampler,
                   args.guidance_interval, tuple(args.restart), args.restarts, guidance_reuse=args.guidance_reuse)
    except DaasError as e:
        ap.error(str(e))
    if args.loss_by_family:
        try:
            res = dit_loss_by_family(pipe, args.loss_by_family)
        except ValueError as e:
            ap.error(str(e))
        print(json.dumps(res), flush=True)
        print("family      " + "".join(f"  t={t:<5}" for t in res["times"]))
        for fam, row in [*res["loss"].items(), ("mean", res["mean"])]:
            print(f"{fam:12s}" + "".join(f"  {v:7.3f}" for v in row))
        return
    t0 = time.time()
    res = {"checkpoint": pipe.checkpoint, "vae": vae_quality(pipe.vae, len(seeds))}
    print(json.dumps(res["vae"]), flush=True)
    blocks = (args.n[0], args.offset[0]) if len(args.n) == 1 else (args.n, args.offset)
    res["dit"] = dit_quality(pipe, blocks[0], args.steps, args.guidance, args.sampler, args.shift,
                             tuple(args.guidance_interval), offset=blocks[1], split=args.split,
                             restart=tuple(args.restart), restarts=args.restarts,
                             seeds_per_prompt=args.seeds_per_prompt, sample_seed_base=args.sample_seed_base,
                             guidance_reuse=args.guidance_reuse)
    print(json.dumps({k: v for k, v in res["dit"].items() if k != "rows"}), flush=True)
    contact_sheet(pipe, args.out / "samples.png", args.steps, args.guidance, sampler=args.sampler, shift=args.shift,
                  guidance_interval=tuple(args.guidance_interval), restart=tuple(args.restart), restarts=args.restarts,
                  guidance_reuse=args.guidance_reuse)
    res["seconds"] = round(time.time() - t0, 1)
    write_json(args.out / "quality.json", res, overwrite=True)


if __name__ == "__main__":
    main()
