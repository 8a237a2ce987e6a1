"""DiT: a diffusion transformer over spacetime patches of video latents, conditioned on text tokens.

Read top to bottom like facebookresearch/DiT's models.py: embedders, the block, the final layer, the model.
What differs from image DiT:
- tokens are (1 x 2 x 2) patches of latent video [C, T, H, W]; positions enter attention as 3D rotary
  embeddings (time, row, column), so any duration, size and aspect ratio works with the same weights;
- text enters through cross-attention to the frozen MiniLM token embeddings (a pooled sentence vector alone
  nearly erases "left" vs "right"; see shared/findings.md), and the pooled vector is added to the timestep;
- timestep modulation is adaLN-single (PixArt-alpha): one MLP for all blocks plus a learned per-block table,
  zero-initialised so every block starts as the identity (adaLN-Zero) at a third of DiT's parameter cost;
- optional frame conditioning: given latent frames and their mask are concatenated to the input channels,
  which is what image-to-video and video extension use;
- optional guidance head (`guidance_head`): a second final layer that predicts the guidance direction
  v_c - v_u from the same tokens, so a DiT distilled from a teacher's classifier-free guidance (Meng et al. 2023,
  "On distillation of guided diffusion models") gives the guided velocity v_c + (w - 1)(v_c - v_u) for any scale w
  in one evaluation, where CFG needs two. (FLUX.1-dev embeds w as a conditioning scalar instead; session 36 tried
  both and they learnt at the same rate. The head is exact in w, linear at every scale, and adds no input.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DiTConfig:
    latent_channels: int = 4
    patch: tuple[int, int, int] = (1, 2, 2)
    width: int = 256
    depth: int = 8
    heads: int = 4
    mlp_ratio: float = 3.0
    text_dim: int = 384
    frame_cond: bool = True
    guidance_head: bool = False


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1))  # x (1 + scale) + shift in one pass


class GELUTanh(nn.Module):
    """GELU, tanh approximation: x (1 + tanh u) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3), as nn.GELU("tanh").
    Without gradients on a CPU, in fp32, it is computed as the same function written x sigmoid(2u) (for
    tanh u = 2 sigmoid(2u) - 1), in place: torch's tanh costs 3.5x its sigmoid on an AVX2 CPU, and the GELU was 8%
    of a DiT evaluation there; this form takes 0.42x the time, within 5e-7 of it (generator/weights/MODEL_CARD.md,
    session 38). Training (which needs the graph), bf16 and GPUs keep torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu":
            return F.gelu(x, approximate="tanh")
        c = math.sqrt(2 / math.pi) * 2
        y = x * x
        y.mul_(0.044715 * c).add_(c).mul_(x).sigmoid_()
        return y.mul_(x)


class TimestepEmbedder(nn.Module):
    """Scalar flow times t in [0, 1] -> vectors, through sinusoids and an MLP (as in DiT)."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = (t.float() * 1000.0)[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


def rope_3d(grid: tuple[int, int, int], head_dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [N, head_dim / 2] of 3D rotary embeddings: head_dim split among time, rows, columns."""
    dt = (head_dim // 4) // 2 * 2  # a quarter for time, the rest shared by rows and columns
    dh = (head_dim - dt) // 4 * 2
    dw = head_dim - dt - dh
    angles = []
    for n, d in zip(grid, (dt, dh, dw)):
        freqs = 1.0 / (10000 ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d))
        angles.append(torch.arange(n, device=device, dtype=torch.float32)[:, None] * freqs[None])
    T, H, W = grid
    a = torch.cat([
        angles[0][:, None, None, :].expand(T, H, W, -1),
        angles[1][None, :, None, :].expand(T, H, W, -1),
        angles[2][None, None, :, :].expand(T, H, W, -1),
    ], dim=-1).reshape(T * H * W, -1)
    return a.cos(), a.sin()


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of x [B, heads, N, head_dim] by the position angles, given as unit complex numbers
    rot = cos + i sin [N, head_dim / 2]: (x1 + i x2) rot is (x1 cos - x2 sin) + i (x1 sin + x2 cos), the rotation,
    in one complex product (a sixth of the time of the same arithmetic on strided halves on a 2-core CPU).
    In fp32, as the rotation's tables are (under bf16 autocast, attention casts q and k back)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rot).flatten(-2)


class Attention(nn.Module):
    """Multi-head attention; self-attention gets rotary positions, cross-attention a key padding mask."""

    def __init__(self, width: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(kv_dim or width, 2 * width)
        self.q_norm = nn.RMSNorm(width // heads)  # QK-norm keeps attention logits tame in long training
        self.k_norm = nn.RMSNorm(width // heads)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, rope=None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = x.shape
        ctx = x if context is None else context
        q = self.q(x).view(B, N, self.heads, -1)
        k, v = self.kv(ctx).view(B, ctx.shape[1], 2, self.heads, -1).unbind(2)
        # the norms in fp32 (under bf16 autocast their fp32 weights would meet bf16 inputs), back to v's dtype;
        # before the heads move to dim 1, where the rows they normalise are still contiguous (a fifth faster)
        q, k = self.q_norm(q.float()).to(v.dtype).transpose(1, 2), self.k_norm(k.float()).to(v.dtype).transpose(1, 2)
        v = v.transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(B, N, D))


class DiTBlock(nn.Module):
    """Self-attention (rotary 3D positions), cross-attention to text, MLP; adaLN-Zero gated."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, text_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm_x = nn.LayerNorm(width, eps=1e-6)
        self.cross = Attention(width, heads, kv_dim=width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), GELUTanh(), nn.Linear(hidden, width))
        self.table = nn.Parameter(torch.zeros(6, width))  # this block's share of the modulation

    def forward(self, x, mod, text, text_mask, rope):
        shift1, scale1, gate1, shift2, scale2, gate2 = (mod + self.table[None]).unbind(1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1), rope=rope)
        x = x + self.cross(self.norm_x(x), context=text, mask=text_mask)
        x = x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    def __init__(self, width: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out_dim)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, c):
        shift, scale = self.adaLN(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DiTConfig()
        C, (pt, ph, pw), D = cfg.latent_channels, cfg.patch, cfg.width
        in_ch = 2 * C + 1 if cfg.frame_cond else C
        self.patch_dim_in = in_ch * pt * ph * pw
        self.patch_dim_out = C * pt * ph * pw
        self.x_embed = nn.Linear(self.patch_dim_in, D)
        self.t_embed = TimestepEmbedder(D)
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, D))
        self.pool_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.blocks = nn.ModuleList(DiTBlock(D, cfg.heads, cfg.mlp_ratio, cfg.text_dim) for _ in range(cfg.depth))
        self.final = FinalLayer(D, self.patch_dim_out)
        self.guidance_final = FinalLayer(D, self.patch_dim_out) if cfg.guidance_head else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(basic)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        # adaLN-Zero: modulation and output layers start at zero, so each block starts as the identity
        # (the guidance head's too: a DiT grown from an undistilled one, weights.dit_init_checkpoint, starts as it)
        finals = (self.final,) + ((self.guidance_final,) if self.guidance_final is not None else ())
        for m in (self.t_block[-1], *(f.adaLN[-1] for f in finals), *(f.linear for f in finals)):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    # patches ------------------------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        B, C, T, H, W = x.shape
        pt, ph, pw = self.cfg.patch
        if T % pt or H % ph or W % pw:
            raise ValueError(f"latent size {T}x{H}x{W} is not divisible by the patch {pt}x{ph}x{pw}")
        g = (T // pt, H // ph, W // pw)
        x = x.reshape(B, C, g[0], pt, g[1], ph, g[2], pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(B, g[0] * g[1] * g[2], -1), g

    def unpatchify(self, x: torch.Tensor, g: tuple[int, int, int]) -> torch.Tensor:
        B = x.shape[0]
        pt, ph, pw = self.cfg.patch
        C = self.cfg.latent_channels
        x = x.reshape(B, *g, C, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(B, C, g[0] * pt, g[1] * ph, g[2] * pw)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                cond: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None,
                hidden_at: int | None = None, guidance: torch.Tensor | None = None):
        """Velocity for noisy latents x [B, C, T, H, W] at times t [B], given text tokens [B, L, text_dim]
        with mask [B, L] (True = a real token), and optionally given latent frames `cond` [B, C, T, H, W]
        where cond_mask [B, 1, T, 1, 1] is 1. With `hidden_at`, also the tokens [B, N, width] after that
        block (for a training-time auxiliary head). A DiT with a guidance head takes the guidance scale w [B] in
        `guidance` and returns the guided velocity (None: w = 1, the conditional velocity); others refuse one."""
        if self.cfg.frame_cond:
            if cond is None:
                cond = torch.zeros_like(x)
                cond_mask = torch.zeros_like(x[:, :1, :, :1, :1])
            m = cond_mask.expand(-1, 1, -1, x.shape[3], x.shape[4]).to(x.dtype)
            x = torch.cat([x, cond * m, m], dim=1)
        tokens, g = self.patchify(x)
        h = self.x_embed(tokens)
        maskf = text_mask.to(text.dtype).unsqueeze(-1)
        pooled = (text * maskf).sum(1) / maskf.sum(1).clamp_min(1.0)
        c = self.t_embed(t) + self.pool_proj(pooled)
        if guidance is not None and self.guidance_final is None:
            raise ValueError("this DiT has no guidance head (DiTConfig.guidance_head)")
        mod = self.t_block(c).view(-1, 6, self.cfg.width)
        ctx = self.text_proj(text)
        rope = torch.complex(*rope_3d(g, self.cfg.width // self.cfg.heads, x.device))
        hidden = None
        for i, block in enumerate(self.blocks):
            h = block(h, mod, ctx, text_mask, rope)
            if i == hidden_at:
                hidden = h
        out = self.final(h, c)
        if guidance is not None:  # v_c + (w - 1) (v_c - v_u), both from these tokens
            out = out + (guidance.to(out.dtype) - 1).view(-1, 1, 1) * self.guidance_final(h, c)
        out = self.unpatchify(out, g)
        return out if hidden_at is None else (out, hidden)
