"""Latents with the DiT's own errors, paired with the clips they should decode to: training data for a decoder that
draws what the DiT means.

The DiT's samples lose objects inside a latent group: one latent frame decodes to four video frames, and the decoder
draws an object in one of them and not in the next (generator/weights/MODEL_CARD.md, session 33). Real latents decode
intact, and with Gaussian noise they lose objects on any frame alike; the DiT's latents carry an error of another
shape. To show the decoder that
shape with a right answer beside it, a real clip's latent is noised to a time t0 in the middle of the flow and
sampled back to 0 by the DiT, guided by the clip's caption (SDEdit, Meng et al. 2022). Up to t0 ~ 0.7 the objects
stay about where the clip has them, and the result already loses objects at the first frame of a group as samples
do (session 34, 12 `topdown` val clips: decoded, 32.7 dB from the clip at t0 = 0.5 and 30.6 dB at 0.64, 28.8 at
0.75; permanence lost in 3 of 24 at 0.5, all at frame 5); so the clip itself is the target.

    python -m generator.decoder_pairs --out runs/dec/pairs.pt --n 3000 [--time-budget 1500]

writes {"latents": fp16 [N, C, T', h, w] in the VAE's own (unnormalised) units, "seeds", "starts", "meta"};
`DecoderPairs` reads it back with the clips, for `data.dit_pairs` of a decoder-only fine-tune
(configs/vae_decoder_dit.yaml).
"""
from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from world import make_clip, split_seeds
from world.dataset import to_tensor

from .defaults import DEFAULT_GUIDANCE, DEFAULT_SHIFT
from .flow import grid_time, sample, timesteps
from .weights import torch_save_atomic

# the sampler of the pairs: Euler on the grid of 16 steps at the pipeline's shift, guided at every step (about the
# pipeline's 15 evaluations of 8 Heun steps, on a finer grid to start from)
STEPS = 16
# the noise levels a pair starts from: the grid times in (0.4, 0.71), i.e. 0.409, 0.5, 0.577, 0.643 and 0.7; above
# ~0.75 the DiT moves the objects away from the clip's (session 34: 26.6 dB at 0.83)
STARTS = (0.4, 0.71)
# the families whose objects the DiT loses most (session 22's and 33's sections): half of the pairs' clips
FOCUS = ("topdown", "fall")


def sdedit(pipe, latents: torch.Tensor, captions: Sequence[str], t0: float, generator: torch.Generator,
           steps: int = STEPS, guidance: float = DEFAULT_GUIDANCE, shift: float = DEFAULT_SHIFT) -> torch.Tensor:
    """Normalised latents [B, C, T', h, w] noised to the grid time t0 (generator.flow.grid_time) and sampled back to 0
    by the pipeline's DiT with their captions and classifier-free guidance (Euler, no restart)."""
    t0 = grid_time(steps, shift, t0)
    noise = torch.randn(latents.shape, generator=generator)
    x = (1 - t0) * latents + t0 * noise
    text, mask = pipe.text(list(captions))
    null, null_mask = pipe.unconditional_text()
    with pipe.autocast():
        return sample(pipe.denoiser, x, text, mask, null, null_mask, steps=steps, guidance=guidance, shift=shift,
                      start=t0)


def _pair_seeds(n: int, offset: int, focus: Sequence[str], rng: random.Random) -> list[int]:
    """n train-split seeds from `offset` on: every second one of a `focus` family, the others of any."""
    pool = iter(split_seeds("train", 100_000, offset=offset))
    out: list[int] = []
    for s in pool:
        if len(out) == n:
            break
        if len(out) % 2 == 0 or make_clip(s).spec.family in focus:
            out.append(s)
    rng.shuffle(out)
    return out


def make_decoder_pairs(out: str | Path, n: int, pipe=None, *, starts: tuple[float, float] = STARTS,
                       batch_size: int = 16, offset: int = 600_000, focus: Sequence[str] = FOCUS, seed: int = 0,
                       time_budget_s: float = 0.0, log: Callable[[str], None] | None = print) -> Path:
    """Write n SDEdit pairs of the world's train-split clips from `offset` on (17 frames, 64x64, as the pipeline
    makes them; fewer pairs, a whole number of batches, where `time_budget_s` > 0 runs out): each batch noised to
    one grid time drawn from the open interval `starts`."""
    if pipe is None:
        from .pipeline import load_pipeline

        pipe = load_pipeline()
    grid = [t for t in timesteps(STEPS, DEFAULT_SHIFT).tolist() if starts[0] < t < starts[1]]
    if n < 1 or not grid:
        raise ValueError(f"need n >= 1 and a sampler grid time inside {tuple(starts)}, got n={n}")
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    seeds = _pair_seeds(n, offset, focus, rng)
    latents, kept, t_of = [], [], []
    t_begin = time.time()
    for i in range(0, n, batch_size):
        if latents and time_budget_s and time.time() - t_begin > time_budget_s:
            break
        batch = seeds[i: i + batch_size]
        clips = [make_clip(s) for s in batch]
        z = torch.cat([pipe.encode(c.frames) for c in clips])
        t0 = rng.choice(grid)
        z_dit = sdedit(pipe, z, [c.caption for c in clips], t0, gen)
        latents.append((z_dit * pipe.std + pipe.mean).half())
        kept += batch
        t_of += [t0] * len(batch)
        if log:
            log(f"{len(kept)} of {n} pairs, {time.time() - t_begin:.0f} s")
    meta = {"frames": list(clips[0].frames.shape[:3]), "fps": clips[0].fps, "dit_sha256": pipe.checkpoint["dit_sha256"],
            "vae_sha256": pipe.checkpoint["vae_sha256"], "seed": seed, "offset": offset, "focus": list(focus)}
    return torch_save_atomic({"latents": torch.cat(latents), "seeds": torch.tensor(kept), "starts": torch.tensor(t_of),
                              "meta": meta}, out)


class DecoderPairs(Dataset):
    """The pairs of a make_decoder_pairs file: {"video": the clip [3, T, H, W] in [-1, 1], "latent": the DiT's latent
    of it (VAE units, float), "seed"}; the clips are rendered again from their seeds."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"decoder pairs {path} not found (make them: python -m generator.decoder_pairs)")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            self.latents, self.seeds, self.meta = blob["latents"], blob["seeds"].tolist(), blob["meta"]
            T, H, W = self.meta["frames"]
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad pairs file
            raise ValueError(f"decoder pairs {path} are unreadable ({type(e).__name__})") from None
        self.kw = dict(n_frames=T, height=H, width=W, fps=self.meta["fps"])

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> dict:
        clip = make_clip(self.seeds[i], **self.kw)
        return {"video": to_tensor(clip.frames), "latent": self.latents[i].float(), "seed": self.seeds[i]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m generator.decoder_pairs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the pairs file to write")
    ap.add_argument("--n", type=int, default=3000, help="how many pairs")
    ap.add_argument("--checkpoint", type=Path, help="DiT weights (default: the shipped ones)")
    ap.add_argument("--vae", type=Path, help="VAE weights (default: the shipped ones)")
    ap.add_argument("--offset", type=int, default=600_000, help="first train-split seed to draw clips from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-budget", type=float, default=0.0, help="stop after this many seconds (0: none)")
    args = ap.parse_args(argv)
    from daas.errors import DaasError

    from .pipeline import load_pipeline

    try:
        pipe = load_pipeline(args.checkpoint, vae_checkpoint=args.vae)
        out = make_decoder_pairs(args.out, args.n, pipe, offset=args.offset, seed=args.seed,
                                 time_budget_s=args.time_budget)
    except (DaasError, ValueError, OSError) as e:
        ap.exit(2, f"error: {e}\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
