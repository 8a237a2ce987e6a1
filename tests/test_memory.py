"""daas.memory: the `daas` command's malloc settings (glibc). Each case runs in a fresh process: the settings are
process-wide and would otherwise stay in the test process."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys
from daas.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
kept = keep_freed_memory() if sys.argv[1] == "kept" else False
before = libc.mallinfo2()
block = libc.malloc(4 << 20)  # 4 MB: above glibc's starting mmap threshold (128 KB), below ours (32 MB)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(int(kept), during.hblkhd - before.hblkhd, during.arena - before.arena, after.arena - during.arena)
"""


def _probe(mode: str) -> list[int]:
    r = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "mallinfo2" in r.stderr:
        pytest.skip("not glibc >= 2.33 (no mallinfo2)")
    assert r.returncode == 0, r.stderr
    return [int(v) for v in r.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_keep_freed_memory_serves_megabyte_blocks_from_the_heap_and_keeps_them():
    kept, mapped, grown, trimmed = _probe("default")
    assert mapped >= 4 << 20 and grown < 4 << 20  # glibc as it starts: a block this size gets a mapping of its own
    kept, mapped, grown, trimmed = _probe("kept")
    assert kept == 1  # glibc took both settings
    assert mapped == 0 and grown >= 4 << 20  # from the heap...
    assert trimmed == 0  # ...and kept there once freed, for the next evaluation's tensors
