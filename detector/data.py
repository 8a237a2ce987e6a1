"""Labelled data for the detector: real world clips against synthetic clips, both through the same path.

Every clip, real or synthetic, goes through `process_clip`: a random crop (80-100% of each side, anywhere),
a random resize (0.75x-1.5x of the source, even sizes), H.264 yuv420p at a random CRF in 18..35, the same
container (.mp4), frame rate and encoder preset. So the label cannot be read off the codec, the size or the
file. Synthetic clips come from `fake_source(prompt, seed) -> uint8 [T, H, W, 3]` (the generator without
its watermark, or a stand-in in tests); prompts are world captions, so both classes show the same scenes.

Watermarks: DAAS marks every clip it generates, and others may mark real footage, so a classifier trained on
unmarked clips alone can read the mark as a sign of either class. `build_dataset(..., watermark_share=p)` marks a
share p of the clips of both classes before the common path (each clip with its own random key and payload, drawn
from its seed), so the mark carries no label.

Seeds: real clips are world seeds of the "detector" split (never used to train the generator); each data
split (train / val / test / unseen) takes its own disjoint range inside it, for the real clips and for the
prompts and sampling seeds of the synthetic ones.

Layout of a data set folder: `<root>/<split>/{real,fake}/NNNNN.mp4` and `<root>/<split>/index.jsonl`
(one line per clip: path, label, seed, prompt, crf, crop, size, source settings).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from daas.errors import DaasError
from daas.video import h264_roundtrip  # noqa: F401 - detector.data's codec (augmentation, evaluate)

FakeSource = Callable[[str, int], np.ndarray]

# offsets (in the world's "detector" seed split, 200_000 seeds) of each data split; reals take
# [o, o + 20_000), synthetic prompts/seeds take [o + 20_000, o + 40_000): all disjoint
SPLIT_OFFSETS = {"train": 0, "val": 80_000, "test": 120_000, "unseen": 160_000}
FAKE_SHIFT = 20_000
VIDEO_EXT = (".mp4", ".mov", ".mkv", ".m4v", ".webm", ".avi")
CRF_RANGE = (18, 35)


def split_seed_ranges(split: str, n_real: int, n_fake: int) -> tuple[range, range]:
    """(real world seeds, fake prompt/sampling seeds) of a split: disjoint between splits and classes."""
    from world import split_seeds

    if split not in SPLIT_OFFSETS:
        raise DaasError(f"unknown split {split!r}; choose from {', '.join(SPLIT_OFFSETS)}")
    if max(n_real, n_fake) > FAKE_SHIFT:
        raise DaasError(f"at most {FAKE_SHIFT} clips per class and split")
    o = SPLIT_OFFSETS[split]
    return split_seeds("detector", n_real, o), split_seeds("detector", n_fake, o + FAKE_SHIFT)


# ---- the common path ---------------------------------------------------------------------------------
def _resize(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    down = w < t.shape[-1] or h < t.shape[-2]
    t = torch.nn.functional.interpolate(t, size=(h, w), mode="area" if down else "bilinear",
                                        align_corners=None if down else False)
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def random_geometry(rng: np.random.Generator, h: int, w: int) -> dict:
    """A random crop box (80-100% of each side) and output size (0.75-1.5x, even)."""
    cw, ch = int(round(w * rng.uniform(0.8, 1.0))), int(round(h * rng.uniform(0.8, 1.0)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    s = float(rng.uniform(0.75, 1.5))
    ow, oh = max(16, 2 * int(round(cw * s / 2))), max(16, 2 * int(round(ch * s / 2)))
    return {"crop": [x0, y0, cw, ch], "size": [ow, oh]}


def process_clip(frames: np.ndarray, rng: np.random.Generator, dst: str | os.PathLike, fps: float = 8.0,
                 crf_range: tuple[int, int] = CRF_RANGE, overwrite: bool = False) -> dict:
    """THE path every clip of either class takes: random crop, random resize, H.264 at a random CRF."""
    from daas.video import write_video

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DaasError(f"clip frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    g = random_geometry(rng, frames.shape[1], frames.shape[2])
    x0, y0, cw, ch = g["crop"]
    out = _resize(frames[:, y0:y0 + ch, x0:x0 + cw], *g["size"])
    crf = int(rng.integers(crf_range[0], crf_range[1] + 1))
    write_video(dst, out, fps, crf=crf, overwrite=overwrite, preset="medium")
    return {**g, "crf": crf, "fps": fps, "n_frames": int(len(out))}


# ---- fake sources -----------------------------------------------------------------------------------
class GeneratorSource:
    """Synthetic clips from the generator (no watermark), drawing step count, guidance scale, sampler, guidance
    interval and number of restarts per clip from its seed. `samplers`: None draws every sampler the pipeline has
    (generator.flow.SAMPLERS), so the data follow the generator's default, whichever it is; until session 40 the
    default was ("heun", "euler"), which rebuilds the data of v9 and earlier (detector v3 was trained on Euler clips
    only: samplers=("euler",)). `precision`: the DiT's (the pipeline's default when None); `restarts`: counts of the
    pipeline's restart (generator.flow.moves) to draw from, 0 for none (None: the pipeline's default count;
    restarts=(0,) rebuilds the data of v7 and earlier)."""

    def __init__(self, steps: Iterable[int] = (8, 12, 16, 24), guidance: Iterable[float] = (2.0, 3.0, 4.0, 5.0),
                 checkpoint: str | None = None, size: int = 64, n_frames: int = 17, vae_checkpoint: str | None = None,
                 samplers: Iterable[str] | None = None,
                 guidance_intervals: Iterable[tuple[float, float]] | None = None, precision: str | None = None,
                 restarts: Iterable[int] | None = None):
        from generator import load_pipeline
        from generator.defaults import DEFAULT_GUIDANCE_INTERVAL, DEFAULT_RESTARTS
        from generator.flow import SAMPLERS

        self.steps, self.guidance = list(steps), list(guidance)
        self.samplers = list(samplers if samplers is not None else SAMPLERS)
        unknown = [s for s in self.samplers if s not in SAMPLERS]
        if unknown:  # refused here, not at the first clip after the model has loaded
            raise ValueError(f"GeneratorSource: unknown sampler {unknown[0]!r}; choose among {', '.join(SAMPLERS)}")
        self.intervals = [tuple(map(float, i)) for i in (guidance_intervals if guidance_intervals is not None
                                                          else [DEFAULT_GUIDANCE_INTERVAL])]
        self.restarts = [int(k) for k in (restarts if restarts is not None else [DEFAULT_RESTARTS])]
        for name, options in (("steps", self.steps), ("guidance", self.guidance), ("samplers", self.samplers),
                              ("guidance_intervals", self.intervals), ("restarts", self.restarts)):
            if not options:  # each clip draws one of each: an empty list has nothing to draw
                raise ValueError(f"GeneratorSource: {name} is empty")
        self.size, self.n_frames = size, n_frames
        kw = {} if precision is None else {"precision": precision}
        self.pipe = load_pipeline(checkpoint, vae_checkpoint=vae_checkpoint, **kw)
        self.last: dict = {}

    def __call__(self, prompt: str, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        st, gs = int(rng.choice(self.steps)), float(rng.choice(self.guidance))
        sampler = str(rng.choice(self.samplers))  # drawn last: the step and guidance draws of a seed are unchanged
        interval = self.intervals[int(rng.integers(len(self.intervals)))]
        # drawn after the others, so the draws of a seed made before restarts existed stay as they were
        restarts = self.restarts[int(rng.integers(len(self.restarts)))]
        self.last = {"steps": st, "guidance": gs, "sampler": sampler, "guidance_interval": list(interval),
                     "restarts": restarts, "precision": self.pipe.precision}
        return self.pipe(prompt, num_frames=self.n_frames, height=self.size, width=self.size,
                         num_inference_steps=st, guidance_scale=gs, seed=seed, watermark=False, sampler=sampler,
                         guidance_interval=interval, restarts=restarts)


class StandInSource:
    """A stand-in for the generator (tests, or before a checkpoint exists): world clips of other seeds,
    rendered and then degraded the way a small latent video model degrades them - spatial blur with an
    8x8-block structure (a VAE's latent grid), colour drift and per-frame flicker, texture that boils.
    It is NOT the generator; a detector trained on it is labelled as such."""

    def __init__(self, size: int = 64, n_frames: int = 17, strength: float = 1.0):
        self.size, self.n_frames, self.strength = size, n_frames, strength
        self.last: dict = {"source": "stand-in"}

    def __call__(self, prompt: str, seed: int) -> np.ndarray:
        from world import make_clip

        rng = np.random.default_rng(seed + 7_777)
        clip = make_clip(seed, width=self.size, height=self.size, n_frames=self.n_frames)
        x = clip.frames.astype(np.float32)
        T, H, W, _ = x.shape
        # latent-grid smoothing: average 4x4 blocks, upsample bilinearly, blend with the original
        lo = _resize(clip.frames, W // 4, H // 4).astype(np.float32)
        up = _resize(lo.astype(np.uint8), W, H).astype(np.float32)
        a = self.strength * rng.uniform(0.35, 0.7)
        x = (1 - a) * x + a * up
        # per-frame flicker and colour drift, boiling texture noise (low-pass, changes every frame)
        x *= 1 + self.strength * rng.normal(0, 0.025, (T, 1, 1, 1))
        x += self.strength * np.cumsum(rng.normal(0, 1.0, (T, 1, 1, 3)), 0)
        n = rng.normal(0, 5.0 * self.strength, (T, H // 8, W // 8, 3)).astype(np.float32)
        x += np.repeat(np.repeat(n, 8, 1), 8, 2)[:, :H, :W]
        return np.clip(x, 0, 255).round().astype(np.uint8)


class VAEReconSource:
    """VAE-only reconstructions: world clips encoded and decoded by the generator's VideoVAE (the decoder's
    traces without the diffusion model), via the public `generator.weights.load_vae`."""

    def __init__(self, vae_path: str | None = None, size: int = 64, n_frames: int = 17, latent_noise: float = 0.0):
        from generator.weights import load_vae

        self.vae, self.stats = load_vae(vae_path)
        self.size, self.n_frames, self.latent_noise = size, n_frames, latent_noise
        self.last: dict = {"source": "vae-recon", "vae": str(vae_path or "shipped"), "latent_noise": latent_noise}

    def __call__(self, prompt: str, seed: int) -> np.ndarray:
        import torch

        from world import make_clip

        clip = make_clip(seed, width=self.size, height=self.size, n_frames=self.n_frames)
        x = torch.from_numpy(clip.frames).permute(3, 0, 1, 2).float().div(127.5).sub(1)[None]
        with torch.no_grad():
            z, _ = self.vae.encode(x)
            if self.latent_noise:  # latents a generator would get slightly wrong: noise in normalised units
                g = torch.Generator().manual_seed(seed)
                std = self.stats["std"].view(1, -1, 1, 1, 1)
                z = z + self.latent_noise * std * torch.randn(z.shape, generator=g)
            y = self.vae.decode(z)
        return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 3, 0).numpy()


class MixedSource:
    """Several fake sources; each clip's source is drawn from its seed (so a data set is reproducible)."""

    def __init__(self, sources: dict[str, FakeSource], weights: dict[str, float] | None = None):
        self.names = list(sources)
        self.sources = sources
        w = np.array([(weights or {}).get(k, 1.0) for k in self.names], np.float64)
        self.p = w / w.sum()
        self.last: dict = {}

    def __call__(self, prompt: str, seed: int) -> np.ndarray:
        name = self.names[int(np.random.default_rng([seed, 99]).choice(len(self.names), p=self.p))]
        src = self.sources[name]
        out = src(prompt, seed)
        self.last = {"mix": name, **(getattr(src, "last", {}) or {})}
        return out


def fake_source_for(kind: str, **kw) -> FakeSource:
    """'generator' (the shipped checkpoint), 'vae' (VAE-only reconstructions; kw vae_path), 'standin', a
    '+'-joined mix of these (e.g. 'standin+vae'), or 'auto' (the generator when its checkpoint exists)."""
    if kind == "auto":
        kind = "generator" if (Path(__file__).resolve().parents[1] / "generator" / "weights" / "dit.safetensors").exists() \
            else "standin"
    if "+" in kind:
        return MixedSource({k: fake_source_for(k, **kw) for k in kind.split("+")})
    if kind == "generator":
        return GeneratorSource(**{k: v for k, v in kw.items() if k in ("steps", "guidance", "samplers", "checkpoint")})
    if kind == "vae":
        return VAEReconSource(kw.get("vae_path"))
    if kind == "standin":
        return StandInSource()
    raise DaasError(f"unknown fake source {kind!r}; choose generator, vae, standin, a mix like standin+vae, or auto")


# ---- building data sets -----------------------------------------------------------------------------
def _write_index(path: Path, rows: list[dict]) -> None:
    from daas.fileio import write_bytes

    write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode(), overwrite=True)


def read_index(split_dir: str | os.PathLike) -> list[dict]:
    p = Path(split_dir) / "index.jsonl"
    if not p.exists():
        raise DaasError(f"{split_dir}: no index.jsonl (build one: daas detector dataset --help)")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def build_dataset(out_dir: str | os.PathLike, n_real: int, n_fake: int, fake_source: FakeSource, *,
                  split: str = "train", size: int = 64, n_frames: int = 17, fps: float = 8.0, seed: int = 0,
                  crf_range: tuple[int, int] = CRF_RANGE, progress: Callable | None = None,
                  balanced: bool = True, watermark_share: float = 0.0) -> list[dict]:
    """Write `n_real` world clips and `n_fake` synthetic clips of one split through the same path into
    `out_dir/<split>/`, with an index.jsonl. Returns the index rows. `watermark_share`: the share of the clips of
    either class that carry a DAAS watermark (random key and payload per clip) before the common path."""
    from world import make_clip

    if not 0.0 <= watermark_share <= 1.0:
        raise DaasError(f"watermark_share must be in [0, 1], got {watermark_share}")
    if balanced and n_real != n_fake:
        raise DaasError(f"a balanced set needs as many real as synthetic clips ({n_real} != {n_fake})")
    if n_real < 1 or n_fake < 1:
        raise DaasError("need at least one clip of each class")
    real_seeds, fake_seeds = split_seed_ranges(split, n_real, n_fake)
    root = Path(out_dir) / split
    (root / "real").mkdir(parents=True, exist_ok=True)
    (root / "fake").mkdir(parents=True, exist_ok=True)
    # one rng for the processing of both classes, interleaved real/fake so both draw from the same stream
    rng = np.random.default_rng([seed, SPLIT_OFFSETS[split]])
    jobs = [(1, s) for s in fake_seeds] + [(0, s) for s in real_seeds]
    order = rng.permutation(len(jobs))
    rows = []
    it = [jobs[i] for i in order]
    for label, s in (progress(it) if progress else it):
        clip = make_clip(s, width=size, height=size, fps=fps, n_frames=n_frames)
        if label:
            frames = np.asarray(fake_source(clip.caption, s))
            extra = dict(getattr(fake_source, "last", {}) or {})
        else:
            frames, extra = clip.frames, {}
        # a stream of its own per clip, so the processing draws (and earlier data sets) stay as they were
        wm_rng = np.random.default_rng([seed, s, label, 7])
        marked = bool(wm_rng.random() < watermark_share)
        if marked:
            from provenance.watermark import WatermarkKey, embed

            frames = embed(frames, WatermarkKey(wm_rng.bytes(32)), int(wm_rng.integers(0, 2**32)))
        rel = f"{'fake' if label else 'real'}/{s:07d}.mp4"
        info = process_clip(frames, rng, root / rel, fps=fps, crf_range=crf_range, overwrite=True)
        rows.append({"path": rel, "label": label, "seed": s, "prompt": clip.caption, "family": clip.spec.family,
                     **info, "watermarked": marked, **({"source": extra} if extra else {})})
    _write_index(root / "index.jsonl", rows)
    return rows


def list_videos(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DaasError(f"{folder}: not a folder")
    vids = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXT)
    if not vids:
        raise DaasError(f"{folder}: no videos ({', '.join(VIDEO_EXT)})")
    return vids


def _split_of_path(p: Path, val: float, test: float) -> str:
    u = int(hashlib.sha256(p.name.encode()).hexdigest()[:8], 16) / 2**32
    return "test" if u < test else "val" if u < test + val else "train"


def build_from_folders(out_dir: str | os.PathLike, real_dir: str | os.PathLike, fake_dir: str | os.PathLike, *,
                       size: int = 64, n_frames: int = 17, fps: float = 8.0, seed: int = 0, val: float = 0.15,
                       test: float = 0.15, balanced: bool = True, progress: Callable | None = None,
                       errors: list | None = None) -> dict[str, list[dict]]:
    """Users' own folders of videos of any size: each video is decoded (streamed: `n_frames` frames at
    `fps`, scaled so the short side is `size`) and passes through the same path as above. Splits are drawn
    from a hash of the file name; with `balanced`, the larger class is cut to the smaller one's count.
    Bad videos are skipped and reported in `errors`."""
    from daas.errors import VideoError
    from daas.video import iter_frames, probe

    def readable(paths):
        ok = []
        for p in paths:
            try:
                ok.append((p, probe(p)))
            except VideoError as e:
                if errors is not None:
                    errors.append(str(e))
        return ok

    reals, fakes = readable(list_videos(real_dir)), readable(list_videos(fake_dir))
    pick = np.random.default_rng(seed)
    if balanced:
        k = min(len(reals), len(fakes))
        reals = [reals[i] for i in sorted(pick.choice(len(reals), k, replace=False))]
        fakes = [fakes[i] for i in sorted(pick.choice(len(fakes), k, replace=False))]
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    done: list[tuple[str, dict]] = []
    jobs = [(0, *r) for r in reals] + [(1, *f) for f in fakes]
    jobs = [jobs[i] for i in rng.permutation(len(jobs))]
    for i, (label, p, info) in enumerate(progress(jobs) if progress else jobs):
        try:
            scale = size / max(1, min(info.width, info.height))
            w, h = max(16, int(round(info.width * scale))), max(16, int(round(info.height * scale)))
            stride = max(1, int(round((info.fps or fps) / fps)))
            frames = np.stack(list(iter_frames(p, stride=stride, size=(w, h), max_frames=n_frames)))
        except VideoError as e:
            if errors is not None:
                errors.append(str(e))
            continue
        split = _split_of_path(Path(p), val, test)
        rel = f"{'fake' if label else 'real'}/{i:06d}.mp4"
        (out / split / rel).parent.mkdir(parents=True, exist_ok=True)
        meta = process_clip(frames, rng, out / split / rel, fps=fps, overwrite=True)
        done.append((split, {"path": rel, "label": label, "origin": str(p), **meta}))
    if balanced:  # a file that probed fine but failed to decode: drop the surplus of the other class
        n1 = sum(r["label"] for _, r in done)
        surplus, lab = abs(len(done) - 2 * n1), int(n1 > len(done) - n1)
        for j in range(len(done) - 1, -1, -1):
            if surplus and done[j][1]["label"] == lab:
                (out / done[j][0] / done[j][1]["path"]).unlink(missing_ok=True)
                del done[j]
                surplus -= 1
    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for split, r in done:
        rows[split].append(r)
    for split, r in rows.items():
        if r:
            _write_index(out / split / "index.jsonl", r)
    return rows


# ---- torch side -------------------------------------------------------------------------------------
def load_split(split_dir: str | os.PathLike, size: int = 64, max_frames: int = 17) -> tuple[list[np.ndarray], np.ndarray, list[dict]]:
    """Decode a split into memory (small clips): (list of uint8 [T, size, size, 3], labels, index rows)."""
    from daas.video import read_video

    split_dir = Path(split_dir)
    rows = read_index(split_dir)
    clips = [read_video(split_dir / r["path"], size=(size, size), max_frames=max_frames)[0] for r in rows]
    return clips, np.array([r["label"] for r in rows], dtype=np.int64), rows


def augment(frames: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Training augmentations that match the robustness tests: an extra H.264 pass (CRF 20-40), 0.5x
    down-and-up resize, a crop, sensor noise, dropped frames. Each with probability p/2..p."""
    x = frames
    T, H, W, _ = x.shape
    if rng.random() < p / 2:  # crop 70-95% and back to size
        c = rng.uniform(0.7, 0.95)
        cw, ch = max(8, int(W * c)), max(8, int(H * c))
        x0, y0 = rng.integers(0, W - cw + 1), rng.integers(0, H - ch + 1)
        x = _resize(x[:, y0:y0 + ch, x0:x0 + cw], W, H)
    if rng.random() < p / 2:  # 0.35-0.75x down and back up
        s = rng.uniform(0.35, 0.75)
        x = _resize(_resize(x, max(8, int(W * s)), max(8, int(H * s))), W, H)
    if rng.random() < p / 2:  # frame dropping: repeat some frames (a dropped frame freezes the previous)
        keep = np.sort(rng.choice(T, size=max(2, int(T * rng.uniform(0.5, 0.9))), replace=False))
        idx = np.searchsorted(keep, np.arange(T), side="right") - 1
        x = x[keep[np.clip(idx, 0, None)]]
    if rng.random() < p / 2:
        x = h264_roundtrip(x, int(rng.integers(20, 41)))
    if rng.random() < p / 2:
        x = np.clip(x.astype(np.float32) + rng.normal(0, rng.uniform(1, 6), x.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x)


def _segment(frames: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    T = len(frames)
    if T >= n:
        s = int(rng.integers(0, T - n + 1)) if rng is not None else (T - n) // 2
        return frames[s:s + n]
    return frames[np.minimum(np.arange(n), T - 1)]


def make_torch_dataset(clips: list[np.ndarray], labels: np.ndarray, n_frames: int = 16, size: int = 64,
                       train: bool = False, seed: int = 0, p_aug: float = 0.5):
    import torch

    from .model import frames_to_tensor

    class _DS(torch.utils.data.Dataset):
        def __init__(self):
            self.epoch_rng = np.random.default_rng(seed)

        def __len__(self):
            return len(clips)

        def __getitem__(self, i):
            rng = np.random.default_rng([seed, i, int(self.epoch_rng.integers(1 << 30))]) if train else None
            x = clips[i]
            if train:
                x = augment(x, rng, p_aug)
            x = _segment(x, n_frames, rng)
            return frames_to_tensor(x, size), torch.tensor(float(labels[i]))

    return _DS()


def datamodule(root: str | os.PathLike, batch_size: int = 8, n_frames: int = 16, size: int = 64, p_aug: float = 0.5,
               seed: int = 0):
    """A LightningDataModule over `<root>/{train,val,test}` (built lazily: lightning is imported here)."""
    import lightning as L
    import torch

    class DetectorDataModule(L.LightningDataModule):
        def __init__(self):
            super().__init__()
            self.root = Path(root)
            self.data: dict = {}

        def setup(self, stage: str | None = None):
            for split in ("train", "val", "test"):
                if split not in self.data and (self.root / split / "index.jsonl").exists():
                    clips, labels, _ = load_split(self.root / split, size)
                    self.data[split] = make_torch_dataset(clips, labels, n_frames, size, train=split == "train",
                                                          seed=seed, p_aug=p_aug)
            if "train" not in self.data:
                raise DaasError(f"{self.root}: no train split (build one: daas detector dataset --help)")

        def _loader(self, split, shuffle):
            return torch.utils.data.DataLoader(self.data[split], batch_size=batch_size, shuffle=shuffle,
                                               num_workers=0, drop_last=shuffle and len(self.data[split]) > batch_size)

        def train_dataloader(self):
            return self._loader("train", True)

        def val_dataloader(self):
            return self._loader("val", False) if "val" in self.data else []

        def test_dataloader(self):
            return self._loader("test", False)

    return DetectorDataModule()
