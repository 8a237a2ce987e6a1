"""Training with Lightning: data modules, the two LightningModules (VAE, DiT) and the entry points.

The LightningModules only wire loss, optimiser, EMA and logging around the plain nn.Modules of vae.py and
dit.py. Runs are resumable: `runs/<name>/checkpoints/last.ckpt` holds the model, the EMA, the optimiser and
the step, and `train_*` continues from it when it exists. The same code runs DDP through Lightning's own
strategies (`train.strategy: ddp`, `train.devices: 2` on CPU processes; GPUs and nodes by flags only).
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from world import FAMILIES, make_clip
from world.dataset import OnTheFlyWorld, to_tensor

from .config import DataConfig, DiTTrainConfig, VAETrainConfig, config_to_dict
from .dit import DiT
from .flow import flow_loss
from .vae import VideoVAE, psnr, vae_loss

# ----------------------------------------------------------------------------------------------
# data


def _collate(items: list[dict]) -> dict:
    out = {"caption": [i["caption"] for i in items], "seed": torch.tensor([i["seed"] for i in items])}
    key = "video" if "video" in items[0] else "latent"
    out[key] = torch.stack([i[key] for i in items])
    return out


def world_dataset(c: DataConfig, split: str, n: int, random_caption: bool = False,
                  hflip: bool = False) -> OnTheFlyWorld:
    return OnTheFlyWorld(split, n, families=tuple(c.families) or FAMILIES, width=c.width, height=c.height,
                         fps=c.fps, n_frames=c.n_frames, random_caption=random_caption, hflip=hflip)


def _encode_clips(vae: VideoVAE, ds: OnTheFlyWorld, idx: range):
    """Latent means of the clips ds.seeds[idx], and the clips."""
    clips = [make_clip(ds.seeds[i], **ds.kw) for i in idx]
    with torch.no_grad():
        z, _ = vae.encode(torch.stack([to_tensor(c.frames) for c in clips]))
    return z, clips


class WorldDataModule(L.LightningDataModule):
    """World clips rendered on the fly from train-split and val-split seeds (no disk, no overlap)."""

    def __init__(self, cfg: DataConfig):
        super().__init__()
        self.cfg = cfg

    def train_dataloader(self) -> DataLoader:
        ds = world_dataset(self.cfg, "train", self.cfg.train_clips, True, self.cfg.hflip)
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=True, num_workers=self.cfg.num_workers,
                          collate_fn=_collate, drop_last=True, persistent_workers=self.cfg.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        ds = world_dataset(self.cfg, "val", self.cfg.val_clips)
        return DataLoader(ds, batch_size=self.cfg.batch_size, collate_fn=_collate)


class LatentDataset(Dataset):
    """Pre-computed VAE latents with their captions (a random phrasing per access)."""

    def __init__(self, path: str | Path, random_caption: bool = True):
        blob = torch.load(path, weights_only=True)
        self.latents, self.seeds = blob["latents"], blob["seeds"]
        self.captions: list[list[str]] = json.loads(blob["captions"])
        self.random_caption = random_caption

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        caps = self.captions[i]
        cap = caps[int(torch.randint(len(caps), ()))] if self.random_caption else caps[0]
        return {"latent": self.latents[i].float(), "caption": cap, "seed": int(self.seeds[i])}


class LatentDataModule(L.LightningDataModule):
    def __init__(self, train_path: Path, val_path: Path, batch_size: int, num_workers: int = 0):
        super().__init__()
        self.train_path, self.val_path = train_path, val_path
        self.batch_size, self.num_workers = batch_size, num_workers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(LatentDataset(self.train_path), batch_size=self.batch_size, shuffle=True,
                          num_workers=self.num_workers, collate_fn=_collate, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(LatentDataset(self.val_path, random_caption=False), batch_size=self.batch_size,
                          collate_fn=_collate)


# ----------------------------------------------------------------------------------------------
# modules


def _schedule(optimizer, t) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant or cosine decay; a function of the absolute step, so a resumed run
    may change its schedule."""
    if t.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {t.lr_schedule!r}")

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
        return t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class VAEModule(L.LightningModule):
    def __init__(self, cfg: VAETrainConfig):
        super().__init__()
        self.cfg = cfg
        self.save_hyperparameters({"config": config_to_dict(cfg)})
        self.vae = VideoVAE(cfg.model)
        if not cfg.train.train_encoder:
            # decoder-only fine-tuning (as Stable Diffusion's ft-MSE VAE): latents keep their meaning
            self.vae.encoder.requires_grad_(False)

    def training_step(self, batch, _):
        x = batch["video"]
        n = self.cfg.data.crop_frames
        if n and n < x.shape[2]:  # a random window of 1 + 4k frames
            s = int(torch.randint(0, x.shape[2] - n + 1, ()))
            x = x[:, :, s: s + n]
        recon, mean, logvar = self.vae(x)
        loss, parts = vae_loss(x, recon, mean, logvar, kl_weight=self.cfg.train.kl_weight)
        self.log_dict({"train/loss": loss, "train/l1": parts["l1"], "train/kl": parts["kl"]}, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        x = batch["video"]
        z, _ = self.vae.encode(x)
        self.log("val/psnr", psnr(self.vae.decode(z), x).mean(), prog_bar=True, batch_size=x.shape[0])

    def configure_optimizers(self):
        t = self.cfg.train
        opt = torch.optim.AdamW(self.vae.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": _schedule(opt, t), "interval": "step"}}


class DiTModule(L.LightningModule):
    """Rectified flow on normalised latents, caption dropout for guidance, frame conditioning, EMA."""

    def __init__(self, cfg: DiTTrainConfig):
        super().__init__()
        self.cfg = cfg
        self.save_hyperparameters({"config": config_to_dict(cfg)})
        self.dit = DiT(cfg.model)
        self.ema = copy.deepcopy(self.dit).requires_grad_(False)
        self._text = None

    @property
    def text(self):
        if self._text is None:
            from .text import get_text_encoder

            self._text = get_text_encoder()
        return self._text

    def _frame_condition(self, x0: torch.Tensor):
        """For a share of samples, give the first latent frame (image-to-video) or the first half of the
        latent frames (extension) as conditioning."""
        B, _, T = x0.shape[:3]
        mask = torch.zeros(B, 1, T, 1, 1, device=x0.device, dtype=x0.dtype)
        pick = torch.rand(B, device=x0.device) < self.cfg.train.frame_cond_prob
        n_given = torch.where(torch.rand(B, device=x0.device) < 0.5, 1, max(1, T // 2))
        for i in torch.nonzero(pick).flatten().tolist():
            mask[i, :, : int(n_given[i])] = 1
        return x0, mask

    def training_step(self, batch, _):
        x0 = batch["latent"]
        caps = [("" if torch.rand(()) < self.cfg.train.caption_dropout else c) for c in batch["caption"]]
        text, mask = self.text(caps)
        cond, cmask = (self._frame_condition(x0) if self.cfg.model.frame_cond else (None, None))
        loss = flow_loss(self.dit, x0, text, mask, cond, cmask)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, *_):
        d = self.cfg.train.ema_decay
        # warm the EMA up from the raw weights early on (the average of a random start is useless)
        d = min(d, (1 + self.global_step) / (10 + self.global_step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.dit.parameters()):
                e.lerp_(p, 1 - d)

    def validation_step(self, batch, _):
        x0 = batch["latent"]
        text, mask = self.text(batch["caption"])
        g = torch.Generator().manual_seed(0)
        t = torch.rand(x0.shape[0], generator=g)
        torch.manual_seed(1)
        self.log("val/loss", flow_loss(self.ema, x0, text, mask, t=t), prog_bar=True, batch_size=x0.shape[0])

    def configure_optimizers(self):
        t = self.cfg.train
        decay = [p for n, p in self.dit.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.dit.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, betas=(0.9, 0.99))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": _schedule(opt, t), "interval": "step"}}


# ----------------------------------------------------------------------------------------------
# entry points


class StepPrinter(L.Callback):
    """One line every `every` steps (logs of background runs stay readable)."""

    def __init__(self, every: int = 25):
        self.every, self.t0 = every, time.time()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0 and trainer.is_global_zero:
            m = {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}
            print(f"step {trainer.global_step} {time.time() - self.t0:.0f}s {m}", flush=True)


def _trainer(cfg, run_dir: Path) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        max_steps=t.max_steps, gradient_clip_val=t.grad_clip or None, val_check_interval=t.val_every,
        check_val_every_n_epoch=None, limit_val_batches=4, num_sanity_val_steps=0,
        logger=CSVLogger(str(run_dir), name="logs"),  # a new version_N per (re)start: no log is overwritten
        callbacks=[ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_last=True, save_top_k=0,
                                   every_n_train_steps=t.checkpoint_every), StepPrinter()],
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=10,
    )


def _resume_path(run_dir: Path) -> str | None:
    last = run_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.exists() else None


def train_vae(cfg: VAETrainConfig) -> Path:
    L.seed_everything(cfg.train.seed, workers=True)
    run_dir = Path(cfg.train.run_dir)
    module = VAEModule(cfg)
    trainer = _trainer(cfg, run_dir)
    trainer.fit(module, WorldDataModule(cfg.data), ckpt_path=_resume_path(run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def precompute_latents(vae: VideoVAE, cfg: DataConfig, split: str, n: int, out: Path, batch: int = 16,
                       progress=None) -> Path:
    """Encode n world clips of `split` once (latent means, fp16) with all their captions."""
    ds = world_dataset(cfg, split, n)
    lat, caps, seeds = [], [], []
    vae.eval()
    for s in range(0, n, batch):
        idx = range(s, min(n, s + batch))
        z, clips = _encode_clips(vae, ds, idx)
        lat.append(z.half())
        caps += [c.captions for c in clips]
        seeds += [ds.seeds[i] for i in idx]
        if progress:
            progress(len(seeds), n)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"latents": torch.cat(lat), "captions": json.dumps(caps), "seeds": torch.tensor(seeds)}, tmp)
    tmp.replace(out)
    return out


def train_dit(cfg: DiTTrainConfig) -> Path:
    from .weights import load_vae

    L.seed_everything(cfg.train.seed, workers=True)
    run_dir = Path(cfg.train.run_dir)
    vae, stats = load_vae(cfg.vae_checkpoint or None)
    paths = {}
    for split, n in (("train", cfg.data.latent_clips), ("val", cfg.data.val_clips)):
        p = run_dir / f"latents_{split}_{n}.pt"
        if not p.exists():
            print(f"encoding {n} {split} clips to {p}", flush=True)
            precompute_latents(vae, cfg.data, split, n, p,
                               progress=lambda k, n: print(f"  {k}/{n}", flush=True) if k % 256 < 16 else None)
        paths[split] = p
    # train on normalised latents: the VAE's per-channel statistics, stored with the VAE weights
    dm = NormalisedLatents(paths["train"], paths["val"], cfg.data.batch_size, stats, cfg.data.num_workers)
    module = DiTModule(cfg)
    trainer = _trainer(cfg, run_dir)
    trainer.fit(module, dm, ckpt_path=_resume_path(run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


class NormalisedLatents(LatentDataModule):
    def __init__(self, train_path, val_path, batch_size, stats: dict, num_workers: int = 0):
        super().__init__(train_path, val_path, batch_size, num_workers)
        self.mean = stats["mean"].view(1, -1, 1, 1, 1)
        self.std = stats["std"].view(1, -1, 1, 1, 1)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        batch["latent"] = (batch["latent"] - self.mean.to(batch["latent"])) / self.std.to(batch["latent"])
        return batch


def latent_stats(vae: VideoVAE, cfg: DataConfig, n: int = 256) -> dict:
    """Per-channel mean and std of latents of n training clips (the DiT works on standardised latents)."""
    ds = world_dataset(cfg, "train", n)
    z = torch.cat([_encode_clips(vae, ds, range(s, min(n, s + 16)))[0] for s in range(0, n, 16)])
    z = z.transpose(0, 1).flatten(1)
    return {"mean": z.mean(1), "std": z.std(1).clamp_min(1e-3)}

