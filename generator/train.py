"""Training entry point: python -m generator.train vae|dit --config configs/<name>.yaml [--max-steps N]
[--set section.key=value ...].

Resumes from runs/<name>/checkpoints/last.ckpt when it exists; `--export` writes the shipped fp16 weights.
"""
from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    from .config import DiTTrainConfig, VAETrainConfig, load_config

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("stage", choices=["vae", "dit"])
    ap.add_argument("--config", required=True)
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--threads", type=int, help="torch threads (1 keeps two runs on two cores from thrashing)")
    ap.add_argument("--export", action="store_true", help="export the run's last checkpoint to generator/weights")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config value (YAML syntax), e.g. --set train.lr_schedule=cosine; repeatable")
    args = ap.parse_args(argv)
    overrides = args.set + [f"train.{k}={v}" for k, v in (("max_steps", args.max_steps), ("threads", args.threads)) if v]
    cfg = load_config(args.config, VAETrainConfig if args.stage == "vae" else DiTTrainConfig, overrides)
    from pathlib import Path

    from . import training, weights

    last = Path(cfg.train.run_dir) / "checkpoints" / "last.ckpt"
    if args.export:
        out = (weights.export_vae if args.stage == "vae" else weights.export_dit)(last)
        print(f"exported {last} -> {out}")
        return
    (training.train_vae if args.stage == "vae" else training.train_dit)(cfg)


if __name__ == "__main__":
    main()
