"""The fixed prompt suite: per category, world scenes from the benchmark's own seed split.

The suite is data (benchmarks/data/suite.json), generated once by `build_suite` and committed, so that
every run of the benchmark, now and later, asks the same prompts. Each entry keeps the world seed and
family behind its prompt: the world's clip for it is the benchmark's ceiling.
"""
from __future__ import annotations

import json
from pathlib import Path

SUITE_PATH = Path(__file__).with_name("data") / "suite.json"
# category -> the world families whose canonical captions exercise it
CATEGORIES: dict[str, tuple[str, ...]] = {
    "permanence": ("occlusion",),
    "gravity": ("fall", "projectile"),
    "collisions": ("collision", "topdown"),
    "knock": ("knock",),
    "candle": ("candle",),
    "cookie": ("cookie",),
    "switch": ("switch",),
    "colours_counts": ("fall", "topdown"),
}


def build_suite(per_category: int = 8) -> list[dict]:
    """Prompts from the "bench" split: seeds are consecutive from each category's own offset (disjoint)."""
    from world import make_clip, split_seeds

    items = []
    for ci, (cat, fams) in enumerate(CATEGORIES.items()):
        pool = iter(split_seeds("bench", 900, offset=1000 * ci))
        for i in range(per_category):
            fam = fams[i % len(fams)]
            for seed in pool:  # colours and counts: scenes that name several objects
                clip = make_clip(seed, fam)
                if cat != "colours_counts" or len(clip.scene.tracks) > 1:
                    break
            items.append({"id": f"{cat}-{i:02d}", "category": cat, "family": fam, "seed": int(seed),
                          "prompt": clip.caption})
    return items


def write_suite(path: str | Path = SUITE_PATH, per_category: int = 8) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "split": "bench", "items": build_suite(per_category)}, indent=1) + "\n")
    return path


def load_suite(path: str | Path = SUITE_PATH, per_category: int | None = None,
               categories: list[str] | None = None) -> list[dict]:
    """The committed suite (optionally the first `per_category` items of some categories)."""
    items = json.loads(Path(path).read_text())["items"]
    if categories:
        unknown = set(categories) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; choose from {', '.join(CATEGORIES)}")
        items = [i for i in items if i["category"] in categories]
    if per_category is not None:
        seen: dict[str, int] = {}
        out = []
        for it in items:
            seen[it["category"]] = seen.get(it["category"], 0) + 1
            if seen[it["category"]] <= per_category:
                out.append(it)
        items = out
    return items


if __name__ == "__main__":  # python -m benchmarks.suite: regenerate the committed data
    print(write_suite())
