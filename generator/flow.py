"""Rectified flow: the training loss and the samplers (Euler, Heun, DPM-Solver++(2M)) with classifier-free guidance.

x_t = (1 - t) x_0 + t * noise, and the model predicts the velocity v = noise - x_0, so sampling integrates
dx/dt = v from t = 1 (pure noise) down to t = 0. Training times are logit-normal (SD3): most weight in the
middle, where the task is neither trivial nor hopeless.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def logit_normal(n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    return torch.sigmoid(torch.randn(n, generator=generator, device=device))


def shift_time(t: torch.Tensor, shift: float = 1.0) -> torch.Tensor:
    """The SD3 timestep shift: t -> s t / (1 + (s - 1) t); s > 1 moves times towards noise (t = 1)."""
    return shift * t / (1 + (shift - 1) * t)


def flow_loss(model: Callable, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
              cond: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None,
              t: torch.Tensor | None = None, shift: float = 1.0,
              time_range: tuple[float, float] = (0.0, 1.0), temporal_weight: float = 0.0) -> torch.Tensor:
    """Mean squared velocity error; latent frames given as conditioning are excluded from the loss.
    Without given times, they are drawn logit-normal, shifted by `shift` (see `shift_time`) and mapped linearly
    into `time_range` (all of [0, 1] by default).

    `temporal_weight` w > 0 adds w times the mean squared error of the velocity's change from one latent frame to
    the next (between generated frames): the error e becomes |e|^2 + w |e_{t+1} - e_t|^2, so an error that flickers
    from frame to frame (an object gone for one latent frame, a colour that jumps) costs up to 1 + 4w times one that
    is steady in time. Its minimiser is the same (the true velocity); it only weights the errors a video's viewer
    sees most."""
    B = x0.shape[0]
    if t is None:
        lo, hi = time_range
        t = lo + (hi - lo) * shift_time(logit_normal(B, device=x0.device), shift)
    noise = torch.randn_like(x0)
    tt = t.view(B, 1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * noise
    pred = model(xt, t, text, text_mask, cond, cond_mask)
    e = pred.float() - (noise - x0)
    w = None if cond_mask is None else (1 - cond_mask).expand_as(e)
    loss = _masked_mean(e.pow(2), w)
    if temporal_weight > 0 and e.shape[2] > 1:
        pair = None if w is None else w[:, :, 1:] * w[:, :, :-1]  # both frames generated
        loss = loss + temporal_weight * _masked_mean((e[:, :, 1:] - e[:, :, :-1]).pow(2), pair)
    return loss


def decoded_loss(decode: Callable, xt: torch.Tensor, t: torch.Tensor, pred: torch.Tensor, x0: torch.Tensor,
                 cond_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error in pixels between the decoded clean-latent prediction and the decoded true latent.

    The flow loss weighs every latent dimension alike, but the decoder does not: a small latent error can erase an
    object from one frame of a latent group (the DiT's samples lose objects so, at the groups' first frames; real
    latents decode intact). Decoding x0_hat = x_t - t v (rectified flow) weighs the DiT's errors by what they do
    to the frames. `decode` maps normalised latents to frames (gradients flow through it; it stays frozen);
    latent frames given as conditioning are taken from x0, so they cost nothing."""
    tt = t.view(-1, 1, 1, 1, 1)
    x0_hat = xt.float() - tt * pred.float()
    if cond_mask is not None:
        x0_hat = torch.where(cond_mask.bool().expand_as(x0_hat), x0.float(), x0_hat)
    with torch.no_grad():
        target = decode(x0.float()).float()
    return (decode(x0_hat).float() - target).pow(2).mean()


def guidance_distillation_loss(student: Callable, teacher: Callable, x0: torch.Tensor, text: torch.Tensor,
                               text_mask: torch.Tensor, null_text: torch.Tensor, null_mask: torch.Tensor,
                               guidance: torch.Tensor, cond: torch.Tensor | None = None,
                               cond_mask: torch.Tensor | None = None, t: torch.Tensor | None = None,
                               shift: float = 1.0, noise: torch.Tensor | None = None,
                               with_reference: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error between the student's velocity at guidance scales `guidance` w [B] (a DiT with a
    guidance head, `DiTConfig.guidance_head`, called with `guidance=w`) and the teacher's classifier-free guided
    velocity v_u + w (v_c - v_u) at the same noisy latents (Meng et al. 2023, "On distillation of guided diffusion models",
    its first stage; FLUX.1-dev is such a student). The teacher's two branches run as one batch without gradients;
    `null_text` / `null_mask` [B, L, D] / [B, L] are the unconditional prompt, padded to the text's length. The
    target is a deterministic function of x_t (no noise in it, unlike the flow loss), so the error measures how
    much of the teacher's guidance the student has learnt. Latent frames given as conditioning are excluded.
    `with_reference`: also the error of the teacher's conditional velocity v_c against the same target (the error of
    no distillation, where the student starts), from the same teacher evaluation."""
    B = x0.shape[0]
    if t is None:
        t = shift_time(logit_normal(B, device=x0.device), shift)
    noise = torch.randn_like(x0) if noise is None else noise
    tt = t.view(B, 1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * noise
    with torch.no_grad():
        both = None if cond is None else torch.cat([cond, cond])
        both_mask = None if cond_mask is None else torch.cat([cond_mask, cond_mask])
        v = teacher(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([text, null_text]),
                    torch.cat([text_mask, null_mask]), both, both_mask).float()
        v_c, v_u = v.chunk(2)
        target = v_u + guidance.view(B, 1, 1, 1, 1).float() * (v_c - v_u)
    pred = student(xt, t, text, text_mask, cond, cond_mask, guidance=guidance)
    keep = None if cond_mask is None else (1 - cond_mask).expand_as(target)
    loss = _masked_mean((pred.float() - target).pow(2), keep)
    return (loss, _masked_mean((v_c - target).pow(2), keep)) if with_reference else loss


def _log_snr(t: float) -> float:
    """lambda = log(alpha / sigma) of x_t = (1 - t) x_0 + t noise: -inf at pure noise, +inf at the data."""
    return -math.inf if t >= 1 else math.inf if t <= 0 else math.log((1 - t) / t)


def _dpm2m_step(x: torch.Tensor, v: torch.Tensor, t0: float, t1: float, prev: tuple[float, torch.Tensor] | None):
    """One step of DPM-Solver++(2M) (Lu et al. 2022, multistep, data prediction) on the flow, from t0 to t1 < t0,
    given the velocity v at (x, t0) and the (time, clean-latent prediction) of the step before: one DiT evaluation a
    step, where Heun spends two, with second-order accuracy from the previous step's prediction. With the flow's
    alpha = 1 - t, sigma = t and D = x - t v, the exponential-integrator step is
        x1 = (t1 / t0) x + ((t0 - t1) / t0) D',  D' = (1 + 1 / 2r) D - (1 / 2r) D_prev,  r = h_prev / h,
    h = lambda(t1) - lambda(t0), and with D' = D it is exactly Euler's step. First order where no previous step
    exists (the first step, the first after a restart's fresh noise), where that step began at pure noise
    (lambda = -inf), and at the last step to t = 0 (as diffusers' `lower_order_final` does for few steps).
    Returns x1 and (t0, D) for the next step."""
    d = x - t0 * v
    if t1 <= 0:
        return d, (t0, d)
    d_used = d
    if prev is not None and prev[0] < 1:
        h = _log_snr(t1) - _log_snr(t0)
        r = (_log_snr(t0) - _log_snr(prev[0])) / h
        d_used = (1 + 0.5 / r) * d - (0.5 / r) * prev[1]
    return (t1 / t0) * x + ((t0 - t1) / t0) * d_used, (t0, d)


def _masked_mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if w is None else (x * w).sum() / w.sum().clamp_min(1.0)


def timesteps(steps: int, shift: float = 1.0) -> torch.Tensor:
    """steps + 1 times from 1 to 0; shift > 1 spends more steps at high noise (as SD3 does)."""
    return shift_time(torch.linspace(1.0, 0.0, steps + 1), shift)


SAMPLERS = ("heun", "euler", "dpm2m")


def moves(steps: int, shift: float = 1.0, restart: tuple[float, float] | None = None,
          restarts: int = 0) -> list[tuple[float, float]]:
    """The sampler's moves (t0, t1) in order. Steps go down the time grid `timesteps(steps, shift)`. With
    `restart` = (lo, hi) and `restarts` k > 0 (Restart sampling, Xu et al. 2023): on reaching the grid time
    nearest lo, the sample jumps back up to the grid time nearest hi (a move with t1 > t0: fresh noise is added)
    and goes down the same steps again, k times, then on to t = 0. The added noise contracts the errors the
    earlier steps made (the paper's argument); here it gives the DiT a second pass over the stretch where the layout
    settles. Measured on held-out clips in generator/weights/MODEL_CARD.md (session 19)."""
    ts = timesteps(steps, shift).tolist()
    down = list(zip(ts[:-1], ts[1:]))
    if restart is None or restarts <= 0:
        return down
    lo, hi = (min(range(len(ts)), key=lambda i: abs(ts[i] - v)) for v in restart)  # grid indices; t falls as i grows
    if hi >= lo or hi == 0:  # on this grid (too few steps) the window is empty or reaches pure noise: no restart
        return down
    return down[:lo] + ([(ts[lo], ts[hi])] + down[hi:lo]) * restarts + down[lo:]


def grid_time(steps: int, shift: float, t: float) -> float:
    """The time of the sampler's grid (`timesteps(steps, shift)`) nearest t: where a sample that starts part-way
    (`sample(..., start=...)`) begins."""
    return min(timesteps(steps, shift).tolist(), key=lambda g: abs(g - t))


def renoise(x: torch.Tensor, t0: float, t1: float, noise: torch.Tensor) -> torch.Tensor:
    """x_t0 -> x_t1 (t1 > t0) along the forward process: x_t = (1 - t) x_0 + t noise, so the clean part shrinks by
    (1 - t1) / (1 - t0) and fresh noise tops the noise up to t1 (independent Gaussians add in variance)."""
    s = (1 - t1) / (1 - t0)
    return s * x + (t1 * t1 - (s * t0) ** 2) ** 0.5 * noise


@torch.no_grad()
def sample(model: Callable, noise: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
           null_text: torch.Tensor, null_mask: torch.Tensor, steps: int = 16, guidance: float = 4.0,
           method: str = "euler", cond: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None,
           shift: float = 1.0, callback: Callable[[int], None] | None = None,
           guidance_interval: tuple[float, float] = (0.0, 1.0), restart: tuple[float, float] | None = None,
           restart_noise: Sequence[torch.Tensor] = (), start: float = 1.0,
           distilled_guidance: bool = False, guidance_reuse: bool = False) -> torch.Tensor:
    """Integrate the flow from `noise` to t = 0. With `start` < 1, `noise` is a sample at that time of the grid
    (`grid_time`; e.g. a clean latent noised to it) and the steps above it are skipped: SDEdit (Meng et al. 2022),
    which keeps the given latent's layout and redraws its detail. Guidance mixes conditional and unconditional velocities
    (the unconditional prompt is the empty or the negative prompt); both run in one batch. Guidance applies
    only at times t inside `guidance_interval` (lo, hi] (Kynkaanniemi et al. 2024, "Applying guidance in a
    limited interval"); elsewhere the conditional velocity alone is used, at half the cost. With `restart`
    (lo, hi), the window is sampled again once per tensor of `restart_noise` (the fresh noise; see `moves`).
    `callback(i)` follows each step down, i counting on through the restarts. `method`: "euler", "heun" (two
    evaluations a step, the last one's one) or "dpm2m" (one a step, second order through the step before; see
    `_dpm2m_step`). With `distilled_guidance`, the model
    is a guidance-distilled DiT (`DiTConfig.guidance_head`): it is given the guidance scale and predicts the
    guided velocity in one evaluation of the conditional batch (`null_text` unused).

    With `guidance_reuse`, a guided evaluation at the time of the previous one reuses its guidance direction
    v_c - v_u and evaluates the conditional batch alone: v = v_c + (w - 1) (v_c - v_u)_previous. Heun's corrector
    evaluates at t1 and the next step's predictor at t1 again, at a nearby x (the two differ by Heun's correction,
    (t1 - t0) (v1 - v0) / 2), so every such predictor costs half (in the spirit of FasterCache, Lv et al. 2024,
    which reuses the guidance residual between steps). A restart's fresh noise starts anew."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose {' or '.join(SAMPLERS)}")
    if start < 1.0 and (start != grid_time(steps, shift, start) or restart_noise):
        raise ValueError(f"start {start:g} is not a time of the sampler's grid (see grid_time), or is given "
                         "with restarts")
    B = noise.shape[0]
    lo, hi = guidance_interval
    # pad text and null text to one length so both halves go through the model together
    L = max(text.shape[1], null_text.shape[1])

    def pad(e, m):
        return (torch.nn.functional.pad(e, (0, 0, 0, L - e.shape[1])), torch.nn.functional.pad(m, (0, L - m.shape[1])))

    text, text_mask = pad(text, text_mask)
    null_text, null_mask = pad(null_text, null_mask)
    both_text = torch.cat([text, null_text.expand(B, -1, -1)])
    both_mask = torch.cat([text_mask, null_mask.expand(B, -1)])
    both_cond = None if cond is None else torch.cat([cond, cond])
    both_cmask = None if cond_mask is None else torch.cat([cond_mask, cond_mask])

    last = None  # (t, v_c - v_u) of the last evaluation of both batches, for guidance_reuse

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        nonlocal last
        tt = torch.full((B,), t, dtype=x.dtype, device=x.device)
        if guidance == 1.0 or not lo < t <= hi:
            return model(x, tt, text, text_mask, cond, cond_mask).float()
        if distilled_guidance:
            return model(x, tt, text, text_mask, cond, cond_mask, guidance=torch.full_like(tt, guidance)).float()
        if guidance_reuse and last is not None and last[0] == t:
            return model(x, tt, text, text_mask, cond, cond_mask).float() + (guidance - 1) * last[1]
        v = model(torch.cat([x, x]), torch.cat([tt, tt]), both_text, both_mask, both_cond, both_cmask).float()
        v_c, v_u = v.chunk(2)
        last = (t, v_c - v_u)
        return v_u + guidance * (v_c - v_u)

    x = noise.float()
    fresh = iter(restart_noise)
    i = 0
    prev = None  # dpm2m: (t, clean-latent prediction) of the step before
    for t0, t1 in moves(steps, shift, restart, len(restart_noise)):
        if t0 > start:  # above where this sample starts (SDEdit)
            continue
        if t1 > t0:  # a restart: back up to t1
            x = renoise(x, t0, t1, next(fresh).float())
            last = prev = None
            continue
        v0 = velocity(x, t0)
        if method == "dpm2m":
            x_next, prev = _dpm2m_step(x, v0, t0, t1, prev)
        else:
            x_next = x + (t1 - t0) * v0
            if method == "heun" and t1 > 0:
                v1 = velocity(x_next, t1)
                x_next = x + (t1 - t0) * 0.5 * (v0 + v1)
        x = x_next
        if callback is not None:
            callback(i)
        i += 1
    if cond is not None:  # given frames are returned exactly as given
        x = torch.where(cond_mask.bool().expand_as(x), cond, x)
    return x
