"""The `daas` command line: a thin layer over the parts' functions.

Every part registers its commands here; heavy libraries (torch, lightning) are imported inside the
commands that need them, so `daas --help`, `daas info` and `daas verify` start fast.
Exit codes: 0 ok, 1 the command ran and found something (synthetic content), 2 usage or bad input.
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import DaasError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="daas",
    help="DAAS: generate signed, watermarked videos; scan videos for synthetic origin; benchmark physics "
    "and causality artifacts.\n\nExamples:\n\n  daas world render --family candle -o candle.mp4\n\n"
    "  daas info candle.mp4 --json",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
world_app = typer.Typer(help="The procedural physics world: real footage with exact ground truth.", no_args_is_help=True)
app.add_typer(world_app, name="world")


def print_error(message: str) -> None:
    """One line on stderr, never wrapped or styled."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=1) + "\n")


def parse_size(text: str) -> tuple[int, int]:
    """'64' or '96x64' (width x height) -> (width, height)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise DaasError(f"size must be N or WIDTHxHEIGHT, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise DaasError(f"size must be N or WIDTHxHEIGHT, got {text!r}")
    return parts[0], parts[1]


@app.command()
def info(
    files: list[Path] = typer.Argument(..., help="Video files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Streams, size, fps, duration and codec of video files.

    Example: daas info clip.mp4 --json
    """
    from rich.table import Table

    from .video import probe

    infos, bad = [], []
    for f in files:
        try:
            infos.append(probe(f).to_dict())
        except DaasError as e:
            bad.append({"path": str(f), "error": str(e)})
    if as_json:
        emit_json({"videos": infos, "errors": bad})
    else:
        table = Table("file", "container", "codec", "size", "fps", "frames", "duration", "audio")
        for i in infos:
            table.add_row(i["path"], i["container"], i["codec"], f"{i['width']}x{i['height']}", f"{i['fps']:.3g}",
                          str(i["n_frames"]), f"{i['duration']:.2f}s", "yes" if i["has_audio"] else "no")
        if infos:  # (no empty table when every file was bad: the errors say it all)
            console.print(table)
        for b in bad:
            print_error(b["error"])
    if bad:
        raise typer.Exit(2)


@world_app.command("render")
def world_render(
    output: Path = typer.Option(..., "-o", "--output", help="Output video (.mp4, .mkv); the truth goes beside it as .json."),
    seed: int = typer.Option(0, help="Scene seed (the same seed gives the same clip)."),
    family: Optional[str] = typer.Option(None, help="Scene family (default: drawn from the seed)."),
    size: str = typer.Option("64", help="N or WIDTHxHEIGHT."),
    fps: float = typer.Option(8.0, help="Frames per second (8-16)."),
    frames: int = typer.Option(17, help="Number of frames."),
    clean: bool = typer.Option(False, help="No texture, lighting or sensor noise."),
    lossless: bool = typer.Option(False, help="Lossless video (libx264rgb qp 0, or FFV1 in .mkv)."),
    overwrite: bool = typer.Option(False, help="Replace existing files."),
    as_json: bool = typer.Option(False, "--json", help="Print the truth as JSON."),
):
    """Render one world clip with its caption and ground truth.

    Example: daas world render --family candle --seed 3 -o candle.mp4
    """
    from world import Style, make_clip

    from .fileio import check_writable, write_json
    from .video import write_video

    w, h = parse_size(size)
    try:
        clip = make_clip(seed, family, w, h, fps, frames, style=Style.clean() if clean else None)
    except ValueError as e:
        raise DaasError(str(e)) from None
    truth_path = output.with_suffix(".json")
    check_writable(truth_path, overwrite)
    truth = clip.truth()
    write_video(output, clip.frames, clip.fps, lossless=lossless, overwrite=overwrite)
    try:
        write_json(truth_path, truth, overwrite=overwrite)
    except BaseException:
        output.unlink(missing_ok=True)  # never leave a clip without its ground truth
        raise
    if as_json:
        emit_json(truth)
    else:
        console.print(f"[bold]{output}[/]: {clip.caption!r}")
        console.print(truth_summary(truth))


def truth_summary(truth: dict) -> str:
    objs = ", ".join(f"{o['colour']} {o['class']}" for o in truth["objects"])
    evs = ", ".join(f"{e['kind']}@{e['frame']}" for e in truth["events"]) or "none"
    return (f"family {truth['family']}, {truth['n_frames']} frames {truth['width']}x{truth['height']} at "
            f"{truth['fps']:g} fps; objects: {objs}; events: {evs}")


@world_app.command("dataset")
def world_dataset(
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    n: int = typer.Option(..., "--n", help="Number of clips."),
    split: str = typer.Option("train", help="Seed split: train, val, test, bench, detector."),
    offset: int = typer.Option(0, help="First seed, counted from the start of the split."),
    family: list[str] = typer.Option([], help="Scene families (repeatable; default all)."),
    size: str = typer.Option("64", help="N or WIDTHxHEIGHT."),
    fps: float = typer.Option(8.0),
    frames: int = typer.Option(17),
    lossless: bool = typer.Option(True, help="Lossless videos (default) or H.264 CRF 18."),
):
    """Write a data set: videos, truth and an index.jsonl with captions.

    Example: daas world dataset --n 200 --out data/world
    """
    from rich.progress import track

    from world import FAMILIES
    from world.dataset import write_dataset

    w, h = parse_size(size)
    fams = tuple(family) or FAMILIES
    try:
        items = write_dataset(out, n, split=split, offset=offset, families=fams, width=w, height=h, fps=fps,
                              n_frames=frames, lossless=lossless, progress=lambda it: track(it, description="rendering", total=n, console=err_console))
    except ValueError as e:
        raise DaasError(str(e)) from None
    console.print(f"wrote {len(items)} clips to {out} (index: {out / 'index.jsonl'})")


# the parts' commands
for _mod in ("provenance.cli", "generator.cli", "detector.cli", "benchmarks.cli"):
    importlib.import_module(_mod).register(app)


def main() -> None:
    from .memory import keep_freed_memory

    keep_freed_memory()  # a command's first pipeline call runs nearly as fast as later ones (daas/memory.py)
    # Click's own error handling (standalone mode) draws a multi-line box; ours is one line and exit status 2
    try:
        rc = app(standalone_mode=False)
    except typer.TyperException as e:  # click's exceptions (typer vendors click): usage errors, bad values
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:  # `daas world`: the help, as before
            help_text = e.format_message()  # the help; rich help printed itself when it was made, leaving ""
            if help_text.strip():
                sys.stdout.write(help_text + "\n")
            sys.exit(2)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print_error(e.format_message() + hint)
        sys.exit(getattr(e, "exit_code", 2) or 2)
    except typer.Abort:
        print_error("aborted")
        sys.exit(1)
    except DaasError as e:
        print_error(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    # outside standalone mode click returns an exit status (typer.Exit, --help) or the command's return value
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
