"""Seed ranges of the data splits: disjoint by construction, so no clip is ever in two splits."""
from __future__ import annotations

SPLITS: dict[str, tuple[int, int]] = {
    "train": (0, 900_000),  # the generator and the detector's training data
    "val": (900_000, 950_000),
    "test": (950_000, 1_000_000),
    "bench": (1_000_000, 1_100_000),  # the artifact benchmark's prompt suite
    "detector": (1_100_000, 1_300_000),  # real clips for the detector, never seen by the generator
}


def split_size(split: str) -> int:
    """How many seeds (clips) a split holds."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    lo, hi = SPLITS[split]
    return hi - lo


def split_seeds(split: str, n: int, offset: int = 0) -> range:
    """n consecutive seeds of a split, starting `offset` seeds into it."""
    size = split_size(split)
    lo = SPLITS[split][0]
    if n < 0 or offset < 0 or offset + n > size:
        raise ValueError(f"split {split!r} holds {size} seeds; asked for {n} from offset {offset}")
    return range(lo + offset, lo + offset + n)


def split_of(seed: int) -> str:
    for name, (lo, hi) in SPLITS.items():
        if lo <= seed < hi:
            return name
    raise ValueError(f"seed {seed} belongs to no split")
