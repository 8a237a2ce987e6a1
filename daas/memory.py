"""Process-wide malloc settings for the `daas` command (glibc only; elsewhere nothing changes).

Why: sampling a clip allocates and frees tensors of hundreds of kilobytes to a few megabytes at every DiT
evaluation. glibc serves blocks above its mmap threshold (128 KB at start; it raises it by itself only as such
blocks are freed) with fresh mappings, and gives freed heap back past its trim threshold, so a process's first
clip spends time in the kernel mapping and faulting pages it has just given back. Serving blocks up to 32 MB (glibc's
largest mmap threshold on 64-bit) from the heap and keeping what is freed took the first pipeline call of a fresh
process from 1.70-1.79 s to 1.63 s (session 40, 2-core AVX2 CPU, fp32; later calls 1.59-1.60 s either way), and
`daas generate`'s reported total (sampling, watermark, MP4, signature) from 1.89-2.17 s to 1.78-1.91 s at the same
settings (generator/weights/MODEL_CARD.md). A process then keeps its peak memory until it exits, which suits a command; a
library does not change its host's malloc (only `daas.cli.main` calls this). The trim threshold set alone fixes the
mmap threshold at 128 KB and measured 1.5x slower: both go together.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit); mallopt refuses more
TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes an int: in effect, never trim


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MB from the heap and keep freed memory; True when glibc took both settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): malloc stays as it is
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: had the trim threshold been set alone, the mmap threshold would stay at 128 KB
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
