"""Training with Lightning: data modules, the two LightningModules (VAE, DiT) and the entry points.

The LightningModules only wire loss, optimiser, EMA and logging around the plain nn.Modules of vae.py and
dit.py. Runs are resumable: `runs/<name>/checkpoints/last.ckpt` holds the model, the EMA, the optimiser and
the step, and `train_*` continues from it when it exists. The same code runs DDP through Lightning's own
strategies (`train.strategy: ddp`, `train.devices: 2` on CPU processes; GPUs and nodes by flags only).

The DiT trains on buckets of (frames, height, width) (`data.buckets`, as Sora trains on native sizes):
precompute_latents encodes every bucket into one cache file, and BucketBatchSampler draws each batch from
one bucket, buckets in proportion to their clips, sharding DDP ranks itself.
"""
from __future__ import annotations

import bisect
import copy
import hashlib
import json
import math
import random
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from daas.errors import DaasError
from world import FAMILIES, make_clip
from world.captions import names_word
from world.dataset import OnTheFlyWorld, to_tensor

from .config import (Bucket, DataConfig, DiTTrainConfig, VAETrainConfig, bucket_name, config_to_dict,
                     resolve_precision)
from .decoder_pairs import DecoderPairs
from .defaults import DEFAULT_GUIDANCE
from .dit import DiT, DiTConfig
from .flow import decoded_loss, flow_loss, guidance_distillation_loss
from .object_maps import ATTRIBUTES, object_maps_path, precompute_object_maps
from .vae import PatchDiscriminator, VideoVAE, hinge_d_loss, psnr, vae_loss
from .weights import torch_save_atomic

# ----------------------------------------------------------------------------------------------
# data


def _collate(items: list[dict]) -> dict:
    out = {"caption": [i["caption"] for i in items], "seed": torch.tensor([i["seed"] for i in items])}
    key = "video" if "video" in items[0] else "latent"
    out[key] = torch.stack([i[key] for i in items])
    if "bucket" in items[0]:  # a batch comes from one bucket (BucketBatchSampler)
        out["bucket"] = items[0]["bucket"]
    if "objects" in items[0]:
        out["objects"] = torch.stack([i["objects"] for i in items])
    return out


def world_dataset(c: DataConfig, split: str, n: int, random_caption: bool = False,
                  hflip: bool = False) -> OnTheFlyWorld:
    return OnTheFlyWorld(split, n, families=tuple(c.families) or FAMILIES, width=c.width, height=c.height,
                         fps=c.fps, n_frames=c.n_frames, random_caption=random_caption, hflip=hflip)


class _ClipsToEncode(Dataset):
    """The clips of an OnTheFlyWorld with all their captions: precompute_latents renders them in workers."""

    def __init__(self, ds: OnTheFlyWorld):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        clip = make_clip(self.ds.seeds[i], **self.ds.kw)
        # uint8 frames: a quarter of the float clip's bytes, and sent through a pipe, not shared memory
        return clip.frames, clip.captions


def _encode_clips(vae: VideoVAE, ds: OnTheFlyWorld, idx: range) -> torch.Tensor:
    """Latent means of the clips ds.seeds[idx]."""
    clips = _ClipsToEncode(ds)
    with torch.no_grad():
        return vae.encode(torch.stack([to_tensor(clips[i][0]) for i in idx]))[0]


class WorldDataModule(L.LightningDataModule):
    """World clips rendered on the fly from train-split and val-split seeds (no disk, no overlap)."""

    def __init__(self, cfg: DataConfig):
        super().__init__()
        self.cfg = cfg
        self._pairs = None  # data.dit_pairs, read once (train_vae checks them before the run starts)

    def train_dataloader(self) -> DataLoader:
        ds = world_dataset(self.cfg, "train", self.cfg.train_clips, True, self.cfg.hflip)
        collate = _collate
        if self.cfg.dit_pairs:
            self._pairs = self._pairs or DecoderPairs(self.cfg.dit_pairs)
            ds, collate = WorldWithDecoderPairs(ds, self._pairs, self.cfg.dit_pairs_share), None
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=True, num_workers=self.cfg.num_workers,
                          collate_fn=collate, drop_last=True, persistent_workers=self.cfg.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        ds = world_dataset(self.cfg, "val", self.cfg.val_clips)
        return DataLoader(ds, batch_size=self.cfg.batch_size, collate_fn=_collate)


class WorldWithDecoderPairs(Dataset):
    """World clips, each replaced with probability `share` by a random DiT-latent pair (generator.decoder_pairs):
    items {"video", "latent", "has_latent", "seed", "caption"}, the latent zero where the clip is the world's (the
    VAE module decodes the clip's own noisy latent there)."""

    def __init__(self, world: OnTheFlyWorld, pairs: DecoderPairs, share: float):
        clip = pairs.kw
        if (clip["n_frames"], clip["height"], clip["width"]) != (world.kw["n_frames"], world.kw["height"],
                                                                 world.kw["width"]):
            raise ValueError(f"the decoder pairs are of {pairs.meta['frames']} (frames, height, width) clips, the "
                             f"data config's of {[world.kw['n_frames'], world.kw['height'], world.kw['width']]}")
        self.world, self.pairs, self.share = world, pairs, share

    def __len__(self) -> int:
        return len(self.world)

    def __getitem__(self, i: int) -> dict:
        if random.random() < self.share:
            item = self.pairs[random.randrange(len(self.pairs))]
            return {**item, "has_latent": True, "caption": ""}
        item = self.world[i]
        return {**item, "latent": torch.zeros(self.pairs.latents.shape[1:]), "has_latent": False}


class LatentDataset(Dataset):
    """Pre-computed VAE latents with their captions (a random phrasing per access), in one or more buckets
    of (frames, height, width); items are numbered bucket after bucket, and `sizes` counts each bucket's.

    The file is precompute_latents' {"buckets", "latents": {name: tensor}, "seeds": {name: tensor},
    "captions": JSON {name: [[caption, ...], ...]}}; a file of the single-bucket format before buckets
    ({"latents": tensor, ...}) is read as one bucket named `legacy_bucket`'s name ("single" without one)."""

    def __init__(self, path: str | Path, random_caption: bool = True, legacy_bucket: Bucket | None = None,
                 objects: str | Path | None = None):
        blob = torch.load(path, weights_only=True)
        caps = json.loads(blob["captions"])
        if isinstance(blob["latents"], dict):
            self.buckets: list[Bucket] = [tuple(int(v) for v in b) for b in blob["buckets"].tolist()]
            self.names = [bucket_name(b) for b in self.buckets]
            lat, seeds = blob["latents"], blob["seeds"]
        else:
            self.buckets = [legacy_bucket] if legacy_bucket else []
            self.names = [bucket_name(legacy_bucket) if legacy_bucket else "single"]
            lat, seeds, caps = {self.names[0]: blob["latents"]}, {self.names[0]: blob["seeds"]}, {self.names[0]: caps}
        self.latents = [lat[n] for n in self.names]
        self.seeds = [seeds[n] for n in self.names]
        self.captions: list[list[list[str]]] = [caps[n] for n in self.names]
        self.sizes = [len(x) for x in self.latents]
        self.starts = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        self.random_caption = random_caption
        # optional object maps (generator.object_maps), uint8 shares, one per clip in the same order
        self.objects = None
        if objects is not None:
            maps = torch.load(objects, weights_only=True)["maps"]
            self.objects = [maps[n] for n in self.names]
            if [len(m) for m in self.objects] != self.sizes:
                raise ValueError(f"{objects} does not match {path}: delete it to compute it again")

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        b = bisect.bisect_right(self.starts, i) - 1
        j = i - self.starts[b]
        caps = self.captions[b][j]
        cap = caps[int(torch.randint(len(caps), ()))] if self.random_caption else caps[0]
        item = {"latent": self.latents[b][j].float(), "caption": cap, "seed": int(self.seeds[b][j]),
                "bucket": self.names[b]}
        if self.objects is not None:
            item["objects"] = self.objects[b][j].float() / 255
        return item


def caption_repeats(ds: LatentDataset, words: dict[str, int]) -> list[int]:
    """Per item of ds, how many times it comes in a training epoch: the largest count of `words` whose word one
    of its captions names ({"square": 2}: clips with a square twice), else 1. The world draws balls as half of
    all objects; the DiT draws squares of moving families round (model card, session 30)."""
    pats = [(names_word(w), k) for w, k in words.items()]
    return [max([k for pat, k in pats if any(pat.search(c) for c in caps)], default=1)
            for bucket in ds.captions for caps in bucket]


class _EpochHook:
    """Lightning calls set_epoch on `dataloader.batch_sampler.sampler` (not on the batch sampler)."""

    def __init__(self, owner: BucketBatchSampler):
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices that each come from one bucket, so their tensors stack.

    `sizes[k]` items of bucket k are numbered consecutively (LatentDataset's order). Training (shuffle):
    each epoch permutes every bucket, cuts it into batches (drop_last drops a bucket's remainder) and
    shuffles all batches together, so buckets come in proportion to their number of clips; the order is a
    function of (seed, epoch) alone. Evaluation (no shuffle): buckets in turn, so the first batches cover
    every bucket. Under DDP each of `num_replicas` ranks takes every num_replicas-th batch of the same
    order (Lightning's sampler replacement must be off: use_distributed_sampler=False); with drop_last all
    ranks get the same number of batches. `repeats` (training only): how many times each item comes in an
    epoch (default once), to weight some clips without encoding more of them."""

    def __init__(self, sizes: list[int], batch_size: int, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, num_replicas: int = 1, rank: int = 0, repeats: list[int] | None = None):
        if batch_size < 1 or not (0 <= rank < num_replicas):
            raise ValueError(f"batch_size {batch_size}, rank {rank} of {num_replicas}")
        if repeats is not None and (len(repeats) != sum(sizes) or min(repeats, default=1) < 1 or not shuffle):
            raise ValueError(f"repeats must give each of the {sum(sizes)} items a count >= 1, and only when shuffling")
        self.repeats = None if repeats is None else torch.as_tensor(repeats, dtype=torch.long)
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        # the items of each bucket in one epoch, repeated items as often as asked
        self.counts = [n if self.repeats is None else int(self.repeats[a:a + n].sum()) for a, n in zip(starts, sizes)]
        self.sizes, self.batch_size, self.shuffle, self.drop_last = list(sizes), batch_size, shuffle, drop_last
        self.seed, self.num_replicas, self.rank, self.epoch = seed, num_replicas, rank, 0
        self.sampler = _EpochHook(self)
        if drop_last and len(self) == 0:
            raise ValueError(f"buckets of {self.counts} clips give no batch of {batch_size} "
                             f"for each of {num_replicas} processes")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_bucket(self) -> list[int]:
        bs = self.batch_size
        return [n // bs if self.drop_last else -(-n // bs) for n in self.counts]

    def __len__(self) -> int:
        total = sum(self._per_bucket())
        if self.drop_last:
            return total // self.num_replicas
        return len(range(self.rank, total, self.num_replicas))

    def batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        per_bucket, start = [], 0
        for n, k in zip(self.sizes, self._per_bucket()):
            idx = torch.arange(start, start + n)
            if self.repeats is not None:
                idx = idx.repeat_interleave(self.repeats[start:start + n])
            idx = idx[torch.randperm(len(idx), generator=g)] if self.shuffle else idx
            per_bucket.append([idx[i * self.batch_size:(i + 1) * self.batch_size].tolist() for i in range(k)])
            start += n
        if self.shuffle:
            flat = [b for bb in per_bucket for b in bb]
            out = [flat[i] for i in torch.randperm(len(flat), generator=g).tolist()]
        else:  # round robin over the buckets
            out = [bb[i] for i in range(max(map(len, per_bucket), default=0)) for bb in per_bucket if i < len(bb)]
        if self.drop_last:
            out = out[: len(out) // self.num_replicas * self.num_replicas]
        return out[self.rank::self.num_replicas]

    def __iter__(self):
        return iter(self.batches())


class LatentDataModule(L.LightningDataModule):
    """Latents served in single-bucket batches (BucketBatchSampler); the Trainer must not replace the
    sampler (use_distributed_sampler=False): under DDP the batch sampler shards by rank itself."""

    def __init__(self, train_path: Path, val_path: Path, batch_size: int, num_workers: int = 0, seed: int = 0,
                 legacy_bucket: Bucket | None = None, object_maps: bool = False,
                 caption_repeats: dict[str, int] | None = None):
        super().__init__()
        self.train_path, self.val_path = train_path, val_path
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.legacy_bucket = legacy_bucket
        self.object_maps = object_maps
        self.caption_repeats = dict(caption_repeats or {})

    def _ranks(self) -> tuple[int, int]:
        t = self.trainer
        return (t.world_size, t.global_rank) if t is not None else (1, 0)

    def _loader(self, path: Path, train: bool) -> DataLoader:
        ds = LatentDataset(path, random_caption=train, legacy_bucket=self.legacy_bucket,
                           objects=object_maps_path(path) if self.object_maps else None)
        # training shards the batches among DDP ranks; validation runs whole on every rank, so the logged
        # (rank 0) losses cover every bucket and every val clip
        n, rank = self._ranks() if train else (1, 0)
        repeats = caption_repeats(ds, self.caption_repeats) if train and self.caption_repeats else None
        sampler = BucketBatchSampler(ds.sizes, self.batch_size, shuffle=train, drop_last=train, seed=self.seed,
                                     num_replicas=n, rank=rank, repeats=repeats)
        return DataLoader(ds, batch_sampler=sampler, num_workers=self.num_workers if train else 0,
                          collate_fn=_collate, persistent_workers=train and self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_path, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_path, False)


# ----------------------------------------------------------------------------------------------
# modules


def _schedule(optimizer, t) -> torch.optim.lr_scheduler.LambdaLR:
    """lr 0 for moments_warmup_steps (AdamW's moments fill up), linear warm-up, then constant or cosine decay
    (from decay_start on, if later); a function of the absolute step, so a resumed run may change its schedule."""
    if t.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {t.lr_schedule!r}")
    hold = t.moments_warmup_steps

    def factor(step: int) -> float:
        if step < hold:
            return 0.0
        if step < hold + t.warmup_steps:
            return (step - hold + 1) / t.warmup_steps
        if t.lr_schedule == "constant":
            return 1.0
        start = max(hold + t.warmup_steps, t.decay_start)
        progress = min(1.0, max(0, step - start) / max(1, t.max_steps - start))
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
        t = cfg.train
        if min(t.gan_weight, t.gan_start, t.gradient_weight) < 0:
            raise ValueError("train.gan_weight, train.gan_start and train.gradient_weight must be >= 0")
        self.disc = PatchDiscriminator() if t.gan_weight > 0 else None

    def training_step(self, batch, _):
        x = batch["video"]
        n = self.cfg.data.crop_frames
        if n and n < x.shape[2]:  # a random window of 1 + 4k frames
            s = int(torch.randint(0, x.shape[2] - n + 1, ()))
            x = x[:, :, s: s + n]
        z, mean, logvar = self._latents(x)
        if "latent" in batch:  # the DiT's latents of some clips (data.dit_pairs): those clips decode from them
            z = torch.where(batch["has_latent"].view(-1, 1, 1, 1, 1), batch["latent"].to(z.dtype), z)
        recon = self.vae.decode(z)
        loss, parts = vae_loss(x, recon, mean, logvar, kl_weight=self.cfg.train.kl_weight,
                               gradient_weight=self.cfg.train.gradient_weight)
        logs = {"train/loss": loss, **{f"train/{k}": v for k, v in parts.items()}}
        if self.disc is not None:
            loss, more = self._adversarial(x, recon, loss)
            logs.update(more)
        self.log_dict(logs, prog_bar=True)
        return loss

    def _latents(self, x):
        """(a posterior sample of x's latents, the posterior's mean and log-variance). Under train.decoder_noise the
        sample gets noise of sigma ~ U(0, decoder_noise) latent standard deviations too (per channel, measured on
        the batch): the (frozen) encoder's clean clip stays the target."""
        noise = self.cfg.train.decoder_noise
        with torch.set_grad_enabled(torch.is_grad_enabled() and not noise):
            mean, logvar = self.vae.posterior(x)
        if not noise:
            return self.vae.sample_posterior(mean, logvar), mean, logvar
        with torch.no_grad():
            sigma = torch.rand(x.shape[0], 1, 1, 1, 1, device=x.device) * noise
            scale = mean.float().std(dim=(0, 2, 3, 4), keepdim=True).to(mean.dtype)
            z = self.vae.sample_posterior(mean, logvar) + sigma * scale * torch.randn_like(mean)
        return z, mean, logvar

    def _adversarial(self, x, recon, rec_loss):
        """Hinge GAN in one optimiser step: the discriminator learns from detached reconstructions, and the
        decoder's term sees the discriminator through detached weights, so each term moves only its side.
        The decoder's term is scaled so its gradient at the last layer matches the reconstruction loss's
        (times gan_weight), as in taming-transformers."""
        t = self.cfg.train
        d_loss = hinge_d_loss(self.disc(x), self.disc(recon.detach()))
        frozen = {k: v.detach() for k, v in self.disc.named_parameters()}
        g_loss = -torch.func.functional_call(self.disc, frozen, (recon,)).mean()
        logs = {"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}
        if self.global_step < t.gan_start:
            return rec_loss + d_loss, logs
        last = self.vae.decoder.net[-2].conv.weight  # the decoder's last convolution
        g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
        g_adv = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        weight = (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach() * t.gan_weight
        logs["train/gan_scale"] = weight
        return rec_loss + weight * g_loss + d_loss, logs

    def validation_step(self, batch, _):
        x = batch["video"]
        z, _ = self.vae.encode(x)
        self.log("val/psnr", psnr(self.vae.decode(z), x).mean(), prog_bar=True, batch_size=x.shape[0])

    def configure_optimizers(self):
        t = self.cfg.train
        # (frozen encoder weights stay in the list and get no gradient: runs resume across both settings)
        params = list(self.vae.parameters()) + (list(self.disc.parameters()) if self.disc is not None else [])
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
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
        self._decoder = None  # the frozen VAE decoder of train.decoded_loss_weight (attach_decoder; not saved)
        self._teacher = None  # the frozen teacher DiT of train.distill_from (attach_teacher; not saved)
        self.aux = None  # the object-map head (generator.object_maps): training only, not exported
        if cfg.train.aux_weight > 0:
            D = cfg.model.width
            self.aux = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, len(ATTRIBUTES)))
        if cfg.train.compile:  # in place: parameter names, checkpoints and the EMA copy stay as they are
            for block in self.dit.blocks:
                block.compile()

    @property
    def text(self):
        if self._text is None:
            from .text import TextEncoder, get_text_encoder

            # on a GPU the captions are encoded there (a batch of 256 costs ~0.1 s on CPU cores, more than a step)
            self._text = get_text_encoder() if self.device.type == "cpu" else TextEncoder().to(self.device)
        return self._text

    def attach_decoder(self, vae: VideoVAE, stats: dict) -> None:
        """The frozen decoder that train.decoded_loss_weight decodes through, with the latents' statistics (the
        DiT works on normalised latents). Kept out of the module's parameters and checkpoints."""
        # in a tuple, not a submodule: its weights stay out of state_dict, the optimiser and the EMA
        self._decoder = (vae.requires_grad_(False).eval(), stats["mean"].view(1, -1, 1, 1, 1),
                         stats["std"].view(1, -1, 1, 1, 1))

    def attach_teacher(self, teacher: DiT) -> None:
        """The frozen DiT whose guided velocity train.distill_from distils (generator.flow.guidance_distillation_loss).
        Kept out of the module's parameters and checkpoints, like the decoder."""
        self.check_teacher(teacher.cfg, self.cfg.model)
        self._teacher = (teacher.requires_grad_(False).eval(),)

    @staticmethod
    def check_teacher(teacher: DiTConfig, student: DiTConfig) -> None:
        if teacher.guidance_head:
            raise DaasError("the teacher must be a DiT without a guidance head (it is guided by CFG)")
        if teacher.latent_channels != student.latent_channels or teacher.frame_cond != student.frame_cond:
            raise DaasError("the teacher DiT works on other latent channels or frame conditioning than the student")

    def _captions(self, batch) -> list[str]:
        """The batch's captions, each dropped (replaced by the empty prompt) at train.caption_dropout, for guidance."""
        return [("" if torch.rand(()) < self.cfg.train.caption_dropout else c) for c in batch["caption"]]

    def _null_prompt(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty prompt for each row of `text`, padded to its length (padding is masked, so it changes nothing)."""
        null, null_mask = self.text([""])
        pad = text.shape[1] - null.shape[1]
        return (F.pad(null, (0, 0, 0, pad)).expand(text.shape[0], -1, -1),
                F.pad(null_mask, (0, pad)).expand(text.shape[0], -1))

    def _distill_inputs(self, batch):
        """Captions (with dropout), their padded null prompt and frame conditioning: what both models see."""
        x0 = batch["latent"]
        text, mask = self.text(self._captions(batch))
        cond, cmask = (self._frame_condition(x0) if self.cfg.model.frame_cond else (None, None))
        return (x0, text, mask, *self._null_prompt(text), cond, cmask)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> frames, through the attached decoder."""
        vae, mean, std = self._decoder
        return vae.decode(z * std.to(z) + mean.to(z))

    def _frame_condition(self, x0: torch.Tensor):
        """For a share of samples, give the first latent frame (image-to-video) or the first half of the
        latent frames (extension) as conditioning."""
        B, _, T = x0.shape[:3]
        pick = torch.rand(B, device=x0.device) < self.cfg.train.frame_cond_prob
        n_given = torch.where(torch.rand(B, device=x0.device) < 0.5, 1, max(1, T // 2))
        n_given = torch.where(pick, n_given, 0)  # (no per-sample loop: on a GPU each would wait for the device)
        mask = torch.arange(T, device=x0.device)[None] < n_given[:, None]
        return x0, mask.to(x0.dtype).view(B, 1, T, 1, 1)

    def _flow_loss(self, model, x0, text, mask, cond, cmask):
        t = self.cfg.train  # the training loss as configured (validation measures the plain loss)
        return flow_loss(model, x0, text, mask, cond, cmask, shift=t.timestep_shift, time_range=t.time_range,
                         temporal_weight=t.temporal_loss_weight)

    def training_step(self, batch, _):
        if self.cfg.train.distill_from:
            return self._distill_step(batch)
        x0 = batch["latent"]
        caps = self._captions(batch)
        text, mask = self.text(caps)
        cond, cmask = (self._frame_condition(x0) if self.cfg.model.frame_cond else (None, None))
        t = self.cfg.train
        seen = {}  # what the DiT was given and said, for the terms beyond the flow loss

        def dit(xt, tt, *args):
            if self.aux is None:
                out = self.dit(xt, tt, *args)
            else:
                out, seen["hidden"] = self.dit(xt, tt, *args, hidden_at=t.aux_block)
            seen.update(xt=xt, t=tt, pred=out)
            return out

        loss = self._flow_loss(dit, x0, text, mask, cond, cmask)
        self.log("train/loss", loss, prog_bar=True)
        total = loss
        if self.aux is not None:
            aux = self.aux_loss(seen["hidden"], batch["objects"])
            self.log("train/aux", aux)
            total = total + t.aux_weight * aux
        if t.decoded_loss_weight > 0:
            if self._decoder is None:
                raise RuntimeError("train.decoded_loss_weight needs the VAE decoder: DiTModule.attach_decoder")
            k = t.decoded_loss_clips
            dec = decoded_loss(self._decode, seen["xt"][:k], seen["t"][:k], seen["pred"][:k], x0[:k],
                               None if cmask is None else cmask[:k])
            self.log("train/decoded", dec)
            total = total + t.decoded_loss_weight * dec
        return total

    def _distill_step(self, batch):
        if self._teacher is None:
            raise RuntimeError("train.distill_from needs the teacher DiT: DiTModule.attach_teacher")
        x0, text, mask, null, null_mask, cond, cmask = self._distill_inputs(batch)
        lo, hi = self.cfg.train.distill_guidance
        w = lo + (hi - lo) * torch.rand(x0.shape[0], device=x0.device)
        loss = guidance_distillation_loss(self.dit, self._teacher[0], x0, text, mask, null, null_mask, w, cond,
                                          cmask, shift=self.cfg.train.timestep_shift)
        self.log("train/distill", loss, prog_bar=True)
        return loss

    def aux_loss(self, hidden: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the head's reading of tokens [B, N, width] against object maps
        [B, K, T, H, W] (token order of DiT.patchify: time, rows, columns)."""
        target = objects.flatten(2).transpose(1, 2)
        if target.shape[1] != hidden.shape[1]:
            raise ValueError(f"object maps have {target.shape[1]} tokens, the DiT {hidden.shape[1]}: "
                             "the maps' token size does not fit the VAE and patch")
        return F.binary_cross_entropy_with_logits(self.aux(hidden).float(), target.float())

    def on_train_batch_end(self, *_):
        d = self.cfg.train.ema_decay
        # warm the EMA up from the raw weights early on (the average of a random start is useless)
        d = min(d, (1 + self.global_step) / (10 + self.global_step))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.dit.parameters()), 1 - d)

    def validation_step(self, batch, _):
        x0 = batch["latent"]
        text, mask = self.text(batch["caption"])
        g = torch.Generator().manual_seed(0)
        lo, hi = self.cfg.train.time_range  # uniform times over the range trained on
        t = (lo + (hi - lo) * torch.rand(x0.shape[0], generator=g)).to(x0.device)
        torch.manual_seed(1)
        loss = flow_loss(self.ema, x0, text, mask, t=t)
        self.log("val/loss", loss, prog_bar=True, batch_size=x0.shape[0])
        if self._teacher is not None:
            # the EMA's distillation error at the default guidance scale, on fixed times and noise, against the
            # error of no distillation (the teacher's conditional velocity: where the student started)
            B = x0.shape[0]
            null, null_mask = self._null_prompt(text)
            w = torch.full((B,), DEFAULT_GUIDANCE, device=x0.device)
            noise = torch.randn(x0.shape, generator=g).to(x0)
            err, ref = guidance_distillation_loss(self.ema, self._teacher[0], x0, text, mask, null, null_mask, w, t=t,
                                                  noise=noise, with_reference=True)
            self.log("val/distill", err, batch_size=B)
            self.log("val/distill_rel", err / ref.clamp_min(1e-12), prog_bar=True, batch_size=B)
        if self.cfg.data.buckets and "bucket" in batch:  # and each bucket's own (the same val scenes in each)
            self.log(f"val/loss_{batch['bucket']}", loss, batch_size=x0.shape[0])

    def configure_optimizers(self):
        t = self.cfg.train
        trained = list(self.dit.parameters()) + (list(self.aux.parameters()) if self.aux is not None else [])
        decay = [p for p in trained if p.ndim >= 2]
        no_decay = [p for p in trained if p.ndim < 2]
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


class TimeBudget(L.Callback):
    """Fit the run into `seconds` of wall time (a GPU lent for a few minutes): every `every` steps until 80% of
    the budget, the step rate measured so far sets max_steps, and with it the end of the cosine schedule, so the
    learning rate reaches its floor as the time runs out; past the budget the run stops."""

    def __init__(self, seconds: float, train_cfg, every: int = 50):
        self.seconds, self.t, self.every = seconds, train_cfg, every
        self.t0 = self.step0 = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.t0 is None:  # from the first finished step: set-up and first-step compilation are not the rate
            self.t0, self.step0 = time.time(), step
            return
        elapsed = time.time() - self.t0
        if elapsed > self.seconds:
            trainer.should_stop = True
            return
        if (step - self.step0) % self.every or elapsed > 0.8 * self.seconds:
            return
        rate = (step - self.step0) / elapsed
        end = step + max(1, int(rate * (self.seconds - elapsed)))
        self.t.max_steps = end  # the schedule reads it at every step
        trainer.fit_loop.epoch_loop.max_steps = end
        if trainer.is_global_zero and (step - self.step0) % (10 * self.every) == 0:
            print(f"time budget: {rate:.2f} steps/s, {self.seconds - elapsed:.0f}s left: max_steps {end}", flush=True)


class ExportEvery(L.Callback):
    """Write the EMA DiT's shipped fp16 weights every `every` steps and at the end (atomically), so a run cut
    short (a lent machine taken back) still leaves its latest weights. A `{step}` in the path names each export
    by its step, so that the run keeps every one (to compare them later) instead of only the latest."""

    def __init__(self, every: int, out: str | Path):
        self.every, self.out = every, str(out)
        self.meta = None  # weights.dit_meta, made at the first export

    def _export(self, trainer, module) -> None:
        if trainer.is_global_zero:
            from .weights import dit_meta, save_dit_weights

            self.meta = self.meta or dit_meta(module.cfg)
            out = Path(self.out.replace("{step}", str(trainer.global_step)))
            save_dit_weights(self.meta, module.ema.state_dict(), trainer.global_step, out)
            print(f"exported step {trainer.global_step} -> {out}", flush=True)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0:
            self._export(trainer, module)

    def on_train_end(self, trainer, module):
        self._export(trainer, module)


class CheckpointAtEnd(L.Callback):
    """Write last.ckpt where the run stops (max_steps, or the time budget's end) when that step falls between two of
    the periodic checkpoints: a run resumed later then goes on from there, instead of repeating up to
    checkpoint_every - 1 steps already trained (and already in its last export). Session 24: a CPU run stopped by
    its budget at step 593 resumed from step 550."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = path, every

    def on_train_end(self, trainer, module):
        if trainer.global_step % self.every:  # on a multiple, the periodic checkpoint holds this step already
            trainer.save_checkpoint(self.path)  # every rank calls it; the strategy writes once


def _trainer(cfg, run_dir: Path, use_distributed_sampler: bool = True, limit_val_batches: int = 4) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    extra = []
    if t.time_budget_s > 0:
        extra.append(TimeBudget(t.time_budget_s, t))
    if t.export_every > 0:
        extra.append(ExportEvery(t.export_every, t.export_to or run_dir / "export.safetensors"))
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        precision=resolve_precision(t.precision, t.accelerator),
        max_steps=t.max_steps, gradient_clip_val=t.grad_clip or None, val_check_interval=t.val_every,
        check_val_every_n_epoch=None, limit_val_batches=limit_val_batches, num_sanity_val_steps=0,
        use_distributed_sampler=use_distributed_sampler,
        logger=CSVLogger(str(run_dir), name="logs"),  # a new version_N per (re)start: no log is overwritten
        # no version counter: last.ckpt is always the run's own, also in a branch copied from another run
        # (whose restored callback state names the other folder and would make Lightning write last-v1.ckpt)
        callbacks=[ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_last=True, save_top_k=0,
                                   every_n_train_steps=t.checkpoint_every, enable_version_counter=False),
                   CheckpointAtEnd(run_dir / "checkpoints" / "last.ckpt", t.checkpoint_every), StepPrinter(), *extra],
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=10,
    )


def _resume_path(run_dir: Path) -> str | None:
    last = run_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.exists() else None


def _init_weights(module: L.LightningModule, cfg) -> None:
    """Start a fresh run from another run's model weights (`train.init_from`); a resumed run keeps its own.
    (A branch that must keep the other run's step, optimiser and schedule copies its last.ckpt into run_dir.)"""
    src = cfg.train.init_from
    if not src or _resume_path(Path(cfg.train.run_dir)):
        return
    if not Path(src).is_file():
        raise ValueError(f"train.init_from: {src} not found")
    state = torch.load(src, map_location="cpu", weights_only=False)["state_dict"]
    missing, unexpected = module.load_state_dict(state, strict=False)
    # training-only heads (a VAE's discriminator, a DiT's object-map head) are new to a run that adds them,
    # and dropped by one that does not
    heads = ("disc.", "aux.")
    missing = [k for k in missing if not k.startswith(heads)]
    unexpected = [k for k in unexpected if not k.startswith(heads)]
    if missing or unexpected:
        raise ValueError(f"train.init_from: {src} does not fit this model "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    print(f"initialised from {src}", flush=True)


def train_vae(cfg: VAETrainConfig) -> Path:
    if cfg.data.buckets:
        raise ValueError("data.buckets is for the DiT; the VAE trains on (n_frames, height, width) clips")
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    run_dir = Path(cfg.train.run_dir)
    dm = WorldDataModule(cfg.data)
    if cfg.data.dit_pairs:  # a missing or unfit pairs file fails here, before Lightning makes run_dir
        dm.train_dataloader()
    module = VAEModule(cfg)
    _init_weights(module, cfg)
    trainer = _trainer(cfg, run_dir)
    trainer.fit(module, dm, ckpt_path=_resume_path(run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def bucket_plan(cfg: DataConfig, n: int, per_bucket: bool = False) -> list[tuple[Bucket, int, int]]:
    """(bucket, clips, seed offset into the split) per bucket: n clips shared by the bucket weights on
    disjoint seeds (training), or, per_bucket, n clips in every bucket on the same seeds (validation: each
    bucket's loss is then measured on the same scenes)."""
    buckets = cfg.bucket_list()
    counts = [n] * len(buckets) if per_bucket else cfg.bucket_counts(n)
    offsets = [0] * len(buckets) if per_bucket else [sum(counts[:k]) for k in range(len(buckets))]
    return list(zip(buckets, counts, offsets))


def latent_cache_name(cfg: DataConfig, split: str, n: int, per_bucket: bool = False) -> str:
    """The cache file of these latents: the old name without buckets (existing caches stay valid), else a
    name that hashes everything that shapes the file, so a cache is never reused for another bucket list."""
    if not cfg.buckets:
        return f"latents_{split}_{n}.pt"
    key = json.dumps({"plan": bucket_plan(cfg, n, per_bucket), "fps": cfg.fps, "families": sorted(cfg.families)})
    return f"latents_{split}_{n}_{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"


def precompute_latents(vae: VideoVAE, cfg: DataConfig, split: str, n: int, out: Path, batch: int = 16,
                       progress=None, per_bucket: bool = False, num_workers: int = 0) -> Path:
    """Encode world clips of `split` once (latent means, fp16) with all their captions, bucket by bucket
    (bucket_plan: n clips shared among the buckets, or n per bucket); each clip is rendered at its bucket's
    duration and size (by `num_workers` processes) and encoded on the VAE's device. One file holds every
    bucket (see LatentDataset)."""
    plan = bucket_plan(cfg, n, per_bucket)
    total, done = sum(k for _, k, _ in plan), 0
    lat, caps, seeds = {}, {}, {}
    vae.eval()
    device = next(vae.parameters()).device
    for (f, h, w), k, offset in plan:
        name = bucket_name((f, h, w))
        ds = OnTheFlyWorld(split, k, offset, families=tuple(cfg.families) or FAMILIES, width=w, height=h,
                           fps=cfg.fps, n_frames=f, random_caption=False)
        loader = DataLoader(_ClipsToEncode(ds), batch_size=batch, num_workers=num_workers, collate_fn=list)
        zs, caps[name] = [], []
        for items in loader:
            with torch.no_grad():
                z, _ = vae.encode(torch.stack([to_tensor(v) for v, _ in items]).to(device))
            zs.append(z.half().cpu())
            caps[name] += [c for _, c in items]
            done += len(items)
            if progress:
                progress(done, total)
        lat[name], seeds[name] = torch.cat(zs), torch.tensor(list(ds.seeds))
    return torch_save_atomic({"buckets": torch.tensor([b for b, _, _ in plan]), "latents": lat, "seeds": seeds,
                              "captions": json.dumps(caps)}, out)


def _check_latents(ds: LatentDataset, cfg: DataConfig, vae: VideoVAE, path: Path) -> None:
    """The cache holds the configured buckets at the VAE's latent sizes (a stale cache is an error)."""
    want = cfg.bucket_list()
    # the channels too: run directories share caches by symlink, and a 4-channel cache under a 16-channel DiT
    # would otherwise fail late (or, with a DiT of matching width, train on the wrong latent space)
    shapes = [tuple(x.shape[1:]) for x in ds.latents]
    C = vae.cfg.latent_channels
    expect = [(C, vae.latent_frames(f), h // vae.space_factor, w // vae.space_factor) for f, h, w in want]
    if ds.buckets != want or shapes != expect:
        raise ValueError(f"{path} holds latents of sizes {shapes}, but the buckets "
                         f"{[bucket_name(b) for b in want]} need {expect}: delete it to encode it again")


def train_dit(cfg: DiTTrainConfig) -> Path:
    from .weights import load_dit, load_vae

    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    run_dir = Path(cfg.train.run_dir)
    vae, stats = load_vae(cfg.vae_checkpoint or None)
    teacher = None
    if cfg.train.distill_from:  # before any encoding: a wrong teacher must not cost the cache first
        from .weights import encoder_fingerprint

        teacher, meta = load_dit(cfg.train.distill_from)
        if meta.get("vae_encoder_sha256") not in (None, encoder_fingerprint(vae)):
            raise DaasError(f"{cfg.train.distill_from} was trained on the latents of another VAE encoder")
        DiTModule.check_teacher(teacher.cfg, cfg.model)
    on_gpu = cfg.train.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
    vae.to("cuda" if on_gpu else "cpu")
    d = cfg.data
    for (f, h, w), k, _ in bucket_plan(d, d.latent_clips):
        vae.check_frames(f)
        if k < d.batch_size * cfg.train.devices:
            raise ValueError(f"bucket {bucket_name((f, h, w))} gets {k} of {d.latent_clips} latent_clips: fewer "
                             f"than a batch of {d.batch_size} per device")
    paths = {}
    for split, n, per_bucket in (("train", d.latent_clips, False), ("val", d.val_clips, True)):
        p = run_dir / latent_cache_name(d, split, n, per_bucket)
        if not p.exists():
            print(f"encoding {split} clips of buckets {[bucket_name(b) for b in d.bucket_list()]} to {p}", flush=True)
            batch = 128 if on_gpu else 16
            precompute_latents(vae, d, split, n, p, batch=batch, per_bucket=per_bucket, num_workers=d.num_workers,
                               progress=lambda k, n: print(f"  {k}/{n}", flush=True) if k % (16 * batch) < batch else None)
        _check_latents(LatentDataset(p, legacy_bucket=d.bucket_list()[0]), d, vae, p)
        paths[split] = p
    # train on normalised latents: the VAE's per-channel statistics, stored with the VAE weights
    use_maps = cfg.train.aux_weight > 0
    if use_maps:
        token_px = vae.space_factor * cfg.model.patch[1]
        for p in paths.values():
            if not object_maps_path(p).exists():
                print(f"object maps of {p}", flush=True)
                precompute_object_maps(p, d.fps, tuple(d.families) or FAMILIES, token_px, vae.time_factor,
                                       progress=lambda k, n: print(f"  {k}/{n}", flush=True) if k % 2000 == 0 else None)
    dm = NormalisedLatents(paths["train"], paths["val"], d.batch_size, stats, d.num_workers, seed=cfg.train.seed,
                           legacy_bucket=d.bucket_list()[0], object_maps=use_maps, caption_repeats=d.caption_repeats)
    module = DiTModule(cfg)
    if cfg.train.decoded_loss_weight > 0:
        module.attach_decoder(vae, stats)
    if teacher is not None:
        module.attach_teacher(teacher)
    _init_weights(module, cfg)
    # every batch from one bucket: the bucket batch sampler shards DDP ranks itself; validation visits the
    # buckets in turn, so it sees 4 batches of each
    trainer = _trainer(cfg, run_dir, use_distributed_sampler=False, limit_val_batches=4 * len(d.bucket_list()))
    trainer.fit(module, dm, ckpt_path=_resume_path(run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


class NormalisedLatents(LatentDataModule):
    def __init__(self, train_path, val_path, batch_size, stats: dict, num_workers: int = 0, seed: int = 0,
                 legacy_bucket: Bucket | None = None, object_maps: bool = False,
                 caption_repeats: dict[str, int] | None = None):
        super().__init__(train_path, val_path, batch_size, num_workers, seed, legacy_bucket, object_maps,
                         caption_repeats)
        self.mean = stats["mean"].view(1, -1, 1, 1, 1)
        self.std = stats["std"].view(1, -1, 1, 1, 1)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        batch["latent"] = (batch["latent"] - self.mean.to(batch["latent"])) / self.std.to(batch["latent"])
        return batch


def latent_stats(vae: VideoVAE, cfg: DataConfig, n: int = 256) -> dict:
    """Per-channel mean and std of latents of n training clips (the DiT works on standardised latents)."""
    ds = world_dataset(cfg, "train", n)
    z = torch.cat([_encode_clips(vae, ds, range(s, min(n, s + 16))) for s in range(0, n, 16)])
    z = z.transpose(0, 1).flatten(1)
    return {"mean": z.mean(1), "std": z.std(1).clamp_min(1e-3)}

