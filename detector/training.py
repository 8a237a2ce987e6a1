"""Training: a LightningModule (loss, optimiser, logging), `fit`, and temperature scaling on validation data."""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .model import Detector, DetectorConfig, save_detector


def _module(cfg: DetectorConfig, lr: float, weight_decay: float, max_steps: int, frame_loss: float):
    import lightning as L
    import torch
    import torch.nn.functional as F

    class DetectorModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = Detector(cfg)
            self.val_scores: list = []

        def _loss(self, batch):
            x, y = batch
            logit, fl = self.model(x)
            loss = F.binary_cross_entropy_with_logits(logit, y)
            if frame_loss:
                loss = loss + frame_loss * F.binary_cross_entropy_with_logits(fl, y[:, None].expand_as(fl))
            return loss, logit, y

        def training_step(self, batch, _):
            loss, logit, y = self._loss(batch)
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/acc", ((logit > 0).float() == y).float().mean())
            return loss

        def validation_step(self, batch, _):
            loss, logit, y = self._loss(batch)
            self.log("val/loss", loss, prog_bar=True)
            self.val_scores.append((logit.detach(), y))

        def on_validation_epoch_end(self):
            if self.val_scores:
                from .evaluate import roc_auc

                s = torch.cat([a for a, _ in self.val_scores]).numpy()
                y = torch.cat([b for _, b in self.val_scores]).numpy()
                self.log("val/auc", roc_auc(y, s), prog_bar=True)
            self.val_scores = []

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(2, max_steps), pct_start=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return DetectorModule()


def collect_logits(model: Detector, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clip logits, frame logits [N, T], labels) over a loader, uncalibrated."""
    import torch

    model.eval()
    L, FL, Y = [], [], []
    with torch.no_grad():
        for x, y in loader:
            logit, fl = model(x)
            L.append(logit), FL.append(fl), Y.append(y)
    return torch.cat(L).numpy(), torch.cat(FL).numpy(), torch.cat(Y).numpy()


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.25, hi: float = 50.0) -> float:
    """The temperature T minimising the NLL of sigmoid(logit / T) (a 1-D search over log T in [lo, hi]).

    The lower bound matters when validation is perfectly separated: the NLL then keeps falling as T -> 0,
    and an unbounded fit would push every probability to 0 or 1 (overconfident on anything unseen)."""
    z, y = np.asarray(logits, np.float64), np.asarray(labels, np.float64)

    def nll(t):
        s = z / t
        return float(np.mean(np.logaddexp(0, s) - y * s))

    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 200))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.clip(best * np.exp(np.linspace(-0.05, 0.05, 41)), lo, hi)
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def fit(data_root: str | os.PathLike, out: str | os.PathLike, *, cfg: DetectorConfig | None = None,
        max_steps: int = 600, batch_size: int = 8, lr: float = 2e-3, weight_decay: float = 0.05,
        frame_loss: float = 0.5, p_aug: float = 0.5, seed: int = 0, val_every: int = 200, threads: int | None = 1,
        meta: dict | None = None, log_dir: str | os.PathLike | None = None, progress: bool = False,
        init: str | os.PathLike | None = None) -> dict:
    """Train on `<data_root>/train`, calibrate on `<data_root>/val`, save fp16 safetensors to `out`.
    `init`: detector weights to start from (e.g. the shipped ones, to follow a new generator); their
    architecture is used and `cfg` must be None or the same."""
    import lightning as L
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = None
    if init is not None:
        from daas.errors import DaasError

        from .model import load_detector

        start, _ = load_detector(init)
        if cfg is not None and cfg != start.cfg:
            raise DaasError(f"{init} has another architecture than the one asked for")
        cfg = start.cfg
    cfg = cfg or DetectorConfig()
    torch.manual_seed(seed)
    from .data import datamodule

    dm = datamodule(data_root, batch_size=batch_size, n_frames=cfg.n_frames, size=cfg.size, p_aug=p_aug, seed=seed)
    dm.setup()
    module = _module(cfg, lr, weight_decay, max_steps, frame_loss)
    if start is not None:
        module.model.load_state_dict(start.state_dict())
        module.model.temperature.fill_(1.0)  # refitted on val below
    has_val = "val" in dm.data
    from lightning.pytorch.loggers import CSVLogger

    log_dir = Path(log_dir) if log_dir else Path("runs") / "detector"  # like the generator's runs/<stage>
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, max_epochs=-1,
                        val_check_interval=min(val_every, max(1, len(dm.train_dataloader()))) if has_val else None,
                        check_val_every_n_epoch=None if has_val else 1, limit_val_batches=1.0 if has_val else 0,
                        logger=CSVLogger(str(log_dir), name="detector"), enable_checkpointing=False,
                        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
                        log_every_n_steps=10)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    train_s = time.perf_counter() - t0
    model = module.model.eval()
    temperature, val_auc = 1.0, None
    if has_val:
        from .evaluate import roc_auc

        logits, _, y = collect_logits(model, dm.val_dataloader())
        temperature = fit_temperature(logits, y)
        val_auc = roc_auc(y, logits)
    model.temperature.fill_(temperature)
    info = {"data": str(data_root), "steps": max_steps, "batch_size": batch_size, "lr": lr, "seed": seed,
            "n_train": len(dm.data["train"]), "n_val": len(dm.data.get("val", [])), "train_seconds": round(train_s, 1),
            "temperature": round(temperature, 4), "val_auc": val_auc, "config": asdict(cfg),
            **({"init": str(init)} if init is not None else {}), **(meta or {})}
    save_detector(out, model, info)
    return info
