"""`daas scan`: one report per video from three independent signals.

1. C2PA (provenance.verify_video): a valid manifest whose digital source type is trainedAlgorithmicMedia
   -> "signed-synthetic".
2. Our watermark (checked by verify_video when the manifest is absent or tampered), with the manifest
   recovered through its soft binding -> "watermarked-synthetic".
3. The classifier: calibrated P(synthetic) per segment (16 frames at 8 fps, 64x64) and overall (the mean
   of the segment logits) -> "likely-synthetic" at or above the threshold.
Otherwise "no evidence found" (which is not proof of authenticity).

Videos are streamed: frames are decoded with a stride that brings them to the model's frame rate and
resized on decode; a long video is covered by at most `max_segments` windows spread over its length
(each decoded after a seek), so memory and time stay bounded. Inputs are opened read-only.
This module imports torch and timm (through the model) but never lightning.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from daas.errors import DaasError, without_path

VERDICTS = ("signed-synthetic", "watermarked-synthetic", "likely-synthetic", "no evidence found")
SYNTHETIC = set(VERDICTS[:3])
VIDEO_EXT = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}


@dataclass
class ScanResult:
    path: str
    verdict: str | None = None  # one of VERDICTS, or None when the file could not be scanned
    c2pa_status: str | None = None
    c2pa_message: str = ""
    claims: dict = field(default_factory=dict)
    watermark: dict | None = None
    recovered: dict | None = None
    probability: float | None = None  # calibrated P(synthetic) of the classifier
    segments: list = field(default_factory=list)  # [{"start": s, "end": s, "p": p}]
    reasons: list = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def synthetic(self) -> bool:
        return self.verdict in SYNTHETIC


def expand_paths(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Files, folders (recursively, video extensions) and globs -> (unique files in order, errors)."""
    files, errors, seen = [], [], set()

    def add(p: Path):
        k = os.path.realpath(p)
        if k not in seen:
            seen.add(k)
            files.append(p)

    for raw in inputs:
        s = str(raw)
        p = Path(s)
        if p.is_dir():
            vids = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXT)
            if not vids:
                errors.append(f"{p}: no videos in this folder")
            for q in vids:
                add(q)
        elif p.exists():
            add(p)
        elif glob.has_magic(s):
            hits = sorted(Path(h) for h in glob.glob(s, recursive=True) if Path(h).is_file())
            if not hits:
                errors.append(f"{s}: no files match")
            for h in hits:
                add(h)
        else:
            errors.append(f"{p}: no such file")
    return files, errors


class Classifier:
    """The detector, loaded once, scoring streamed videos segment by segment (thread-safe)."""

    def __init__(self, checkpoint: str | os.PathLike | None = None, threshold: float = 0.5, max_segments: int = 8,
                 batch: int = 8):
        import threading

        from .model import load_detector

        self.model, self.meta = load_detector(checkpoint)
        self.cfg = self.model.cfg
        self.threshold, self.max_segments, self.batch = threshold, max_segments, batch
        self._lock = threading.Lock()

    def segments(self, path: str | os.PathLike) -> Iterable[tuple[float, float, np.ndarray]]:
        """(start s, end s, uint8 [T, S, S, 3]) windows of the video at the model's frame rate and size."""
        from daas.video import iter_frames, probe

        info = probe(path)
        fps = info.fps or self.cfg.fps
        stride = max(1, int(round(fps / self.cfg.fps)))
        n = self.cfg.n_frames
        seg_s = n * stride / fps
        size = (self.cfg.size, self.cfg.size)
        dur = info.duration or info.n_frames / fps
        if dur <= seg_s * self.max_segments * 1.01:  # short: stream the whole video once
            buf, t0 = [], 0.0
            got_any = False
            for i, f in enumerate(iter_frames(path, stride=stride, size=size)):
                if not buf:
                    t0 = i * stride / fps
                buf.append(f)
                if len(buf) == n:
                    got_any = True
                    yield t0, t0 + n * stride / fps, np.stack(buf)
                    buf = []
            if buf and (len(buf) >= 4 or not got_any):
                yield t0, t0 + len(buf) * stride / fps, np.stack(buf)
            return
        # long: max_segments windows spread evenly, each decoded after a seek
        starts = np.linspace(0, max(0.0, dur - seg_s), self.max_segments)
        for s in starts:
            fr = list(iter_frames(path, stride=stride, size=size, start=float(s), end=float(s) + seg_s + 1e-3,
                                  max_frames=n))
            if len(fr) >= 2:
                yield float(s), float(s) + len(fr) * stride / fps, np.stack(fr)

    def score(self, path: str | os.PathLike) -> tuple[float, list[dict]]:
        """(calibrated P(synthetic) of the video, per-segment [{start, end, p}]); segments are scored in
        batches as they stream in, so only one batch of frames is ever held."""
        import torch

        from .data import _segment
        from .model import frames_to_tensor

        n, t = self.cfg.n_frames, float(self.model.temperature.clamp_min(1e-3))
        spans: list[tuple[float, float]] = []
        logits: list[torch.Tensor] = []
        batch: list[torch.Tensor] = []

        def flush():
            with self._lock, torch.no_grad():
                logits.append(self.model(torch.stack(batch))[0])
            batch.clear()

        for a, b, f in self.segments(path):
            spans.append((a, b))
            batch.append(frames_to_tensor(_segment(f, n, None), self.cfg.size))
            if len(batch) == self.batch:
                flush()
        if batch:
            flush()
        if not spans:
            raise DaasError(f"{path}: no frames to classify")
        z = torch.cat(logits)
        p_seg = torch.sigmoid(z / t).tolist()
        return float(torch.sigmoid(z.mean() / t)), [{"start": round(a, 3), "end": round(b, 3), "p": round(q, 4)}
                                                    for (a, b), q in zip(spans, p_seg)]


def decide(res: ScanResult, threshold: float) -> None:
    """The one verdict, strongest evidence first, with the reasons behind it."""
    ai_claim = "trainedalgorithmicmedia" in str((res.claims or {}).get("digital_source_type", "")).lower()
    rec = res.recovered or {}
    rec_ai = "trainedalgorithmicmedia" in str((rec.get("claims") or {}).get("digital_source_type", "")).lower()
    wm = res.watermark or {}
    if res.c2pa_status in ("valid-trusted", "valid-untrusted-signer") and ai_claim:
        res.verdict = "signed-synthetic"
        res.reasons.append(f"C2PA manifest ({res.c2pa_status}) declares AI-generated content")
    elif wm.get("detected"):
        res.verdict = "watermarked-synthetic"
        res.reasons.append(f"DAAS watermark detected (p={wm.get('p_value', float('nan')):.2g})")
        if rec:
            res.reasons.append(f"manifest recovered via soft binding (signature {rec.get('signature')}"
                               f"{', declares AI-generated' if rec_ai else ''})")
    elif res.probability is not None and res.probability >= threshold:
        res.verdict = "likely-synthetic"
        res.reasons.append(f"classifier P(synthetic)={res.probability:.3f} >= {threshold}")
    else:
        res.verdict = "no evidence found"
    if res.c2pa_status == "tampered":
        res.reasons.append("C2PA manifest does not match the file (tampered)")
    elif res.c2pa_status in ("valid-trusted", "valid-untrusted-signer") and not ai_claim:
        res.reasons.append(f"C2PA manifest ({res.c2pa_status}) does not declare AI generation")
    if res.verdict != "likely-synthetic" and res.probability is not None:
        res.reasons.append(f"classifier P(synthetic)={res.probability:.3f}")


def scan_file(path: str | os.PathLike, classifier: Classifier | None, *, threshold: float = 0.5,
              trust_anchors=None, store=None) -> ScanResult:
    """Scan one file; never raises for a bad file (the error goes into the result)."""
    try:
        return _scan_file(path, classifier, threshold, trust_anchors, store)
    except Exception as e:  # noqa: BLE001 - one odd file must not stop a scan of thousands
        msg = " ".join(str(e).split())[:200]
        return ScanResult(str(path), error=f"{path}: could not be scanned ({type(e).__name__}: {msg})")


def _scan_file(path, classifier, threshold, trust_anchors, store) -> ScanResult:
    from provenance import verify_video

    res = ScanResult(str(path))
    try:
        rep = verify_video(path, trust_anchors=trust_anchors, store=store)
    except DaasError as e:
        res.error = " ".join(str(e).split())
        return res
    res.c2pa_status, res.c2pa_message = rep.status, rep.message
    res.claims, res.watermark, res.recovered = rep.claims or {}, rep.watermark, rep.recovered
    if rep.status == "unreadable":
        res.error = f"{path}: {without_path(rep.message, path)}"
        return res
    if classifier is not None:
        try:
            res.probability, res.segments = classifier.score(path)
        except DaasError as e:
            res.error = " ".join(str(e).split())
            return res
    else:
        res.reasons.append("classifier not run")  # --no-classifier, or no checkpoint (scan warns of that)
    decide(res, threshold)
    return res


def scan(paths: Iterable[str | os.PathLike], *, checkpoint: str | os.PathLike | None = None, threshold: float = 0.5,
         workers: int | None = None, trust_anchors=None, store=None, classifier: bool = True,
         max_segments: int = 8, on_result: Callable[[ScanResult], None] | None = None,
         warnings: list | None = None) -> tuple[list[ScanResult], list[str]]:
    """Scan files, folders and globs in parallel. Returns (results in input order, path errors)."""
    files, errors = expand_paths(paths)
    clf = None
    if classifier and files:
        import torch

        from .model import DEFAULT_CHECKPOINT

        torch.set_num_threads(1)
        if checkpoint is None and not DEFAULT_CHECKPOINT.exists():
            if warnings is not None:
                warnings.append(f"no detector checkpoint at {DEFAULT_CHECKPOINT}: classifier not run "
                                "(provenance and watermark only)")
        else:
            clf = Classifier(checkpoint, threshold, max_segments)
    workers = workers or max(1, min(4, os.cpu_count() or 1, len(files) or 1))
    with ThreadPoolExecutor(workers) as ex:
        futs = [ex.submit(scan_file, f, clf, threshold=threshold, trust_anchors=trust_anchors, store=store)
                for f in files]
        if on_result:
            from concurrent.futures import as_completed

            for fut in as_completed(futs):
                on_result(fut.result())
        results = [f.result() for f in futs]
    return results, errors


def exit_code(results: list[ScanResult], errors: list[str]) -> int:
    """1 when anything synthetic was found; else 2 when anything failed; else 0."""
    if any(r.synthetic for r in results):
        return 1
    if errors or any(r.error for r in results):
        return 2
    return 0
