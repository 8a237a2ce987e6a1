"""On the lent GPU machine: rebuild all-MiniLM-L6-v2's folder at /tmp/minilm from .gpu/minilm (make_parts.py):
every tensor fp16 -> fp32, and the word-embedding rows of the world captions' word pieces (the others zero:
no caption uses them)."""
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

src, dst = Path(".gpu/minilm"), Path("/tmp/minilm")
dst.mkdir(parents=True, exist_ok=True)
with safe_open(str(src / "parts.safetensors"), "pt") as f:
    key = f.metadata()["word_key"]
parts = load_file(str(src / "parts.safetensors"))
words = torch.zeros(tuple(parts.pop("_word_shape").tolist()))
words[parts.pop("_word_ids")] = parts.pop("_word_rows").float()
sd = {k: v.float() for k, v in parts.items()}
sd[key] = words
save_file(sd, str(dst / "model.safetensors"))
for name in ("config.json", "tokenizer.json"):
    shutil.copy(src / name, dst / name)
print("minilm rebuilt:", len(sd), "tensors")
