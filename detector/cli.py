"""Commands of detector/ (registered on the `daas` app by daas/cli.py): `daas scan` and `daas detector ...`.

torch, timm and lightning are imported inside the commands (scan never imports lightning).
Exit codes: 0 ok, 1 synthetic content found (scan), 2 usage or bad input.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

detector_app = typer.Typer(help="The synthetic-video classifier: data sets, training, evaluation.",
                           no_args_is_help=True)

VERDICT_STYLE = {"signed-synthetic": "bold red", "watermarked-synthetic": "bold red", "likely-synthetic": "red",
                 "no evidence found": "green"}


def _err(msg: str) -> None:
    sys.stderr.write("error: " + " ".join(str(msg).split()) + "\n")


def scan(
    paths: list[str] = typer.Argument(..., help="Video files, folders (searched recursively) or globs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON line per file as results arrive."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Detector weights (default: the shipped "
                                              "detector/weights/detector.safetensors)."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0,
                                    help="Calibrated P(synthetic) at or above which a clip is likely synthetic."),
    workers: int = typer.Option(0, "--workers", min=0, help="Files scanned in parallel (0: automatic)."),
    max_segments: int = typer.Option(8, "--max-segments", min=1, help="Most 2-second windows classified per video."),
    no_classifier: bool = typer.Option(False, "--no-classifier", help="Provenance and watermark only."),
    trust_anchors: Optional[Path] = typer.Option(None, "--trust-anchors", help="PEM of trusted CA certificates "
                                                 "(or $DAAS_TRUST_ANCHORS)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Manifest store for recovery (default: "
                                         "DAAS_HOME/manifests.sqlite)."),
):
    """Scan videos for synthetic origin: C2PA manifest, DAAS watermark (with manifest recovery) and classifier.

    One verdict per video: signed-synthetic, watermarked-synthetic, likely-synthetic or no evidence found.
    Exit code: 1 if anything synthetic was found, 2 if some input could not be scanned (and nothing
    synthetic was found), else 0. Inputs are never modified.

    Example: daas scan videos/ clip.mp4 'downloads/*.mov' --json
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from daas.errors import DaasError

    from .scan import exit_code, expand_paths
    from .scan import scan as run_scan

    if as_json and jsonl:
        raise DaasError("choose one of --json and --jsonl")
    anchors = str(trust_anchors) if trust_anchors else os.environ.get("DAAS_TRUST_ANCHORS") or None
    if anchors and not Path(anchors).is_file():
        raise DaasError(f"trust anchors {anchors}: no such file")
    if checkpoint is not None and not checkpoint.is_file():
        raise DaasError(f"detector checkpoint {checkpoint}: no such file")
    files, _ = expand_paths(paths)
    err_con = Console(stderr=True)
    progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_con, transient=True, disable=not err_con.is_terminal or len(files) < 2)

    def on_result(r):
        progress.advance(task)
        if jsonl:
            sys.stdout.write(json.dumps(r.to_dict()) + "\n")
            sys.stdout.flush()

    warns: list = []
    with progress:
        task = progress.add_task("scan", total=len(files))
        results, errors = run_scan(paths, checkpoint=checkpoint, threshold=threshold, workers=workers or None,
                                   trust_anchors=anchors, store=store, classifier=not no_classifier,
                                   max_segments=max_segments, on_result=on_result, warnings=warns)
    file_errors = [r.error for r in results if r.error]
    if as_json:
        summary = {v: sum(r.verdict == v for r in results) for v in
                   ("signed-synthetic", "watermarked-synthetic", "likely-synthetic", "no evidence found")}
        sys.stdout.write(json.dumps({"results": [r.to_dict() for r in results], "errors": errors + file_errors,
                                     "summary": summary}, indent=1) + "\n")
    elif not jsonl:
        _print_table([r for r in results if not r.error])
    for w in warns:
        sys.stderr.write("warning: " + w + "\n")
    for e in errors + file_errors:
        _err(e)
    code = exit_code(results, errors)
    if code:
        raise typer.Exit(code)


def _print_table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    if not results:
        return
    t = Table("file", "verdict", "C2PA", "watermark", "P(synthetic)", "segments", "why")
    for r in results:
        wm = r.watermark or {}
        wms = ("detected" + (f" (p={wm['p_value']:.1g})" if wm.get("p_value") is not None else "")
               if wm.get("detected") else "no" if wm.get("detected") is False else "not checked")
        if r.recovered:
            wms += f"; manifest recovered ({r.recovered.get('signature')})"
        segs = " ".join(f"{s['p']:.2f}" for s in r.segments[:8]) + (" ..." if len(r.segments) > 8 else "")
        t.add_row(r.path, f"[{VERDICT_STYLE.get(r.verdict, '')}]{r.verdict}[/]", r.c2pa_status or "-", wms,
                  "-" if r.probability is None else f"{r.probability:.3f}", segs or "-", "; ".join(r.reasons))
    con = Console(highlight=False)
    if not con.is_terminal:  # piped: do not squeeze the table into 80 columns
        con = Console(highlight=False, width=200)
    con.print(t)


@detector_app.command("dataset")
def dataset(
    out: Path = typer.Option(..., "--out", help="Output folder: <out>/<split>/{real,fake}/*.mp4 + index.jsonl."),
    n: int = typer.Option(200, "--n", min=1, help="Clips per class in the train split (val and test get n/5)."),
    splits: list[str] = typer.Option(["train", "val", "test"], "--split", help="Splits to build (repeatable)."),
    fake: str = typer.Option("auto", "--fake-source", help="generator (the shipped checkpoint, no watermark), "
                             "vae (VAE-only reconstructions), standin (degraded world clips; a stand-in), a mix "
                             "such as standin+vae, or auto (generator when its checkpoint exists, else standin)."),
    vae_path: Optional[Path] = typer.Option(None, "--vae", help="VAE weights for --fake-source vae (default: the "
                                            "shipped generator/weights/vae.safetensors)."),
    real_dir: Optional[Path] = typer.Option(None, "--real", help="Your own folder of real videos (any size)."),
    fake_dir: Optional[Path] = typer.Option(None, "--fake", help="Your own folder of synthetic videos."),
    steps: str = typer.Option("8,12,16,24", "--steps", help="Generator step counts to draw from."),
    guidance: str = typer.Option("2,3,4,5", "--guidance", help="Generator guidance scales to draw from."),
    samplers: str = typer.Option("all", "--samplers", help="Generator samplers to draw from, comma-separated, or "
                                 "all (every sampler of the pipeline, its default among them)."),
    seed: int = typer.Option(0, "--seed"),
    watermark_share: float = typer.Option(0.5, "--watermark-share", min=0.0, max=1.0,
                                          help="Share of the clips of both classes given a DAAS watermark (random "
                                               "keys), so that the mark says nothing of the label."),
):
    """Build a labelled, balanced data set; both classes take the same path (random crop and resize, H.264
    at a random CRF 18-35, MP4).

    Examples: daas detector dataset --out data/det --n 400

              daas detector dataset --out data/mine --real my_real/ --fake my_fake/
    """
    import torch
    from rich.console import Console
    from rich.progress import track

    from daas.errors import DaasError

    from .data import build_dataset, build_from_folders, fake_source_for

    torch.set_num_threads(1)
    con = Console(stderr=True)
    if (real_dir is None) != (fake_dir is None):
        raise DaasError("--real and --fake go together")
    if real_dir is not None:
        errs: list = []
        rows = build_from_folders(out, real_dir, fake_dir, seed=seed, errors=errs,
                                  progress=lambda it: track(it, description="encoding", console=con))
        for e in errs:
            _err(f"skipped {e}")
        sys.stdout.write(f"wrote {', '.join(f'{k}: {len(v)}' for k, v in rows.items())} clips to {out}\n")
        return
    try:
        kw = {"steps": [int(s) for s in steps.split(",")], "guidance": [float(g) for g in guidance.split(",")]}
    except ValueError:
        raise DaasError("--steps and --guidance are comma-separated numbers") from None
    kw["samplers"] = None if samplers == "all" else [s.strip() for s in samplers.split(",")]  # None: every sampler
    try:
        src = fake_source_for(fake, **kw, vae_path=vae_path)
    except ValueError as e:  # GeneratorSource's check of its lists (an unknown sampler), made before the model loads
        raise DaasError(str(e)) from None
    kind = fake if fake != "auto" else type(src).__name__
    for split in splits:
        k = n if split == "train" else max(1, n // 5)
        build_dataset(out, k, k, src, split=split, seed=seed, watermark_share=watermark_share,
                      progress=lambda it: track(it, description=f"{split} ({kind})", console=con))
        sys.stdout.write(f"{split}: {k} real + {k} synthetic ({kind}) -> {out / split}\n")


@detector_app.command("train")
def train(
    data: Path = typer.Option(..., "--data", help="Data set folder (from `daas detector dataset`)."),
    out: Path = typer.Option(..., "--out", help="Weights to write (the shipped ones are "
                             "detector/weights/detector.safetensors)."),
    steps: int = typer.Option(500, "--steps", min=1),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr"),
    backbone: str = typer.Option("mobilenetv3_small_100", "--backbone", help="Any timm model name."),
    frame_only: bool = typer.Option(False, "--frame-only", help="The ablation: no frame-difference stream, no "
                                    "temporal head."),
    threads: int = typer.Option(1, "--threads", min=1),
    seed: int = typer.Option(0, "--seed"),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from these detector weights (e.g. the shipped "
                                        "ones, to follow a new generator); their architecture is kept."),
):
    """Train the detector (Lightning, CPU), calibrate its temperature on the val split, save fp16 weights.

    Logs (CSV) go to runs/detector/ under the current folder.

    Example: daas detector train --data data/det --steps 500 --out det.safetensors
    """
    from .model import DetectorConfig
    from .training import fit

    cfg = None if init else DetectorConfig(backbone=backbone, temporal=not frame_only)
    info = fit(data, out, cfg=cfg, max_steps=steps, batch_size=batch_size, lr=lr, seed=seed, threads=threads,
               progress=sys.stderr.isatty(), init=init)
    sys.stdout.write(json.dumps(info, indent=1) + "\n")


@detector_app.command("eval")
def evaluate(
    data: Path = typer.Option(..., "--data", help="Data set folder with a test split."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Weights (default: the shipped ones)."),
    ablation: Optional[Path] = typer.Option(None, "--ablation", help="Frame-only weights to compare."),
    unseen: list[str] = typer.Option([], "--unseen", help="NAME=SPLIT_DIR of synthetic clips from generator "
                                     "settings not seen in training (repeatable)."),
    out: Path = typer.Option(Path("detector_eval"), "--out", help="Writes OUT.json and OUT.html."),
    no_perturb: bool = typer.Option(False, "--no-perturb", help="Skip the perturbed copies."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON."),
):
    """Frame- and clip-level AUC, AP, EER, TPR@1%FPR, ECE; in-domain, under H.264 CRF 18/28/38, 0.5x resize,
    crop, noise, frame dropping; on unseen generator settings; and the frame-only ablation.

    Example: daas detector eval --data data/det --unseen steps8=data/det_unseen/unseen --out report
    """
    import torch

    from daas.errors import DaasError

    from .evaluate import evaluate as run_eval
    from .evaluate import table

    torch.set_num_threads(1)
    extra = {}
    for u in unseen:
        if "=" not in u:
            raise DaasError(f"--unseen takes NAME=DIR, got {u!r}")
        k, v = u.split("=", 1)
        extra[k] = v
    res = run_eval(checkpoint, data, ablation=ablation, unseen=extra, out_json=out.with_suffix(".json"),
                   out_html=out.with_suffix(".html"), perturb=not no_perturb)
    if as_json:
        sys.stdout.write(json.dumps(res, indent=1) + "\n")
    else:
        sys.stdout.write("clip level\n" + table(res, "video") + "\n\nframe level\n" + table(res, "frame") + "\n")
        for k, v in res["targets"].items():
            if v["auc"] is None:  # a condition not evaluated (e.g. --no-perturb)
                sys.stdout.write(f"target {k}: not measured\n")
            else:
                sys.stdout.write(f"target {k}: {v['auc']:.4f} {'met' if v['met'] else 'NOT met'}\n")
        sys.stdout.write(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.html')}\n")


def register(app: typer.Typer) -> None:
    """Add this part's commands to `app`."""
    app.command("scan")(scan)
    app.add_typer(detector_app, name="detector")
