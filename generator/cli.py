"""Commands of generator/: `daas generate` and `daas train vae|dit` (registered by daas/cli.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from daas.errors import DaasError

from .defaults import (DEFAULT_BEST_OF, DEFAULT_GUIDANCE, DEFAULT_GUIDANCE_INTERVAL, DEFAULT_GUIDANCE_REUSE,
                       DEFAULT_PRECISION, DEFAULT_RESTART, DEFAULT_RESTARTS, DEFAULT_SAMPLER, DEFAULT_SHIFT,
                       DEFAULT_STEPS)


def generate(
    prompt: str = typer.Argument(..., help="What the clip should show."),
    output: Path = typer.Option(..., "-o", "--output", help="Output MP4 (a JSON sidecar goes beside it)."),
    frames: int = typer.Option(17, help="Number of frames (1 + 4k)."),
    size: str = typer.Option("64", help="N or WIDTHxHEIGHT (multiples of 8)."),
    steps: int = typer.Option(DEFAULT_STEPS, help="Sampling steps (heun: two DiT evaluations each, the others one)."),
    guidance: float = typer.Option(DEFAULT_GUIDANCE, help="Classifier-free guidance scale."),
    guidance_interval: str = typer.Option(
        ",".join(f"{v:g}" for v in DEFAULT_GUIDANCE_INTERVAL), metavar="LO,HI",
        help="Guide only at times t in (LO, HI] (t = 1 is pure noise); elsewhere one unguided DiT evaluation."),
    restart: str = typer.Option(
        ",".join(f"{v:g}" for v in DEFAULT_RESTART), metavar="LO,HI",
        help="Restart sampling: at t = LO go back to t = HI with fresh noise and sample that window again."),
    restarts: int = typer.Option(DEFAULT_RESTARTS, help="How many restarts (0: none)."),
    guidance_reuse: bool = typer.Option(
        DEFAULT_GUIDANCE_REUSE,
        help="Reuse the guidance direction at Heun's repeated times (fewer DiT evaluations; heun only)."),
    seed: int = typer.Option(0, help="Seed (the same seed gives the same clip)."),
    best_of: int = typer.Option(DEFAULT_BEST_OF, help="Sample N noises and keep the clip whose colours stay "
                                "steadiest (N times the time; the sidecar names the seed kept)."),
    negative: Optional[str] = typer.Option(None, help="Negative prompt."),
    image: Optional[Path] = typer.Option(None, help="First frame (a video file's first frame or a PNG/JPEG)."),
    extend: Optional[Path] = typer.Option(None, help="A video to continue."),
    sampler: str = typer.Option(DEFAULT_SAMPLER, help="heun, euler or dpm2m (DPM-Solver++(2M): one DiT evaluation "
                                "a step, as euler, and second order, as heun)."),
    shift: float = typer.Option(DEFAULT_SHIFT, help="Timestep shift (> 1 spends more steps at high noise)."),
    checkpoint: Optional[Path] = typer.Option(None, help="DiT weights (default: the shipped checkpoint)."),
    expert: Optional[Path] = typer.Option(None, help="The DiT's high-noise expert weights (default: the shipped "
                                          "one, with the shipped DiT)."),
    no_expert: bool = typer.Option(False, "--no-expert", help="The DiT alone at every step."),
    precision: str = typer.Option(DEFAULT_PRECISION, help="The DiT's: auto (bf16 where the CPU computes it "
                                  "natively, else fp32), bf16-mixed or 32-true (slower; a clip made in a batch "
                                  "then equals the same clip made alone)."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the sidecar as JSON."),
):
    """Generate a signed, watermarked clip from a prompt.

    Example: daas generate "a red ball falls and bounces twice" -o ball.mp4 --seed 3
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from daas.cli import emit_json, parse_size
    from daas.fileio import check_writable

    from .pipeline import generate_video, load_pipeline

    width, height = parse_size(size)
    interval = _parse_interval(guidance_interval, "--guidance-interval")
    restart_window = _parse_interval(restart, "--restart")
    check_writable(output, overwrite)
    check_writable(output.with_suffix(".json"), overwrite)
    cond_image = _read_image(image) if image else None
    cond_video = None
    if extend:
        from daas.video import read_video

        cond_video, _ = read_video(extend, size=(width, height), max_frames=64)
    err = Console(stderr=True)
    pipe = load_pipeline(checkpoint, precision=precision, expert=False if no_expert else expert)
    # checked before the progress bar draws anything
    pipe.check([prompt], frames, height, width, steps, guidance, shift, sampler, interval, restart_window, restarts,
               best_of, seed, guidance_reuse=guidance_reuse)
    with Progress(TextColumn("generating"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("", total=pipe.sampler_steps(steps, shift, restart_window, restarts))
        side = generate_video(pipe, prompt, output, overwrite=overwrite, num_frames=frames, height=height,
                              width=width, num_inference_steps=steps, guidance_scale=guidance, seed=seed,
                              negative_prompt=negative, image=cond_image, video=cond_video, sampler=sampler,
                              shift=shift, guidance_interval=interval, restart=restart_window, restarts=restarts,
                              guidance_reuse=guidance_reuse, best_of=best_of,
                              progress=lambda i: bar.update(task, completed=i + 1))
    if as_json:
        emit_json(side)
    else:
        p = side["provenance"]
        Console().print(f"[bold]{output}[/]: {prompt!r}, {side['params']['frames']} frames {side['params']['size']}, "
                        f"seed {seed}, {side['seconds']['total']:.2f}s; watermark payload {p.get('payload')}, "
                        f"signed by {p.get('signer')}")


def _parse_interval(text: str, option: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise DaasError(f"{option} takes LO,HI (two times, such as 0.4,1), got {text!r}") from None
    return lo, hi


def _read_image(path: Path):
    import numpy as np

    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        from PIL import Image, UnidentifiedImageError

        if not path.exists():
            raise DaasError(f"{path}: no such file")
        try:
            return np.asarray(Image.open(path).convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise DaasError(f"{path}: not a readable image ({type(e).__name__})") from None
    from daas.video import read_video

    return read_video(path, max_frames=1)[0][0]


def train(
    stage: str = typer.Argument(..., help="vae or dit."),
    config: Path = typer.Option(..., help="YAML config (configs/vae.yaml, configs/dit.yaml)."),
    max_steps: Optional[int] = typer.Option(None, help="Override train.max_steps."),
    export: bool = typer.Option(False, help="Export the run's last checkpoint to generator/weights instead."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, section.key=value (YAML syntax); repeatable."),
):
    """Train (or resume) the VAE or the DiT; runs live in runs/<stage>/.

    Example: daas train vae --config configs/vae.yaml
    A cooldown branch of a constant-lr DiT run (after copying runs/dit16t/checkpoints/last.ckpt into
    runs/dit16t_cd/checkpoints/ and linking runs/dit16t/latents_*.pt into runs/dit16t_cd/, which a new run folder
    would otherwise encode again): daas train dit --config configs/dit_vae16.yaml --set train.run_dir=runs/dit16t_cd
    --set train.lr_schedule=cosine --set train.decay_start=13500 --set train.max_steps=15000
    """
    if stage not in ("vae", "dit"):
        raise DaasError(f"stage must be vae or dit, got {stage!r}")
    from .train import main

    argv = [stage, "--config", str(config)] + (["--max-steps", str(max_steps)] if max_steps else [])
    argv += [a for item in set_ for a in ("--set", item)]
    try:
        main(argv + (["--export"] if export else []))
    except ValueError as e:
        raise DaasError(str(e)) from None
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(train)
