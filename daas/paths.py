"""Where DAAS keeps its state: DAAS_HOME, else the XDG config folder."""
from __future__ import annotations

import os
from pathlib import Path


def daas_home() -> Path:
    """The config folder (keys, manifest store). Created with mode 0700 on first use."""
    env = os.environ.get("DAAS_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        home = Path(xdg) / "daas"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def repo_root() -> Path:
    """The folder that holds the packages (shipped checkpoints live under it)."""
    return Path(__file__).resolve().parent.parent
