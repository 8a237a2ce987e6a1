"""VideoVAE: a causal 3D-convolutional autoencoder from RGB clips to spacetime latents.

Frames [B, 3, T, H, W] in [-1, 1], T = 1 + 4k, become latents [B, C, 1 + k, H/4, W/4]. The first frame is
encoded alone and every later group of four frames together ("causal"), so an image is a 1-frame video and
the first latent frame of a clip is the latent of its first image, which is what image-to-video conditions on.
The first and last layers work on 2x2 pixel patches and the 1/2-resolution layers are 2D (per frame), to keep
the cost of convolutions low on a CPU; time is mixed by causal 3D convolutions at 1/4 resolution.
(Training uses bf16 autocast where the CPU computes bf16 natively - AMX / AVX512-BF16, 2-4x faster here - and
fp32 elsewhere: on an AVX2-only CPU bf16 convolutions are emulated and ~100x slower; see TrainConfig.precision.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VAEConfig:
    channels: tuple[int, int] = (48, 96)  # widths at 1/2 and 1/4 resolution
    latent_channels: int = 4
    temporal_downsample: int = 2  # number of x2 temporal reductions (2 -> x4)
    blocks: tuple[int, int] = (1, 1)  # residual blocks per level, at 1/2 and 1/4 resolution


class FrameNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame: statistics over time would let later frames change the
    latents of earlier ones, and the encoder would no longer be causal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).transpose(1, 2)


def _norm(c: int) -> nn.GroupNorm:
    return FrameNorm(min(8, c), c)


class CausalConv3d(nn.Module):
    """3D convolution that sees only the current and past frames (the first frame is repeated as padding)."""

    def __init__(self, cin: int, cout: int, kernel=(3, 3, 3), stride=(1, 1, 1)):
        super().__init__()
        self.pad_t = kernel[0] - 1
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=(0, kernel[1] // 2, kernel[2] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_t:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.pad_t, -1, -1), x], dim=2)
        return self.conv(x)


class FrameConv(nn.Module):
    """A 2D convolution applied to every frame: [B, C, T, H, W] -> [B, C', T, H', W']."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.conv(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class ResBlock(nn.Module):
    """Pre-norm residual block of two 3x3 frame convolutions; `temporal` adds a causal convolution over
    three frames in between ((2+1)D: a full 3x3x3 kernel costs 9x more for little gain at this size)."""

    def __init__(self, c: int, temporal: bool):
        super().__init__()
        self.norm1, self.norm2 = _norm(c), _norm(c)
        self.conv1 = FrameConv(c, c)
        self.time = CausalConv3d(c, c, kernel=(3, 1, 1)) if temporal else None
        self.conv2 = FrameConv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time is not None:
            h = h + self.time(h)
        return x + self.conv2(F.silu(self.norm2(h)))


def _blocks(c: int, temporal: bool, n: int) -> list[ResBlock]:
    return [ResBlock(c, temporal) for _ in range(n)]


class TimeDown(nn.Module):
    """Halve time causally: the first frame alone, then pairs (1 + 2m frames -> 1 + m)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = CausalConv3d(c, c, kernel=(3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TimeUp(nn.Module):
    """Double time causally: 1 + m frames -> 1 + 2m (the first latent frame becomes one frame)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = CausalConv3d(c, 2 * c, kernel=(3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.conv(x).reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)
        return y[:, :, 1:]


class PixelShuffle(nn.Module):
    """Space-to-depth (down=True) or depth-to-space by 2 on every frame: convolutions at full resolution
    are the costliest part of a video VAE on a CPU, so the first and last layers work on 2x2 patches."""

    def __init__(self, down: bool):
        super().__init__()
        self.op = nn.PixelUnshuffle(2) if down else nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.op(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        (c1, c2), (n1, n2) = cfg.channels, cfg.blocks
        self.net = nn.Sequential(
            PixelShuffle(down=True), FrameConv(12, c1), *_blocks(c1, False, n1),
            FrameConv(c1, c2, stride=2), *_blocks(c2, True, n2),
            *[m for _ in range(cfg.temporal_downsample) for m in (TimeDown(c2), *_blocks(c2, True, n2))],
            _norm(c2), nn.SiLU(), FrameConv(c2, 2 * cfg.latent_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Upsample2x(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = FrameConv(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = F.interpolate(x.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=2, mode="nearest")
        return self.conv(y.reshape(b, t, c, 2 * h, 2 * w).transpose(1, 2))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        (c1, c2), (n1, n2) = cfg.channels, cfg.blocks
        self.net = nn.Sequential(
            FrameConv(cfg.latent_channels, c2), *_blocks(c2, True, n2),
            *[m for _ in range(cfg.temporal_downsample) for m in (TimeUp(c2), *_blocks(c2, True, n2))],
            Upsample2x(c2, c1), *_blocks(c1, False, n1),
            _norm(c1), nn.SiLU(), FrameConv(c1, 12), PixelShuffle(down=False),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VideoVAE(nn.Module):
    def __init__(self, cfg: VAEConfig | None = None):
        super().__init__()
        self.cfg = cfg or VAEConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)
        self.time_factor = 2 ** self.cfg.temporal_downsample
        self.space_factor = 4

    def check_frames(self, n: int) -> None:
        if (n - 1) % self.time_factor:
            raise ValueError(f"the VAE takes 1 + {self.time_factor}k frames, got {n}")

    def latent_frames(self, n: int) -> int:
        return 1 + (n - 1) // self.time_factor

    def encode(self, x: torch.Tensor, sample: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames [B, 3, T, H, W] -> (latent mean or sample, log-variance) [B, C, T', H/4, W/4]."""
        self.check_frames(x.shape[2])
        mean, logvar = self.posterior(x)
        return (self.sample_posterior(mean, logvar) if sample else mean), logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's Gaussian: mean and (clamped) log-variance."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-20, 10)

    @staticmethod
    def sample_posterior(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """A draw of the Gaussian (mean, log-variance), differentiable in both (the reparameterisation trick)."""
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.posterior(x)
        return self.decode(self.sample_posterior(mean, logvar)), mean, logvar


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float = 1e-4, object_weight: float = 10.0, gradient_weight: float = 0.0
             ) -> tuple[torch.Tensor, dict]:
    """L1 with the pixels of moving things weighted up (they are a small share of the frame but all that
    matters to the eye and to the benchmarks), plus a small KL to keep the latent smooth for diffusion.

    gradient_weight adds the L1 of the difference of spatial gradients (the gradient difference loss of
    Mathieu et al. 2016), with the same weights: a blurred corner costs little in pixel L1 but a lot in
    gradients, which is where small squares and triangles differ from balls."""
    with torch.no_grad():
        static = x.median(dim=2, keepdim=True).values
        moving = ((x - static).abs().amax(dim=1, keepdim=True) > 0.12).float()
        w = 1.0 + (object_weight - 1.0) * moving
    l1 = ((recon - x).abs() * w).mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    loss, parts = l1 + kl_weight * kl, {"l1": l1.detach(), "kl": kl.detach()}
    if gradient_weight:
        def grads(v):
            return v[..., 1:, :] - v[..., :-1, :], v[..., :, 1:] - v[..., :, :-1]

        (ry, rx), (xy, xx) = grads(recon), grads(x)
        gdl = ((ry - xy).abs() * w[..., 1:, :]).mean() + ((rx - xx).abs() * w[..., :, 1:]).mean()
        loss = loss + gradient_weight * gdl
        parts["gdl"] = gdl.detach()
    return loss, parts


class PatchDiscriminator(nn.Module):
    """A small PatchGAN on frames and their differences, for decoder sharpness.

    L1 alone lets an under-determined decoder draw the average of the shapes a latent could be: at 64x64,
    squares and triangles of 8-12 px come back as round blobs (fill 0.75-0.85 where a square has 1.0), which
    the prompt checks then read as balls. An adversarial term with one logit per 4x4 pixels (convolutional
    receptive field 26 px, about one object) penalises that average, as in the VAEs of latent diffusion
    (Esser et al. 2021). The input is each frame with its difference to the previous one, so temporal
    flicker is judged too.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        c = width
        self.net = nn.Sequential(
            nn.Conv2d(6, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames [B, 3, T, H, W] in [-1, 1] -> patch logits [B * T, 1, H/4, W/4]."""
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
        y = torch.cat([x, diff], dim=1)
        b, c, t, h, w = y.shape
        return self.net(y.transpose(1, 2).reshape(b * t, c, h, w))


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per clip for tensors in [-1, 1]."""
    mse = ((x.clamp(-1, 1) - y.clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
