"""World data sets: a writer (videos + truth + index.jsonl), a torch Dataset over a written set, and an
on-the-fly Dataset that renders clips from their seeds without touching disk.

(The scene, physics and render modules import nothing of ours; this module uses the shared video I/O.)
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .clip import make_clip
from .render import Style
from .scenes import FAMILIES
from .splits import split_seeds


def write_dataset(
    out: str | Path,
    n: int,
    split: str = "train",
    offset: int = 0,
    families: tuple[str, ...] = FAMILIES,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    n_frames: int = 17,
    lossless: bool = True,
    style: Style | None = None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> list[dict]:
    """Render n clips of `split` into `out`: clips/<seed>.mkv (or .mp4), clips/<seed>.json, index.jsonl."""
    from daas.fileio import write_json
    from daas.video import write_video

    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    seeds = split_seeds(split, n, offset)
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    index_path = out / "index.jsonl"
    if index_path.exists():
        raise ValueError(f"{index_path} exists: choose an empty folder")
    items = []
    ext = ".mkv" if lossless else ".mp4"
    for seed in progress(seeds):
        clip = make_clip(seed, None, width, height, fps, n_frames, style, families)
        video = out / "clips" / f"{seed:07d}{ext}"
        truth = out / "clips" / f"{seed:07d}.json"
        write_video(video, clip.frames, clip.fps, lossless=lossless, crf=18, overwrite=True)
        write_json(truth, clip.truth(), overwrite=True)
        items.append({"seed": seed, "split": split, "family": clip.spec.family, "caption": clip.caption,
                      "captions": clip.captions, "video": str(video.relative_to(out)),
                      "truth": str(truth.relative_to(out)), "fps": fps, "n_frames": n_frames,
                      "width": width, "height": height})
    tmp = index_path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(i) + "\n" for i in items))
    tmp.replace(index_path)
    return items


def read_index(root: str | Path) -> list[dict]:
    root = Path(root)
    index = root / "index.jsonl"
    if not index.exists():
        raise ValueError(f"{root} is not a world data set (no index.jsonl)")
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


def to_tensor(frames: np.ndarray):
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1], the layout the video models take."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def pick_caption(captions: list[str], random_caption: bool) -> str:
    return random.choice(captions) if random_caption else captions[0]


class WorldVideoDataset(Dataset):
    """A written data set: {"video": [3, T, H, W] float in [-1, 1], "caption": str, "seed": int}."""

    def __init__(self, root: str | Path, random_caption: bool = False):
        self.root = Path(root)
        self.items = read_index(root)
        self.random_caption = random_caption

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from daas.video import read_video

        it = self.items[i]
        frames, _ = read_video(self.root / it["video"])
        return {"video": to_tensor(frames), "caption": pick_caption(it["captions"], self.random_caption), "seed": it["seed"]}


class OnTheFlyWorld(Dataset):
    """Clips rendered from their seeds when asked for (about 2,000 frames/s on one core)."""

    def __init__(self, split: str = "train", n: int = 10_000, offset: int = 0, families: tuple[str, ...] = FAMILIES,
                 width: int = 64, height: int = 64, fps: float = 8.0, n_frames: int = 17,
                 style: Style | None = None, random_caption: bool = True, hflip: bool = False):
        self.seeds = split_seeds(split, n, offset)
        self.kw = dict(width=width, height=height, fps=fps, n_frames=n_frames, style=style, families=families)
        self.random_caption = random_caption
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> dict:
        seed = self.seeds[i]
        clip = make_clip(seed, **self.kw)
        frames, caps = clip.frames, clip.captions
        if self.hflip and random.random() < 0.5:
            # mirror the clip and swap left and right in its captions: direction becomes a stronger signal
            frames = frames[:, :, ::-1]
            caps = [swap_left_right(c) for c in caps]
        return {"video": to_tensor(frames), "caption": pick_caption(caps, self.random_caption), "seed": seed}


def swap_left_right(caption: str) -> str:
    words = caption.split(" ")
    table = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
             "left,": "right,", "right,": "left,"}
    return " ".join(table.get(w, w) for w in words)
