"""Commands of provenance/ (registered on the `daas` app by daas/cli.py): keys init, sign, verify.

Heavy imports (c2pa, cv2, av) happen inside the commands. User errors are DaasError: daas/cli.py prints
them as one line and exits 2.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

keys_app = typer.Typer(help="The signing identity (a local development CA + leaf, or your own chain).",
                       no_args_is_help=True)

STATUS_STYLE = {"valid-trusted": "green", "valid-untrusted-signer": "yellow", "tampered": "red", "absent": "dim",
                "unreadable": "red"}


@keys_app.command("init")
def keys_init(overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing identity.")):
    """Create the development signing identity (ES256 CA + leaf, key mode 0600) under DAAS_HOME/keys.

    Example: daas keys init
    """
    from .identity import init_dev_identity, keys_dir

    ident = init_dev_identity(overwrite=overwrite)
    d = keys_dir()
    sys.stdout.write(f"created development identity '{ident.subject}'\n  chain: {d / 'chain.pem'}\n"
                     f"  key:   {d / 'signer.key'} (mode 600)\n  trust anchor for verify: {d / 'ca.pem'}\n")


def sign(
    src: Path = typer.Argument(..., help="Video to sign (MP4/MOV); it is never modified."),
    output: Path = typer.Option(..., "--output", "-o", help="Signed copy to write."),
    cert: Optional[Path] = typer.Option(None, "--cert", help="Certificate chain PEM, leaf first (or $DAAS_SIGN_CERT)."),
    key: Optional[Path] = typer.Option(None, "--key", help="Private key PEM, mode 600 (or $DAAS_SIGN_KEY)."),
    tsa_url: Optional[str] = typer.Option(None, "--tsa-url", help="Timestamp authority URL (default: none, offline)."),
    source_type: str = typer.Option("trainedAlgorithmicMedia", "--source-type",
                                    help="trainedAlgorithmicMedia, or compositeWithTrainedAlgorithmicMedia for "
                                         "edited real footage."),
    generator: str = typer.Option("unknown generator", "--generator", help="Name of the model that made the video."),
    generator_version: str = typer.Option("", "--generator-version", help="Its version or checkpoint hash."),
    watermark: bool = typer.Option(False, "--watermark", help="Also embed our watermark (re-encodes the video) "
                                   "and keep the manifest in the store for recovery."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
):
    """Sign a video with a C2PA manifest saying it is AI-generated.

    Example: daas sign clip.mp4 -o clip.signed.mp4
    """
    from .identity import load_identity
    from .manifest import protect_video, sign_video

    identity = load_identity(cert, key, tsa_url)
    agent = {"name": generator, "version": generator_version or "unknown"}
    if watermark:
        from daas.video import read_video

        frames, fps = read_video(src)
        out = protect_video(frames, fps, output, params={"source": src.name}, software_agent=agent,
                            overwrite=overwrite, identity=identity, source_type=source_type)
    else:
        out = sign_video(src, output, {"software_agent": agent, "source_type": source_type, "title": output.name},
                         identity=identity, overwrite=overwrite)
    sys.stdout.write(f"signed {output} ({out['manifest_label']}) as '{out['signer']}'"
                     + (f"; watermark payload {out['payload']}" if watermark else "") + "\n")


def verify(
    files: list[Path] = typer.Argument(..., help="Videos to verify."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust_anchors: Optional[Path] = typer.Option(None, "--trust-anchors", help="PEM file of trusted CA "
                                                 "certificates (or $DAAS_TRUST_ANCHORS)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Manifest store for recovery (default: "
                                         "DAAS_HOME/manifests.sqlite)."),
):
    """Verify C2PA manifests; when one is missing or broken, look for our watermark and recover the manifest.

    Status per file: valid-trusted, valid-untrusted-signer, tampered (with the failed check), absent, unreadable.
    Exit code: 0 all readable and none tampered, 1 some tampered, 2 bad input (missing or unreadable file).

    Example: daas verify clip.mp4 --trust-anchors ~/.config/daas/keys/ca.pem
    """
    from daas.errors import DaasError, without_path

    from .manifest import verify_video

    anchors = trust_anchors or os.environ.get("DAAS_TRUST_ANCHORS") or None
    reports, errors = [], []
    for f in files:
        try:
            reports.append(verify_video(f, trust_anchors=anchors, store=store))
        except DaasError as e:
            if len(files) == 1 or "trust anchors" in str(e):
                raise
            errors.append({"path": str(f), "error": str(e)})
    bad = [r for r in reports if r.status == "unreadable"]
    if as_json:
        sys.stdout.write(json.dumps({"reports": [r.to_dict() for r in reports], "errors": errors}, indent=1) + "\n")
    else:
        for r in reports:
            _print_report(r)
    for e in errors + [{"path": r.path, "error": r.message} for r in bad]:
        sys.stderr.write(f"error: {e['path']}: {' '.join(without_path(e['error'], e['path']).split())}\n")
    if errors or bad:
        raise typer.Exit(2)
    if any(r.status == "tampered" for r in reports):
        raise typer.Exit(1)


def _print_report(r) -> None:
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=True)
    con.print(f"[bold]{r.path}[/]: [{STATUS_STYLE.get(r.status, '')}]{r.status}[/] - {r.message}")
    claims = r.claims or (r.recovered or {}).get("claims") or {}
    if r.recovered:
        rc = r.recovered
        con.print(f"  manifest recovered via soft binding: {rc['manifest_label']} (signature {rc['signature']}, "
                  f"soft binding {'matches' if rc['soft_binding_match'] else 'DOES NOT match'} the decoded payload)")
    for k in ("digital_source_type", "software_agent", "actions", "signer", "time", "daas"):
        if claims.get(k):
            v = claims[k]
            con.print(f"  {k}: {v if isinstance(v, str) else json.dumps(v)}")
    wm = r.watermark
    if wm:
        if wm.get("detected") is None:
            con.print(f"  watermark: {wm.get('note')}")
        else:
            # p is a bound on the false-positive probability; near the threshold "not detected (p <= 1.1e-06)" read
            # like a pass, so a miss names the threshold it did not reach
            bound = f"p <= {wm['p_value']:.2g}" if wm["detected"] else \
                f"p <= {wm['p_value']:.2g}, above the {wm.get('threshold', 1e-6):.0e} threshold"
            con.print(f"  watermark: {'detected' if wm['detected'] else 'not detected'} ({bound}"
                      + (f", payload {wm['payload']}" if wm.get("payload") else "") + ")")


def register(app: typer.Typer) -> None:
    """Add this part's commands to `app`."""
    app.add_typer(keys_app, name="keys")
    app.command("sign")(sign)
    app.command("verify")(verify)
