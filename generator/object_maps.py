"""Object maps: what the world's exact ground truth says is at each DiT token, for an auxiliary training loss.

A small DiT trained on a CPU sees few samples, and its samples show it: squares come out round, orange comes
out yellow, and half-formed copies of objects appear. REPA (Yu et al., 2024) found that aligning a DiT's
early hidden states with a good visual representation speeds training many times over. We have something
better than a pretrained encoder for our own data: the renderer knows which object covers which pixel. So a
small head reads, from the hidden state after one early block, each token's share of every colour and
class (and whether a candle or lamp there is lit), against these maps; the DiT then keeps "what is where"
explicit in its early layers. The head is used in training only and is not shipped.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from world import PALETTE, make_clip
from world.render import render_coverage

from .config import bucket_name
from .weights import torch_save_atomic

CLASSES = ("ball", "square", "triangle", "block", "wall", "candle", "puff", "cookie", "mouth", "switch", "lamp")
ATTRIBUTES = tuple(PALETTE) + CLASSES + ("lit",)
MOVABLE = ("ball", "square", "triangle", "block")


def latent_time_groups(n_frames: int, time_factor: int = 4) -> list[range]:
    """The frames behind each latent frame of the causal VAE: the first alone, then groups of time_factor."""
    if (n_frames - 1) % time_factor:
        raise ValueError(f"{n_frames} frames are not 1 + a multiple of {time_factor}")
    return [range(0, 1)] + [range(1 + k * time_factor, 1 + (k + 1) * time_factor)
                            for k in range((n_frames - 1) // time_factor)]


def object_maps(clip, token_px: int = 8, time_factor: int = 4) -> np.ndarray:
    """[len(ATTRIBUTES), latent frames, H / token_px, W / token_px]: the share of each token's pixels (over
    its frames) that a visible object of each colour / class covers, and the share of a lit candle or lamp."""
    cov = render_coverage(clip.scene, clip.style)  # [T, N, H, W]
    T, N, H, W = cov.shape
    if H % token_px or W % token_px:
        raise ValueError(f"frame size {W}x{H} is not a multiple of the token size {token_px}")
    index = {a: k for k, a in enumerate(ATTRIBUTES)}
    weight = np.zeros((N, len(ATTRIBUTES), T), np.float32)  # per track, attribute and frame
    for i, t in enumerate(clip.scene.tracks):
        weight[i, index[t.cls]] = 1.0
        if t.cls in MOVABLE:  # palette colours name movable objects; a lamp's "yellow" is its lit glow
            weight[i, index[t.colour]] = 1.0
        if "lit" in t.state:
            weight[i, index["lit"]] = np.asarray(t.state["lit"], np.float32)
    # pool over each token's pixels first (linear, so the order does not matter; ~10x cheaper)
    per_token = cov.reshape(T, N, H // token_px, token_px, W // token_px, token_px).mean((3, 5))
    per_frame = np.einsum("tnhw,nkt->tkhw", per_token, weight)
    per_latent = np.stack([per_frame[list(g)].mean(0) for g in latent_time_groups(T, time_factor)])
    return np.minimum(per_latent, 1.0).transpose(1, 0, 2, 3)  # overlapping objects of one kind count once


def object_maps_path(latent_path: str | Path) -> Path:
    p = Path(latent_path)
    return p.with_name(p.stem + "_objects.pt")


def precompute_object_maps(latent_path: str | Path, fps: float, families: tuple[str, ...], token_px: int = 8,
                           time_factor: int = 4, progress=None) -> Path:
    """Object maps of every clip of a latent cache (re-rendered from its seeds at its buckets' sizes; ~10 ms a
    clip), as uint8 shares, in a file beside it. The captions are checked against the cache's: the same
    seeds must give the same scenes."""
    blob = torch.load(latent_path, weights_only=True)
    if not isinstance(blob["latents"], dict):
        raise ValueError(f"{latent_path}: a single-bucket cache of the old format; encode it again")
    caps = json.loads(blob["captions"])
    out, done = {}, 0
    total = sum(len(s) for s in blob["seeds"].values())
    for (f, h, w) in blob["buckets"].tolist():
        name = bucket_name((f, h, w))
        maps = []
        for j, seed in enumerate(blob["seeds"][name].tolist()):
            clip = make_clip(int(seed), width=w, height=h, fps=fps, n_frames=f, families=families)
            if clip.captions != caps[name][j]:
                raise ValueError(f"{latent_path}: seed {seed} renders another scene than the one encoded")
            maps.append(torch.from_numpy(np.round(object_maps(clip, token_px, time_factor) * 255).astype(np.uint8)))
            done += 1
            if progress:
                progress(done, total)
        out[name] = torch.stack(maps)
    return torch_save_atomic({"attributes": list(ATTRIBUTES), "maps": out}, object_maps_path(latent_path))
