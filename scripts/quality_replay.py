"""benchmarks.generator_quality with the DiT's sampled latents recorded once and replayed: a decoder (VAE) measured
on the very samples another was, without the DiT's minutes (4 minutes a 4-seed set instead of 20 on 2 cores). The
DiT is deterministic per seed and a decoder does not touch its latents, so a replay's differences are the decoder's
alone. The recording keeps its measuring options, and a replay must give the same ones (all but --out and --vae);
any other is refused before anything is measured:

    python scripts/quality_replay.py record runs/lat_val.pt --out runs/q_val_ship --split val --n 64 128 \\
        --offset 10000 20000 --seeds-per-prompt 4 --sample-seed-base 5000000
    python scripts/quality_replay.py replay runs/lat_val.pt --out runs/q_val_new --vae NEW_VAE ... (the same options)
    python -m benchmarks.generator_quality --compare runs/q_val_ship/quality.json runs/q_val_new/quality.json
"""
import json
import sys

import torch

import generator.pipeline as gp
from benchmarks.generator_quality import build_parser, main
from generator.weights import torch_save_atomic

USAGE = "usage: quality_replay.py record|replay LATENTS [generator_quality options]"
FREE = ("out", "vae")  # the options a replay may change: where it writes, and the decoder it measures
NO_SAMPLES = ("compare", "best_of", "rows", "vae_only", "loss_by_family")  # the modes that sample nothing to record


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def sampling_options(options: list[str]) -> dict:
    """The generator_quality options that decide the DiT's samples, as plain values (argparse's own errors exit 2)."""
    args = vars(build_parser().parse_args(options))
    if any(args[k] not in (None, False) for k in NO_SAMPLES):
        fail("record and replay a measurement, not --" + " / --".join(k.replace("_", "-") for k in NO_SAMPLES))
    return json.loads(json.dumps({k: v for k, v in args.items() if k not in FREE}, default=str))


def read_recording(path: str) -> tuple[dict, list[torch.Tensor]]:
    try:
        rec = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - missing, truncated or not a torch file
        fail(f"cannot read the recorded samples {path} ({type(e).__name__})")
    if not (isinstance(rec, dict) and isinstance(rec.get("options"), dict) and isinstance(rec.get("latents"), list)):
        fail(f"{path} is not a recording of quality_replay.py (record it again)")
    return rec["options"], rec["latents"]


def run(mode: str, path: str, options: list[str]) -> None:
    if mode not in ("record", "replay"):
        fail(USAGE)
    wanted = sampling_options(options)
    real, kept = gp.sample, []
    if mode == "record":
        def sample(*args, **kwargs):
            z = real(*args, **kwargs)
            kept.append(z.clone())
            return z
    else:
        recorded_options, kept = read_recording(path)
        if recorded_options != wanted:
            diff = sorted(k for k in wanted.keys() | recorded_options.keys()
                          if wanted.get(k) != recorded_options.get(k))
            fail(f"{path} was recorded with other options: {', '.join('--' + k.replace('_', '-') for k in diff)}")
        recorded = iter(kept)

        def sample(model, noise, *args, **kwargs):
            z = next(recorded, None)
            if z is None or z.shape != noise.shape:  # the same options draw the same samples: a changed measurement
                fail(f"{path} does not hold this measurement's samples (recorded by another version?)")
            return z
    gp.sample = sample
    try:
        main(options)
    finally:
        gp.sample = real
    if mode == "record":
        torch_save_atomic({"options": wanted, "latents": kept}, path)
    elif next(recorded, None) is not None:
        fail(f"{path} holds more samples than this measurement drew (recorded by another version?)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        fail(USAGE)
    run(sys.argv[1], sys.argv[2], sys.argv[3:])
