"""Speed of the generator's stages beside the machine's matmul rate measured in the same run.

Run with `make bench`. extra_info carries GFLOP counts (torch's FlopCounterMode) and achieved GFLOP/s, so the
figures read as a share of what this CPU can do, not as absolute seconds.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from generator.weights import DIT_FILE, VAE_FILE

HEUN8 = {"sampler": "heun", "num_inference_steps": 8}  # the default sampler of sessions 7-37
pytestmark = pytest.mark.skipif(not (DIT_FILE.exists() and VAE_FILE.exists()), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def pipe():
    from generator import load_pipeline

    return load_pipeline()


def _flops(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def test_matmul_baseline_fp32(benchmark):
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    benchmark(lambda: a @ b)
    benchmark.extra_info["gflop_per_s"] = 2 * 1024 ** 3 / benchmark.stats["median"] / 1e9


@pytest.mark.parametrize("precision", ["32-true", "auto"])
def test_dit_step(benchmark, pipe, precision):
    """One guided sampling step: the DiT on a batch of 2 (conditional + unconditional) 17-frame latents, in fp32
    and at the default precision (bf16 where the CPU has it natively)."""
    from generator import load_pipeline

    p = pipe if precision == "auto" else load_pipeline(precision=precision)
    x = torch.randn(2, p.dit.cfg.latent_channels, 5, 16, 16)
    t = torch.full((2,), 0.5)
    text, mask = p.text(["a red ball falls and bounces", ""])

    def step():
        with torch.no_grad(), p.autocast():
            return p.dit(x, t, text, mask)

    flops = _flops(step)
    benchmark(step)
    benchmark.extra_info.update(gflop=flops / 1e9, gflop_per_s=flops / benchmark.stats["median"] / 1e9,
                                precision=p.precision, params_m=sum(q.numel() for q in p.dit.parameters()) / 1e6)


def test_vae_encode_decode(benchmark, pipe):
    frames = np.random.default_rng(0).integers(0, 255, (17, 64, 64, 3), dtype=np.uint8)

    def roundtrip():
        return pipe.decode(pipe.encode(frames))

    flops = _flops(roundtrip)
    benchmark(roundtrip)
    benchmark.extra_info.update(gflop=flops / 1e9, gflop_per_s=flops / benchmark.stats["median"] / 1e9)


@pytest.fixture(params=[1, "all"], ids=["1thread", "allcores"])
def threads(request):
    """The benchmarks run on one core (conftest.py); `daas generate` runs on all of them, as torch does by default,
    and issue 4's 2-second budget is for that: "all" gives the pipeline every core this process may use."""
    n = len(os.sched_getaffinity(0)) if request.param == "all" else request.param
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    yield n
    torch.set_num_threads(before)


def test_generate_17_frames_64px(benchmark, pipe, threads):
    """The whole pipeline call with the defaults (text encoding, 12 DPM-Solver++(2M) steps and one restart of four
    of them = 16 DiT evaluations, VAE decode), on one core and on all."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0), rounds=3, iterations=1)
    benchmark.extra_info["threads"] = threads


def test_generate_17_frames_64px_guidance_reuse(benchmark, pipe):
    """8 Heun steps with guidance_reuse on: each Heun predictor at the time of the previous corrector reuses its
    guidance direction (8 of the 19 guided DiT evaluations on the conditional batch alone)."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0, guidance_reuse=True, **HEUN8), rounds=3,
                       iterations=1)


def test_generate_17_frames_64px_cfg(benchmark, pipe):
    """8 Heun steps with guidance_reuse off and classifier-free guidance's batch of two at every guided evaluation
    (a negative prompt forces CFG on a guidance-distilled DiT too): the baseline of the one above."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0, guidance_reuse=False,
                                    negative_prompt="nothing", **HEUN8), rounds=3, iterations=1)


def test_generate_17_frames_64px_best_of_2(benchmark, pipe):
    """The defaults with best-of-2 selection: two noises sampled as one batch and decoded, the steadier kept
    (generator.selection); about 2x the first, as the DiT's time grows with its batch on a CPU."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0, best_of=2), rounds=3, iterations=1)


def test_generate_17_frames_64px_no_restart(benchmark, pipe):
    """The defaults without the restart (12 DiT evaluations)."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0, restarts=0), rounds=3, iterations=1)


def test_generate_17_frames_64px_euler16(benchmark, pipe):
    """16 Euler steps, the default before session 7 (16 DiT evaluations then), with the restart's six of them
    again: 22 DiT evaluations."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", num_inference_steps=16, sampler="euler", seed=0),
                       rounds=3, iterations=1)


def test_generate_17_frames_64px_heun8(benchmark, pipe, threads):
    """The defaults of sessions 19-37: 8 Heun steps (two DiT evaluations each but the last) and the restart's
    three of them again: 21 DiT evaluations, against the first's 16; on one core and on all."""
    benchmark.pedantic(lambda: pipe("a red ball falls and bounces", seed=0, **HEUN8), rounds=3, iterations=1)
    benchmark.extra_info["threads"] = threads


@pytest.mark.parametrize("form", ["torch", "dit"])
def test_gelu_tanh_of_an_mlp_hidden_layer(benchmark, pipe, form):
    """The DiT MLP's GELU on one guided step's hidden layer [2, 320, 768]: torch's tanh-approximate GELU (the
    baseline) and the DiT's own (generator.dit.GELUTanh: the same function through a sigmoid, in place)."""
    from generator.dit import GELUTanh

    act = torch.nn.GELU(approximate="tanh") if form == "torch" else GELUTanh()
    h = torch.randn(2, 320, 3 * pipe.dit.cfg.width)
    with torch.no_grad():
        benchmark(act, h)


def test_dit_training_throughput(benchmark, pipe):
    """Samples per second of one DiT training step (forward + backward) at batch 8."""
    from generator.dit import DiT
    from generator.flow import flow_loss

    dit = DiT(pipe.dit.cfg)
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4)
    x0 = torch.randn(8, pipe.dit.cfg.latent_channels, 5, 16, 16)
    text, mask = pipe.text(["a red ball falls and bounces"] * 8)

    def step():
        loss = flow_loss(dit, x0, text, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["samples_per_s"] = 8 / benchmark.stats["median"]
