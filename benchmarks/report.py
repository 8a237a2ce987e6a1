"""Run the artifact benchmark on clip sources and write report.json + a self-contained report.html.

A source is anything that yields clips for suite items: the world itself (the ceiling), a generator
pipeline at its normal setting, the same pipeline at a weak setting (the floor the metrics must separate
from), or a folder of videos. Every clip goes through perception and `metrics.measure`; results are
aggregated per prompt category and per source. The HTML embeds its plots as base64 PNGs (matplotlib, Agg)
so it can be mailed or archived as one file.
"""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from generator.defaults import DEFAULT_GUIDANCE, DEFAULT_STEPS

from .metrics import METRICS, aggregate, measure
from .perception import perceive

MAX_EXAMPLES = 6  # clips with violations whose frames are kept per source, for the report's pictures


def world_source(item: dict) -> tuple[np.ndarray, float]:
    from world import make_clip

    clip = make_clip(item["seed"], item["family"])
    return clip.frames, clip.fps


def generator_source(pipe: Callable, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE, num_frames: int = 17,
                     size: int = 64, fps: float | None = None, items: list[dict] | None = None,
                     batch: int = 1) -> Callable[[dict], tuple[np.ndarray, float]]:
    """Clips from a pipeline callable: pipe(prompt or [prompts], num_frames=, height=, width=,
    num_inference_steps=, guidance_scale=, seed=) -> uint8 [T, H, W, 3] or [B, T, H, W, 3]
    (generator.load_pipeline() returns one).

    With `items` and batch > 1, prompts are generated `batch` at a time (the seed of a batch is its first
    item's), which is much faster on a CPU; batch=1 seeds every prompt with its own suite seed.
    """
    fps = fps or float(getattr(pipe, "fps", 8.0))
    cache: dict[str, np.ndarray] = {}
    order = [it["id"] for it in items] if items else []

    def check(frames) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"the pipeline returned {list(frames.shape)}, expected [T, H, W, 3]")
        return frames if frames.dtype == np.uint8 else np.clip(frames, 0, 255).astype(np.uint8)

    def gen(prompts, seed):
        return pipe(prompts, num_frames=num_frames, height=size, width=size, num_inference_steps=steps,
                    guidance_scale=guidance, seed=int(seed) % (2 ** 31))

    def source(item: dict) -> tuple[np.ndarray, float]:
        if batch > 1 and item.get("id") in order:
            if item["id"] not in cache:
                i = order.index(item["id"])
                group = items[i:i + batch]
                out = np.asarray(gen([g["prompt"] for g in group], group[0]["seed"]))
                cache.clear()
                cache.update({g["id"]: check(f) for g, f in zip(group, out)})
            return cache.pop(item["id"]), fps
        frames = np.asarray(gen(item["prompt"], item["seed"]))
        return check(frames[0] if frames.ndim == 5 else frames), fps

    return source


def measure_items(items: list[dict], source: Callable[[dict], tuple[np.ndarray, float]],
                  progress: Callable[[Iterable], Iterable] = lambda it: it) -> tuple[list[dict], list[dict]]:
    """Measure every item's clip: per-clip results, and a few examples (frames + violations) to draw."""
    results, examples = [], []
    for item in progress(items):
        frames, fps = source(item)
        r = measure(perceive(frames, fps), frames, item.get("prompt"))
        r.update({k: item[k] for k in ("id", "category", "prompt", "family", "seed", "path") if k in item})
        results.append(r)
        if r["violations"] and len(examples) < MAX_EXAMPLES:
            examples.append({"id": r.get("id", ""), "prompt": item.get("prompt"), "frames": frames,
                             "violations": r["violations"]})
    return results, examples


def summarize(results: list[dict]) -> dict:
    """Aggregates over all clips and per prompt category."""
    cats = sorted({r.get("category", "all") for r in results})
    return {"all": aggregate(results),
            "categories": {c: aggregate([r for r in results if r.get("category", "all") == c]) for c in cats}}


def run(items: list[dict], sources: dict[str, Callable], progress: Callable[[Iterable, str], Iterable] | None = None,
        validation: dict | None = None) -> tuple[dict, dict]:
    """Measure each named source on the items: (report dict, examples per source)."""
    report: dict = {"metrics": list(METRICS), "n_items": len(items), "sources": {}}
    examples = {}
    for name, src in sources.items():
        prog = (lambda it, n=name: progress(it, n)) if progress else (lambda it: it)
        res, ex = measure_items(items, src, prog)
        report["sources"][name] = {"summary": summarize(res), "clips": res}
        examples[name] = ex
    if validation is not None:
        report["validation"] = validation
    return report, examples


# ----------------------------------------------------------------------------------------------
# HTML


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bars(groups: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) + 2), 3.2))
    n = max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * 0.8 / n, vals, 0.8 / n, label=name)
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def _example(ex: dict, max_frames: int = 9) -> str:
    """A strip of frames with each violation marked (red circle and number) on the frame it happens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = ex["frames"]
    T = len(frames)
    marked = sorted({min(max(v["frame"], 0), T - 1) for v in ex["violations"]})
    idx = sorted(set(np.linspace(0, T - 1, max_frames - len(marked[:max_frames // 2])).round().astype(int)) | set(marked[:max_frames // 2]))
    fig, axs = plt.subplots(1, len(idx), figsize=(1.3 * len(idx), 1.7))
    axs = np.atleast_1d(axs)
    for ax, t in zip(axs, idx):
        ax.imshow(frames[t], interpolation="nearest")
        ax.set_title(str(t), fontsize=7)
        ax.axis("off")
        for k, v in enumerate(ex["violations"]):
            if min(max(v["frame"], 0), T - 1) == t:
                if v["x"] or v["y"]:
                    ax.add_patch(plt.Circle((v["x"], v["y"]), 7, fill=False, color="red", lw=1.5))
                    ax.text(v["x"] + 7, v["y"] - 7, str(k + 1), color="red", fontsize=7, weight="bold")
                else:
                    for sp in ax.spines.values():
                        sp.set_visible(True)
                    ax.set_title(f"{t} ({k + 1})", fontsize=7, color="red")
    return _png(fig)


def _table(header: list[str], rows: list[list], fmt: Callable = lambda v: v) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(fmt(c)))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _pct(v):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else (f"{100 * v:.1f}%" if isinstance(v, float) else v)


def render_html(report: dict, examples: dict[str, list[dict]], title: str = "DAAS artifact benchmark") -> str:
    parts = [f"<h1>{html.escape(title)}</h1>",
             "<p>Share of clips with at least one violation, per metric and per prompt category. Lower is "
             "better; the world's own clips are the ceiling (they should score ~0).</p>"]
    srcs = report["sources"]
    names = list(srcs)
    if names:
        parts.append(_table(["metric"] + names, [[m] + [srcs[n]["summary"]["all"][m]["violation_rate"] for n in names]
                                                  for m in list(METRICS) + ["any"]], _pct))
        parts.append(f'<img src="{_bars(list(METRICS), {n: [srcs[n]["summary"]["all"][m]["violation_rate"] for m in METRICS] for n in names}, "violation rate per metric", "clips violating")}">')
        cats = sorted({c for n in names for c in srcs[n]["summary"]["categories"]})
        parts.append("<h2>Per prompt category</h2>")
        parts.append(f'<img src="{_bars(cats, {n: [srcs[n]["summary"]["categories"].get(c, {}).get("any", {}).get("violation_rate", 0.0) for c in cats] for n in names}, "clips with any violation, per category", "clips violating")}">')
        for n in names:
            rows = [[c] + [srcs[n]["summary"]["categories"][c][m]["violation_rate"] for m in METRICS]
                    + [srcs[n]["summary"]["categories"][c]["any"]["violation_rate"]] for c in srcs[n]["summary"]["categories"]]
            parts.append(f"<h3>{html.escape(n)}</h3>" + _table(["category"] + list(METRICS) + ["any"], rows, _pct))
    if "validation" in report:
        v = report["validation"]
        parts.append("<h2>Validation on world clips (artifact x metric)</h2><p>Rows: injected artifact "
                     f"(n per row below); cells: share of clips flagged by the metric; the target metric's cell is "
                     f"its recall. Last row: false alarms on {v['n_clean']} clean clips.</p>")
        rows = [[a + f" (n={v['n'][a]})"] + [v["matrix"][a][m] for m in METRICS] + [v["target"][a], v["recall"][a]]
                for a in v["matrix"]]
        rows.append([f"clean (n={v['n_clean']})"] + [v["clean"][m] for m in METRICS] + ["-", "-"])
        parts.append(_table(["artifact"] + list(METRICS) + ["target", "recall"], rows, _pct))
    parts.append("<h2>Examples of detected violations</h2>")
    for n, exs in examples.items():
        for ex in exs:
            items = "".join(f"<li>frame {v['frame']}: {html.escape(v['metric'])}: {html.escape(v['what'])}</li>"
                            for v in ex["violations"])
            parts.append(f"<h4>{html.escape(n)} · {html.escape(str(ex['id']))}: {html.escape(str(ex['prompt']))}</h4>"
                         f'<img src="{_example(ex)}"><ol>{items}</ol>')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def write_report(report: dict, examples: dict[str, list[dict]], out: str | Path) -> tuple[Path, Path]:
    """report.json (all numbers, every clip's violations) and report.html in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jp, hp = out / "report.json", out / "report.html"
    jp.write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    hp.write_text(render_html(report, examples))
    return jp, hp


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


# ----------------------------------------------------------------------------------------------
# clips from a folder


VIDEO_EXT = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")


def folder_items(root: str | Path) -> list[dict]:
    """Videos under `root` with their prompts: a sidecar <name>.json ({"prompt": ...}, or a world truth file
    with "captions"), else an index.jsonl ({"video": ..., "caption"/"prompt": ...}) or captions.json
    ({file name: prompt}). The category comes from the sidecar ("category", or the world "family")."""
    from .suite import CATEGORIES

    root = Path(root)
    index: dict[str, dict] = {}
    if (root / "index.jsonl").exists():
        for line in (root / "index.jsonl").read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                key = d.get("video") or d.get("path") or d.get("file")
                if key:
                    index[str((root / key).resolve())] = d
    if (root / "captions.json").exists():
        for k, v in json.loads((root / "captions.json").read_text()).items():
            index.setdefault(str((root / k).resolve()), {"prompt": v})
    fam_cat = {}
    for c, fams in CATEGORIES.items():
        for f in fams:
            fam_cat.setdefault(f, c)
    items = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXT and p.is_file()):
        meta = dict(index.get(str(path.resolve()), {}))
        side = path.with_suffix(".json")
        if side.exists():
            try:
                meta.update(json.loads(side.read_text()))
            except json.JSONDecodeError:
                pass
        prompt = meta.get("prompt") or meta.get("caption") or (meta.get("captions") or [None])[0]
        cat = meta.get("category") or fam_cat.get(meta.get("family", ""), meta.get("family") or "unknown")
        items.append({"id": str(path.relative_to(root)), "path": str(path), "prompt": prompt, "category": cat,
                      **({"family": meta["family"]} if "family" in meta else {})})
    return items


def folder_source(item: dict) -> tuple[np.ndarray, float]:
    from daas.video import read_video

    return read_video(item["path"])
