"""World rendering speed at 64x64 (target: >= 2,000 frames/s on one core). Run with `make bench`.

extra_info carries frames_per_s (wall clock, what the table shows) and frames_per_cpu_s (this process's CPU
time, which stays meaningful on a machine whose cores are shared with other work).
"""
from __future__ import annotations

import time

import pytest

from world import FAMILIES, make_clip

N_CLIPS = 30  # seeds 0..29: the family of each is drawn from its seed, as data sets do
N_FRAMES = 17


class _Renderer:
    def __init__(self):
        self.frames = 0
        self.cpu = 0.0
        self.calls = 0

    def __call__(self, seeds, family=None) -> int:
        t0 = time.process_time()
        n = 0
        for s in seeds:
            n += len(make_clip(s, family, 64, 64, 8.0, N_FRAMES).frames)
        self.cpu += time.process_time() - t0
        self.frames += n
        self.calls += 1
        return n


def _report(benchmark, r: _Renderer) -> None:
    per_call = r.frames / r.calls
    benchmark.extra_info["frames_per_round"] = per_call
    benchmark.extra_info["frames_per_s"] = round(per_call / benchmark.stats.stats.mean, 1)
    benchmark.extra_info["frames_per_cpu_s"] = round(r.frames / r.cpu, 1)
    benchmark.extra_info["target_frames_per_s"] = 2000


def test_render_mixed_families_64(benchmark):
    """Clips of every family (as `daas world dataset` draws them), 17 frames each: frames per second."""
    make_clip(0)  # warm up imports and caches
    r = _Renderer()
    benchmark.pedantic(r, args=(range(N_CLIPS),), rounds=5, iterations=1)
    _report(benchmark, r)


@pytest.mark.parametrize("family", FAMILIES)
def test_render_family_64(benchmark, family):
    r = _Renderer()
    benchmark.pedantic(r, args=(range(8), family), rounds=3, iterations=1)
    _report(benchmark, r)
