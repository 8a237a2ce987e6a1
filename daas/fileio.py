"""Atomic output: every file DAAS writes appears whole or not at all, and never replaces one silently."""
from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import DaasError


def check_writable(dst: str | os.PathLike, overwrite: bool = False) -> Path:
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise DaasError(f"{dst} already exists (pass --overwrite to replace it)")
    if dst.exists() and dst.is_dir():
        raise DaasError(f"{dst} is a directory")
    if not dst.parent.exists():
        raise DaasError(f"folder {dst.parent} does not exist")
    return dst


@contextlib.contextmanager
def atomic_path(dst: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dst` (same suffix, so formats are guessed right); on success
    move it into place, on any error delete it. Without `overwrite`, an existing `dst` is an error,
    also when it appeared while we were writing."""
    dst = check_writable(dst, overwrite)
    tmp = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:8]}.tmp{dst.suffix}")
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, dst)
        else:
            try:
                os.link(tmp, dst)  # fails if dst exists: no race with another writer
            except FileExistsError:
                raise DaasError(f"{dst} already exists (pass --overwrite to replace it)") from None
            except OSError:  # a file system without hard links
                if dst.exists():
                    raise DaasError(f"{dst} already exists (pass --overwrite to replace it)") from None
                os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(dst: str | os.PathLike, data: bytes, overwrite: bool = False, mode: int | None = None) -> Path:
    with atomic_path(dst, overwrite) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is None:
            os.chmod(tmp, 0o644 & ~_umask())
    return Path(dst)


def write_json(dst: str | os.PathLike, obj, overwrite: bool = False) -> Path:
    return write_bytes(dst, (json.dumps(obj, indent=1) + "\n").encode(), overwrite)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
