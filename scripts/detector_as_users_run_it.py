"""The detector on the generator as users run it, for the detector's model card: 64 clips (--n) of a DiT at the
pipeline's defaults (prompts and seeds of the world `test` split from offset 20,000) against the world clips of
those seeds, both through H.264 CRF 23; then the same with one random key's DAAS watermark on the clips of both
classes. Prints one JSON line per detector and condition (AUC, share of fakes flagged at P >= 0.5, reals flagged).

    python scripts/detector_as_users_run_it.py [--vae VAE] generator/weights/dit.safetensors detector/weights/detector.safetensors
"""
import argparse
import json

import numpy as np
import torch

from daas.video import h264_roundtrip
from detector.evaluate import roc_auc, score_clips
from detector.model import load_detector
from generator import load_pipeline
from provenance.watermark import WatermarkKey, embed
from world import make_clip, split_seeds


def main(dit: str, detectors: list[str], vae: str | None = None, n: int = 64) -> None:
    torch.set_num_threads(2)
    pipe = load_pipeline(dit, vae_checkpoint=vae)
    fake, real = [], []
    for s in split_seeds("test", n, offset=20_000):
        c = make_clip(s)
        fake.append(pipe(c.caption, seed=s))
        real.append(c.frames)
    key = WatermarkKey(np.random.default_rng(7).bytes(32))
    conditions = {"plain": lambda f, i: f, "marked": lambda f, i: embed(f, key, i)}
    y = np.r_[np.ones(len(fake)), np.zeros(len(real))]
    for det in detectors:
        model, _ = load_detector(det)
        for name, mark in conditions.items():
            pf, _ = score_clips(model, [h264_roundtrip(mark(f, i), 23) for i, f in enumerate(fake)])
            pr, _ = score_clips(model, [h264_roundtrip(mark(f, i), 23) for i, f in enumerate(real)])
            print(json.dumps({"dit": dit, "vae": vae, "detector": det, "precision": pipe.precision, "condition": name,
                              "auc": round(roc_auc(y, np.r_[pf, pr]), 4), "fakes_flagged": float((pf >= 0.5).mean()),
                              "reals_flagged": int((pr >= 0.5).sum()), "median_p_fake": float(np.median(pf))}),
                  flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vae", help="the VAE of the generator (default: the shipped one)")
    ap.add_argument("--n", type=int, default=64, help="clips of each class (default 64, the model card's)")
    ap.add_argument("dit")
    ap.add_argument("detectors", nargs="+")
    args = ap.parse_args()
    if args.n < 2:
        ap.error("--n must be at least 2")
    main(args.dit, args.detectors, args.vae, args.n)
