"""A learned chip extractor for the watermark detector: block-DCT features of the canonical mean luma -> the
estimated payload chips, in place of the bilateral residual's weighted band coefficients.

Why it keeps the detector's false-positive bounds: its input is the suspect video's content alone, and it knows no
key (it was trained on marks of random keys), so under "not marked with this key" the keyed chip signs stay fair
coins independent of its output, which is all that `watermark.presence_log_p`, the payload test and the
known-payload test assume.

What it sees: the 64 DCT coefficients of each 8x8 block of the canonical mean luma and of its bilateral residual
(`watermark.residual`), on the 8 x 8 grid of blocks; three 3x3 convolutions (so each estimate looks at the
neighbouring blocks too) and a 1x1 convolution give the 5 band coefficients of each block, in `PAY_BASIS` order.
Trained with MSE against the true chip signs (+-1; 0 for unmarked clips), so its output is the posterior mean of
each chip: confident blocks count more, as the bilateral path's 1 / (AC energy + 1) weights tried to arrange by hand.

Training (the world's `train` split only; the benchmarks use `test` and `detector` seeds), measured numbers in
provenance/weights/EXTRACTOR_CARD.md:

    python -m provenance.extractor --clips 6400 --steps 9000 --out provenance/weights/chip_extractor.npz

Inference is numpy (no torch import when verifying): ~8 ms a video (one 64x64 canonical image).
"""
from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np

from . import watermark as wm

WEIGHTS = Path(__file__).parent / "weights" / "chip_extractor.npz"
WIDTH = 64
LAYERS = 3  # 3x3 convolutions
PER_CLIP = 3  # training examples made from each world clip (keys, payloads and attacks drawn anew)


def block_dct(M: np.ndarray) -> np.ndarray:
    """[..., 64, 64] -> [..., 64 coefficients (u * 8 + v), 8, 8 blocks]."""
    lead = M.shape[:-2]
    X = M.reshape(*lead, 8, 8, 8, 8).swapaxes(-3, -2)  # [..., by, bx, y, x]
    C = wm.D8 @ X @ wm.D8.T
    return np.moveaxis(C.reshape(*lead, 8, 8, 64), -1, -3)


def features(M: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
    """Canonical mean luma [..., 64, 64] (and its bilateral residual, computed when not given) -> [..., 128, 8, 8]:
    the block DCT of both."""
    M = np.asarray(M, np.float64)
    if R is None:
        R = np.stack([wm.residual(m) for m in M.reshape(-1, wm.N, wm.N)]).reshape(M.shape)
    return np.concatenate([block_dct(M - 128) / 64, block_dct(R) / 8], axis=-3).astype(np.float32)


@functools.lru_cache(maxsize=1)
def load_weights(path: Path = WEIGHTS) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k].astype(np.float32) for k in z.files}


def _conv3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 convolution with zero padding on an [Ci, 8, 8] grid."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)], 1)  # [Ci, 9, 8, 8]
    return np.einsum("oik,ikyx->oyx", w.reshape(w.shape[0], w.shape[1], 9), cols, optimize=True) + b[:, None, None]


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def learned_chips(M: np.ndarray, R: np.ndarray | None = None, params: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Canonical mean luma [64, 64] (R: its `watermark.residual`, if at hand) -> the 320 estimated chip values
    (PAY_BASIS order)."""
    P = load_weights() if params is None else params
    x = features(M, R)
    for i in range(LAYERS):
        x = _gelu(_conv3(x, P[f"{2 * i}_weight"], P[f"{2 * i}_bias"]))
    head = str(2 * LAYERS)  # nn.Sequential's index of the 1x1 convolution
    y = np.einsum("oi,iyx->oyx", P[f"{head}_weight"][:, :, 0, 0], x) + P[f"{head}_bias"][:, None, None]
    return y.transpose(1, 2, 0).reshape(-1).astype(np.float64)


# training -------------------------------------------------------------------------------------------------------

def network():
    """The extractor as a torch module (training, and the test that checks the numpy inference against it)."""
    from torch import nn

    layers, ci = [], 128
    for _ in range(LAYERS):
        layers += [nn.Conv2d(ci, WIDTH, 3, padding=1), nn.GELU()]
        ci = WIDTH
    return nn.Sequential(*layers, nn.Conv2d(WIDTH, 5, 1))


def _attack(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random attack of the kind the detector must survive (the codec, resizing, levels, noise)."""
    from .attacks import codec, levels, resize

    r = rng.random()
    if r < 0.4:
        f = codec(f, int(rng.integers(32, 39)))
    elif r < 0.75:
        f = codec(resize(f, 0.5), int(rng.integers(25, 33)))
    elif r < 0.85:
        f = codec(resize(f, 2), 28)
    else:
        f = codec(f, int(rng.integers(18, 32)))
    if rng.random() < 0.2:
        f = levels(f, rng.uniform(0.8, 1.25), rng.uniform(-20, 20))
    if rng.random() < 0.25:  # pixel noise, grey or per channel: trained without it, the extractor fell below the
        sigma = rng.uniform(5, 55)  # bilateral path under it (sigma 50: known-sign z 2.3-5.6 against 5.8-8.1)
        shape = f.shape[:3] + ((1,) if rng.random() < 0.5 else (3,))
        f = np.clip(f + rng.normal(0, sigma, shape), 0, 255).astype(np.uint8)
    return f


def make_examples(seeds: list[int], rng_seed: int, per_clip: int = PER_CLIP):
    """(M [n, 64, 64], target chips [n, 320]): each world clip marked with random keys and payloads (10% left
    unmarked, target 0), delivered as CRF 18, then attacked."""
    from .attacks import codec
    from world import make_clip

    rng = np.random.default_rng(rng_seed)
    Ms, Ts = [], []
    for seed in seeds:
        clip = make_clip(seed).frames
        for _ in range(per_clip):
            key, payload = wm.WatermarkKey(rng.bytes(32)), int(rng.integers(0, 2 ** wm.PAYLOAD_BITS))
            marked = rng.random() > 0.1
            f = _attack(codec(wm.embed(clip, key, payload) if marked else clip, 18), rng)
            Ms.append(wm.canon_mean(f).astype(np.float32))
            Ts.append((key.chip_signs(payload) * marked).astype(np.float32))
    return np.stack(Ms), np.stack(Ts)


def _examples_job(args):
    return make_examples(*args)


def train(clips: int, steps: int, out: Path, workers: int = 2, seed: int = 0) -> dict:
    import multiprocessing as mp

    import torch

    from world import split_seeds

    t0 = time.time()
    seeds = list(split_seeds("train", clips))
    chunks = [(seeds[i::workers], seed * 1000 + i) for i in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_examples_job, chunks)
    groups = np.concatenate([np.repeat(np.array(c[0]), PER_CLIP) for c in chunks])  # the clip of each example
    M = np.concatenate([p[0] for p in parts])
    Y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    X = torch.from_numpy(features(M))
    data_s = time.time() - t0
    val = np.isin(groups, np.array(seeds)[np.random.default_rng(seed).permutation(len(seeds))[: len(seeds) // 10]])
    val = torch.from_numpy(val)  # a tenth of the clips, all their examples

    torch.manual_seed(seed)
    net = network()

    def chips(x):
        return net(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    Xt, Yt, Xv, Yv = X[~val], Y[~val], X[val], Y[val]
    g = torch.Generator().manual_seed(seed)
    log = []
    for s in range(steps):
        idx = torch.randint(0, len(Xt), (128,), generator=g)
        loss = ((chips(Xt[idx]) - Yt[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if s % 1000 == 0 or s == steps - 1:
            with torch.no_grad():
                v = ((chips(Xv) - Yv) ** 2).mean().item()
            log.append({"step": s, "train_mse": round(loss.item(), 4), "val_mse": round(v, 4)})
            print(log[-1], flush=True)
    # held-out known-sign z (the evidence a chip vector gives for its true signs), learned against bilateral
    with torch.no_grad():
        pv = chips(Xv).double().numpy()
    Mv, Tv = M[val.numpy()], Y[val].numpy()
    marked = np.abs(Tv).sum(1) > 0
    z_l = (pv * Tv).sum(1)[marked] / np.linalg.norm(pv[marked], axis=1)
    cb = np.stack([wm._chips(wm.residual(m.astype(np.float64))) for m in Mv[marked]])
    z_b = (cb * Tv[marked]).sum(1) / np.linalg.norm(cb, axis=1)
    state = {k.replace(".", "_"): v.detach().numpy().astype(np.float16) for k, v in net.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **state)
    tmp.replace(out)
    summary = {"clips": clips, "examples": len(X), "val_examples": int(val.sum()), "steps": steps,
               "data_seconds": round(data_s), "seconds": round(time.time() - t0), "log": log,
               "val_known_sign_z_learned": {"median": float(np.median(z_l)), "p5": float(np.quantile(z_l, 0.05))},
               "val_known_sign_z_bilateral": {"median": float(np.median(z_b)), "p5": float(np.quantile(z_b, 0.05))}}
    print(summary, flush=True)
    return summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6400, help=f"world train-split clips ({PER_CLIP} examples each)")
    ap.add_argument("--steps", type=int, default=9000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    if args.clips < 10 or args.steps < 1 or args.workers < 1:
        ap.error("--clips must be >= 10 (a tenth is held out), --steps and --workers >= 1")
    train(args.clips, args.steps, args.out, args.workers)


if __name__ == "__main__":
    main()
