"""The attacks the watermark is held to (issue #3), in one place: the robustness table
(`benchmarks.watermark_table`), the learned chip extractor's training (`provenance.extractor`) and the tests all
use these, so the extractor trains on exactly what it is measured on.

Frames are uint8 [T, H, W, 3]; every attack returns new frames and leaves its input alone.
"""
from __future__ import annotations

import numpy as np


def codec(frames: np.ndarray, crf: int, fps: float = 8) -> np.ndarray:
    """H.264 at `crf` and back, x264 preset medium on one thread (its threaded output varied more from run to run
    here: docstring of `provenance.watermark`)."""
    from daas.video import h264_roundtrip

    return h264_roundtrip(frames, crf, fps, preset="medium", threads=1)


def resize(frames: np.ndarray, f: float) -> np.ndarray:
    """Scale both sides by `f`: area averaging down, bicubic up."""
    import cv2

    T, H, W, _ = frames.shape
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return np.stack([cv2.resize(x, (round(W * f), round(H * f)), interpolation=interp) for x in frames])


def crop(frames: np.ndarray, frac: float = 0.1) -> np.ndarray:
    """Keep 1 - `frac` of each side, off-centre (offset 1/3 of the cut from top-left)."""
    T, H, W, _ = frames.shape
    h, w = round(H * (1 - frac)), round(W * (1 - frac))
    y0, x0 = (H - h) // 3, (W - w) // 3
    return frames[:, y0:y0 + h, x0:x0 + w]


def levels(frames: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """Brightness and contrast: gain * x + offset, clipped."""
    return np.clip(frames * gain + offset, 0, 255).astype(np.uint8)


# The table, each applied to a clip already delivered as H.264 (what protect_video writes)
ATTACKS = {
    "clean (CRF 18)": lambda f: f,
    "CRF 28": lambda f: codec(f, 28),
    "CRF 35": lambda f: codec(f, 35),
    "2x up + CRF 28": lambda f: codec(resize(f, 2), 28),
    "0.5x down + CRF 28": lambda f: codec(resize(f, 0.5), 28),
    "10% crop + CRF 28": lambda f: codec(crop(f), 28),
    "drop every other frame": lambda f: codec(f[::2], 18),
    "middle-half trim": lambda f: codec(f[len(f) // 4: len(f) - len(f) // 4], 18),
    "brightness +10, contrast x1.2": lambda f: codec(levels(f, 1.2, -15.6), 18),
}
