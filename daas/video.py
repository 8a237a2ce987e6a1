"""Video I/O on PyAV, shared by every part of DAAS.

Reading streams frames as uint8 RGB [H, W, 3] arrays (a long video never sits whole in memory), applies
rotation metadata, ignores audio, and turns every failure (missing, empty, truncated, not a video, an
unsupported codec, sizes over the limits) into a one-line `VideoError`. Writing is atomic and never
overwrites unless asked: H.264 yuv420p MP4 for delivery, or a lossless mode (libx264rgb qp 0, or FFV1
in MKV) for data sets.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import VideoError
from .fileio import atomic_path


@dataclass
class Limits:
    """Bounds that protect the machine from absurd or hostile inputs (all configurable)."""

    max_width: int = 8192
    max_height: int = 8192
    max_frames: int = 200_000  # frames streamed from one file
    max_array_bytes: int = 4 << 30  # frames gathered into one array by read_video
    max_file_bytes: int = 64 << 30


DEFAULT_LIMITS = Limits()


@dataclass
class VideoInfo:
    path: str
    container: str
    codec: str
    width: int  # as displayed (rotation applied)
    height: int
    fps: float
    n_frames: int  # from the header where it has one, else estimated from the duration
    duration: float
    pix_fmt: str | None
    rotation: int
    has_audio: bool
    size_bytes: int
    bit_rate: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _short(e: BaseException) -> str:
    """FFmpeg's reason, without the errno number and the file name it repeats."""
    msg = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    return str(msg)[:200]


def _open(path: str | os.PathLike, limits: Limits):
    import av

    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    if p.is_dir():
        raise VideoError(f"{p}: is a directory, not a video file")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"{p}: empty file")
    if size > limits.max_file_bytes:
        raise VideoError(f"{p}: {size} bytes is over the limit of {limits.max_file_bytes}")
    try:
        container = av.open(str(p), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise VideoError(f"{p}: not a readable video ({_short(e)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{p}: no video stream")
    stream = container.streams.video[0]
    cc = stream.codec_context
    if cc is None or not cc.name:
        container.close()
        raise VideoError(f"{p}: unsupported video codec")
    w, h = cc.width, cc.height
    if w <= 0 or h <= 0:
        container.close()
        raise VideoError(f"{p}: invalid frame size {w}x{h} (corrupt header?)")
    if w > limits.max_width or h > limits.max_height:
        container.close()
        raise VideoError(f"{p}: frame size {w}x{h} is over the limit of {limits.max_width}x{limits.max_height}")
    return container, stream, size


_CROP_KEY = "daas_crop"  # "WxH": the true size of a clip written padded to even for yuv420p


def _crop_size(container, stream) -> tuple[int, int] | None:
    """The size the writer padded from (W+1 or H+1 to even), if it recorded one; else None."""
    tag = next((v for k, v in container.metadata.items() if k.lower() == _CROP_KEY), None)
    try:
        w, h = (int(v) for v in str(tag).lower().split("x"))
    except (TypeError, ValueError):
        return None
    cw, ch = stream.codec_context.width, stream.codec_context.height
    if 0 <= cw - w <= 1 and 0 <= ch - h <= 1 and (w, h) != (cw, ch):
        return w, h
    return None


def probe(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> VideoInfo:
    """What a file holds, from its headers (decodes one frame to learn the rotation)."""
    import av

    container, stream, size = _open(path, limits)
    try:
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0) or 0.0
        dur = 0.0
        if stream.duration is not None and stream.time_base is not None:
            dur = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            dur = container.duration / av.time_base
        n = int(stream.frames or 0) or int(round(dur * fps))
        rot = 0
        try:
            for frame in container.decode(stream):
                rot = int(round(getattr(frame, "rotation", 0) or 0)) % 360
                break
        except av.FFmpegError as e:
            raise VideoError(f"{path}: cannot decode the first frame ({_short(e)})") from None
        w, h = _crop_size(container, stream) or (stream.codec_context.width, stream.codec_context.height)
        if rot in (90, 270):
            w, h = h, w
        return VideoInfo(str(path), container.format.name, stream.codec_context.name, w, h, fps, n, dur,
                         stream.codec_context.format.name if stream.codec_context.format else None, rot,
                         bool(container.streams.audio), size, container.bit_rate or None)
    finally:
        container.close()


def iter_frames(
    path: str | os.PathLike,
    *,
    stride: int = 1,
    start: float = 0.0,
    end: float | None = None,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[np.ndarray]:
    """Stream decoded frames as uint8 RGB [H, W, 3].

    stride keeps every n-th frame; start/end (seconds) select a time window; size=(width, height) resizes
    (in display orientation); max_frames stops after that many frames are yielded.
    """
    yield from _decode(path, stride, start, end, size, max_frames, limits, {})


def _decode(path, stride, start, end, size, max_frames, limits: Limits, info: dict) -> Iterator[np.ndarray]:
    """iter_frames' body; `info` receives the stream's frame rate ("fps") once the file is open, so that
    read_video opens the file once."""
    import av

    if stride < 1:
        raise VideoError(f"stride must be >= 1, got {stride}")
    if size is not None and (size[0] < 1 or size[1] < 1 or size[0] > limits.max_width or size[1] > limits.max_height):
        raise VideoError(f"target size {size[0]}x{size[1]} is out of range")
    container, stream, _ = _open(path, limits)
    info["fps"] = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0) or 0.0
    crop = _crop_size(container, stream)
    stream.thread_type = "AUTO"
    n_seen = n_out = 0
    last_t = None
    whole = False  # the whole stream was decoded (no window, no early stop)
    header_frames = int(stream.frames or 0)
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                else (container.duration / av.time_base if container.duration else 0.0))
    try:
        if start > 0 and stream.time_base is not None:
            try:
                container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                pass  # not seekable: decode from the start and skip
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else n_seen / float(stream.average_rate or 1)
            if t < start - 1e-6:
                continue
            if end is not None and t >= end - 1e-9:
                break
            if n_seen >= limits.max_frames:
                raise VideoError(f"{path}: more than {limits.max_frames} frames (limit)")
            keep = n_seen % stride == 0
            n_seen += 1
            last_t = t
            if not keep:
                continue
            rot = int(round(getattr(frame, "rotation", 0) or 0)) % 360
            if size is not None and crop is None:
                tw, th = (size[1], size[0]) if rot in (90, 270) else size
                frame = frame.reformat(width=tw, height=th, format="rgb24", interpolation="AREA")
            arr = frame.to_ndarray(format="rgb24")
            if crop is not None:  # drop the row/column the writer added for yuv420p, then resize
                arr = arr[:crop[1], :crop[0]]
                if size is not None:
                    tw, th = (size[1], size[0]) if rot in (90, 270) else size
                    arr = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24").reformat(
                        width=tw, height=th, interpolation="AREA").to_ndarray(format="rgb24")
            if rot:
                arr = np.ascontiguousarray(np.rot90(arr, k=rot // 90))
            yield arr
            n_out += 1
            if max_frames is not None and n_out >= max_frames:
                break
        else:
            whole = start == 0 and end is None
    except av.FFmpegError as e:
        raise VideoError(f"{path}: corrupt or truncated video ({_short(e)})") from None
    finally:
        container.close()
    if n_seen == 0 and start == 0 and end is None:
        raise VideoError(f"{path}: no decodable frames (corrupt or truncated video)")
    # FFmpeg stops quietly at a cut-off end: compare with what the header promises (with some slack for
    # edit lists and variable frame rates), so that a truncated file is an error, not a shorter clip
    if whole and header_frames and n_seen < header_frames - max(2, header_frames // 50):
        raise VideoError(f"{path}: truncated video ({n_seen} of {header_frames} frames decodable)")
    if (whole and not header_frames and rate > 0 and duration > 0 and last_t is not None
            and last_t + 1 / rate < duration - max(1.5 / rate, 0.02 * duration)):
        raise VideoError(f"{path}: truncated video (frames end at {last_t + 1 / rate:.2f} s of {duration:.2f} s)")


def read_video(
    path: str | os.PathLike,
    *,
    stride: int = 1,
    start: float = 0.0,
    end: float | None = None,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[np.ndarray, float]:
    """All selected frames as one array [T, H, W, 3] uint8, and their frame rate (fps / stride)."""
    info: dict = {}
    frames: list[np.ndarray] = []
    total = 0
    for f in _decode(path, stride, start, end, size, max_frames, limits, info):
        total += f.nbytes
        if total > limits.max_array_bytes:
            raise VideoError(f"{path}: decoded frames exceed {limits.max_array_bytes} bytes; "
                             "stream with iter_frames or pass max_frames/stride/size")
        frames.append(f)
    if not frames:
        raise VideoError(f"{path}: no frames in the selected window")
    return np.stack(frames), info["fps"] / stride


def _as_frames(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for f in frames:
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise VideoError(f"frames must be uint8 [H, W, 3], got {f.dtype} {list(f.shape)}")
        yield f


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 18,
    lossless: bool = False,
    overwrite: bool = False,
    preset: str = "medium",
    limits: Limits = DEFAULT_LIMITS,
) -> Path:
    """Encode frames (an array [T, H, W, 3] uint8, or any iterable of [H, W, 3]) atomically.

    MP4/MOV: H.264 yuv420p at `crf` (odd sizes are padded to even by repeating the last row/column,
    as 4:2:0 needs, and the true size is recorded in a `daas_crop` tag that `iter_frames`/`probe` use
    to crop the padding away); lossless: libx264rgb qp 0 (mp4/mov/mkv), or FFV1 for .mkv.
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise VideoError(f"{path}: unsupported output container {suffix or '(none)'}; use .mp4, .mov or .mkv")
    if not (0 < fps <= 1000):
        raise VideoError(f"fps must be in (0, 1000], got {fps}")
    if not (0 <= crf <= 51):
        raise VideoError(f"crf must be in 0..51, got {crf}")
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or len(frames) == 0):
        raise VideoError(f"frames must be [T, H, W, 3] with T >= 1, got {list(frames.shape)}")
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with atomic_path(path, overwrite) as tmp:
        fmt = {".mkv": "matroska", ".mov": "mov"}.get(suffix, "mp4")
        # movflags=use_metadata_tags lets MP4/MOV keep the daas_crop tag of odd-sized clips
        container = av.open(str(tmp), mode="w", format=fmt,
                            options={} if fmt == "matroska" else {"movflags": "use_metadata_tags"})
        try:
            stream = None
            for f in _as_frames(frames):
                h, w = f.shape[:2]
                if stream is None:
                    if w > limits.max_width or h > limits.max_height:
                        raise VideoError(f"frame size {w}x{h} is over the limit")
                    if lossless and suffix == ".mkv":
                        stream = container.add_stream("ffv1", rate=rate)
                        stream.pix_fmt = "bgr0"
                    elif lossless:
                        stream = container.add_stream("libx264rgb", rate=rate, options={"qp": "0", "preset": preset})
                        stream.pix_fmt = "rgb24"
                    else:
                        stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
                        stream.pix_fmt = "yuv420p"
                    pad = not lossless and (w % 2 or h % 2)
                    stream.width, stream.height = w + (w % 2 if pad else 0), h + (h % 2 if pad else 0)
                    if pad:  # readers of this module crop the padding away again
                        container.metadata[_CROP_KEY] = f"{w}x{h}"
                    shape0 = f.shape
                if f.shape != shape0:
                    raise VideoError(f"frame {n} has shape {list(f.shape)}, expected {list(shape0)}")
                if pad:
                    f = np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                n += 1
                if n > limits.max_frames:
                    raise VideoError(f"more than {limits.max_frames} frames (limit)")
            if stream is None:
                raise VideoError("no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        except av.FFmpegError as e:
            raise VideoError(f"{path}: cannot encode ({_short(e)})") from None
        finally:
            container.close()
    return path


def h264_roundtrip(frames: np.ndarray, crf: int, fps: float = 8.0, preset: str = "veryfast",
                   threads: int | None = None) -> np.ndarray:
    """Encode uint8 RGB frames [T, H, W, 3] to H.264 (yuv420p, in memory) and decode them again: the codec of the
    detector's augmentation and robustness tests and of the watermark's benchmark and tests. Odd sizes are padded
    by edge pixels and cropped back. `threads=1`: x264's threaded output varied more from run to run here."""
    import io

    import av

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    options = {"crf": str(crf), "preset": preset}
    if threads is not None:
        options["threads"] = str(threads)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=int(round(fps)), options=options)
        s.width, s.height, s.pix_fmt = pw, ph, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    buf.seek(0)
    with av.open(buf, "r") as c:
        out = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    return out[:, :h, :w]
