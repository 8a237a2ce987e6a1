"""Video I/O: round trips, reading options, rotation, audio, bad input, atomic writes and `daas info`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from daas.errors import DaasError, VideoError
from daas.video import Limits, iter_frames, probe, read_video, write_video

FPS = 8


def clip(t: int = 12, h: int = 64, w: int = 64) -> np.ndarray:
    """A structured test clip: a colour gradient, a moving white box and mild noise (H.264 can code it)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = (x * 255 // max(w - 1, 1))[None]
    frames[..., 1] = (y * 255 // max(h - 1, 1))[None]
    frames[..., 2] = 90
    for i in range(t):
        x0 = (3 * i) % max(w - 10, 1)
        frames[i, h // 3: h // 3 + 10, x0: x0 + 10] = (255, 255, 255)
    frames = np.clip(frames.astype(int) + rng.integers(-3, 4, frames.shape), 0, 255).astype(np.uint8)
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, repr(msg)
    return msg


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", ["c.mp4", "c.mkv", "c.mov"])
def test_lossless_round_trip_is_exact(tmp_path, name):
    frames = clip()
    out = write_video(tmp_path / name, frames, FPS, lossless=True)
    got, fps = read_video(out)
    assert got.dtype == np.uint8 and got.shape == frames.shape
    assert np.array_equal(got, frames)
    assert fps == pytest.approx(FPS)
    info = probe(out)
    assert info.codec == ("ffv1" if name.endswith(".mkv") else "h264")
    assert (info.width, info.height, info.n_frames) == (64, 64, len(frames))
    assert info.duration == pytest.approx(len(frames) / FPS, abs=1e-6)


def test_h264_crf18_within_tolerance(tmp_path):
    """H.264 yuv420p at CRF 18: every frame within PSNR >= 30 dB of the input (the stated tolerance)."""
    frames = clip()
    out = write_video(tmp_path / "c.mp4", frames, FPS, crf=18)
    got, fps = read_video(out)
    assert got.shape == frames.shape and fps == pytest.approx(FPS)
    assert min(psnr(g, f) for g, f in zip(got, frames)) >= 30.0
    info = probe(out)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    # a higher CRF is a real knob: smaller file, lower fidelity
    worse = write_video(tmp_path / "c40.mp4", frames, FPS, crf=40)
    assert worse.stat().st_size < out.stat().st_size
    assert psnr(read_video(worse)[0], frames) < psnr(got, frames)


@pytest.mark.parametrize("h,w", [(33, 47), (31, 64), (64, 17)])
@pytest.mark.parametrize("lossless", [False, True])
def test_odd_sizes_round_trip_at_their_own_size(tmp_path, h, w, lossless):
    frames = clip(t=5, h=h, w=w)
    out = write_video(tmp_path / "odd.mp4", frames, FPS, lossless=lossless)
    got, _ = read_video(out)
    assert got.shape == frames.shape
    info = probe(out)
    assert (info.width, info.height) == (w, h)
    if lossless:
        assert np.array_equal(got, frames)
    else:
        assert psnr(got, frames) >= 30.0
        # the padded edge repeats the last row/column, so the border stays close too
        assert np.abs(got[:, -1].astype(int) - frames[:, -1]).mean() < 8
        assert np.abs(got[:, :, -1].astype(int) - frames[:, :, -1]).mean() < 8


def test_write_accepts_an_iterable_of_frames(tmp_path):
    frames = clip(t=6)
    out = write_video(tmp_path / "gen.mkv", (f for f in frames), FPS, lossless=True)
    assert np.array_equal(read_video(out)[0], frames)


# ------------------------------------------------------------------------------------------ reading options


@pytest.fixture(scope="module")
def lossless_file(tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames = clip(t=16)
    path = tmp_path_factory.mktemp("v") / "ref.mkv"
    write_video(path, frames, FPS, lossless=True)
    return path, frames


def test_iter_frames_streams(lossless_file):
    path, frames = lossless_file
    it = iter_frames(path)
    assert iter(it) is it and not isinstance(it, (list, np.ndarray))
    first = next(it)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, frames[0])
    rest = list(it)
    assert len(rest) == len(frames) - 1
    assert np.array_equal(np.stack(rest), frames[1:])


def test_iter_frames_closed_early_is_fine(lossless_file):
    path, frames = lossless_file
    it = iter_frames(path)
    next(it)
    it.close()  # releases the container; a new read still works
    assert np.array_equal(next(iter_frames(path)), frames[0])


def test_stride(lossless_file):
    path, frames = lossless_file
    got, fps = read_video(path, stride=3)
    assert np.array_equal(got, frames[::3])
    assert fps == pytest.approx(FPS / 3)


def test_time_window(lossless_file):
    path, frames = lossless_file
    got, _ = read_video(path, start=0.5, end=1.25)  # frames at t = 4/8 .. 9/8
    assert np.array_equal(got, frames[4:10])
    got, _ = read_video(path, start=1.0)
    assert np.array_equal(got, frames[8:])
    got, _ = read_video(path, start=0.5, end=1.25, stride=2)
    assert np.array_equal(got, frames[4:10:2])


def test_max_frames(lossless_file):
    path, frames = lossless_file
    got, _ = read_video(path, max_frames=5)
    assert np.array_equal(got, frames[:5])
    assert len(list(iter_frames(path, max_frames=3, stride=2))) == 3


def test_target_size(lossless_file):
    path, frames = lossless_file
    got, _ = read_video(path, size=(32, 16))  # (width, height)
    assert got.shape == (len(frames), 16, 32, 3)
    # area averaging of a red gradient along x keeps its order
    assert np.all(np.diff(got[0, 8, :, 0].astype(int)) >= -2)


def test_empty_window_is_an_error(lossless_file):
    path, _ = lossless_file
    with pytest.raises(VideoError) as e:
        read_video(path, start=10.0)
    one_line(e.value)


def test_bad_options(lossless_file):
    path, _ = lossless_file
    for kw in (dict(stride=0), dict(size=(0, 10))):
        with pytest.raises(VideoError) as e:
            next(iter_frames(path, **kw))
        one_line(e.value)


def _encode_raw(path: Path, frames: np.ndarray, rotation: int | None = None, audio: bool = False) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb", rate=FPS, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        if rotation is not None:
            s.set_display_rotation(rotation)
        a = None
        if audio:
            a = c.add_stream("aac", rate=44100)
            a.layout = "mono"
        for i, f in enumerate(frames):
            for pk in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pk)
            if a is not None:  # interleave some audio with every video frame
                af = av.AudioFrame.from_ndarray(
                    (0.1 * np.sin(np.arange(1024) / 10.0 + i)).astype(np.float32)[None], format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = i * 1024
                for pk in a.encode(af):
                    c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
        if a is not None:
            for pk in a.encode():
                c.mux(pk)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    frames = clip(t=4, h=32, w=48)
    frames[:, :6, :6] = (255, 0, 0)  # a marker in the top-left corner
    path = tmp_path / "rot.mp4"
    _encode_raw(path, frames, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((32, 48) if rotation in (90, 270) else (48, 32))
    got, _ = read_video(path)
    # PyAV's rotation is counter-clockwise, as np.rot90 turns
    assert np.array_equal(got, np.stack([np.rot90(f, rotation // 90) for f in frames]))
    small, _ = read_video(path, size=(info.width // 2, info.height // 2))
    assert small.shape[1:3] == (info.height // 2, info.width // 2)


def test_audio_track_is_ignored(tmp_path):
    frames = clip(t=8)
    path = tmp_path / "av.mp4"
    _encode_raw(path, frames, audio=True)
    with av.open(str(path)) as c:
        assert c.streams.audio and c.streams.video
    info = probe(path)
    assert info.has_audio
    got, fps = read_video(path)
    assert np.array_equal(got, frames) and fps == pytest.approx(FPS)


def test_audio_only_file_is_not_a_video(tmp_path):
    path = tmp_path / "a.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate = 44100
        af.pts = 0
        for pk in list(a.encode(af)) + list(a.encode()):
            c.mux(pk)
    with pytest.raises(VideoError, match="no video stream") as e:
        probe(path)
    one_line(e.value)


# ------------------------------------------------------------------------------------------ bad input


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    good = write_video(tmp_path / "good.mp4", clip(t=16), FPS)
    good_mkv = write_video(tmp_path / "good.mkv", clip(t=16), FPS, lossless=True)
    bad = {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "truncated_mp4": tmp_path / "trunc.mp4",
        "truncated_mkv": tmp_path / "trunc.mkv",
        "random": tmp_path / "random.mp4",
        "text": tmp_path / "notes.mp4",
        "directory": tmp_path / "folder.mp4",
    }
    bad["empty"].write_bytes(b"")
    bad["truncated_mp4"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    bad["truncated_mkv"].write_bytes(good_mkv.read_bytes()[: good_mkv.stat().st_size * 6 // 10])
    bad["random"].write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    bad["text"].write_text("this is not a video\n" * 50)
    bad["directory"].mkdir()
    return bad


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated_mp4", "truncated_mkv", "random", "text", "directory"])
def test_bad_input_is_a_one_line_video_error(tmp_path, kind):
    path = _bad_inputs(tmp_path)[kind]
    with pytest.raises(VideoError) as e:
        read_video(path)
    msg = one_line(e.value)
    assert str(path.name) in msg
    if kind in ("missing", "empty", "random", "text", "directory"):  # these fail at the headers already
        with pytest.raises(VideoError):
            probe(path)


def test_truncated_faststart_mp4(tmp_path):
    """moov up front: the headers survive the cut, and the missing frames must still be noticed."""
    frames = clip(t=20)
    path = tmp_path / "fs.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for f in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.85)])
    assert len(read_video(path)[0]) == 20
    with pytest.raises(VideoError, match="truncated") as e:
        read_video(cut)
    one_line(e.value)


def test_limits(tmp_path):
    path = write_video(tmp_path / "c.mp4", clip(t=10), FPS)
    for limits, what in ((Limits(max_file_bytes=100), "limit"), (Limits(max_width=32), "limit"),
                         (Limits(max_height=32), "limit")):
        with pytest.raises(VideoError, match=what) as e:
            read_video(path, limits=limits)
        one_line(e.value)
    with pytest.raises(VideoError, match="limit") as e:
        list(iter_frames(path, limits=Limits(max_frames=4)))
    one_line(e.value)
    with pytest.raises(VideoError, match="exceed") as e:
        read_video(path, limits=Limits(max_array_bytes=64 * 64 * 3 * 3))
    one_line(e.value)
    # within the limits, the same file reads
    assert len(read_video(path, limits=Limits(max_frames=10))[0]) == 10


def test_write_rejects_bad_frames_and_options(tmp_path):
    cases = [
        dict(frames=clip(t=2).astype(np.float32)),
        dict(frames=clip(t=2)[..., :2]),
        dict(frames=np.zeros((0, 8, 8, 3), np.uint8)),
        dict(frames=iter([])),
        dict(frames=[clip(t=1)[0], clip(t=1, h=32)[0]]),  # size changes mid-stream
        dict(frames=clip(t=2), fps=0),
        dict(frames=clip(t=2), crf=60),
        dict(frames=clip(t=2), name="c.avi"),
        dict(frames=clip(t=2, h=64, w=64), limits=Limits(max_width=32)),
    ]
    for case in cases:
        name = case.pop("name", "c.mp4")
        frames = case.pop("frames")
        kw = dict(fps=FPS) | case
        with pytest.raises(VideoError) as e:
            write_video(tmp_path / name, frames, **kw)
        one_line(e.value)
        assert not (tmp_path / name).exists(), case
        assert leftovers(tmp_path) == [], case


# ------------------------------------------------------------------------------------------ atomic writes


def test_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(DaasError, match="already exists") as e:
        write_video(path, clip(t=2), FPS)
    one_line(e.value)
    assert path.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []
    write_video(path, clip(t=2), FPS, overwrite=True)
    assert probe(path).n_frames == 2
    assert leftovers(tmp_path) == []


def test_failure_midway_leaves_nothing(tmp_path):
    def frames():
        yield from clip(t=3)
        raise RuntimeError("the producer broke")

    path = tmp_path / "c.mp4"
    with pytest.raises(RuntimeError):
        write_video(path, frames(), FPS)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_failure_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.mkv"
    write_video(path, clip(t=2), FPS, lossless=True)
    before = path.read_bytes()
    with pytest.raises(VideoError):
        write_video(path, [clip(t=1)[0], np.zeros((5, 5, 3), np.uint8)], FPS, lossless=True, overwrite=True)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(DaasError, match="does not exist") as e:
        write_video(tmp_path / "nope" / "c.mp4", clip(t=2), FPS)
    one_line(e.value)


# ------------------------------------------------------------------------------------------ the CLI


def daas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daas.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_info_good_file(tmp_path):
    path = write_video(tmp_path / "c.mp4", clip(t=10), FPS)
    r = daas("info", str(path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["errors"] == []
    (v,) = out["videos"]
    assert (v["codec"], v["width"], v["height"], v["n_frames"]) == ("h264", 64, 64, 10)
    assert v["fps"] == pytest.approx(FPS) and v["has_audio"] is False
    r = daas("info", str(path))
    assert r.returncode == 0 and "h264" in r.stdout and "64x64" in r.stdout


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated_mp4", "random", "text"])
def test_cli_info_bad_file(tmp_path, kind):
    path = _bad_inputs(tmp_path)[kind]
    r = daas("info", str(path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path.name in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_cli_info_mixed_files_json(tmp_path):
    good = write_video(tmp_path / "c.mkv", clip(t=3), FPS, lossless=True)
    r = daas("info", str(good), str(tmp_path / "missing.mp4"), "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert len(out["videos"]) == 1 and len(out["errors"]) == 1
    assert "no such file" in out["errors"][0]["error"]


def test_cli_world_render_bad_input_is_one_line(tmp_path):
    r = daas("world", "render", "-o", str(tmp_path / "x.mp4"), "--family", "nope")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec,pix_fmt,ext", [("libx264", "yuv444p", ".mp4"), ("ffv1", "gray", ".mkv"),
                                               ("ffv1", "yuv420p10le", ".mkv"), ("mpeg4", "yuv420p", ".mp4")])
def test_other_codecs_and_pixel_formats_read_as_rgb24(tmp_path, codec, pix_fmt, ext):
    frames = clip(t=6)
    if pix_fmt == "gray":
        frames = np.repeat(frames[..., 1:2], 3, axis=-1)
    path = tmp_path / f"c{ext}"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = 64, 64, pix_fmt
        for f in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    assert probe(path).pix_fmt == pix_fmt
    got, _ = read_video(path)
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert psnr(got, frames) >= (25.0 if codec == "mpeg4" else 30.0)
