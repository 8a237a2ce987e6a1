"""Shipped weights: fp16 safetensors with their config in the metadata, exported from training runs.

safetensors (not pickle) so that loading a checkpoint can never run code; the file's SHA-256 is the
checkpoint hash that the C2PA manifest of every generated clip names.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from daas.errors import DaasError
from daas.fileio import atomic_path

from .dit import DiT, DiTConfig
from .vae import VAEConfig, VideoVAE

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAE_FILE = WEIGHTS_DIR / "vae.safetensors"
DIT_FILE = WEIGHTS_DIR / "dit.safetensors"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encoder_fingerprint(vae: VideoVAE) -> str:
    """SHA-256 of the VAE encoder's weights in fp16: the identity of a latent space. A DiT works only on the
    latents of the encoder it was trained with; the decoder may be fine-tuned freely (the hash ignores it), and
    fp32 training weights hash the same as their shipped fp16 copy."""
    h = hashlib.sha256()
    for name, v in sorted(vae.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(v.detach().to(torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()


def _cfg_from(cls, d: dict):
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def torch_save_atomic(obj, path: str | Path) -> Path:
    """torch.save to `path` whole or not at all (daas.fileio.atomic_path), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(obj, tmp)
    return path


INT8_SCALE = ".int8_scale"  # suffix of the per-row scales of a tensor stored in int8


def _is_linear_weight(v: torch.Tensor, min_numel: int = 4096) -> bool:
    """A 2-D float tensor of at least `min_numel` elements: the linear layers' weights, which int8 and the
    experts' low-rank differences store specially (everything else is kept whole)."""
    return v.is_floating_point() and v.ndim == 2 and v.numel() >= min_numel


def quantize_int8(state_dict: dict, min_numel: int = 4096) -> dict:
    """Weight-only int8: every 2-D float tensor of at least `min_numel` elements (the linear layers' weights)
    becomes int8 with one fp16 scale per output row (absmax / 127), stored beside it as `<name>.int8_scale`;
    the rest is left as it is. Half the bytes of fp16; each weight is off by at most half its row's step."""
    out = {}
    for k, v in state_dict.items():
        if _is_linear_weight(v, min_numel):
            w = v.detach().float()
            scale = (w.abs().amax(1) / 127).clamp_min(1e-8).half()
            out[k] = torch.round(w / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
            out[k + INT8_SCALE] = scale
        else:
            out[k] = v
    return out


def save_weights(path: str | Path, state_dict: dict, meta: dict, int8: bool = False) -> Path:
    """fp16 safetensors with the DAAS metadata; `int8`: the linear layers' weights in int8 (quantize_int8)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if int8:
        state_dict, meta = quantize_int8(state_dict), {**meta, "int8_weights": True}
    tensors = {k: v.detach().to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
               for k, v in state_dict.items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"daas": json.dumps(meta)})
    tmp.chmod(0o644)  # weights are public; safetensors creates files 0600
    tmp.replace(path)
    return path


def _read(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    if not path.exists():
        raise DaasError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("daas", "{}"))
            sd = {k: f.get_tensor(k).float() for k in f.keys()}
        for k in [k for k in sd if k.endswith(INT8_SCALE)]:  # int8 weights (quantize_int8) back to float
            scale = sd.pop(k)
            sd[k[: -len(INT8_SCALE)]] *= scale[:, None]
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad checkpoint file
        raise DaasError(f"checkpoint {path} is unreadable ({type(e).__name__})") from None
    if not meta:
        raise DaasError(f"checkpoint {path} has no DAAS metadata")
    return sd, meta


def load_vae(path: str | Path | None = None) -> tuple[VideoVAE, dict]:
    """The VAE and its latent statistics {"mean", "std"} (per channel)."""
    sd, meta = _read(Path(path) if path else VAE_FILE)
    vae = VideoVAE(_cfg_from(VAEConfig, meta["config"]))
    stats = {"mean": sd.pop("latent_mean"), "std": sd.pop("latent_std")}
    vae.load_state_dict(sd)
    return vae.eval().requires_grad_(False), stats


def load_dit(path: str | Path | None = None) -> tuple[DiT, dict]:
    sd, meta = _read(Path(path) if path else DIT_FILE)
    dit = DiT(_cfg_from(DiTConfig, meta["config"]))
    dit.load_state_dict(sd)
    return dit.eval().requires_grad_(False), meta


def vae_from_training_checkpoint(ckpt: str | Path):
    """(VideoVAE in eval mode, its VAETrainConfig, the checkpoint dict) from a training run's Lightning .ckpt."""
    from .config import VAETrainConfig, config_from_dict

    blob = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = config_from_dict(VAETrainConfig, blob["hyper_parameters"]["config"])
    vae = VideoVAE(cfg.model)
    vae.load_state_dict({k[4:]: v for k, v in blob["state_dict"].items() if k.startswith("vae.")})
    return vae.eval(), cfg, blob


def export_vae(ckpt: str | Path, out: str | Path = VAE_FILE, stats_clips: int = 256,
               stats_from: str | Path | None = None) -> Path:
    """Lightning checkpoint -> shipped fp16 weights with latent statistics measured on training clips.
    `stats_from`, for a decoder-only fine-tune: the VAE file it started from, whose encoder and latent statistics
    it must keep (a DiT normalises its latents with them; re-measured on other clips they would drift)."""
    from .training import latent_stats

    vae, cfg, blob = vae_from_training_checkpoint(ckpt)
    if stats_from is not None:
        base, stats = load_vae(stats_from)
        if encoder_fingerprint(base) != encoder_fingerprint(vae):
            raise DaasError(f"{ckpt} has another encoder than {stats_from}: its latent statistics do not apply")
    else:
        stats = latent_stats(vae, cfg.data, stats_clips)
    sd = dict(vae.state_dict(), latent_mean=stats["mean"], latent_std=stats["std"])
    meta = {"kind": "vae", "config": cfg.model.__dict__, "step": blob.get("global_step"),
            "data": cfg.data.__dict__}
    return save_weights(out, sd, meta)


def vae_init_checkpoint(weights: str | Path, out: str | Path) -> Path:
    """Shipped VAE weights -> a Lightning-style checkpoint for `train.init_from`, so a decoder-only fine-tune
    (configs/vae_decoder*.yaml) can start from a shipped VAE when its training run is gone."""
    vae, _ = load_vae(weights)
    state = {f"vae.{k}": v.float() for k, v in vae.state_dict().items()}
    return torch_save_atomic({"state_dict": state, "daas": {"from": str(weights)}}, out)


def export_dit(ckpt: str | Path, out: str | Path = DIT_FILE) -> Path:
    """Lightning checkpoint -> shipped fp16 EMA weights of the DiT."""
    from .config import DiTTrainConfig, config_from_dict

    blob = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = config_from_dict(DiTTrainConfig, blob["hyper_parameters"]["config"])
    sd = {k[4:]: v for k, v in blob["state_dict"].items() if k.startswith("ema.")}
    return save_dit_weights(dit_meta(cfg), sd, blob.get("global_step"), out)


def dit_meta(cfg) -> dict:
    """What a shipped DiT file records of its training (a DiTTrainConfig): the model, the data and the VAE whose
    latents it learnt (file hash and encoder fingerprint: the VAE is read once here, not at every export)."""
    vae_file = cfg.vae_checkpoint or VAE_FILE
    meta = {"kind": "dit", "config": cfg.model.__dict__, "vae_sha256": file_sha256(vae_file),
            "vae_encoder_sha256": encoder_fingerprint(load_vae(vae_file)[0]), "data": cfg.data.__dict__}
    if cfg.train.distill_from:  # the guidance scales it learnt (generator.pipeline uses it in that range)
        meta["guidance_distilled"] = {"teacher": Path(cfg.train.distill_from).name,
                                      "teacher_sha256": file_sha256(cfg.train.distill_from),
                                      "guidance_range": [float(v) for v in cfg.train.distill_guidance]}
    return meta


def save_dit_weights(meta: dict, ema_state: dict, step: int | None, out: str | Path) -> Path:
    """The shipped file of a DiT: its EMA weights (fp16), dit_meta's record and the step."""
    return save_weights(out, {k: v.detach().cpu() for k, v in ema_state.items()}, {**meta, "step": step})


def dit_init_checkpoint(weights: str | Path, out: str | Path, model: DiTConfig | None = None, seed: int = 0) -> Path:
    """Shipped DiT weights -> a Lightning-style checkpoint for `train.init_from` (the raw weights and the EMA
    both start from them), so a new run can continue a shipped model with another recipe.

    With `model` (a DiTConfig that differs, e.g. in latent channels for a new VAE), the new model is built
    (seeded) and every tensor of the old one whose name and shape fit is carried over: the transformer body,
    the text and timestep embedders; the rest (the latent patch embedding, the zero-initialised final
    projection) start fresh. A deeper model keeps the old blocks first and appends new ones whose three residual
    branches (self-attention, cross-attention, MLP) end in zeroed projections: they start as the identity, so
    the grown model computes what the old one did and training adds capacity from there (the shared adaLN
    modulation is already trained, so a zero per-block table alone would not make them the identity).
    A model whose blocks differ otherwise (width, heads, MLP ratio, or fewer blocks) is refused.
    Measured (session 5): a 16-channel DiT started this way from the 4-channel one reached the validation loss
    of a fresh start's step 2,000 at step ~1,000 (generator/weights/MODEL_CARD.md).
    """
    dit, meta = load_dit(weights)
    sd = dit.state_dict()
    fresh: list[str] = []
    if model is not None:
        torch.manual_seed(seed)
        grown = DiT(model)
        old_depth = dit.cfg.depth
        for block in grown.blocks[old_depth:]:  # appended blocks start as the identity
            for proj in (block.attn.out, block.cross.out, block.mlp[2]):
                torch.nn.init.zeros_(proj.weight)
                torch.nn.init.zeros_(proj.bias)
        new = grown.state_dict()
        fresh = [k for k, v in new.items() if k not in sd or sd[k].shape != v.shape]
        body = [k for k in fresh if k.startswith("blocks.") and int(k.split(".")[1]) < old_depth]
        if body or model.depth < old_depth:  # the point is to keep the trained body
            what = (f"{len(body)} block tensors differ, e.g. {body[0]}" if body else
                    f"{model.depth} blocks, fewer than its {old_depth}")
            raise DaasError(f"{weights}: its transformer body does not fit the new model ({what}); only the latent "
                            "channels and the number of blocks (more, not fewer) may change")
        sd = {**new, **{k: sd[k] for k in new.keys() - set(fresh)}}
    state = {**{f"dit.{k}": v for k, v in sd.items()}, **{f"ema.{k}": v.clone() for k, v in sd.items()}}
    return torch_save_atomic({"state_dict": state, "daas": {"from": str(weights), "step": meta.get("step"),
                                                            "fresh": fresh}}, out)


# ----------------------------------------------------------------------------------------------
# a high-noise expert: a fine-tuned copy of a shipped DiT, stored as its difference from that DiT

EXPERT_FILE = WEIGHTS_DIR / "dit_expert.safetensors"
LOW_RANK_A, LOW_RANK_B = ".delta_a", ".delta_b"  # a weight's difference from the base DiT: B @ A


def save_dit_expert(path: str | Path, expert_state: dict, base: str | Path, time_range: tuple[float, float],
                    rank: int = 32, meta: dict | None = None) -> Path:
    """A DiT fine-tuned from the DiT file `base` for the times in `time_range` (train.time_range), stored as its
    difference from `base` exactly as `base` loads (its int8 weights dequantized): the linear layers' weight
    differences by their truncated SVD, rank `rank` (B [out, r] and A [r, in], fp16), every other tensor (biases,
    norms, the adaLN tables) whole, so a few MB stand for a second model if the fine-tune moved each matrix along
    few directions (LoRA's premise; how much a rank keeps is recorded, and session 19's card measures a CPU
    fine-tune: 81% of the change's energy at rank 32). `load_dit_expert` rebuilds it on the same base file."""
    lo, hi = (float(v) for v in time_range)
    base_dit, base_meta = load_dit(base)
    base_sd = base_dit.state_dict()
    if set(expert_state) != set(base_sd):
        raise DaasError(f"the expert's tensors are not those of {Path(base).name}'s DiT")
    out, kept = {}, {}
    for k, w in expert_state.items():
        w = w.detach().float().cpu()
        if _is_linear_weight(w):
            u, s, vh = torch.linalg.svd(w - base_sd[k], full_matrices=False)
            r = min(rank, s.numel())
            out[k + LOW_RANK_B] = u[:, :r] * s[:r].sqrt()
            out[k + LOW_RANK_A] = s[:r].sqrt()[:, None] * vh[:r]
            kept[k] = float(s[:r].square().sum() / s.square().sum().clamp_min(1e-30))
        else:
            out[k] = w
    info = {**(meta or {}), "kind": "dit_expert", "config": base_meta["config"], "base_sha256": file_sha256(base),
            "time_range": [lo, hi], "rank": rank,
            # the share of each weight difference's energy (squared Frobenius norm) that rank `rank` keeps
            "delta_energy_kept_min": round(min(kept.values()), 4) if kept else 1.0}
    for k in ("vae_sha256", "vae_encoder_sha256"):
        if k in base_meta:
            info[k] = base_meta[k]
    return save_weights(path, out, info)


def load_dit_expert(path: str | Path, base: DiT, base_sha256: str) -> tuple[DiT, dict]:
    """The expert of `save_dit_expert` on top of `base` (the DiT loaded from the file whose SHA-256 is
    `base_sha256`); a DaasError if the expert was made for another base."""
    path = Path(path)
    sd, meta = _read(path)
    if meta.get("kind") != "dit_expert":
        raise DaasError(f"{path.name} is not a DiT expert file")
    if meta.get("base_sha256") != base_sha256:
        raise DaasError(f"{path.name} was fine-tuned from another DiT than the one loaded")
    if not isinstance(meta.get("time_range"), list) or len(meta["time_range"]) != 2:
        raise DaasError(f"{path.name} does not say which times it serves (time_range)")
    state = {k: v.clone() for k, v in base.state_dict().items()}
    for k in list(state):
        if k + LOW_RANK_A in sd:
            state[k] += sd.pop(k + LOW_RANK_B) @ sd.pop(k + LOW_RANK_A)
        elif k in sd:
            state[k] = sd.pop(k)
        else:
            raise DaasError(f"{path.name} lacks the expert's {k}")
    if sd:
        raise DaasError(f"{path.name} holds tensors the DiT does not have, e.g. {next(iter(sd))}")
    expert = DiT(base.cfg)
    expert.load_state_dict(state)
    return expert.eval().requires_grad_(False), meta
