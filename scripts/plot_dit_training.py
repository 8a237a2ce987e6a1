"""Loss curves of the shipped DiT's training, for its model card: train loss (moving mean) and validation flow
loss against the samples seen, over every stage of its lineage (one Lightning `metrics.csv` per stage).

    python scripts/plot_dit_training.py --out generator/weights/loss_curves.png \
        --stage "H200 s13 (batch 256)=runs/metrics.csv:256:0" \
        --stage "H200 s13 resumed=runs/metrics2.csv:256:0" \
        --stage "CPU cooldown s13 (batch 8)=runs/dit16gcd/logs/version_0/metrics.csv:8:858880" \
        --stage "H200 s14 (batch 512)=runs/dit16h_metrics.csv:512:870880"

A stage is LABEL=CSV:BATCH:START (START: samples seen before the stage's step 0). Writes the PNG and, beside it,
a CSV of the plotted points (`.csv`), so the curves stay readable where the runs/ folders are gone: a CSV with a
`stage` column (that file, or a copy of it) gives back the points of the stage named LABEL. A resumed run logs each
resume to a new `version_N/metrics.csv`: CSV may be several joined by `+`, each later one replacing the steps from
its first on (a resume repeats the steps after its checkpoint). Session 31 (the lineage up to session 28 read back):

    cp generator/weights/loss_curves.csv /tmp/prev.csv
    python scripts/plot_dit_training.py --out generator/weights/loss_curves.png \
        --stage "H200 s13 (batch 256)=/tmp/prev.csv:256:0" ... (each stage of /tmp/prev.csv by its label) \
        --stage "CPU s30 from the s28 DiT, squares 2x from step 100=runs/dit30/logs/version_0/metrics.csv+...:128:2520032" \
        --stage "CPU s31 cooldown from 250=runs/dit31cd/logs/version_0/metrics.csv:128:2520032"

with BATCH:START of the stages read back: the two H200 s13 stages 256:0, the CPU cooldown s13 8:858880, H200 s14
512:870880, CPU s21 128:1833440, s22 128:1930848, s24-28 and both of its cooldowns 128:2005728.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from daas.fileio import atomic_path


def read_points(path: Path, label: str) -> tuple[list, list]:
    """[(step, train loss)], [(step, val loss)] of a Lightning CSVLogger file, or of the stage `label` of a CSV
    this script wrote."""
    tr, va = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("step") in (None, "", "step"):
                continue
            if "stage" in row:  # this script's own CSV
                if row["stage"] == label:
                    (tr if row["kind"] == "train" else va).append((int(row["step"]), float(row["loss"])))
                continue
            if row.get("train/loss"):
                tr.append((int(row["step"]), float(row["train/loss"])))
            if row.get("val/loss"):
                va.append((int(row["step"]), float(row["val/loss"])))
    return tr, va


def read_stage(paths: str, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train steps, train loss, val steps, val loss) of one or more CSVs joined by `+` (a run's resumes in order:
    each replaces the steps from its first on)."""
    tr, va = [], []
    for path in paths.split("+"):
        t, v = read_points(Path(path), label)
        first = min([s for s, _ in t + v], default=None)
        if first is not None:
            tr = [p for p in tr if p[0] < first] + t
            va = [p for p in va if p[0] < first] + v
    if not tr and not va:
        raise ValueError(f"no loss in {paths} for the stage {label!r}")
    tr, va = np.array(tr or np.zeros((0, 2))), np.array(va or np.zeros((0, 2)))
    return tr[:, 0], tr[:, 1], va[:, 0], va[:, 1]


def moving_mean(x: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(x)))
    return np.convolve(x, np.ones(k) / k, mode="valid")


def stage_style(i: int) -> dict:
    """Matplotlib's 10 colours, then the same colours dashed with squares, then dotted with triangles: the lineage
    has more than 10 stages, and no two of the first 30 look alike."""
    return {"color": f"C{i % 10}", "ls": ("-", "--", ":")[i // 10 % 3], "marker": "os^"[i // 10 % 3]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", action="append", required=True, help="LABEL=CSV:BATCH:START")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--smooth", type=int, default=20, help="moving mean over this many logged train losses")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    legend_h = 0.17 * -(-len(args.stage) // 3)  # inches below the panels: a legend row for every 3 stages
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4 + legend_h))
    points = []
    for i, spec in enumerate(args.stage):
        try:  # a bad stage: one line and exit 2, before anything is written
            label, rest = spec.split("=", 1)
            path, batch, start = rest.rsplit(":", 2)
            batch, start = int(batch), int(start)
            ts, tl, vs, vl = read_stage(path, label)
        except (ValueError, OSError, KeyError) as e:
            ap.error(f"stage {spec!r}: {e}")
        x = (start + ts * batch) / 1e3
        m = moving_mean(tl, args.smooth)
        style = stage_style(i)
        a1.plot(x[len(x) - len(m):], m, label=label, lw=1, color=style["color"], ls=style["ls"])
        xv = (start + vs * batch) / 1e3
        a2.plot(xv, vl, label=label, ms=4, **style)
        points += [(label, "train", int(s), float(v)) for s, v in zip(ts, tl)]
        points += [(label, "val", int(s), float(v)) for s, v in zip(vs, vl)]
    a1.set(title=f"train flow loss (moving mean of {args.smooth})", xlabel="samples seen (thousands)", ylabel="loss")
    a2.set(title="validation flow loss (EMA, uniform t)", xlabel="samples seen (thousands)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    # One legend for both panels, below them: inside a panel it hid the early validation points.
    fig.legend(*a2.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, legend_h / (4 + legend_h) + 0.01, 1, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    csv_out = args.out.with_suffix(".csv")  # the points first: a PNG is never left without the CSV it draws
    with atomic_path(csv_out, overwrite=True) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "kind", "step", "loss"])
        w.writerows((label, kind, s, f"{v:.5f}") for label, kind, s, v in points)
    with atomic_path(args.out, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=90)
    print(f"wrote {args.out} and {csv_out}")


if __name__ == "__main__":
    main()
