"""The classifier: a timm backbone per frame, a frame-difference stream and a temporal head -> P(synthetic).

Input: a batch of clips, float [B, T, 3, H, W] in [0, 1] (H = W = `size`, 64 by default). Each frame goes
through the backbone together with its difference to the previous frame (6 input channels: RGB and
dRGB, the first frame's difference is zero), so that temporal artifacts (flicker, drifting texture,
shapes that boil from frame to frame) reach the features. A 1D convolution over time turns the per-frame
features into per-frame logits; the clip's logit is their mean. The frame-only ablation (`temporal=False`)
sees RGB alone and replaces the temporal head with a per-frame linear layer.

Calibrated probability: sigmoid(logit / temperature), the temperature fitted on validation data.
Only torch and timm are imported here (never lightning), so `daas scan` stays light.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "detector.safetensors"
MEAN, STD = 0.5, 0.25


@dataclass
class DetectorConfig:
    backbone: str = "mobilenetv3_small_100"
    temporal: bool = True  # False: the frame-only ablation (no difference stream, no temporal head)
    size: int = 64  # frames are resized to size x size
    n_frames: int = 16  # frames per segment in training and scanning
    fps: float = 8.0  # the frame rate segments are sampled at
    hidden: int = 128
    kernel: int = 3
    diff_gain: float = 4.0  # differences are small: scale them up


class Detector(nn.Module):
    def __init__(self, cfg: DetectorConfig | None = None):
        super().__init__()
        import timm

        self.cfg = cfg = cfg or DetectorConfig()
        in_chans = 6 if cfg.temporal else 3
        self.backbone = timm.create_model(cfg.backbone, pretrained=False, num_classes=0, in_chans=in_chans)
        f = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        if cfg.temporal:
            self.head = nn.Sequential(
                nn.Conv1d(f, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2), nn.GELU(),
                nn.Conv1d(cfg.hidden, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2), nn.GELU(),
                nn.Conv1d(cfg.hidden, 1, 1))
        else:
            self.head = nn.Conv1d(f, 1, 1)
        self.register_buffer("temperature", torch.ones(()))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] in [0, 1] -> the backbone's input [B*T, C, H, W]."""
        B, T = x.shape[:2]
        z = (x - MEAN) / STD
        if self.cfg.temporal:
            d = torch.zeros_like(x)
            d[:, 1:] = x[:, 1:] - x[:, :-1]
            z = torch.cat([z, d * (self.cfg.diff_gain / STD)], dim=2)
        return z.flatten(0, 1)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated per-frame logits [B, T]."""
        B, T = x.shape[:2]
        feats = self.backbone(self.inputs(x)).view(B, T, -1).transpose(1, 2)  # [B, F, T]
        return self.head(feats)[:, 0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(clip logit [B], per-frame logits [B, T]), uncalibrated."""
        fl = self.frame_logits(x)
        return fl.mean(1), fl

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Calibrated (clip probability [B], per-frame probabilities [B, T])."""
        logit, fl = self(x)
        t = self.temperature.clamp_min(1e-3)
        return torch.sigmoid(logit / t), torch.sigmoid(fl / t)


def frames_to_tensor(frames, size: int | None = None) -> torch.Tensor:
    """uint8 [T, H, W, 3] (numpy or torch) -> float [T, 3, S, S] in [0, 1] (area-resized when size is given)."""
    t = torch.as_tensor(frames).permute(0, 3, 1, 2).float().div_(255)
    if size is not None and tuple(t.shape[-2:]) != (size, size):
        big = t.shape[-1] > size or t.shape[-2] > size
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="area" if big else "bilinear",
                                            align_corners=None if big else False).clamp_(0, 1)
    return t


def save_detector(path: str | Path, model: Detector, meta: dict | None = None) -> Path:
    """fp16 safetensors with the config (and any training/evaluation notes) in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.detach().half() if v.is_floating_point() and k != "temperature" else v.detach()).contiguous()
          for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata={"config": json.dumps(asdict(model.cfg)), "meta": json.dumps(meta or {})})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # an ordinary file (safetensors writes it 0600)
    tmp.replace(path)
    return path


def load_detector(path: str | Path | None = None) -> tuple[Detector, dict]:
    """(model in eval mode, metadata); DaasError for a missing or unreadable file."""
    from safetensors import safe_open

    from daas.errors import DaasError

    path = Path(path) if path else DEFAULT_CHECKPOINT
    if not path.exists():
        raise DaasError(f"detector checkpoint {path} not found (train one: daas detector train --help)")
    try:
        with safe_open(str(path), "pt") as f:
            md = f.metadata() or {}
            sd = {k: f.get_tensor(k).float() for k in f.keys()}
        cfg = DetectorConfig(**json.loads(md["config"]))
        meta = json.loads(md.get("meta", "{}"))
        model = Detector(cfg)
        model.load_state_dict(sd)
    except DaasError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad checkpoint
        raise DaasError(f"detector checkpoint {path} is unreadable ({type(e).__name__})") from None
    return model.eval().requires_grad_(False), meta
