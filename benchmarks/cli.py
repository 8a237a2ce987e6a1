"""Commands of benchmarks/ (registered on the `daas` app by daas/cli.py): `daas bench ...`."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from daas.errors import DaasError
from generator.defaults import DEFAULT_GUIDANCE, DEFAULT_STEPS

bench_app = typer.Typer(help="Artifact benchmarks: object permanence, identity, physics, causality and "
                             "persistence measured in any clip, validated against the world.", no_args_is_help=True)


def _progress():
    """A rich progress bar on stderr; returns (context, wrap(iterable, description))."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)

    def wrap(it, description="measuring"):
        it = list(it)
        yield from prog.track(it, total=len(it), description=description)

    return prog, wrap


@bench_app.command("artifacts")
def artifacts(
    videos: Optional[Path] = typer.Option(None, "--videos", help="Measure the clips in this folder (prompts from "
                                          "sidecar .json, index.jsonl or captions.json)."),
    generator: bool = typer.Option(False, "--generator", help="Generate the prompt suite, then measure it; the "
                                   "world's clips and a weak setting of the same generator are measured beside it."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Generator checkpoint (default: the "
                                              "shipped one)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write report.json and report.html here."),
    per_category: Optional[int] = typer.Option(None, "--per-category", min=1, help="Use the first N prompts of "
                                               "each category (default: the whole suite)."),
    steps: int = typer.Option(DEFAULT_STEPS, help="Sampling steps of the generator (its default sampler)."),
    guidance: float = typer.Option(DEFAULT_GUIDANCE, help="Classifier-free guidance scale."),
    batch: int = typer.Option(8, min=1, help="Prompts generated per pipeline call (1: each with its own seed)."),
    weak: bool = typer.Option(True, "--weak/--no-weak", help="Also measure the weak setting (2 steps, guidance 1)."),
    world: bool = typer.Option(True, "--world/--no-world", help="Also measure the world's own clips (the ceiling)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
):
    """Measure artifact metrics on generated clips or on a folder of videos.

    Examples: daas bench artifacts --generator --out runs/bench;
    daas bench artifacts --generator --checkpoint runs/dit/last.ckpt --per-category 2;
    daas bench artifacts --videos clips/ --json
    """
    from .report import folder_items, folder_source, generator_source, run, world_source, write_report
    from .suite import load_suite

    if (videos is None) == (not generator):
        raise DaasError("give exactly one of --videos DIR or --generator [--checkpoint CKPT]")
    if checkpoint is not None and not generator:
        raise DaasError("--checkpoint goes with --generator")
    if videos is not None:
        if not videos.is_dir():
            raise DaasError(f"{videos}: not a folder")
        items = folder_items(videos)
        if not items:
            raise DaasError(f"{videos}: no videos found ({', '.join(('.mp4', '.mkv', '.mov', '.webm'))})")
        sources = {"videos": folder_source}
    else:
        items = load_suite(per_category=per_category)
        pipe = _load_pipeline(checkpoint)
        sources = {"generator": generator_source(pipe, steps, guidance, items=items, batch=batch)}
        if weak:
            sources["generator (weak: 2 steps, cfg 1)"] = generator_source(pipe, 2, 1.0, items=items, batch=batch)
        if world:
            sources["world"] = world_source
    prog, wrap = _progress()
    with prog:
        report, examples = run(items, sources, progress=wrap)
    if out is not None:
        jp, hp = write_report(report, examples, out)
    summary = {n: s["summary"] for n, s in report["sources"].items()}
    if as_json:
        sys.stdout.write(json.dumps({"summary": summary, **({"report": str(jp), "html": str(hp)} if out else {})}, indent=1) + "\n")
        return
    _print_summary(report)
    if out is not None:
        typer.echo(f"wrote {jp} and {hp}")


def _load_pipeline(checkpoint: Path | None):
    try:
        from generator import load_pipeline
    except ImportError as e:
        raise DaasError(f"the generator is not available ({e})") from None
    if checkpoint is not None and not Path(checkpoint).exists():
        raise DaasError(f"{checkpoint}: no such checkpoint")
    try:
        return load_pipeline(checkpoint=None if checkpoint is None else str(checkpoint))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise DaasError(f"cannot load the generator: {e}") from None


def _print_summary(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from .metrics import METRICS

    names = list(report["sources"])
    t = Table("metric", *names, title="share of clips with a violation")
    for m in list(METRICS) + ["any"]:
        t.add_row(m, *[f"{100 * report['sources'][n]['summary']['all'][m]['violation_rate']:.1f}%" for n in names])
    Console().print(t)


@bench_app.command("validate")
def validate_cmd(
    n_clean: int = typer.Option(200, "--n-clean", min=1, help="Clean world clips (false alarms)."),
    n: int = typer.Option(40, "--n", min=1, help="Clips per injected artifact (recall)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write validation.json (and report.html) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the matrix as JSON."),
):
    """The artifact x metric matrix on world clips: recall per artifact, false alarms on clean clips.

    Example: daas bench validate --n-clean 200 --n 40 --out runs/validate
    """
    from .inject import ARTIFACTS, validate
    from .metrics import METRICS
    from .report import render_html

    prog, wrap = _progress()
    try:
        with prog:
            v = validate(n_clean=n_clean, n_per_artifact=n, progress=lambda it: wrap(it, "validating"))
    except ValueError as e:
        raise DaasError(str(e)) from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.json").write_text(json.dumps(v, indent=1) + "\n")
        (out / "report.html").write_text(render_html({"sources": {}, "validation": v}, {}, "DAAS benchmark validation"))
    if as_json:
        sys.stdout.write(json.dumps(v, indent=1) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    short = {m: m[:8] for m in METRICS}
    t = Table("artifact", *short.values(), "recall", title="share of clips flagged (artifact x metric)")
    for a in ARTIFACTS:
        if a in v["matrix"]:
            t.add_row(f"{a} ({v['n'][a]})", *[f"{100 * v['matrix'][a][m]:.0f}" for m in METRICS], f"{100 * v['recall'][a]:.0f}%")
    t.add_row(f"clean ({v['n_clean']})", *[f"{100 * v['clean'][m]:.1f}" for m in METRICS], "")
    Console().print(t)


def register(app: typer.Typer) -> None:
    """Add this part's commands to `app`."""
    app.add_typer(bench_app, name="bench")
