"""Provenance speed: C2PA sign vs copying the file, verify vs hashing it, our watermark embed/detect vs
invisible-watermark dwtDctSvd on the same frames upscaled to its 256 px minimum.

    python -m pytest -q benchmarks/speed/test_provenance_speed.py --benchmark-only
"""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from world import make_clip

SIZES = {"64x64x17": (64, 64, 17), "640x360x48": (640, 360, 48)}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prov")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAAS_HOME", str(tmp / "home"))
    from daas.video import write_video
    from provenance.identity import load_identity

    files = {}
    for name, (w, h, t) in SIZES.items():
        files[name] = tmp / f"{name}.mp4"
        write_video(files[name], make_clip(950_000, width=w, height=h, n_frames=t).frames, 8)
    yield tmp, files, load_identity(announce=lambda m: None)
    mp.undo()


def _fresh(dst):
    def setup():
        dst.unlink(missing_ok=True)
    return setup


@pytest.mark.parametrize("size", SIZES)
def test_sign(benchmark, env, size):
    from provenance import sign_video

    tmp, files, ident = env
    dst = tmp / f"signed-{size}.mp4"
    benchmark.pedantic(sign_video, (files[size], dst), {"identity": ident}, setup=_fresh(dst), rounds=20)


@pytest.mark.parametrize("size", SIZES)
def test_copy_file_baseline(benchmark, env, size):
    tmp, files, _ = env
    dst = tmp / f"copy-{size}.mp4"
    benchmark.pedantic(shutil.copyfile, (files[size], dst), setup=_fresh(dst), rounds=20)


@pytest.mark.parametrize("size", SIZES)
def test_verify(benchmark, env, size):
    from provenance import sign_video, verify_video

    tmp, files, ident = env
    dst = tmp / f"v-{size}.mp4"
    dst.unlink(missing_ok=True)
    sign_video(files[size], dst, identity=ident)
    rep = benchmark(verify_video, dst, ident.ca_pem)
    assert rep.status == "valid-trusted"


@pytest.mark.parametrize("size", SIZES)
def test_hash_file_baseline(benchmark, env, size):
    _, files, _ = env
    benchmark(lambda: hashlib.sha256(files[size].read_bytes()).hexdigest())


@pytest.fixture(scope="module")
def frames():
    import cv2

    f64 = make_clip(950_001).frames
    f256 = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in f64])
    return f64, f256


@pytest.mark.parametrize("res", ["64", "256"])
def test_ours_embed(benchmark, frames, res):
    from provenance import watermark as wm

    f = frames[0] if res == "64" else frames[1]
    benchmark(wm.embed, f, wm.WatermarkKey(b"k" * 32), 0xDEADBEEF)


@pytest.mark.parametrize("res", ["64", "256"])
def test_ours_detect(benchmark, frames, res):
    from provenance import watermark as wm

    key = wm.WatermarkKey(b"k" * 32)
    f = wm.embed(frames[0] if res == "64" else frames[1], key, 0xDEADBEEF)
    d = benchmark(wm.detect, f, key)
    assert d.payload == 0xDEADBEEF


def test_ours_detect_unmarked_full_crop_search(benchmark, frames):
    """The slow path: nothing found at full frame, so all 334 crop hypotheses are tried."""
    from provenance import watermark as wm

    d = benchmark(wm.detect, frames[0], wm.WatermarkKey(b"k" * 32))
    assert not d.detected


def test_imwatermark_dwtdctsvd_embed_256(benchmark, frames):
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    enc.set_watermark("bits", [1, 0] * 16)
    benchmark.pedantic(lambda: [enc.encode(f, "dwtDctSvd") for f in frames[1]], rounds=3)


def test_imwatermark_dwtdctsvd_detect_256(benchmark, frames):
    from imwatermark import WatermarkDecoder

    dec = WatermarkDecoder("bits", 32)
    benchmark.pedantic(lambda: [dec.decode(f, "dwtDctSvd") for f in frames[1]], rounds=3)
