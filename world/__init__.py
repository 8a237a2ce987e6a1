"""The procedural physics world: real footage with exact ground truth.

>>> from world import make_clip
>>> clip = make_clip(seed=3, family="fall")
>>> clip.frames.shape, clip.caption
"""
from .clip import Clip, make_clip, render_spec
from .render import Style, render
from .scenes import CAUSAL_FAMILIES, FAMILIES, PALETTE, SHAPES, Scene, SceneSpec, sample_spec, simulate
from .splits import SPLITS, split_of, split_seeds, split_size

__all__ = [
    "Clip", "make_clip", "render_spec", "Style", "render", "FAMILIES", "CAUSAL_FAMILIES", "PALETTE", "SHAPES",
    "Scene", "SceneSpec", "sample_spec", "simulate", "SPLITS", "split_of", "split_seeds", "split_size",
]
