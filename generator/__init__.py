"""The generator: a causal video VAE and a text-conditioned latent video DiT (a small Sora).

    from generator import load_pipeline
    pipe = load_pipeline()                      # the shipped checkpoint
    frames = pipe("a red ball falls and bounces twice", seed=0)   # uint8 [17, 64, 64, 3]
    frames = pipe("a red ball falls and bounces twice", best_of=4)  # the steadiest of 4 noises (generator.selection)
"""
from __future__ import annotations

__all__ = ["load_pipeline", "generate_video", "VideoPipeline", "VideoVAE", "DiT"]


def __getattr__(name):  # torch loads on first use, not on `import generator`
    if name in ("load_pipeline", "generate_video", "VideoPipeline"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "VideoVAE":
        from .vae import VideoVAE

        return VideoVAE
    if name == "DiT":
        from .dit import DiT

        return DiT
    raise AttributeError(name)
