"""Text-to-video, image-to-video and video extension with the shipped (or a given) checkpoint.

    pipe = load_pipeline()
    frames = pipe("a red ball falls and bounces twice", num_frames=17, height=64, width=64,
                  num_inference_steps=12, guidance_scale=4.0, seed=0)       # uint8 [T, H, W, 3] (dpm2m by default)

`generate_video` adds what every DAAS output carries: the watermark, the MP4, the C2PA signature and a JSON
sidecar with every parameter.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from daas.errors import DaasError

from .config import MAX_FRAMES, MAX_SIDE, MIN_SIDE, resolve_precision
from .defaults import (DEFAULT_BEST_OF, DEFAULT_GUIDANCE, DEFAULT_GUIDANCE_INTERVAL, DEFAULT_GUIDANCE_REUSE,
                       DEFAULT_PRECISION, DEFAULT_RESTART, DEFAULT_RESTARTS, DEFAULT_SAMPLER, DEFAULT_SELECTION_SCORE,
                       DEFAULT_SHIFT, DEFAULT_STEPS)
from .dit import DiT
from .flow import SAMPLERS, moves, sample
from .selection import SCORES, score_clip
from .text import MAX_PROMPT_CHARS, TextEncoder, get_text_encoder
from .vae import VideoVAE
from .weights import (DIT_FILE, EXPERT_FILE, VAE_FILE, encoder_fingerprint, file_sha256, load_dit, load_dit_expert,
                      load_vae)

GENERATOR_NAME = "daas-generator"
FPS = 8.0  # the frame rate the shipped checkpoint was trained at
# The DiT samples under bf16 autocast where the CPU computes bf16 natively ("auto", the default since session 15;
# fp32 elsewhere), as it was trained. Measured with the session-14 DiT, the same held-out prompts and seeds in fp32
# and bf16 (all checks / mean adherence / permanence): 64 test clips 56.2% / 0.855 / 80.0% against 53.1% / 0.836 /
# 75.0%, 192 val clips 49.5% against 47.4% all checks; and ~20% less time per DiT evaluation. The one cost: under
# bf16 a clip made in a batch differs from the same clip made alone by rounding ("32-true" keeps them equal).
# The VAE decodes in fp32 either way. The precision is recorded with every clip.
PRECISIONS = ("32-true", "bf16-mixed", "auto")
MAX_BEST_OF = 16
# torch's CPU generator keeps the low 32 bits of a seed (2**32 draws what 0 draws): seeds are 0..2**32 - 1, and the
# seed of clip i of a batch (seed + i) and of a clip's candidate j (+ j * CANDIDATE_SEED_STRIDE) wrap round at 2**32.
# The stride keeps candidates far from a batch's neighbouring seeds, and candidate 0 is the clip itself.
SEED_LIMIT = 2 ** 32
CANDIDATE_SEED_STRIDE = 1_000_000_007


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise DaasError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


@dataclass
class Limits:
    # at least what the DiT's training buckets may hold (generator.config): any bucket generates
    min_side: int = MIN_SIDE
    max_side: int = MAX_SIDE
    max_frames: int = MAX_FRAMES


class ExpertsByNoiseLevel(torch.nn.Module):
    """The DiT, with a high-noise expert in its place at times t > `expert_above` (eDiff-I, Balaji et al. 2022;
    Wan 2.2's two experts): a clip's objects are laid out in the first sampler steps (t > 0.83 at the defaults;
    generator/weights/MODEL_CARD.md, session 18), so a copy of the DiT fine-tuned on those times alone serves
    them, at no cost in time. A sampler's batch shares one t, so the whole batch goes to one model."""

    def __init__(self, dit: DiT, expert: DiT, expert_above: float):
        super().__init__()
        self.dit, self.expert, self.expert_above = dit, expert, expert_above
        self.cfg = dit.cfg

    def forward(self, x, t, *args, **kwargs):
        return (self.expert if float(t.max()) > self.expert_above else self.dit)(x, t, *args, **kwargs)


class VideoPipeline:
    def __init__(self, vae: VideoVAE, stats: dict, dit: DiT, text: TextEncoder, checkpoint: dict,
                 limits: Limits | None = None, precision: str = DEFAULT_PRECISION, expert: DiT | None = None,
                 expert_above: float = 1.0):
        _check_precision(precision)
        self.vae, self.dit, self.text = vae, dit, text
        self.expert, self.expert_above = expert, expert_above
        # what the sampler calls: the DiT, or the DiT with its high-noise expert (see ExpertsByNoiseLevel)
        self.denoiser = dit if expert is None else ExpertsByNoiseLevel(dit, expert, expert_above)
        self.precision = resolve_precision(precision)  # "bf16-mixed" or "32-true"
        if self.precision == "bf16-mixed":
            _linear_weights_to_bf16(dit)
            if expert is not None:
                _linear_weights_to_bf16(expert)
        self.mean = stats["mean"].view(1, -1, 1, 1, 1)
        self.std = stats["std"].view(1, -1, 1, 1, 1)
        self.checkpoint = checkpoint  # name, sha256 of the weights (named in every manifest)
        self.limits = limits or Limits()
        self.fps = FPS
        self.last_selection: list[dict] | None = None  # best_of > 1: the candidate each clip of the last call kept
        self._unconditional: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # see unconditional_text

    # checks ---------------------------------------------------------------------------------------
    def check(self, prompts: list[str], num_frames: int, height: int, width: int, steps: int,
               guidance: float, shift: float = DEFAULT_SHIFT, sampler: str = DEFAULT_SAMPLER,
               guidance_interval: tuple[float, float] = DEFAULT_GUIDANCE_INTERVAL,
               restart: tuple[float, float] | None = DEFAULT_RESTART, restarts: int = DEFAULT_RESTARTS,
               best_of: int = DEFAULT_BEST_OF, seed: int = 0,
               selection_score: str = DEFAULT_SELECTION_SCORE, guidance_reuse: bool = False) -> None:
        lim = self.limits
        for p in prompts:
            if not isinstance(p, str) or not p.strip():
                raise DaasError("the prompt is empty")
            if len(p) > MAX_PROMPT_CHARS:
                raise DaasError(f"the prompt has {len(p)} characters; the limit is {MAX_PROMPT_CHARS}")
        tf = self.vae.time_factor
        if not (1 <= num_frames <= lim.max_frames) or (num_frames - 1) % tf:
            raise DaasError(f"num_frames must be 1 + {tf}k between 1 and {lim.max_frames}, got {num_frames}")
        m = self.vae.space_factor * self.dit.cfg.patch[1]
        for name, v in (("height", height), ("width", width)):
            if not (lim.min_side <= v <= lim.max_side) or v % m:
                raise DaasError(f"{name} must be a multiple of {m} between {lim.min_side} and {lim.max_side}, got {v}")
        if not (1 <= steps <= 200):
            raise DaasError(f"num_inference_steps must be in 1..200, got {steps}")
        if not (0.0 <= guidance <= 30.0):
            raise DaasError(f"guidance_scale must be in 0..30, got {guidance}")
        if not (0.1 <= shift <= 20.0):
            raise DaasError(f"shift must be in 0.1..20, got {shift}")
        if sampler not in SAMPLERS:
            raise DaasError(f"unknown sampler {sampler!r}; choose {' or '.join(SAMPLERS)}")
        if guidance_reuse and sampler != "heun":  # only Heun evaluates a time twice; elsewhere it would do nothing
            raise DaasError(f"guidance reuse works with the heun sampler only, not {sampler}")
        lo, hi = _two_times("guidance_interval", guidance_interval)
        if not (0.0 <= lo < hi <= 1.0):
            raise DaasError(f"guidance_interval must satisfy 0 <= lo < hi <= 1, got ({lo:g}, {hi:g})")
        if not _whole(restarts) or not 0 <= restarts <= 8:
            raise DaasError(f"restarts must be a whole number in 0..8, got {restarts!r}")
        if restart is not None:
            lo, hi = _two_times("restart", restart)
            if not (0.0 < lo < hi < 1.0):
                raise DaasError(f"restart must satisfy 0 < lo < hi < 1, got ({lo:g}, {hi:g})")
        if not _whole(best_of) or not 1 <= best_of <= MAX_BEST_OF:
            raise DaasError(f"best_of must be a whole number in 1..{MAX_BEST_OF}, got {best_of!r}")
        if selection_score not in SCORES:
            raise DaasError(f"unknown selection score {selection_score!r}; choose {' or '.join(SCORES)}")
        if not _whole(seed) or not 0 <= seed < SEED_LIMIT:
            raise DaasError(f"seed must be a whole number in 0..{SEED_LIMIT - 1}, got {seed!r}")

    def embeds_guidance(self, guidance_scale: float, negative_prompt: str | None = None) -> bool:
        """Whether guidance runs in one DiT evaluation a step: a guidance-distilled DiT (DiTConfig.guidance_head)
        gives v_c + (w - 1)(v_c - v_u) for any scale w, and classifier-free guidance's batch of two remains for a
        negative prompt (the head knows only the empty one) and for DiTs without the head."""
        return self.dit.cfg.guidance_head and not negative_prompt and guidance_scale != 1.0

    def unconditional_text(self, negative_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding and mask of the prompt that guidance pushes away from (the empty one, or a negative prompt),
        encoded once per string and kept: every call guides with it, and a process that generates many clips
        (benchmarks, batch jobs) would encode it again each time. A few strings at most are kept."""
        key = negative_prompt or ""
        if key not in self._unconditional:
            if len(self._unconditional) >= 8:
                self._unconditional.clear()
            self._unconditional[key] = self.text([key])
        return self._unconditional[key]

    @staticmethod
    def sampler_steps(steps: int, shift: float = DEFAULT_SHIFT, restart: tuple[float, float] | None = DEFAULT_RESTART,
                      restarts: int = DEFAULT_RESTARTS) -> int:
        """How many steps down (progress callbacks) a call makes: `steps`, plus those of its restarts."""
        return sum(t1 < t0 for t0, t1 in moves(steps, shift, restart, restarts))

    def autocast(self):
        """The context the DiT runs in: bf16 autocast under "bf16-mixed" (its linear weights are bf16 then)."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16-mixed")

    # latents ----------------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [T, H, W, 3] -> normalised latents [1, C, T', h, w]."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1)[None]
        with torch.no_grad():
            z, _ = self.vae.encode(x)
        return (z - self.mean) / self.std

    def decode(self, z: torch.Tensor) -> np.ndarray:
        """normalised latents [B, C, T', h, w] -> uint8 [B, T, H, W, 3]."""
        with torch.no_grad():
            x = self.vae.decode(z * self.std + self.mean)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()

    def _conditioning(self, image, video, B, T_lat, h, w, height, width):
        """Latent frames given by an image (the first frame) or a video (the clip to continue)."""
        if image is None and video is None:
            return None, None, 0
        if image is not None and video is not None:
            raise DaasError("give either an image or a video to extend, not both")
        if image is not None:
            given = np.asarray(image)[None]
        else:
            given = np.asarray(video)
            # continue from the last frames: as many as fill half the latent frames, 1 + 4k of them
            n = 1 + self.vae.time_factor * (max(1, T_lat // 2) - 1)
            if len(given) < n:
                raise DaasError(f"the video to extend needs at least {n} frames, got {len(given)}")
            given = given[-n:]
        if given.ndim != 4 or given.shape[-1] != 3 or given.dtype != np.uint8:
            raise DaasError("conditioning frames must be uint8 RGB")
        if given.shape[1:3] != (height, width):
            given = _resize(given, height, width)
        zc = self.encode(given)
        k = zc.shape[2]
        cond = torch.zeros(B, zc.shape[1], T_lat, h, w)
        cond[:, :, :k] = zc
        mask = torch.zeros(B, 1, T_lat, 1, 1)
        mask[:, :, :k] = 1
        return cond, mask, len(given)

    # generation --------------------------------------------------------------------------------------
    def __call__(self, prompt: str | list[str], num_frames: int = 17, height: int = 64, width: int = 64,
                 num_inference_steps: int = DEFAULT_STEPS, guidance_scale: float = DEFAULT_GUIDANCE, seed: int = 0,
                 negative_prompt: str | None = None, image: np.ndarray | None = None,
                 video: np.ndarray | None = None, sampler: str = DEFAULT_SAMPLER, watermark: bool = False,
                 progress: Callable[[int], None] | None = None, shift: float = DEFAULT_SHIFT,
                 guidance_interval: tuple[float, float] = DEFAULT_GUIDANCE_INTERVAL,
                 restart: tuple[float, float] | None = DEFAULT_RESTART, restarts: int = DEFAULT_RESTARTS,
                 guidance_reuse: bool = DEFAULT_GUIDANCE_REUSE, best_of: int = DEFAULT_BEST_OF,
                 selection_score: str = DEFAULT_SELECTION_SCORE) -> np.ndarray:
        """Frames uint8 [T, H, W, 3] for one prompt, [B, T, H, W, 3] for a list; the same seed gives the same
        frames. With `video`, the result continues it: the given frames, then the new ones. Guidance applies at
        the times t in `guidance_interval` (lo, hi] (t = 1 is pure noise); outside it, the conditional
        velocity alone (one DiT evaluation instead of a batch of two). With `restart` (lo, hi) and `restarts` k, the
        sampler goes back from t = lo to t = hi with fresh noise and samples that window again, k times
        (generator.flow.moves; 0 or None: off); `sampler_steps` counts the steps then. With `guidance_reuse`,
        a guided evaluation at the time of the previous one (Heun's predictor after its corrector) reuses that
        one's guidance direction and evaluates the conditional batch alone (generator.flow.sample).
        With `best_of` n > 1, each clip is sampled from n noises (candidate j of the clip with seed s has the
        seed s + j * CANDIDATE_SEED_STRIDE modulo SEED_LIMIT, so candidate 0 is the clip best_of=1 gives) and the
        one that `selection_score` finds steadiest is kept (generator.selection), at n times the DiT's work;
        `last_selection` then says which candidate each clip is, with every candidate's score."""
        self.last_selection = None
        clips = [prompt] if isinstance(prompt, str) else list(prompt)
        if not clips:
            raise DaasError("no prompt given")
        self.check(clips, num_frames, height, width, num_inference_steps, guidance_scale, shift, sampler,
                   guidance_interval, restart, restarts, best_of, seed, selection_score, bool(guidance_reuse))
        best_of, seed, restarts = int(best_of), int(seed), int(restarts)
        # clip i's candidates are rows i * best_of ... (i + 1) * best_of - 1 of one batch
        seeds = [(seed + i + j * CANDIDATE_SEED_STRIDE) % SEED_LIMIT for i in range(len(clips)) for j in range(best_of)]
        B = len(seeds)
        T_lat = self.vae.latent_frames(num_frames)
        h, w = height // self.vae.space_factor, width // self.vae.space_factor
        # each clip's noise, then its restarts' fresh noise, from its own seed: a clip is the same alone or in a batch
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        draws = [torch.cat([torch.randn(1, self.dit.cfg.latent_channels, T_lat, h, w, generator=g) for g in gens])
                 for _ in range(1 + (restarts if restart is not None else 0))]
        noise, restart_noise = draws[0], draws[1:]
        text, mask = self.text(clips)  # each prompt encoded once, then given to each of its candidates
        text, mask = text.repeat_interleave(best_of, 0), mask.repeat_interleave(best_of, 0)
        null_text, null_mask = self.unconditional_text(negative_prompt)
        cond, cmask, n_given = self._conditioning(image, video, B, T_lat, h, w, height, width)
        distilled = self.embeds_guidance(guidance_scale, negative_prompt)
        with self.autocast():
            z = sample(self.denoiser, noise, text, mask, null_text, null_mask, steps=num_inference_steps,
                       distilled_guidance=distilled, guidance_reuse=bool(guidance_reuse),
                       guidance=guidance_scale, method=sampler, cond=cond, cond_mask=cmask, shift=shift,
                       callback=progress, guidance_interval=tuple(map(float, guidance_interval)),
                       restart=None if restart is None else tuple(map(float, restart)), restart_noise=restart_noise)
        frames = self.decode(z.float())
        if video is not None:  # the given clip, then the continuation
            new = frames[:, n_given:]
            frames = np.concatenate([np.broadcast_to(np.asarray(video), (B, *np.asarray(video).shape)), new], axis=1)
        elif image is not None:
            frames[:, 0] = _resize(np.asarray(image)[None], height, width)[0]
        if best_of > 1:  # each clip's steadiest candidate (the lowest score)
            scores = np.array([score_clip(f, selection_score) for f in frames]).reshape(len(clips), best_of)
            chosen = scores.argmin(1)
            frames = frames.reshape(len(clips), best_of, *frames.shape[1:])[np.arange(len(clips)), chosen]
            self.last_selection = [{"best_of": best_of, "score": selection_score, "chosen": int(j),
                                    "seed": seeds[i * best_of + j], "scores": [round(float(v), 6) for v in row]}
                                   for i, (j, row) in enumerate(zip(chosen, scores))]
        if watermark:  # the mark alone (generate_video marks, signs and records the payload)
            import secrets

            from provenance import load_identity, watermark as wm

            key = wm.WatermarkKey(load_identity().watermark_key())
            frames = np.stack([wm.embed(f, key, secrets.randbits(wm.PAYLOAD_BITS)) for f in frames])
        return frames[0] if isinstance(prompt, str) else frames


def _whole(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _two_times(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DaasError(f"{name} must be two times (lo, hi), got {value!r}") from None
    return lo, hi


def _linear_weights_to_bf16(model: torch.nn.Module) -> None:
    """Autocast runs linear layers in bf16 and casts their fp32 weights at every call; holding them in bf16 once
    gives the very same numbers without those copies (1-6% of a DiT evaluation, measured here). Norms stay fp32.
    The model is changed in place: it then runs only under bf16 autocast (`VideoPipeline.autocast`)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.to(torch.bfloat16)


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    t = torch.nn.functional.interpolate(t, size=(height, width), mode="area" if t.shape[-1] > width else "bilinear")
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def load_pipeline(checkpoint: str | Path | None = None, vae_checkpoint: str | Path | None = None,
                  precision: str = DEFAULT_PRECISION, expert: str | Path | bool | None = None) -> VideoPipeline:
    """The shipped checkpoint (generator/weights) by default; `checkpoint` names another DiT file.
    `precision`: the DiT's, "32-true", "bf16-mixed" or "auto" (bf16 where native, else fp32); see PRECISIONS.
    `expert`: a high-noise expert file of that DiT (weights.save_dit_expert; it serves the times it was trained
    on, see ExpertsByNoiseLevel); None: the shipped one with the shipped DiT, none with another; False: none."""
    _check_precision(precision)  # before the weights load
    dit_path = Path(checkpoint) if checkpoint else DIT_FILE
    vae_path = Path(vae_checkpoint) if vae_checkpoint else VAE_FILE
    if expert is True:
        raise DaasError("expert is a file, None (the shipped one) or False (none)")
    if expert is None:
        expert = EXPERT_FILE if checkpoint is None and EXPERT_FILE.exists() else False
    expert_path = None if expert is False else Path(expert)
    for p in (dit_path, vae_path) + ((expert_path,) if expert_path else ()):
        if not p.exists():
            raise DaasError(f"checkpoint {p} not found (train one: daas train --help)")
    vae, stats = load_vae(vae_path)
    dit, meta = load_dit(dit_path)
    want = meta.get("vae_encoder_sha256")  # absent from DiT files exported before the check existed
    if want and want != encoder_fingerprint(vae):
        raise DaasError(f"{dit_path.name} was trained on the latents of another VAE encoder than {vae_path.name}'s")
    if dit.cfg.latent_channels != vae.cfg.latent_channels:
        raise DaasError(f"{dit_path.name} works on {dit.cfg.latent_channels} latent channels, "
                        f"{vae_path.name} makes {vae.cfg.latent_channels}")
    info = {"dit": dit_path.name, "dit_sha256": file_sha256(dit_path), "vae": vae_path.name,
            "vae_sha256": file_sha256(vae_path), "dit_step": meta.get("step")}
    expert_dit, expert_above = None, 1.0
    if expert_path:
        expert_dit, expert_meta = load_dit_expert(expert_path, dit, info["dit_sha256"])
        expert_above = float(expert_meta["time_range"][0])
        info.update(expert=expert_path.name, expert_sha256=file_sha256(expert_path), expert_above=expert_above)
    if "guidance_distilled" in meta:  # the teacher whose guidance the DiT learnt, named in the sidecar
        info.update(guidance_distilled_from=meta["guidance_distilled"].get("teacher_sha256"))
    return VideoPipeline(vae, stats, dit, get_text_encoder(), info, precision=precision, expert=expert_dit,
                         expert_above=expert_above)


def generate_video(pipe: VideoPipeline, prompt: str, output: str | Path, *, overwrite: bool = False,
                   identity=None, store=None, **kwargs) -> dict:
    """Generate, watermark, write the MP4, sign it (C2PA) and write the JSON sidecar; returns the sidecar."""
    from daas import __version__
    from daas.fileio import check_writable, write_json
    from provenance import protect_video

    output = Path(output)
    sidecar = output.with_suffix(".json")
    check_writable(output, overwrite)
    check_writable(sidecar, overwrite)
    # the sampling settings resolved once: the sidecar records exactly what the pipeline ran with
    kwargs = {"seed": 0, "num_inference_steps": DEFAULT_STEPS, "guidance_scale": DEFAULT_GUIDANCE,
              "sampler": DEFAULT_SAMPLER, "shift": DEFAULT_SHIFT, "guidance_interval": DEFAULT_GUIDANCE_INTERVAL,
              "restart": DEFAULT_RESTART, "restarts": DEFAULT_RESTARTS, "guidance_reuse": DEFAULT_GUIDANCE_REUSE,
              "best_of": DEFAULT_BEST_OF, "selection_score": DEFAULT_SELECTION_SCORE, **kwargs}
    t0 = time.perf_counter()
    frames = pipe(prompt, **kwargs)
    gen_s = time.perf_counter() - t0
    params = {"prompt": prompt, "seed": kwargs["seed"], "steps": kwargs["num_inference_steps"],
              "guidance": kwargs["guidance_scale"],
              "guidance_interval": [float(v) for v in kwargs["guidance_interval"]],
              "restart": None if kwargs["restart"] is None else [float(v) for v in kwargs["restart"]],
              "restarts": int(kwargs["restarts"]), "guidance_reuse": bool(kwargs["guidance_reuse"]),
              "best_of": int(kwargs["best_of"]),
              # the candidate kept: its seed with best_of 1 makes the same clip again (in 32-true exactly; under
              # bf16 a clip made in a batch differs from the same clip made alone by rounding)
              **({"selection": pipe.last_selection[0]} if pipe.last_selection else {}),
              "frames": int(frames.shape[0]),
              "size": f"{frames.shape[2]}x{frames.shape[1]}", "sampler": kwargs["sampler"], "shift": kwargs["shift"],
              "precision": pipe.precision,
              "guidance_mode": "distilled" if pipe.embeds_guidance(kwargs["guidance_scale"],
                                                                   kwargs.get("negative_prompt")) else "cfg",
              "negative_prompt": kwargs.get("negative_prompt") or "", "model": pipe.checkpoint["dit"],
              "expert": pipe.checkpoint.get("expert", ""),
              "mode": "extend" if kwargs.get("video") is not None else
              "image-to-video" if kwargs.get("image") is not None else "text-to-video"}
    agent = {"name": GENERATOR_NAME, "version": __version__, "checkpoint_sha256": pipe.checkpoint["dit_sha256"]}
    if "expert_sha256" in pipe.checkpoint:  # the weights that drew the first steps are named too
        agent["expert_checkpoint_sha256"] = pipe.checkpoint["expert_sha256"]
    result = protect_video(frames, pipe.fps, output, params=params, software_agent=agent, overwrite=overwrite,
                           identity=identity, store=store)
    side = {"output": str(output), "params": params, "software_agent": agent, "checkpoint": pipe.checkpoint,
            "fps": pipe.fps, "seconds": {"generate": round(gen_s, 3), "total": round(time.perf_counter() - t0, 3)},
            "provenance": {k: v for k, v in result.items() if k != "path"}}
    write_json(sidecar, side, overwrite=overwrite)
    return side
