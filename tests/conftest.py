"""Fixtures shared by the test modules."""
from __future__ import annotations

import pytest


@pytest.fixture
def tiny_generator_files(tmp_path):
    """(VAE file, DiT file): a tiny random generator pair (4 latent channels, identity latent statistics), for tests
    that run a script or a measurement end to end in seconds."""
    import torch

    from generator.config import DiTConfig, VAEConfig
    from generator.dit import DiT
    from generator.vae import VideoVAE
    from generator.weights import save_weights

    torch.manual_seed(0)
    vae_cfg, dit_cfg = VAEConfig(channels=(8, 16), latent_channels=4), DiTConfig(width=32, depth=2, heads=2)
    vae = save_weights(tmp_path / "vae.safetensors", dict(VideoVAE(vae_cfg).state_dict(), latent_mean=torch.zeros(4),
                                                          latent_std=torch.ones(4)),
                       {"kind": "vae", "config": vae_cfg.__dict__})
    dit = save_weights(tmp_path / "dit.safetensors", DiT(dit_cfg).state_dict(),
                       {"kind": "dit", "config": dit_cfg.__dict__})
    return vae, dit
