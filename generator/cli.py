"""Commands of generator/ (registered on the `daas` app by daas/cli.py)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this part's commands to `app`."""
