"""Evaluation: frame- and clip-level AUC, AP, EER, TPR at 1% FPR and calibration error (ECE), in-domain,
under perturbations (H.264 CRF 18/28/38, 0.5x resize, crop, noise, frame dropping), on synthetic clips
from unseen generator settings, and for the frame-only ablation. JSON + an HTML page with ROC curves."""
from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


# ---- metrics ---------------------------------------------------------------------------------------
def roc_curve(y, s) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every threshold (ties handled together), from (0, 0) to (1, 1)."""
    y, s = np.asarray(y, np.float64).ravel(), np.asarray(s, np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, fp = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    P, N = max(y.sum(), 1e-12), max((1 - y).sum(), 1e-12)
    return np.r_[0, fp / N], np.r_[0, tp / P]


def roc_auc(y, s) -> float:
    y = np.asarray(y).ravel()
    if y.min() == y.max():
        return float("nan")
    fpr, tpr = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def average_precision(y, s) -> float:
    y, s = np.asarray(y, np.float64).ravel(), np.asarray(s, np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    y = y[order]
    tp = np.cumsum(y)
    prec = tp / np.arange(1, len(y) + 1)
    return float((prec * y).sum() / max(y.sum(), 1e-12))


def eer(y, s) -> float:
    fpr, tpr = roc_curve(y, s)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(y, s, target: float = 0.01) -> float:
    fpr, tpr = roc_curve(y, s)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def ece(y, p, bins: int = 10) -> float:
    """Expected calibration error of probabilities p (equal-width bins)."""
    y, p = np.asarray(y, np.float64).ravel(), np.asarray(p, np.float64).ravel()
    idx = np.minimum((p * bins).astype(int), bins - 1)
    e = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            e += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(e)


def metrics(y, p) -> dict:
    """All metrics of probabilities p against labels y."""
    return {"auc": roc_auc(y, p), "ap": average_precision(y, p), "eer": eer(y, p),
            "tpr@1%fpr": tpr_at_fpr(y, p, 0.01), "ece": ece(y, p), "n": int(np.size(y)),
            "acc@0.5": float(((np.asarray(p) >= 0.5) == np.asarray(y)).mean())}


# ---- perturbations ---------------------------------------------------------------------------------
def perturbations(seed: int = 0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from .data import _resize, h264_roundtrip

    def half(x):
        return _resize(x, max(8, x.shape[2] // 2), max(8, x.shape[1] // 2))

    def crop(x):  # centre 75%
        H, W = x.shape[1:3]
        ch, cw = int(H * 0.75), int(W * 0.75)
        return x[:, (H - ch) // 2:(H - ch) // 2 + ch, (W - cw) // 2:(W - cw) // 2 + cw]

    def noise(x):
        r = np.random.default_rng([seed, x.size])
        return np.clip(x + r.normal(0, 4.0, x.shape), 0, 255).astype(np.uint8)

    def drop(x):  # every third frame dropped (the clip gets shorter, motion jumps)
        return x[np.arange(len(x)) % 3 != 2]

    return {"crf18": lambda x: h264_roundtrip(x, 18), "crf28": lambda x: h264_roundtrip(x, 28),
            "crf38": lambda x: h264_roundtrip(x, 38), "resize0.5x": half, "crop75": crop, "noise4": noise,
            "framedrop": drop}


def score_clips(model, clips: list[np.ndarray], batch: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """Calibrated clip probabilities [N] and per-frame probabilities (each clip: its first n_frames)."""
    import torch

    from .data import _segment
    from .model import frames_to_tensor

    n, size = model.cfg.n_frames, model.cfg.size
    P, FP = [], []
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            x = torch.stack([frames_to_tensor(_segment(c, n, None), size) for c in clips[i:i + batch]])
            p, fp = model.predict(x)
            P.append(p.numpy())
            FP.extend(list(fp.numpy()))
    return np.concatenate(P), FP


def evaluate_model(model, clips, labels) -> dict:
    p, fp = score_clips(model, clips)
    fy = np.concatenate([np.full(len(f), y) for f, y in zip(fp, labels)])
    return {"video": metrics(labels, p), "frame": metrics(fy, np.concatenate(fp)), "_scores": p.tolist()}


def evaluate(checkpoint: str | os.PathLike | None, data_root: str | os.PathLike, *, ablation: str | None = None,
             unseen: dict[str, str] | None = None, out_json: str | os.PathLike | None = None,
             out_html: str | os.PathLike | None = None, perturb: bool = True, progress: Callable | None = None) -> dict:
    """Evaluate on `<data_root>/test`, its perturbed copies, any extra synthetic sets (`unseen`: name ->
    split folder with fake clips; paired with the test split's real clips) and an ablation checkpoint."""
    import torch

    from .data import load_split
    from .model import load_detector

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, meta = load_detector(checkpoint)
    size = model.cfg.size
    test = Path(data_root) / "test"
    clips, labels, _ = load_split(test, size)
    conds = {"in-domain": (clips, labels)}
    if perturb:
        for name, f in perturbations().items():
            conds[name] = ([f(c) for c in clips], labels)
    real = [c for c, y in zip(clips, labels) if y == 0]
    for name, folder in (unseen or {}).items():
        fc, fl, _ = load_split(folder, size)
        fakes = [c for c, y in zip(fc, fl) if y == 1]
        conds[f"unseen:{name}"] = (real + fakes, np.r_[np.zeros(len(real)), np.ones(len(fakes))].astype(int))
    models = {"full": model}
    if ablation:
        models["frame-only"] = load_detector(ablation)[0]
    results: dict = {"checkpoint": str(checkpoint or "shipped"), "checkpoint_meta": meta, "data": str(data_root),
                     "conditions": {}}
    items = [(m, c) for m in models for c in conds if m == "full" or c in ("in-domain", "crf38", "resize0.5x")
             or c.startswith("unseen")]
    for mname, cname in (progress(items) if progress else items):
        cl, y = conds[cname]
        r = evaluate_model(models[mname], cl, y)
        results["conditions"].setdefault(cname, {})[mname] = r
    curves = {k: {m: v.pop("_scores") for m, v in d.items()} for k, d in results["conditions"].items()}
    labels_of = {k: np.asarray(conds[k][1]).tolist() for k in conds}
    results["targets"] = check_targets(results)
    if out_json:
        from daas.fileio import write_json

        write_json(out_json, results, overwrite=True)
    if out_html:
        from daas.fileio import write_bytes

        write_bytes(out_html, html_report(results, curves, labels_of).encode(), overwrite=True)
    return results


def check_targets(results: dict) -> dict:
    c = results["conditions"]

    def auc(k):
        return c.get(k, {}).get("full", {}).get("video", {}).get("auc")

    t = {"in-domain >= 0.99": auc("in-domain"), "crf38 >= 0.95": auc("crf38"), "resize0.5x >= 0.95": auc("resize0.5x")}
    for k in c:
        if k.startswith("unseen:"):
            t[f"{k} >= 0.90"] = auc(k)
    return {k: {"auc": v, "met": bool(v is not None and v >= float(k.split(">=")[1]))} for k, v in t.items()}


def table(results: dict, level: str = "video") -> str:
    """A Markdown table of one level (video or frame)."""
    lines = ["| condition | model | AUC | AP | EER | TPR@1%FPR | ECE | n |", "|---|---|---|---|---|---|---|---|"]
    for cname, d in results["conditions"].items():
        for mname, r in d.items():
            m = r[level]
            lines.append(f"| {cname} | {mname} | {m['auc']:.4f} | {m['ap']:.4f} | {m['eer']:.4f} | "
                         f"{m['tpr@1%fpr']:.3f} | {m['ece']:.3f} | {m['n']} |")
    return "\n".join(lines)


def html_report(results: dict, curves: dict, labels: dict) -> str:
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = plt.cm.tab20(np.arange(len(curves)) % 20)
    for i, (cname, d) in enumerate(curves.items()):
        for mname, s in d.items():
            fpr, tpr = roc_curve(labels[cname], s)
            ax = axes[0] if mname == "full" else axes[1]
            ax.plot(fpr, tpr, color=colours[i], ls="-" if i % 2 == 0 else "--",
                    label=f"{cname} ({roc_auc(labels[cname], s):.3f})")
    for ax, title in zip(axes, ("full model", "frame-only ablation")):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(title=title, xlabel="false positive rate", ylabel="true positive rate", xscale="linear")
        if ax.lines[1:]:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()

    def tab(level):
        rows = "".join(
            f"<tr><td>{html.escape(c)}</td><td>{m}</td>" + "".join(
                f"<td>{r[level][k]:.4f}</td>" for k in ("auc", "ap", "eer", "tpr@1%fpr", "ece")) + f"<td>{r[level]['n']}</td></tr>"
            for c, d in results["conditions"].items() for m, r in d.items())
        return (f"<h2>{level}-level</h2><table><tr><th>condition</th><th>model</th><th>AUC</th><th>AP</th><th>EER</th>"
                f"<th>TPR@1%FPR</th><th>ECE</th><th>n</th></tr>{rows}</table>")

    targets = "".join(f"<li>{html.escape(k)}: {v['auc']:.4f} {'met' if v['met'] else 'NOT met'}</li>"
                      for k, v in results["targets"].items() if v["auc"] is not None)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>DAAS detector evaluation</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:3px 8px;text-align:right}</style></head><body><h1>DAAS detector evaluation</h1>"
            f"<p>checkpoint {html.escape(results['checkpoint'])}; data {html.escape(results['data'])}</p>"
            f"<ul>{targets}</ul><img src='data:image/png;base64,{img}' alt='ROC curves'>{tab('video')}{tab('frame')}"
            f"<pre>{html.escape(json.dumps(results['checkpoint_meta'], indent=1))}</pre></body></html>")
