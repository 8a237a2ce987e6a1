"""benchmarks.generator_quality with the DiT's sampled latents recorded once and replayed: a decoder (VAE) measured
on the very samples another was, without the DiT's minutes (4 minutes a 4-seed set instead of 20 on 2 cores). The
DiT is deterministic per seed and a decoder does not touch its latents, so a replay's differences are the decoder's
alone. Give the recording and its replays the same measuring options:

    python scripts/quality_replay.py record runs/lat_val.pt --out runs/q_val_ship --split val --n 64 128 \\
        --offset 10000 20000 --seeds-per-prompt 4 --sample-seed-base 5000000
    python scripts/quality_replay.py replay runs/lat_val.pt --out runs/q_val_new --vae NEW_VAE ... (the same options)
    python -m benchmarks.generator_quality --compare runs/q_val_ship/quality.json runs/q_val_new/quality.json
"""
import sys

import torch

import generator.pipeline as gp
from benchmarks.generator_quality import main
from generator.weights import torch_save_atomic


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run(mode: str, path: str, options: list[str]) -> None:
    real, kept = gp.sample, []
    if mode == "record":
        def sample(*args, **kwargs):
            z = real(*args, **kwargs)
            kept.append(z.clone())
            return z
    elif mode == "replay":
        try:
            kept = torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - missing or not a recording
            fail(f"cannot read the recorded samples {path} ({type(e).__name__})")
        recorded = iter(kept)

        def sample(model, noise, *args, **kwargs):
            z = next(recorded, None)
            if z is None or z.shape != noise.shape:
                fail(f"{path} does not hold this measurement's samples (other options?)")
            return z
    else:
        fail("usage: quality_replay.py record|replay LATENTS [generator_quality options]")
    gp.sample = sample
    sys.argv = ["generator_quality", *options]
    main()
    if mode == "record":
        torch_save_atomic(kept, path)
    elif next(recorded, None) is not None:
        fail(f"{path} holds more samples than this measurement drew (other options?)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        fail("usage: quality_replay.py record|replay LATENTS [generator_quality options]")
    run(sys.argv[1], sys.argv[2], sys.argv[3:])
