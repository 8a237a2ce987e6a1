"""Video encode and decode of a 64x64 clip, each beside a baseline measured in the same run.

Baselines: encoding vs copying the same frames in numpy; decoding vs reading the file's raw bytes. The
ratio (extra_info) says how much the codec costs over touching the data at all. Run with `make bench`.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from daas.video import iter_frames, read_video, write_video
from world import make_clip

_count = itertools.count()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return make_clip(0, "fall", 64, 64, 8.0, 33).frames


@pytest.fixture(scope="module")
def files(tmp_path_factory, frames) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("speed")
    return {
        "h264": write_video(d / "c.mp4", frames, 8.0, crf=18),
        "ffv1": write_video(d / "c.mkv", frames, 8.0, lossless=True),
        "x264rgb": write_video(d / "l.mp4", frames, 8.0, lossless=True),
    }


def _fps(benchmark, n_frames: int) -> None:
    benchmark.extra_info["frames"] = n_frames
    benchmark.extra_info["frames_per_s"] = round(n_frames / benchmark.stats.stats.mean, 1)


def test_baseline_numpy_copy(benchmark, frames):
    benchmark(np.copy, frames)
    _fps(benchmark, len(frames))


@pytest.mark.parametrize("mode", ["h264", "ffv1", "x264rgb"])
def test_encode(benchmark, frames, tmp_path, mode):
    def encode():
        p = tmp_path / f"{next(_count)}{'.mkv' if mode == 'ffv1' else '.mp4'}"
        write_video(p, frames, 8.0, lossless=mode != "h264", crf=18)
        p.unlink()

    benchmark.pedantic(encode, rounds=10, iterations=1, warmup_rounds=1)
    _fps(benchmark, len(frames))


def test_baseline_read_bytes(benchmark, files, frames):
    benchmark(files["h264"].read_bytes)
    _fps(benchmark, len(frames))


@pytest.mark.parametrize("mode", ["h264", "ffv1", "x264rgb"])
def test_decode(benchmark, files, frames, mode):
    got = benchmark.pedantic(lambda: read_video(files[mode])[0], rounds=10, iterations=1, warmup_rounds=1)
    assert got.shape == frames.shape
    _fps(benchmark, len(frames))


def test_decode_streaming_h264(benchmark, files, frames):
    n = benchmark.pedantic(lambda: sum(1 for _ in iter_frames(files["h264"])), rounds=10, iterations=1)
    assert n == len(frames)
    _fps(benchmark, len(frames))
