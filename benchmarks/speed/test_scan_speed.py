"""`daas scan` speed: clips/s for 64x64 clips and seconds per minute of 720p video, each beside decoding alone.

Baselines in the same run: decoding every frame of the same file (what any scanner must at least pay for a
file it reads whole), and decoding at the scan's settings (stride to 8 fps, resize on decode; long videos:
seeks to at most 8 two-second windows). Scan = C2PA verify + watermark check + classifier. Uses the
shipped detector (or an untrained one of the same architecture when none is shipped: same speed).
Run with `make bench`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from daas.video import iter_frames, write_video
from world import make_clip


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    from provenance import init_dev_identity

    d = tmp_path_factory.mktemp("scan_speed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAAS_HOME", str(d / "home"))
        init_dev_identity()  # so that the watermark check runs, as it does for a user with keys
        yield d


@pytest.fixture(scope="module")
def clf(env):
    from detector.model import DEFAULT_CHECKPOINT, Detector, save_detector
    from detector.scan import Classifier

    ck = DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.exists() else save_detector(env / "d.safetensors", Detector())
    return Classifier(ck)


@pytest.fixture(scope="module")
def small(env) -> Path:
    return write_video(env / "c64.mp4", make_clip(950_000).frames, 8.0, crf=23)


@pytest.fixture(scope="module")
def hd(env) -> Path:
    """One minute of 1280x720 at 24 fps (a world clip upscaled; x264 ultrafast to build it quickly)."""
    import torch

    base = make_clip(950_001, width=320, height=180, fps=24, n_frames=48).frames
    up = torch.nn.functional.interpolate(torch.from_numpy(base).permute(0, 3, 1, 2).float(), scale_factor=4,
                                         mode="bilinear").round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    frames = (up[(i % 96) if (i % 96) < 48 else 95 - (i % 96)] for i in range(24 * 60))  # ping-pong, 1440 frames
    return write_video(env / "hd.mp4", frames, 24.0, crf=23, preset="ultrafast")


def _per(benchmark, key: str, scale: float) -> None:
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info[key] = round(scale / benchmark.stats.stats.mean if key.endswith("_per_s")
                                      else benchmark.stats.stats.mean * scale, 3)


def test_decode_64(benchmark, small):
    benchmark(lambda: list(iter_frames(small)))
    _per(benchmark, "clips_per_s", 1)


def test_classifier_64(benchmark, small, clf):
    benchmark(clf.score, small)
    _per(benchmark, "clips_per_s", 1)


def test_scan_64(benchmark, small, clf):
    from detector.scan import scan_file

    r = benchmark(scan_file, small, clf)
    assert r.verdict is not None
    _per(benchmark, "clips_per_s", 1)


def test_decode_720p_all_frames(benchmark, hd):
    benchmark.pedantic(lambda: sum(1 for _ in iter_frames(hd)), rounds=2, iterations=1)
    _per(benchmark, "seconds_per_minute", 1)


def test_decode_720p_scan_settings(benchmark, hd, clf):
    benchmark.pedantic(lambda: list(clf.segments(hd)), rounds=2, iterations=1)
    _per(benchmark, "seconds_per_minute", 1)


def test_scan_720p(benchmark, hd, clf):
    from detector.scan import scan_file

    r = benchmark.pedantic(scan_file, args=(hd, clf), rounds=2, iterations=1)
    assert r.verdict is not None and len(r.segments) == clf.max_segments
    _per(benchmark, "seconds_per_minute", 1)
