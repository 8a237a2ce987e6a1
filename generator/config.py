"""Training configurations: dataclasses filled from the YAML files under configs/."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .dit import DiTConfig
from .vae import VAEConfig


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
    crop_frames: int = 0  # train on random crops of this many frames (1 + 4k); 0 = whole clips
    hflip: bool = True  # mirror clips and swap left/right in captions
    batch_size: int = 8
    num_workers: int = 0


@dataclass
class TrainConfig:
    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    precision: str = "32-true"  # "bf16-mixed" pays only where the CPU has AVX512-BF16 or on GPUs
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    frame_cond_prob: float = 0.3  # share of DiT samples trained with given first frames (image-to-video, extension)
    checkpoint_every: int = 100
    val_every: int = 200
    seed: int = 0
    run_dir: str = "runs/vae"
    kl_weight: float = 1e-4
    train_encoder: bool = True  # VAE: false fine-tunes the decoder alone, so the latent space (and a DiT on it) stays valid
    lr_schedule: str = "constant"  # after warm-up: "constant" or "cosine" (down to min_lr_ratio * lr at max_steps)
    min_lr_ratio: float = 0.1
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    threads: int = 0  # torch threads per process; 0 = torch's default


@dataclass
class VAETrainConfig:
    model: VAEConfig = field(default_factory=VAEConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class DiTTrainConfig:
    model: DiTConfig = field(default_factory=DiTConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vae_checkpoint: str = ""  # empty: the shipped VAE


def _fill(cls, values: dict):
    """A dataclass from a dict, recursively, refusing unknown keys (a typo must not pass silently)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    kw = {}
    for name, v in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kw[name] = _fill(type(default), v or {})
        elif isinstance(default, tuple):
            kw[name] = tuple(v)
        else:
            kw[name] = v
    return cls(**kw)


def load_config(path: str | Path, cls):
    data = yaml.safe_load(Path(path).read_text()) or {}
    return _fill(cls, data)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(cls, d: dict):
    return _fill(cls, d)
