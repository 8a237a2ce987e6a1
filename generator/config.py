"""Training configurations: dataclasses filled from the YAML files under configs/."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .dit import DiTConfig
from .vae import VAEConfig


# what the training buckets (and so the pipeline's argument checks) allow: the world scales its objects with
# min(width, height) / 64, so below 32 pixels a ball is a blur of 2 pixels, and past 2:1 the short side
# leaves the scene cramped; the VAE takes 1 + 4k frames and shrinks sides 4x, the DiT patch 2 more
MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 32, 256, 8
MAX_FRAMES, FRAME_STEP = 65, 4
MAX_ASPECT = 2.0

Bucket = tuple[int, int, int]  # (frames, height, width)


def check_bucket(b) -> Bucket:
    """A validated (frames, height, width) training bucket; a ValueError that names the rule otherwise."""
    try:
        f, h, w = (int(v) for v in b)
        ok_ints = all(float(v) == int(v) for v in b)
    except (TypeError, ValueError):
        raise ValueError(f"a bucket is [frames, height, width], got {b!r}") from None
    if not ok_ints:
        raise ValueError(f"a bucket is [frames, height, width] of integers, got {b!r}")
    if not (1 <= f <= MAX_FRAMES) or (f - 1) % FRAME_STEP:
        raise ValueError(f"bucket {list(b)}: frames must be 1 + {FRAME_STEP}k between 1 and {MAX_FRAMES}, got {f}")
    for name, v in (("height", h), ("width", w)):
        if not (MIN_SIDE <= v <= MAX_SIDE) or v % SIDE_MULTIPLE:
            raise ValueError(f"bucket {list(b)}: {name} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} "
                             f"and {MAX_SIDE}, got {v}")
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise ValueError(f"bucket {list(b)}: aspect ratio {w}x{h} is beyond {MAX_ASPECT:g}:1")
    return f, h, w


def bucket_name(b: Bucket) -> str:
    return "{}x{}x{}".format(*b)


@dataclass
class DataConfig:
    families: tuple[str, ...] = ()  # empty: every family of the world
    width: int = 64
    height: int = 64
    fps: float = 8.0
    n_frames: int = 17
    train_clips: int = 200_000  # seeds drawn from the "train" split
    val_clips: int = 64  # seeds from the "val" split
    latent_clips: int = 20_000  # DiT: train-split clips encoded once by the VAE
    # train on random crops of this many frames (1 + 4k); 0 = whole clips. A VAE decoder trained on crops has not
    # learnt the later latent frames of a longer clip (session 11: objects appear from nothing there)
    crop_frames: int = 0
    hflip: bool = True  # mirror clips and swap left/right in captions
    batch_size: int = 8
    num_workers: int = 0
    # DiT: train on several (frames, height, width) buckets, each batch from one bucket; empty = the single
    # bucket (n_frames, height, width). bucket_weights: share of latent_clips per bucket (empty = equal)
    buckets: tuple = ()
    bucket_weights: tuple = ()
    # DiT: clips whose caption names one of these words come this many times an epoch ({square: 2}); the
    # latent cache is the same, so a run may add or change it when it resumes
    caption_repeats: dict = field(default_factory=dict)
    # VAE decoder-only fine-tuning: a file of generator.decoder_pairs (the DiT's latents of train clips, each with
    # its clip as the target) and the share of each batch's clips taken from it; the others are world clips
    dit_pairs: str = ""
    dit_pairs_share: float = 0.5

    def __post_init__(self):
        if not (math.isfinite(self.dit_pairs_share) and 0 < self.dit_pairs_share <= 1):
            raise ValueError(f"dit_pairs_share must be in (0, 1], got {self.dit_pairs_share}")
        if self.dit_pairs and self.crop_frames:
            raise ValueError("dit_pairs need whole clips (crop_frames: 0): a latent decodes to the whole clip")
        cr = self.caption_repeats or {}
        if not isinstance(cr, dict) or not all(isinstance(w, str) and w.strip() and type(k) is int and 1 <= k <= 100
                                               for w, k in cr.items()):
            raise ValueError(f"caption_repeats maps words to whole counts from 1 to 100 ({{square: 2}}), got {cr!r}")
        self.caption_repeats = dict(cr)
        self.buckets = tuple(check_bucket(b) for b in self.buckets)
        if len(set(self.buckets)) != len(self.buckets):
            raise ValueError(f"buckets are listed twice: {[list(b) for b in self.buckets]}")
        w = self.bucket_weights = tuple(float(v) for v in self.bucket_weights)
        if w and not self.buckets:
            raise ValueError("bucket_weights given without buckets")
        if w and len(w) != len(self.buckets):
            raise ValueError(f"{len(w)} bucket_weights for {len(self.buckets)} buckets")
        if any(not math.isfinite(v) or v <= 0 for v in w):
            raise ValueError(f"bucket_weights must be positive, got {list(w)}")

    def bucket_list(self) -> list[Bucket]:
        """The training buckets: the configured ones, or the single (n_frames, height, width)."""
        return list(self.buckets) or [(self.n_frames, self.height, self.width)]

    def bucket_counts(self, n: int) -> list[int]:
        """n clips shared among the buckets by their weights (largest remainders; every bucket gets one)."""
        buckets = self.bucket_list()
        if n < len(buckets):
            raise ValueError(f"{n} clips cannot fill {len(buckets)} buckets")
        w = list(self.bucket_weights) or [1.0] * len(buckets)
        share = [n * v / sum(w) for v in w]
        counts = [max(1, int(s)) for s in share]
        order = sorted(range(len(w)), key=lambda i: share[i] - int(share[i]), reverse=True)
        i = 0
        while sum(counts) != n:  # hand out (or take back) the rounding, largest remainder first
            j = order[i % len(order)]
            if sum(counts) < n:
                counts[j] += 1
            elif counts[j] > 1:
                counts[j] -= 1
            i += 1
        return counts


# "auto" and the precisions Lightning accepts (the older aliases "32", "16", "bf16" included)
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "16", "bf16", "64")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")


@dataclass
class TrainConfig:
    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    # steps at lr 0 before the warm-up: they only fill AdamW's moment estimates. A run that starts from another
    # run's weights without its optimizer state (train.init_from) otherwise begins with steps of about lr on
    # every weight, whatever its gradient (Adam's first update is lr * sign(g)). Generator model card, session 21:
    # with 40 such steps, a continued run's val loss still rose once the lr did (re-warming a cooled model)
    moments_warmup_steps: int = 0
    grad_clip: float = 1.0
    # "auto": bf16-mixed where the hardware computes bf16 natively (a CUDA GPU with bf16, a CPU with AVX512-BF16
    # or AMX: 2-6x the fp32 rate), else 32-true (elsewhere bf16 on a CPU is emulated, ~100x slower)
    precision: str = "32-true"
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    frame_cond_prob: float = 0.3  # share of DiT samples trained with given first frames (image-to-video, extension)
    checkpoint_every: int = 100
    val_every: int = 200
    seed: int = 0
    run_dir: str = "runs/vae"
    # a fresh run (nothing to resume in run_dir) starts from the model weights of this Lightning checkpoint
    # (another run's); optimizer, schedule and step start anew. A resumable run ignores it.
    init_from: str = ""
    kl_weight: float = 1e-4
    train_encoder: bool = True  # VAE: false fine-tunes the decoder alone, so the latent space (and a DiT on it) stays valid
    # VAE: weight of the adversarial term (0 = L1 + KL only) and the step it starts at; the discriminator
    # trains from the run's first step, and the term is balanced against L1 at the decoder's last layer
    gan_weight: float = 0.0
    gan_start: int = 0
    gradient_weight: float = 0.0  # VAE: weight of the gradient-difference loss (generator.vae.vae_loss)
    # VAE decoder-only fine-tuning: the decoder also sees latents with Gaussian noise of up to this many latent
    # standard deviations (uniform per clip), so the small errors of a DiT's latents decode to clean objects,
    # not to extra blobs (session 6: at 0.35 std of noise the 16-channel decoder's clips passed every prompt
    # check 50% of the time against 81% clean, with extra objects in 10 of 32). 0 = off.
    decoder_noise: float = 0.0
    lr_schedule: str = "constant"  # after warm-up: "constant" or "cosine" (down to min_lr_ratio * lr at max_steps)
    min_lr_ratio: float = 0.1
    # cosine: the step the decay starts at (the lr is constant before it; 0 = right after warm-up). A cooldown
    # branch of a long constant-lr run (warmup-stable-decay): copy its run_dir, set decay_start to its step
    # and max_steps a few thousand later; the constant-lr run itself can go on from where it was.
    decay_start: int = 0
    # DiT: training times are logit-normal, then shifted as in SD3 (generator.flow.shift_time): > 1 trains more
    # at high noise, where a clip's objects and their persistence are decided; the higher a latent's dimension,
    # the longer its structure survives the noise (SD3 shifts by 3 for its 16-channel latents at 1 MP)
    timestep_shift: float = 1.0
    # DiT: train (and validate) only at times in [lo, hi]: the usual (shifted logit-normal) times mapped linearly
    # into the range. A high-noise expert (generator.pipeline: `expert`, eDiff-I / Wan 2.2's mixture of denoisers by
    # noise level) is a copy of the DiT trained on [0.8, 1], where a clip's objects are laid out
    time_range: tuple[float, float] = (0.0, 1.0)
    # DiT: weight of the temporal-difference term of the flow loss (generator.flow.flow_loss; 0 = off): errors
    # that change from one latent frame to the next, such as an object missing for a frame, cost more
    temporal_loss_weight: float = 0.0
    # DiT: weight of a pixel loss through the frozen VAE decoder (generator.flow.decoded_loss; 0 = off), on the
    # first decoded_loss_clips samples of each batch (the decoder's backward pass costs ~0.1 s a clip on 2 cores)
    decoded_loss_weight: float = 0.0
    decoded_loss_clips: int = 16
    # DiT: guidance distillation (generator.flow.guidance_distillation_loss; "" = off): the DiT (with
    # model.guidance_head) learns the classifier-free guided velocity of this teacher DiT file at guidance scales
    # drawn uniformly from distill_guidance [lo, hi], in place of the flow loss; generation then needs one DiT
    # evaluation per guided step where CFG needs a batch of two
    distill_from: str = ""
    distill_guidance: tuple[float, float] = (1.0, 6.0)
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    threads: int = 0  # torch threads per process; 0 = torch's default
    # DiT: compile each transformer block with torch.compile (inductor). Measured on 2 CPU cores, batch 8 at
    # 17x64x64: 0.76 s/step against 1.02 eager (compiling the whole model: 0.91); the first step of each
    # bucket pays ~1-2 minutes of compilation. The weights and checkpoints are the same either way.
    compile: bool = False
    # DiT: weight of the auxiliary object-map loss (generator.object_maps; 0 = off) and the block whose output
    # tokens its head reads (REPA aligns an early third of the depth)
    aux_weight: float = 0.0
    aux_block: int = 2
    # a wall-time budget in seconds (0 = none): the measured step rate sets max_steps, and so the end of a cosine
    # schedule (training.TimeBudget), e.g. for a GPU lent for minutes. It replaces max_steps, larger or smaller:
    # a cooldown branch that must end at a given step sets max_steps and leaves this at 0
    time_budget_s: float = 0.0
    # DiT: write the EMA's shipped fp16 weights every this many steps (0 = never) to export_to (default
    # run_dir/export.safetensors; a "{step}" in it keeps every export under its own name)
    export_every: int = 0
    export_to: str = ""

    def __post_init__(self):
        # at load time: a mistake must not cost a data set's encoding first
        check_precision(self.precision)
        if self.decoder_noise < 0 or (self.decoder_noise > 0 and self.train_encoder):
            raise ValueError("train.decoder_noise must be >= 0, and is for decoder-only fine-tuning "
                             "(train_encoder: false)")
        if not self.timestep_shift > 0:
            raise ValueError(f"train.timestep_shift must be > 0, got {self.timestep_shift}")
        try:
            lo, hi = (float(v) for v in self.time_range)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"train.time_range must be [lo, hi] with 0 <= lo < hi <= 1, got {list(self.time_range)}")
        if not (math.isfinite(self.temporal_loss_weight) and self.temporal_loss_weight >= 0):
            raise ValueError(f"train.temporal_loss_weight must be >= 0 (0 = off), got {self.temporal_loss_weight}")
        if not (math.isfinite(self.decoded_loss_weight) and self.decoded_loss_weight >= 0) \
                or self.decoded_loss_clips < 1:
            raise ValueError("train.decoded_loss_weight must be >= 0 (0 = off) and train.decoded_loss_clips >= 1, "
                             f"got {self.decoded_loss_weight} and {self.decoded_loss_clips}")
        try:
            lo, hi = (float(v) for v in self.distill_guidance)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not 1.0 <= lo < hi <= 30.0:
            raise ValueError("train.distill_guidance must be [lo, hi] with 1 <= lo < hi <= 30, got "
                             f"{list(self.distill_guidance)}")
        if self.moments_warmup_steps < 0:
            raise ValueError(f"train.moments_warmup_steps must be >= 0, got {self.moments_warmup_steps}")
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s >= 0) or self.export_every < 0:
            raise ValueError(f"train.time_budget_s and train.export_every must be >= 0 (0 = off), got "
                             f"{self.time_budget_s} and {self.export_every}")


def native_bf16(accelerator: str = "cpu", cpuinfo: str | None = None) -> bool:
    """Whether bf16 runs natively on this accelerator (measured: AMX/AVX512-BF16 CPUs 2.2 TFLOP/s bf16 matmul
    vs 0.33 fp32 on 2 cores; an AVX2-only CPU emulates bf16 ~100x slower than fp32). `cpuinfo`: the text of
    /proc/cpuinfo (read when not given)."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return any(f in cpuinfo.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, accelerator: str = "cpu", cpuinfo: str | None = None) -> str:
    """A Lightning precision; "auto" is bf16-mixed where bf16 is native, else 32-true."""
    check_precision(precision)
    if precision != "auto":
        return precision
    return "bf16-mixed" if native_bf16(accelerator, cpuinfo) else "32-true"


@dataclass
class VAETrainConfig:
    model: VAEConfig = field(default_factory=VAEConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.data.dit_pairs and self.train.train_encoder:
            raise ValueError("data.dit_pairs is for decoder-only fine-tuning (train.train_encoder: false): "
                             "the DiT's latents are in the frozen encoder's space")


@dataclass
class DiTTrainConfig:
    model: DiTConfig = field(default_factory=DiTConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vae_checkpoint: str = ""  # empty: the shipped VAE

    def __post_init__(self):
        m, t = self.model, self.train
        if t.distill_from:
            if not m.guidance_head:
                raise ValueError("train.distill_from needs model.guidance_head: true (the student predicts the "
                                 "guidance direction)")
            if t.aux_weight > 0 or t.decoded_loss_weight > 0 or t.temporal_loss_weight > 0:
                raise ValueError("train.distill_from replaces the flow loss: aux_weight, decoded_loss_weight and "
                                 "temporal_loss_weight must be 0 with it")
        if t.aux_weight > 0:  # the object-map head reads one block's tokens, one per (1 x n x n) patch
            if not 0 <= t.aux_block < m.depth:
                raise ValueError(f"train.aux_block {t.aux_block} is not a block of a depth-{m.depth} DiT")
            if m.patch[0] != 1 or m.patch[1] != m.patch[2]:
                raise ValueError("train.aux_weight needs a DiT patch of 1 x n x n")


def _fill(cls, values: dict, prefix: str = ""):
    """A dataclass from a dict, recursively, refusing unknown keys (a typo must not pass silently) and values of
    the wrong kind (named by their key as in the YAML: `train.lr`)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    kw, defaults = {}, cls()
    for name, v in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            if not isinstance(v or {}, dict):
                raise ValueError(f"{cls.__name__}.{name} is a section of keys, got {v!r}")
            kw[name] = _fill(type(default), v or {}, f"{prefix}{name}.")
        elif isinstance(default, tuple):
            kw[name] = tuple(v)
        else:
            kw[name] = _scalar(prefix + name, default, v)
    return cls(**kw)


def _scalar(key: str, default, v):
    """`v` as the type of the field's default (a number where a number belongs: `--set train.lr=abc` must stop
    with one line, not fail later inside the training); other kinds of field pass unchanged."""
    if isinstance(default, bool):
        ok = isinstance(v, bool)
        kind = "true or false"
    elif isinstance(default, int):
        ok = isinstance(v, int) and not isinstance(v, bool)
        kind = "a whole number"
    elif isinstance(default, float):
        if isinstance(v, str):  # YAML 1.1 reads 3e-4 (no dot) as text
            try:
                v = float(v)
            except ValueError:
                pass
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        v = float(v) if ok else v
        kind = "a number"
    elif isinstance(default, str):
        ok = isinstance(v, str)
        kind = "text"
    else:
        return v
    if not ok:
        raise ValueError(f"{key} must be {kind}, got {v!r}")
    return v


def load_config(path: str | Path, cls, overrides: Sequence[str] = ()):
    """The config of a YAML file; `overrides` are "section.key=value" strings (values in YAML syntax) applied
    on top, e.g. a cooldown branch of a run: ("train.run_dir=runs/x_cd", "train.lr_schedule=cosine")."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValueError(f"config {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"config {path}: not a readable text file ({e.__class__.__name__})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"config {path}: not valid YAML ({_yaml_problem(e)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"config {path}: holds {type(data).__name__}, not sections of keys (train:, model:, data:)")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"an override is section.key=value, got {item!r}")
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: the value is not valid YAML ({_yaml_problem(e)})") from None
        *sections, last = key.strip().split(".")
        node = data
        for name in sections:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {name} is not a section")
        node[last] = value
    return _fill(cls, data)


def _yaml_problem(e: "yaml.YAMLError") -> str:
    """PyYAML's message in one line: what went wrong and where (its messages span several lines)."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(e, 'problem', None) or e.__class__.__name__}{where}"


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(cls, d: dict):
    return _fill(cls, d)
