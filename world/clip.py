"""A rendered clip: frames, fps, captions and the exact truth behind them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .captions import captions as make_captions
from .render import Style, render
from .scenes import FAMILIES, Scene, SceneSpec, sample_spec, simulate


@dataclass
class Clip:
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float
    captions: list[str]
    scene: Scene
    visibility: np.ndarray  # [T, N] share of each object's area in view
    style: Style = field(default_factory=Style)

    @property
    def caption(self) -> str:
        return self.captions[0]

    @property
    def spec(self) -> SceneSpec:
        return self.scene.spec

    def truth(self) -> dict:
        """JSON-able ground truth: per object and frame, and the events."""
        objs = []
        for i, t in enumerate(self.scene.tracks):
            objs.append({
                "id": t.id, "class": t.cls, "colour": t.colour, "size": round(float(t.size), 4),
                "width": round(float(t.width), 4),
                "x": np.round(t.pos[:, 0], 4).tolist(), "y": np.round(t.pos[:, 1], 4).tolist(),
                "vx": np.round(t.vel[:, 0], 4).tolist(), "vy": np.round(t.vel[:, 1], 4).tolist(),
                "angle": np.round(t.angle, 5).tolist(),
                "visible": np.round(self.visibility[:, i], 4).tolist(),
                "state": {k: (v.astype(bool).tolist() if v.dtype == bool else np.round(v, 4).tolist())
                          for k, v in t.state.items()},
            })
        return {
            "family": self.spec.family, "seed": self.spec.seed, "fps": self.fps,
            "n_frames": int(self.frames.shape[0]), "width": self.spec.width, "height": self.spec.height,
            "view": self.spec.view, "gravity": self.spec.gravity, "restitution": self.spec.restitution,
            "floor_y": self.spec.floor_y if self.spec.view == "side" else None,
            "captions": self.captions, "objects": objs,
            "events": [{"kind": e.kind, "frame": e.frame, "time": round(e.time, 6), "ids": e.ids}
                       for e in self.scene.events],
            "spec": self.spec.to_dict(),
        }


def render_spec(spec: SceneSpec, style: Style | None = None) -> Clip:
    style = style or Style()
    scene = simulate(spec)
    frames, vis = render(scene, style)
    return Clip(frames, spec.fps, make_captions(scene), scene, vis, style)


def make_clip(
    seed: int,
    family: str | None = None,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    n_frames: int = 17,
    style: Style | None = None,
    families: tuple[str, ...] = FAMILIES,
) -> Clip:
    """Render the clip of `seed` (deterministic: the same arguments give the same pixels and truth)."""
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"size {width}x{height} is out of range (16..4096 per side)")
    if not (1 <= n_frames <= 10_000) or not (1 <= fps <= 240):
        raise ValueError(f"{n_frames} frames at {fps} fps is out of range")
    spec = sample_spec(seed, family, width, height, fps, n_frames, families)
    return render_spec(spec, style)
