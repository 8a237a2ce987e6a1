"""Generator: model shapes, the text encoder, rectified flow, training (overfit, resume, DDP) and the pipeline."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from daas.errors import DaasError
from generator.config import TrainConfig, native_bf16, resolve_precision
from generator.dit import DiT, DiTConfig
from generator.flow import flow_loss, sample, shift_time, timesteps
from generator.vae import VAEConfig, VideoVAE, psnr
from generator.weights import DIT_FILE, VAE_FILE

TINY_VAE = VAEConfig(channels=(8, 16), latent_channels=4)
TINY_DIT = DiTConfig(width=32, depth=2, heads=2, mlp_ratio=2.0)
REPO = Path(__file__).resolve().parent.parent


def test_vae_shapes_causal_first_frame():
    vae = VideoVAE(TINY_VAE).eval()
    x = torch.rand(2, 3, 9, 32, 48) * 2 - 1
    z, logvar = vae.encode(x)
    assert z.shape == (2, 4, 3, 8, 12) and logvar.shape == z.shape
    assert vae.decode(z).shape == x.shape
    # the first latent frame depends on the first frame only: an image is a 1-frame video
    z1, _ = vae.encode(x[:, :, :1])
    assert torch.allclose(z1[:, :, 0], z[:, :, 0], atol=1e-5)
    x2 = x.clone()
    x2[:, :, 5:] = 0  # changing later frames leaves earlier latents alone
    assert torch.allclose(vae.encode(x2)[0][:, :, :2], z[:, :, :2], atol=1e-5)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        vae.encode(x[:, :, :4])


def test_psnr_of_identical_and_noisy_clips():
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    assert psnr(x, x).item() > 90
    y = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    assert 15 < psnr(x, y).item() < 30


def test_gradient_loss_charges_blurred_edges():
    from generator.vae import vae_loss

    x = torch.full((1, 3, 5, 16, 16), -0.5)
    x[:, :, :, 4:10, 4:10] = 0.5  # a sharp square
    z = torch.zeros(1, 4, 2, 4, 4)
    blurred = torch.nn.functional.avg_pool3d(x, (1, 3, 3), 1, (0, 1, 1), count_include_pad=False)
    l1_blur = float(vae_loss(x, blurred, z, z)[0])
    # a uniform brightness error with the same pixel L1 (the square is static: every weight is 1)
    offset = x + l1_blur
    assert float(vae_loss(x, offset, z, z)[0]) == pytest.approx(l1_blur, rel=1e-5)
    blur_g, parts = vae_loss(x, blurred, z, z, gradient_weight=1.0)
    offset_g, _ = vae_loss(x, offset, z, z, gradient_weight=1.0)
    assert float(vae_loss(x, x, z, z, gradient_weight=1.0)[0]) == 0.0
    assert float(parts["gdl"]) > 0 and float(offset_g) == pytest.approx(l1_blur, rel=1e-5)  # edges intact
    assert float(blur_g) > 2 * float(offset_g)  # same pixel error, but the blur destroyed the edges


def test_dit_shapes_any_size_and_zero_init():
    dit = DiT(TINY_DIT).eval()
    text, mask = torch.randn(2, 7, 384), torch.ones(2, 7, dtype=torch.bool)
    for T, H, W in ((5, 16, 16), (3, 8, 24), (1, 16, 8)):
        x = torch.randn(2, 4, T, H, W)
        out = dit(x, torch.rand(2), text, mask)
        assert out.shape == x.shape
        assert out.abs().max() == 0  # adaLN-Zero: the untrained model predicts zero
    with pytest.raises(ValueError, match="divisible"):
        dit(torch.randn(1, 4, 5, 15, 16), torch.rand(1), text[:1], mask[:1])


def test_rotary_positions_rotate_pairs_and_score_by_relative_position():
    from generator.dit import apply_rope, rope_3d

    g, hd = (4, 3, 5), 16
    cos, sin = rope_3d(g, hd, "cpu")
    rot = torch.complex(cos, sin)
    x = torch.randn(2, 3, cos.shape[0], hd)
    y = apply_rope(x, rot)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # the rotation of each channel pair, written out
    assert torch.allclose(y[..., 0::2], x1 * cos - x2 * sin, atol=1e-6)
    assert torch.allclose(y[..., 1::2], x1 * sin + x2 * cos, atol=1e-6)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # a rotation keeps lengths
    # one query and one key at every position: their score depends on the offset between positions only
    q = apply_rope(torch.randn(hd).expand(1, 1, cos.shape[0], hd), rot)[0, 0].view(*g, hd)
    k = apply_rope(torch.randn(hd).expand(1, 1, cos.shape[0], hd), rot)[0, 0].view(*g, hd)
    s = lambda a, b: float(q[a] @ k[b])  # noqa: E731
    assert s((0, 1, 2), (1, 2, 0)) == pytest.approx(s((2, 0, 4), (3, 1, 2)), abs=1e-4)
    assert s((0, 1, 2), (1, 2, 0)) != pytest.approx(s((0, 1, 2), (2, 2, 0)), abs=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 in, fp32 out (attention casts back)
        assert apply_rope(x.bfloat16(), rot).dtype == torch.float32


def test_dit_gelu_is_torchs_tanh_gelu_with_and_without_gradients():
    from generator.dit import GELUTanh

    act, ref = GELUTanh(), torch.nn.GELU(approximate="tanh")
    x = torch.cat([torch.linspace(-12, 12, 4001), torch.randn(2999) * 3]).view(7, -1)
    with torch.no_grad():  # the in-place sigmoid form: the same function, and x itself untouched
        before = x.clone()
        assert torch.allclose(act(x), ref(x), rtol=1e-5, atol=2e-6)
        assert torch.equal(x, before)
        assert act(x.bfloat16()).dtype == torch.bfloat16  # bf16 takes torch's own
    xg = x.clone().requires_grad_()
    act(xg).sum().backward()  # with gradients: torch's own, so training's graph is the usual one
    xr = x.clone().requires_grad_()
    ref(xr).sum().backward()
    assert torch.equal(xg.grad, xr.grad)


def test_text_encoder_matches_transformers_bert():
    transformers = pytest.importorskip("transformers")
    from generator.text import TextEncoder, model_dir

    te = TextEncoder()
    prompts = ["a red ball rolls to the left", "A puff of wind blows out a candle and smoke rises"]
    emb, mask = te(prompts)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir())
    ref_model = transformers.AutoModel.from_pretrained(model_dir()).eval()
    batch = tok(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model(**batch).last_hidden_state
    assert mask.sum().item() == batch["attention_mask"].sum().item()
    assert torch.allclose(emb[mask], ref[batch["attention_mask"].bool()], atol=1e-4)
    # left and right stay apart in token space (unlike pooled sentence vectors)
    l, r = te(["a red ball rolls to the left", "a red ball rolls to the right"])[0]
    assert not torch.allclose(l, r, atol=1e-2)


def test_guidance_applies_only_inside_its_interval():
    # a model whose velocity is the text embedding's first entry: conditional 1, unconditional 0
    seen = []

    def model(x, t, text, *_):
        seen.append((x.shape[0], float(t[0])))
        return text[:, :1, :1, None, None].expand_as(x).clone()

    x = torch.zeros(1, 1, 1, 1, 1)
    cond, null = torch.ones(1, 1, 384), torch.zeros(1, 1, 384)
    m = torch.ones(1, 1, dtype=torch.bool)
    full = sample(model, x, cond, m, null, m, steps=4, guidance=3.0, method="euler")
    assert [b for b, _ in seen] == [2, 2, 2, 2] and torch.allclose(full, torch.full_like(x, -3.0))
    seen.clear()
    part = sample(model, x, cond, m, null, m, steps=4, guidance=3.0, method="heun", guidance_interval=(0.3, 0.8))
    # Heun evaluates at t = 1, .75, .75, .5, .5, .25, .25: guided (a batch of two) only inside (0.3, 0.8]
    assert seen == [(1, 1.0), (2, 0.75), (2, 0.75), (2, 0.5), (2, 0.5), (1, 0.25), (1, 0.25)]
    # velocity 3 where guided, 1 elsewhere; Heun's trapezoids (1+3)/2, 3, (3+1)/2, then Euler 1: x(0) = -0.25 * 8
    assert torch.allclose(part, torch.full_like(x, -2.0))


def test_flow_sampler_integrates_a_known_velocity():
    # for x0 fixed, v = noise - x0 is constant along the path, so Euler lands exactly on x0
    x0 = torch.randn(1, 4, 2, 4, 4)

    def model(x, t, *_):
        tt = t.view(-1, 1, 1, 1, 1)
        noise = (x - (1 - tt) * x0) / tt.clamp_min(1e-6)
        return noise - x0

    noise = torch.randn_like(x0)
    e = torch.zeros(1, 1, 384)
    m = torch.ones(1, 1, dtype=torch.bool)
    for method in ("euler", "heun", "dpm2m"):
        out = sample(model, noise, e, m, e, m, steps=4, guidance=1.0, method=method)
        assert torch.allclose(out, x0, atol=1e-4)
    assert timesteps(4, shift=3.0)[0] == 1.0 and timesteps(4, shift=3.0)[-1] == 0.0


def _gaussian_flow(s: float):
    """The exact velocity of the flow of data ~ N(0, s^2): its clean-latent prediction is
    D(x, t) = (1 - t) s^2 x / ((1 - t)^2 s^2 + t^2), and x_t = x_1 sqrt((1 - t)^2 s^2 + t^2) along the ODE."""
    def model(x, t, *_):
        tt = t.view(-1, *[1] * (x.dim() - 1))
        d = (1 - tt) * s * s * x / ((1 - tt) ** 2 * s * s + tt * tt)
        return (x - d) / tt
    return model, lambda t: math.sqrt((1 - t) ** 2 * s * s + t * t)


def test_dpm2m_steps_are_second_order_with_one_evaluation_each():
    from generator.flow import _dpm2m_step

    model, std = _gaussian_flow(0.5)
    x1 = torch.ones(1)

    def integrate(n, second_order):  # from t = .9 to .1, where the exact x is known
        ts, x, prev, calls = torch.linspace(0.9, 0.1, n + 1).tolist(), x1 * std(0.9), None, 0
        for t0, t1 in zip(ts[:-1], ts[1:]):
            v = model(x, torch.tensor([t0]))
            calls += 1
            x, prev = _dpm2m_step(x, v, t0, t1, prev if second_order else None)
        return abs(float(x) - std(0.1)), calls

    (e16, calls), (e32, _), (e64, _) = (integrate(n, True) for n in (16, 32, 64))
    assert calls == 16
    assert e16 / e32 > 3.5 and e32 / e64 > 3.5  # the error / 4 when the steps double
    f16, f32 = integrate(16, False)[0], integrate(32, False)[0]  # without the previous prediction: Euler, / 2
    assert 1.7 < f16 / f32 < 2.3 and e16 < f16 / 5


def test_dpm2m_sampler_evaluates_once_a_step_and_starts_afresh_after_a_restart():
    model, std = _gaussian_flow(0.5)
    seen = []

    def counted(x, t, *a):
        seen.append(round(float(t[0]), 3))
        return model(x, t, *a)

    e, m = torch.zeros(1, 1, 384), torch.ones(1, 1, dtype=torch.bool)
    noise = torch.randn(1, 1, 1, 2, 2)
    out = sample(counted, noise, e, m, e, m, steps=16, guidance=1.0, method="dpm2m")
    assert len(seen) == 16 and seen[0] == 1.0
    euler = sample(model, noise, e, m, e, m, steps=16, guidance=1.0, method="euler")
    exact = noise * std(0.0)
    assert float((out - exact).abs().max()) < 0.5 * float((euler - exact).abs().max())
    # a restart's fresh noise starts a new trajectory, which owes nothing to the steps before it: the same as a
    # sample begun at the restart's time from the renoised latent
    seen.clear()
    inputs = []

    def recorded(x, t, *a):
        inputs.append(x.clone())
        return counted(x, t, *a)

    x = sample(recorded, noise, e, m, e, m, steps=4, guidance=1.0, method="dpm2m", shift=1.0, restart=(0.25, 0.75),
               restart_noise=[torch.randn_like(noise)])
    assert seen == [1.0, 0.75, 0.5, 0.75, 0.5, 0.25]
    afresh = sample(model, inputs[3], e, m, e, m, steps=4, guidance=1.0, method="dpm2m", shift=1.0, start=0.75)
    assert torch.equal(x, afresh)


def test_training_timestep_shift_moves_times_towards_noise():
    t = torch.linspace(0, 1, 101)
    shifted = shift_time(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and torch.all(shifted[1:] > shifted[:-1])
    assert torch.all(shifted[1:-1] > t[1:-1]) and torch.equal(shift_time(t, 1.0), t)
    seen = []

    def model(x, t, *_):
        seen.append(t)
        return torch.zeros_like(x)

    x0 = torch.zeros(4000, 1, 1, 1, 1)
    for s in (1.0, 3.0):
        torch.manual_seed(0)
        flow_loss(model, x0, None, None, shift=s)
    plain, shifted = seen
    assert torch.allclose(shifted, shift_time(plain, 3.0))  # the same draws, shifted
    assert 0.45 < plain.median() < 0.55 and 0.7 < shifted.median() < 0.8  # logit-normal median 0.5 -> 0.75
    with pytest.raises(ValueError, match="timestep_shift"):
        TrainConfig(timestep_shift=0.0)


def test_restart_moves_go_back_up_the_grid_and_down_the_same_steps():
    from generator.flow import moves

    grid = [round(v, 3) for v in timesteps(8, 3.0).tolist()]  # 1, .955, .9, .833, .75, .643, .5, .3, 0
    plain = list(zip(grid[:-1], grid[1:]))
    got = [(round(a, 3), round(b, 3)) for a, b in moves(8, 3.0, (0.643, 0.9), 1)]
    window = [(0.9, 0.833), (0.833, 0.75), (0.75, 0.643)]
    assert got == plain[:5] + [(0.643, 0.9)] + window + plain[5:]
    twice = [(round(a, 3), round(b, 3)) for a, b in moves(8, 3.0, (0.64, 0.91), 2)]  # times snap to the grid
    assert twice == plain[:5] + ([(0.643, 0.9)] + window) * 2 + plain[5:]
    assert moves(8, 3.0, (0.643, 0.9), 0) == moves(8, 3.0, None, 3) == moves(8, 3.0)
    assert moves(2, 3.0, (0.643, 0.9), 1) == moves(2, 3.0)  # grid 1, .75, 0: the window would reach pure noise


def test_renoise_gives_the_forward_process_marginal():
    from generator.flow import renoise

    torch.manual_seed(0)
    x0 = torch.full((200_000,), 0.7)
    x = renoise((1 - 0.6) * x0 + 0.6 * torch.randn_like(x0), 0.6, 0.9, torch.randn_like(x0))
    # x_0.9 = 0.1 x0 + 0.9 noise: mean 0.07, std 0.9
    assert abs(float(x.mean()) - 0.07) < 0.01 and abs(float(x.std()) - 0.9) < 0.01


def test_sampler_restarts_evaluate_the_window_again_with_the_fresh_noise():
    seen = []

    def model(x, t, *_):
        seen.append(round(float(t[0]), 3))
        return torch.zeros_like(x)  # x stays where it is between restarts

    x = torch.ones(1, 1, 1, 1, 1)
    m = torch.ones(1, 1, dtype=torch.bool)
    text = torch.zeros(1, 1, 384)
    steps_done = []
    out = sample(model, x, text, m, text, m, steps=4, guidance=1.0, method="euler", shift=1.0, restart=(0.25, 0.75),
                 restart_noise=[torch.zeros_like(x)], callback=steps_done.append)
    # grid 1, .75, .5, .25, 0: down to .25, back up to .75 (x scaled by (1 - .75) / (1 - .25), no noise), down again
    assert seen == [1.0, 0.75, 0.5, 0.75, 0.5, 0.25] and steps_done == list(range(6))
    assert torch.allclose(out, x / 3)
    again = sample(model, x, text, m, text, m, steps=4, guidance=1.0, method="euler", shift=1.0,
                   restart=(0.25, 0.75), restart_noise=[torch.ones_like(x)])
    assert not torch.allclose(again, out)  # the fresh noise enters


def test_sampling_from_part_way_skips_the_steps_above_the_start():
    from generator.flow import grid_time

    x0 = torch.randn(1, 4, 2, 4, 4)
    seen = []

    def model(x, t, *_):  # the exact velocity for x0 (see test_flow_sampler_integrates_a_known_velocity)
        seen.append(round(float(t[0]), 3))
        tt = t.view(-1, 1, 1, 1, 1)
        return (x - (1 - tt) * x0) / tt.clamp_min(1e-6) - x0

    e, m = torch.zeros(1, 1, 384), torch.ones(1, 1, dtype=torch.bool)
    t0 = grid_time(4, 1.0, 0.55)
    assert t0 == 0.5 and grid_time(16, 3.0, 0.7) == pytest.approx(0.7)  # grid 1, .75, .5, .25, 0
    x_t = (1 - t0) * x0 + t0 * torch.randn_like(x0)  # SDEdit: a clean latent noised to t0
    out = sample(model, x_t, e, m, e, m, steps=4, guidance=1.0, start=t0)
    assert seen == [0.5, 0.25] and torch.allclose(out, x0, atol=1e-4)
    seen.clear()
    sample(model, torch.randn_like(x0), e, m, e, m, steps=4, guidance=1.0, start=1.0)
    assert seen == [1.0, 0.75, 0.5, 0.25]  # the default: every step
    with pytest.raises(ValueError, match="grid"):
        sample(model, x_t, e, m, e, m, steps=4, guidance=1.0, start=0.55)
    with pytest.raises(ValueError, match="restarts"):
        sample(model, x_t, e, m, e, m, steps=4, guidance=1.0, start=0.5, restart=(0.25, 0.75),
               restart_noise=[torch.zeros_like(x0)])


def test_tiny_dit_overfits_one_batch():
    torch.manual_seed(0)
    dit = DiT(TINY_DIT)
    x0 = torch.randn(2, 4, 3, 8, 8)
    text, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.bool)
    t = torch.tensor([0.3, 0.7])
    opt = torch.optim.AdamW(dit.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        torch.manual_seed(1)  # the same noise every step: one batch to memorise
        loss = flow_loss(dit, x0, text, mask, t=t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


def _tiny_vae_yaml(tmp: Path, run: Path, steps: int, extra: str = "") -> Path:
    p = tmp / "vae.yaml"
    p.write_text(f"""
model: {{channels: [8, 16], latent_channels: 4}}
data: {{width: 32, height: 32, n_frames: 5, batch_size: 2, train_clips: 64, val_clips: 2, families: [roll]}}
train: {{max_steps: {steps}, lr: 0.003, warmup_steps: 1, checkpoint_every: 5, val_every: 1000, run_dir: {run}{extra}}}
""")
    return p


def _losses(run: Path) -> dict[int, float]:
    out = {}
    for f in sorted((run / "logs").glob("version_*/metrics.csv")):
        out.update({int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(open(f)) if r.get("train/loss")})
    return out


def test_vae_training_resumes_where_it_stopped(tmp_path):
    from generator.train import main

    run = tmp_path / "run"
    cfg = _tiny_vae_yaml(tmp_path, run, 20)
    main(["vae", "--config", str(cfg), "--max-steps", "20"])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 20 and blob["optimizer_states"]
    before = _losses(run)
    main(["vae", "--config", str(cfg), "--max-steps", "40"])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 40
    after = _losses(run)
    first = before[min(before)]  # logged every 10 steps
    resumed = np.mean([v for k, v in after.items() if k >= 20])
    assert set(before) <= set(after)  # the first segment's log survives the restart
    assert resumed < first  # the loss continues from where it was, it does not start over


def test_a_run_that_stops_between_checkpoints_saves_where_it_stopped(tmp_path):
    """max_steps (or a time budget) may end a run between two periodic checkpoints: its last.ckpt still holds the
    step it stopped at, so a resumed run does not train those steps again."""
    from generator.train import main

    run = tmp_path / "run"
    cfg = _tiny_vae_yaml(tmp_path, run, 7)  # checkpoint_every: 5
    main(["vae", "--config", str(cfg), "--max-steps", "7"])
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 7
    main(["vae", "--config", str(cfg), "--max-steps", "12"])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 12 and blob["optimizer_states"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]


def test_cooldown_branch_of_a_run_keeps_its_step_and_decays(tmp_path):
    """warmup-stable-decay: a copy of a constant-lr run's last.ckpt resumes in another folder with a cosine
    decay from its step (set on the command line); the original run is left as it was."""
    import shutil

    from generator.train import main

    run, cd = tmp_path / "run", tmp_path / "cd"
    cfg = _tiny_vae_yaml(tmp_path, run, 10)
    main(["vae", "--config", str(cfg), "--max-steps", "10"])
    (cd / "checkpoints").mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "last.ckpt", cd / "checkpoints" / "last.ckpt")
    main(["vae", "--config", str(cfg), "--set", f"train.run_dir={cd}", "--set", "train.lr_schedule=cosine",
          "--set", "train.decay_start=10", "--set", "train.max_steps=20", "--set", "train.min_lr_ratio=0.1"])
    blob = torch.load(cd / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 20 and sorted(p.name for p in (cd / "checkpoints").iterdir()) == ["last.ckpt"]
    assert blob["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(0.1 * 0.003)  # decayed to its floor
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 10


def _finetune_from_a_plain_run(tmp_path: Path, steps: int, extra: str) -> tuple[dict, dict, Path]:
    """A 5-step joint run, then a decoder-only run of `steps` initialised from it (fresh optimizer and step
    count): (the first run's state dict, the fine-tuned run's, its run folder)."""
    from generator.train import main

    run, ft = tmp_path / "run", tmp_path / "ft"
    main(["vae", "--config", str(_tiny_vae_yaml(tmp_path, run, 5)), "--max-steps", "5"])
    start = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    cfg = _tiny_vae_yaml(tmp_path, ft, steps, extra=f", train_encoder: false{extra}, "
                         f"init_from: {run / 'checkpoints' / 'last.ckpt'}")
    main(["vae", "--config", str(cfg), "--max-steps", str(steps)])
    blob = torch.load(ft / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == steps and sorted(p.name for p in (ft / "checkpoints").iterdir()) == ["last.ckpt"]
    return start, blob["state_dict"], ft


def test_decoder_only_finetune_keeps_the_latent_space(tmp_path):
    from generator.train import main

    start, end, _ = _finetune_from_a_plain_run(tmp_path, 5, ", lr_schedule: cosine")
    enc = [k for k in start if k.startswith("vae.encoder.")]
    dec = [k for k in start if k.startswith("vae.decoder.") and start[k].is_floating_point()]
    assert enc and all(torch.equal(start[k], end[k]) for k in enc)  # latents keep their meaning
    assert any(not torch.equal(start[k], end[k]) for k in dec)  # the decoder learned
    missing = _tiny_vae_yaml(tmp_path, tmp_path / "other", 5, extra=f", init_from: {tmp_path / 'nope.ckpt'}")
    with pytest.raises(ValueError, match="init_from.*not found"):
        main(["vae", "--config", str(missing)])


def test_noisy_decoder_finetune_starts_from_shipped_weights(tmp_path):
    from generator.train import main
    from generator.weights import export_vae, load_vae, vae_init_checkpoint

    shipped = _tiny_vae_weights(tmp_path)
    init = vae_init_checkpoint(shipped, tmp_path / "init.ckpt")
    run = tmp_path / "ft"
    main(["vae", "--config", str(_tiny_vae_yaml(tmp_path, run, 5, extra=f", train_encoder: false, "
                                                f"decoder_noise: 0.5, init_from: {init}"))])
    end = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    ref = load_vae(shipped)[0].state_dict()
    assert all(torch.equal(end[f"vae.{k}"], ref[k]) for k in ref if k.startswith("encoder."))
    assert any(not torch.equal(end[f"vae.{k}"], ref[k]) for k in ref if k.startswith("decoder.")
               and ref[k].is_floating_point())
    joint = _tiny_vae_yaml(tmp_path, tmp_path / "joint", 5, extra=", decoder_noise: 0.5")
    with pytest.raises(ValueError, match="decoder_noise .* decoder-only"):
        main(["vae", "--config", str(joint)])
    # exported, it keeps the latent statistics a DiT was trained with, not ones re-measured on other clips
    out = export_vae(run / "checkpoints" / "last.ckpt", tmp_path / "ft.safetensors", stats_from=shipped)
    (_, want), (_, got) = load_vae(shipped), load_vae(out)
    assert all(torch.equal(want[k], got[k]) for k in ("mean", "std"))
    other = _tiny_vae_weights(tmp_path / "other", seed=1)  # another encoder: its statistics do not apply
    with pytest.raises(DaasError, match="another encoder"):
        export_vae(run / "checkpoints" / "last.ckpt", tmp_path / "x.safetensors", stats_from=other)


def test_adversarial_terms_each_move_only_their_own_side():
    from generator.config import VAETrainConfig
    from generator.training import VAEModule
    from generator.vae import hinge_d_loss

    cfg = VAETrainConfig(model=TINY_VAE)
    cfg.train.gan_weight, cfg.train.gan_start = 0.5, 0
    m = VAEModule(cfg)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    recon = m.vae.decode(m.vae.encode(x)[0])
    rec = (recon - x).abs().mean()
    total, logs = m._adversarial(x, recon, rec)
    last = m.vae.decoder.net[-2].conv.weight
    disc = list(m.disc.parameters())
    g_total = torch.autograd.grad(total, [last, *disc], retain_graph=True)
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_d = torch.autograd.grad(hinge_d_loss(m.disc(x), m.disc(recon.detach())), disc)
    # the discriminator learns from its hinge loss alone; the decoder term does not push it
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_total[1:], g_d))
    # the decoder gets the reconstruction gradient plus a non-zero adversarial one, scaled to a share of it
    extra = g_total[0] - g_rec
    assert extra.norm() > 0 and extra.norm() == pytest.approx(0.5 * g_rec.norm(), rel=1e-2)
    assert float(logs["train/gan_scale"]) > 0
    cfg.train.gradient_weight = -1.0
    with pytest.raises(ValueError, match="must be >= 0"):
        VAEModule(cfg)


def test_adversarial_finetune_starts_from_a_plain_run(tmp_path):
    from generator.weights import vae_from_training_checkpoint

    start, end, ft = _finetune_from_a_plain_run(tmp_path, 20, ", gan_weight: 0.5, gan_start: 12")
    assert all(torch.equal(start[k], end[k]) for k in start if k.startswith("vae.encoder."))
    assert any(k.startswith("disc.") for k in end)  # the discriminator is saved with the run (it resumes)
    rows = [r for f in (ft / "logs").glob("version_*/metrics.csv") for r in csv.DictReader(open(f))]
    d_steps = {int(r["step"]) for r in rows if r.get("train/d_loss")}
    g_steps = {int(r["step"]) for r in rows if r.get("train/gan_scale")}
    assert {9, 19} <= d_steps and g_steps == {19}  # (logged every 10 steps) the decoder's term starts at gan_start
    vae, _, _ = vae_from_training_checkpoint(ft / "checkpoints" / "last.ckpt")  # export ignores it
    assert sum(p.numel() for p in vae.parameters()) == sum(v.numel() for k, v in start.items() if k.startswith("vae."))


def test_auto_precision_is_bf16_only_where_the_cpu_has_it():
    from generator.config import resolve_precision

    amx = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    avx2 = "flags\t\t: fpu sse4_2 avx avx2 fma\n"
    assert resolve_precision("auto", "cpu", amx) == "bf16-mixed"
    assert resolve_precision("auto", "cpu", avx2) == "32-true"  # emulated bf16 would be ~100x slower
    assert resolve_precision("32-true", "cpu", amx) == "32-true"  # an explicit choice stands
    with pytest.raises(ValueError, match="auto"):  # a typo names every choice, "auto" included
        resolve_precision("bf16mixed", "cpu", amx)


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    from generator.config import TrainConfig
    from generator.training import _schedule

    t = TrainConfig(max_steps=100, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1)
    sched = _schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), t)
    f = sched.lr_lambdas[0]
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.55) and f(100) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 120))
    with pytest.raises(ValueError, match="lr_schedule"):
        _schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), TrainConfig(lr_schedule="step"))
    # a cooldown branch: constant until decay_start, then the same cosine over the remaining steps
    t = TrainConfig(max_steps=100, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1, decay_start=60)
    g = _schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), t).lr_lambdas[0]
    assert g(5) == pytest.approx(0.6) and g(30) == g(60) == pytest.approx(1.0)
    assert g(80) == pytest.approx(0.55) and g(100) == g(150) == pytest.approx(0.1)
    # moments_warmup_steps: lr 0 first, then the same warm-up and cosine, later by as many steps
    t = TrainConfig(max_steps=100, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1, moments_warmup_steps=20)
    h = _schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), t).lr_lambdas[0]
    assert h(0) == h(19) == 0.0 and h(20) == pytest.approx(0.1) and h(29) == h(30) == pytest.approx(1.0)
    assert h(65) == pytest.approx(0.55) and h(100) == pytest.approx(0.1)


def test_moments_warmup_fills_adam_state_without_moving_the_weights(tmp_path):
    """A run that starts from another run's weights with moments_warmup_steps keeps those weights while AdamW's
    moment estimates fill up, then trains."""
    from generator.train import main

    first = tmp_path / "first"
    main(["dit", "--config", str(_tiny_dit_yaml(tmp_path, first, "roll", "max_steps: 2, val_every: 100"))])
    init = first / "checkpoints" / "last.ckpt"
    start = torch.load(init, map_location="cpu", weights_only=False)["state_dict"]
    for steps, moved in ((3, False), (5, True)):
        run = tmp_path / f"second_{steps}"
        main(["dit", "--config", str(_tiny_dit_yaml(tmp_path, run, "roll", f"max_steps: {steps}, val_every: 100, "
                                                    f"moments_warmup_steps: 3, init_from: {init}"))])
        blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        same = all(torch.equal(v, start[k]) for k, v in blob["state_dict"].items() if k.startswith("dit."))
        assert same != moved
        state = blob["optimizer_states"][0]["state"]
        assert state and all(float(s["exp_avg_sq"].sum()) > 0 for s in state.values() if s["exp_avg_sq"].numel() > 8)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    run = tmp_path / "run"
    cfg = _tiny_vae_yaml(tmp_path, run, 4, extra=", strategy: ddp, devices: 2, threads: 1")
    r = subprocess.run([sys.executable, "-m", "generator.train", "vae", "--config", str(cfg)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in r.stderr + r.stdout
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 4


shipped = pytest.mark.skipif(not (DIT_FILE.exists() and VAE_FILE.exists()), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def pipe():
    from generator import load_pipeline

    return load_pipeline()


@shipped
def test_pipeline_is_reproducible_per_seed(pipe):
    a = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3)
    b = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3)
    c = pipe("a red ball falls and bounces", num_inference_steps=4, seed=4)
    assert a.shape == (17, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    batch = pipe(["a red ball falls and bounces", "a blue square slides to the left"], num_inference_steps=4, seed=3)
    assert batch.shape == (2, 17, 64, 64, 3)
    assert np.abs(batch[0].astype(int) - a).mean() < 1.0  # batched is single, up to bf16 rounding where bf16 runs
    from generator.defaults import DEFAULT_SHIFT

    shifted = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3, shift=DEFAULT_SHIFT + 1.0)
    assert not np.array_equal(shifted, a)  # the timestep shift reaches the sampler
    wider = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3, guidance_interval=(0.0, 1.0))
    assert not np.array_equal(wider, a)  # so does the guidance interval (t = 0.5, unguided by default, guided here)
    no_restart = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3, restarts=0)
    assert not np.array_equal(no_restart, a)  # and the restart (at 4 steps: back from t = .75 to .9)
    assert np.array_equal(no_restart, pipe("a red ball falls and bounces", num_inference_steps=4, seed=3,
                                           restart=None))


@shipped
def test_fp32_pipeline_makes_a_batched_clip_as_it_makes_it_alone():
    from generator import load_pipeline

    fp32 = load_pipeline(precision="32-true")
    a = fp32("a red ball falls and bounces", num_inference_steps=4, seed=3)
    batch = fp32(["a red ball falls and bounces", "a blue square slides to the left"], num_inference_steps=4, seed=3)
    assert np.abs(batch[0].astype(int) - a).max() <= 2  # up to float reassociation


@shipped
@pytest.mark.skipif(not native_bf16(), reason="bf16 is emulated (slow) on this CPU")
def test_pipeline_precision_bf16_is_reproducible_and_close_to_fp32(pipe):
    from generator import load_pipeline

    assert pipe.precision == "bf16-mixed"  # the default, "auto", where bf16 is native
    assert all(m.weight.dtype == torch.bfloat16 for m in pipe.dit.modules() if isinstance(m, torch.nn.Linear))
    fp32 = load_pipeline(precision="32-true")
    assert fp32.precision == "32-true" and next(fp32.dit.parameters()).dtype == torch.float32
    a = fp32("a red ball falls and bounces", num_inference_steps=4, seed=3)
    b = pipe("a red ball falls and bounces", num_inference_steps=4, seed=3)
    assert np.array_equal(b, pipe("a red ball falls and bounces", num_inference_steps=4, seed=3))
    assert not np.array_equal(a, b)  # the precision reaches the DiT...
    assert np.abs(a.astype(int) - b).mean() < 2.0  # ...and changes the clip by rounding only


def test_bf16_linear_weights_give_what_autocast_gives_with_fp32_weights():
    from generator.pipeline import _linear_weights_to_bf16

    torch.manual_seed(0)
    dit = DiT(TINY_DIT).eval()
    for p in dit.parameters():  # DiT zero-initialises its modulation and output: give every weight a value
        torch.nn.init.normal_(p, std=0.05)
    C = dit.cfg.latent_channels
    x, t = torch.randn(2, C, 2, 4, 4), torch.tensor([0.3, 0.9])
    text, mask = torch.randn(2, 5, dit.cfg.text_dim), torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ref = dit(x, t, text, mask, None, None)
        _linear_weights_to_bf16(dit)
        out = dit(x, t, text, mask, None, None)
    assert ref.abs().mean() > 0 and torch.equal(out, ref)


def test_pipeline_precision_is_checked():
    from generator import load_pipeline

    with pytest.raises(DaasError, match="precision must be one of"):
        load_pipeline(precision="fp16")


@shipped
def test_pipeline_keeps_the_steadiest_of_its_candidates():
    from generator import load_pipeline
    from generator.pipeline import CANDIDATE_SEED_STRIDE, SEED_LIMIT
    from generator.selection import drift_score

    fp32 = load_pipeline(precision="32-true")  # a batched clip equals the same clip alone (up to reassociation)
    # 48x48, not 32x32: at 32x32 the session-41 DiT draws some of these noises with no saturated object at all, so
    # their scores tie at 0 and the choice would test nothing
    kw = dict(num_frames=9, height=48, width=48, num_inference_steps=3, restarts=0)
    alone = [fp32("a red ball falls and bounces", seed=(SEED_LIMIT - 1 + j * CANDIDATE_SEED_STRIDE) % SEED_LIMIT,
                  **kw) for j in range(3)]
    assert fp32.last_selection is None  # best_of 1: no choice made
    best = fp32("a red ball falls and bounces", seed=SEED_LIMIT - 1, best_of=3, **kw)
    sel = fp32.last_selection[0]
    scores = [drift_score(a) for a in alone]
    assert sel["best_of"] == 3 and sel["score"] == "drift" and sel["scores"] == pytest.approx(scores, abs=2e-4)
    assert len(set(sel["scores"])) == 3  # three different noises (seeds that differ by 2**32 would not be)
    j = sel["chosen"]
    assert j == int(np.argmin(sel["scores"]))
    assert sel["seed"] == (SEED_LIMIT - 1 + j * CANDIDATE_SEED_STRIDE) % SEED_LIMIT  # wrapped round
    assert best.shape == alone[0].shape and np.abs(best.astype(int) - alone[j]).max() <= 2
    batch = fp32(["a red ball falls and bounces", "a blue square slides to the left"], seed=5, best_of=2, **kw)
    assert batch.shape == (2, *alone[0].shape) and len(fp32.last_selection) == 2
    assert [s["seed"] % CANDIDATE_SEED_STRIDE for s in fp32.last_selection] == [5, 6]  # clip i's seeds: seed + i + ...


@shipped
def test_pipeline_image_to_video_and_extension(pipe):
    first = pipe("a green ball rolls to the right", num_inference_steps=4, seed=1)
    i2v = pipe("a green ball rolls to the right", image=first[0], num_inference_steps=4, seed=2)
    assert np.array_equal(i2v[0], first[0])
    ext = pipe("a green ball rolls to the right", video=first, num_inference_steps=4, seed=2)
    assert ext.shape[0] == 17 + 12 and np.array_equal(ext[:17], first)


@shipped
@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": ""}, "empty"),
    ({"prompt": "x" * 5000}, "characters"),
    ({"num_frames": 16}, "1 \\+ 4k"),
    ({"num_frames": 401}, "1 \\+ 4k"),
    ({"height": 60}, "multiple of 8"),
    ({"width": 4096}, "multiple of 8"),
    ({"num_inference_steps": 0}, "num_inference_steps"),
    ({"guidance_scale": -1.0}, "guidance_scale"),
    ({"shift": 0.0}, "shift"),
    ({"sampler": "rk4"}, "unknown sampler"),
    ({"guidance_reuse": True}, "heun sampler only"),
    ({"guidance_reuse": True, "sampler": "euler"}, "heun sampler only"),
    ({"guidance_interval": (0.8, 0.2)}, "guidance_interval"),
    ({"guidance_interval": (0.0, 1.5)}, "guidance_interval"),
    ({"guidance_interval": (0.5,)}, "guidance_interval"),
    ({"restart": (0.9, 0.6)}, "restart must satisfy"),
    ({"restart": (0.0, 0.9)}, "restart must satisfy"),
    ({"restart": "early"}, "restart must be two times"),
    ({"restarts": -1}, "restarts must be"),
    ({"restarts": 1.5}, "restarts must be"),
    ({"restarts": True}, "restarts must be"),
    ({"best_of": 0}, "best_of must be"),
    ({"best_of": 17}, "best_of must be"),
    ({"best_of": 2.0}, "best_of must be"),
    ({"best_of": True}, "best_of must be"),
    ({"best_of": 2, "selection_score": "sharpness"}, "unknown selection score"),
    ({"seed": -1}, "seed must be"),
    ({"seed": 2 ** 32}, "seed must be"),
])
def test_pipeline_rejects_bad_input(pipe, kwargs, message):
    kwargs = {"prompt": "a red ball", **kwargs}
    with pytest.raises(DaasError, match=message):
        pipe(**kwargs)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from generator import load_pipeline

    with pytest.raises(DaasError, match="not found"):
        load_pipeline(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    from generator.weights import load_dit

    with pytest.raises(DaasError, match="unreadable"):
        load_dit(bad)


def test_pipeline_refuses_a_dit_trained_on_another_latent_space(tmp_path):
    from generator import load_pipeline
    from generator.weights import encoder_fingerprint, load_vae, save_weights

    vae_file = _tiny_vae_weights(tmp_path)
    vae = load_vae(vae_file)[0]
    # the fp32 training weights hash as their shipped fp16 copy; a fine-tuned decoder keeps the latent space
    torch.manual_seed(0)
    fp32 = VideoVAE(TINY_VAE)  # the weights _tiny_vae_weights saved in fp16
    assert encoder_fingerprint(fp32) == encoder_fingerprint(vae)
    with torch.no_grad():
        next(fp32.decoder.parameters()).add_(1.0)
    assert encoder_fingerprint(fp32) == encoder_fingerprint(vae)
    other = VideoVAE(TINY_VAE)
    assert encoder_fingerprint(other) != encoder_fingerprint(vae)

    dit = DiT(TINY_DIT)
    for name, enc in (("ok", vae), ("other", other)):
        save_weights(tmp_path / f"dit_{name}.safetensors", dit.state_dict(),
                     {"kind": "dit", "config": dit.cfg.__dict__, "vae_encoder_sha256": encoder_fingerprint(enc)})
    assert load_pipeline(tmp_path / "dit_ok.safetensors", vae_file).dit is not None
    with pytest.raises(DaasError, match="another VAE encoder"):
        load_pipeline(tmp_path / "dit_other.safetensors", vae_file)
    wide = DiT(DiTConfig(**{**TINY_DIT.__dict__, "latent_channels": 8}))
    save_weights(tmp_path / "dit_wide.safetensors", wide.state_dict(), {"kind": "dit", "config": wide.cfg.__dict__})
    with pytest.raises(DaasError, match="8 latent channels"):
        load_pipeline(tmp_path / "dit_wide.safetensors", vae_file)


def test_a_new_run_starts_from_shipped_dit_weights(tmp_path):
    from generator.config import DiTTrainConfig
    from generator.training import DiTModule, _init_weights
    from generator.weights import dit_init_checkpoint, load_dit, save_weights

    torch.manual_seed(0)
    shipped = save_weights(tmp_path / "dit.safetensors", DiT(TINY_DIT).state_dict(),
                           {"kind": "dit", "config": TINY_DIT.__dict__, "step": 7})
    cfg = DiTTrainConfig(model=TINY_DIT)
    cfg.train.init_from = str(dit_init_checkpoint(shipped, tmp_path / "init.ckpt"))
    cfg.train.run_dir = str(tmp_path / "run")
    module = DiTModule(cfg)  # randomly initialised ...
    _init_weights(module, cfg)  # ... then the shipped weights, for the model and its EMA
    ref = load_dit(shipped)[0].state_dict()
    for part in (module.dit, module.ema):
        got = part.state_dict()
        assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_a_dit_for_a_new_latent_space_keeps_the_old_body(tmp_path):
    from generator.config import DiTTrainConfig
    from generator.training import DiTModule, _init_weights
    from generator.weights import dit_init_checkpoint, load_dit, save_weights

    torch.manual_seed(0)
    shipped = save_weights(tmp_path / "dit.safetensors", DiT(TINY_DIT).state_dict(),
                           {"kind": "dit", "config": TINY_DIT.__dict__})
    wide = DiTConfig(**{**TINY_DIT.__dict__, "latent_channels": 8})
    cfg = DiTTrainConfig(model=wide)
    cfg.train.init_from = str(dit_init_checkpoint(shipped, tmp_path / "init.ckpt", model=wide))
    cfg.train.run_dir = str(tmp_path / "run")
    module = DiTModule(cfg)
    _init_weights(module, cfg)
    old, got = load_dit(shipped)[0].state_dict(), module.dit.state_dict()
    same = [k for k in got if k in old and old[k].shape == got[k].shape]
    assert len(same) >= len(got) - 3 and all(torch.equal(got[k], old[k].float()) for k in same)
    assert got["x_embed.weight"].shape[1] != old["x_embed.weight"].shape[1]  # the latent patch embedding is new
    assert torch.all(got["final.linear.weight"] == 0)  # and the final projection zero-initialised, as in DiT
    x = torch.randn(2, 8, 5, 16, 16)
    assert module.dit(x, torch.rand(2), torch.randn(2, 7, 384), torch.ones(2, 7, dtype=torch.bool)).shape == x.shape
    for other in ({"width": 48}, {"depth": 1}, {"mlp_ratio": 3.0}):  # a body that does not fit is refused
        with pytest.raises(DaasError, match="transformer body does not fit"):
            dit_init_checkpoint(shipped, tmp_path / "other.ckpt", model=DiTConfig(**{**wide.__dict__, **other}))
        assert not (tmp_path / "other.ckpt").exists()


def test_a_deeper_dit_grown_from_a_trained_one_starts_as_the_same_function(tmp_path):
    """Appended blocks start as the identity: the grown model's velocity equals the old one's, and training
    reaches the new blocks (their zeroed projections get gradients)."""
    from generator.flow import flow_loss
    from generator.weights import dit_init_checkpoint, load_dit, save_weights

    torch.manual_seed(0)
    old = DiT(TINY_DIT)
    for p in old.parameters():  # a "trained" model: no zero modulation left, so identity must come from elsewhere
        p.data.normal_(0, 0.2)
    shipped = save_weights(tmp_path / "dit.safetensors", old.state_dict(), {"kind": "dit", "config": TINY_DIT.__dict__})
    deep = DiTConfig(**{**TINY_DIT.__dict__, "depth": 4})
    state = torch.load(dit_init_checkpoint(shipped, tmp_path / "init.ckpt", model=deep), weights_only=False)
    grown = DiT(deep)
    grown.load_state_dict({k[4:]: v for k, v in state["state_dict"].items() if k.startswith("dit.")})
    assert sorted(state["daas"]["fresh"])[0].startswith("blocks.2.")  # only the appended blocks are new
    x, t = torch.randn(2, 4, 5, 8, 8), torch.rand(2)
    text, mask = torch.randn(2, 7, 384), torch.ones(2, 7, dtype=torch.bool)
    ref = load_dit(shipped)[0]
    with torch.no_grad():
        assert torch.allclose(grown(x, t, text, mask), ref(x, t, text, mask), atol=1e-5)
    flow_loss(grown, x, text, mask).backward()
    assert grown.blocks[3].mlp[2].weight.grad.abs().sum() > 0


def test_compiled_blocks_keep_checkpoint_names_and_the_eager_result():
    from generator.config import DiTTrainConfig
    from generator.training import DiTModule

    torch.manual_seed(0)
    eager = DiTModule(DiTTrainConfig(model=TINY_DIT))
    cfg = DiTTrainConfig(model=TINY_DIT)
    cfg.train.compile = True
    compiled = DiTModule(cfg)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # resume and export read the same names
    compiled.load_state_dict(eager.state_dict())
    for m in (eager.dit, compiled.dit):  # a non-zero output: the zero-initialised final layer would hide a bug
        torch.nn.init.normal_(m.final.linear.weight, std=0.1)
        torch.nn.init.normal_(m.t_block[-1].weight, std=0.1)
    compiled.load_state_dict(eager.state_dict())
    x, t = torch.randn(2, 4, 2, 8, 8), torch.rand(2)
    text, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.bool)
    want = eager.dit(x, t, text, mask)
    got = compiled.dit(x, t, text, mask)
    assert want.abs().mean() > 0.01 and torch.allclose(got, want, atol=1e-4, rtol=1e-3)


@shipped
def test_generate_cli_signs_watermarks_and_never_overwrites(tmp_path, monkeypatch):
    from generator.pipeline import CANDIDATE_SEED_STRIDE

    monkeypatch.setenv("DAAS_HOME", str(tmp_path / "home"))
    out = tmp_path / "clip.mp4"
    cmd = [sys.executable, "-m", "daas.cli", "generate", "a red ball falls and bounces", "-o", str(out),
           "--steps", "4", "--seed", "1", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    side = json.loads(r.stdout)
    assert side["params"]["prompt"] == "a red ball falls and bounces" and side["params"]["steps"] == 4
    assert side["params"]["sampler"] == "dpm2m" and side["params"]["guidance"] == 4.0  # the defaults, recorded
    assert side["params"]["shift"] == 3.0 and side["params"]["guidance_interval"] == [0.5, 1.0]
    assert side["params"]["restart"] == [0.643, 0.9] and side["params"]["restarts"] == 1
    from generator.defaults import DEFAULT_GUIDANCE_REUSE

    assert side["params"]["guidance_reuse"] is DEFAULT_GUIDANCE_REUSE
    assert side["params"]["best_of"] == 1 and "selection" not in side["params"]
    assert side["params"]["precision"] == resolve_precision("auto")  # what the DiT ran in: the default
    from generator.weights import EXPERT_FILE, load_dit

    # one DiT evaluation a step where the shipped DiT is guidance-distilled, CFG's batch of two where not
    assert side["params"]["guidance_mode"] == ("distilled" if load_dit()[0].cfg.guidance_head else "cfg")

    assert side["params"]["expert"] == (EXPERT_FILE.name if EXPERT_FILE.exists() else "")  # none shipped yet
    assert ("expert_checkpoint_sha256" in side["software_agent"]) == EXPERT_FILE.exists()
    assert json.loads(out.with_suffix(".json").read_text()) == side
    from provenance import verify_video

    rep = verify_video(out, trust_anchors=tmp_path / "home" / "keys" / "ca.pem")
    assert rep.status == "valid-trusted" and rep.ai_generated
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    bad = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "new.mp4"), "--guidance-interval", "0.9,0.2"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "guidance_interval" in bad.stderr and "Traceback" not in bad.stderr
    no_expert = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "new.mp4"), "--expert", str(tmp_path / "none.st")],
                               capture_output=True, text=True, timeout=600)
    bad_restart = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "new.mp4"), "--restart", "0.9"],
                                 capture_output=True, text=True, timeout=600)
    assert bad_restart.returncode == 2 and "--restart takes LO,HI" in bad_restart.stderr
    assert no_expert.returncode == 2 and "none.st not found" in no_expert.stderr
    assert "Traceback" not in no_expert.stderr
    bad_best_of = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "new.mp4"), "--best-of", "0"],
                                 capture_output=True, text=True, timeout=600)
    assert bad_best_of.returncode == 2 and "best_of must be" in bad_best_of.stderr
    assert "Traceback" not in bad_best_of.stderr
    assert not list(tmp_path.glob("new*"))
    best = subprocess.run(cmd[:5] + ["-o", str(tmp_path / "best.mp4"), "--frames", "5", "--size", "32", "--steps",
                                     "2", "--seed", "1", "--best-of", "2", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert best.returncode == 0, best.stderr
    sel = json.loads(best.stdout)["params"]["selection"]
    assert sel["best_of"] == 2 and sel["chosen"] in (0, 1) and len(sel["scores"]) == 2
    assert sel["seed"] == [1, 1 + CANDIDATE_SEED_STRIDE][sel["chosen"]]


# ----------------------------------------------------------------------------------------------
# buckets of sizes and durations


def test_bucket_sampler_single_bucket_batches_in_proportion_and_deterministic():
    from generator.training import BucketBatchSampler

    sizes, bs = [40, 21, 12], 4  # 10, 5 and 3 batches (bucket 1 drops its last clip)
    bounds = [(0, 40), (40, 61), (61, 73)]

    def bucket_of(batch):
        ks = {k for i in batch for k, (lo, hi) in enumerate(bounds) if lo <= i < hi}
        assert len(ks) == 1, batch  # a batch never mixes buckets
        return ks.pop()

    s = BucketBatchSampler(sizes, bs, seed=7)
    epoch0 = list(s)
    assert len(epoch0) == len(s) == 18 and all(len(b) == bs for b in epoch0)
    kinds = [bucket_of(b) for b in epoch0]
    assert [kinds.count(k) for k in range(3)] == [10, 5, 3]  # buckets in proportion to their clips
    assert kinds != sorted(kinds)  # interleaved, not bucket after bucket
    flat = [i for b in epoch0 for i in b]
    assert len(set(flat)) == len(flat) == 72  # every clip at most once; one clip of bucket 1 left over
    assert list(BucketBatchSampler(sizes, bs, seed=7)) == epoch0  # the same seed, the same order
    assert list(BucketBatchSampler(sizes, bs, seed=8)) != epoch0
    s.sampler.set_epoch(1)  # where Lightning calls set_epoch each epoch
    epoch1 = list(s)
    assert epoch1 != epoch0 and sorted(map(bucket_of, epoch1)) == sorted(kinds)
    # DDP: each rank takes a disjoint share of the same order, all ranks the same number of batches
    ranks = [list(BucketBatchSampler(sizes, bs, seed=7, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 9
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    # evaluation: every clip once, buckets in turn (the first batches cover every bucket)
    v = list(BucketBatchSampler(sizes, bs, shuffle=False, drop_last=False))
    assert sorted(i for b in v for i in b) == list(range(73))
    assert [bucket_of(b) for b in v[:3]] == [0, 1, 2]
    with pytest.raises(ValueError, match="no batch"):
        BucketBatchSampler([3, 2], 4)


def test_repeated_clips_come_as_often_as_asked_within_their_bucket():
    from types import SimpleNamespace

    from generator.training import BucketBatchSampler, caption_repeats

    # clips that name a square twice an epoch (session 30: the DiT draws squares round); a word in any phrasing
    ds = SimpleNamespace(captions=[[["a red ball falls"], ["a blue square falls", "a blue block falls"]],
                                   [["two squares slide"], ["a ball", "a green ball bounces"], ["a squared ball"]]])
    reps = caption_repeats(ds, {"square": 2, "ball": 1})
    assert reps == [1, 2, 2, 1, 1]  # plural counts, "squared" does not
    assert caption_repeats(ds, {"Square": 2, "blue": 3}) == [1, 3, 2, 1, 1]  # the largest count wins; any case
    sizes, repeats = [6, 4], [1, 3, 1, 1, 1, 1, 1, 1, 1, 3]  # bucket 0: 8 items an epoch, bucket 1: 6
    s = BucketBatchSampler(sizes, 2, seed=3, repeats=repeats)
    epoch = list(s)
    assert len(epoch) == len(s) == 7
    assert all(max(b) < 6 or min(b) >= 6 for b in epoch)  # a batch never mixes buckets
    flat = [i for b in epoch for i in b]
    assert sorted(flat) == sorted(i for i, k in enumerate(repeats) for _ in range(k))
    assert list(BucketBatchSampler(sizes, 2, seed=3, repeats=repeats)) == epoch  # a function of (seed, epoch)
    assert list(BucketBatchSampler(sizes, 2, seed=3, repeats=[1] * 10)) == list(BucketBatchSampler(sizes, 2, seed=3))
    for bad in ([1] * 9, [1] * 9 + [0]):
        with pytest.raises(ValueError, match="repeats must give"):
            BucketBatchSampler(sizes, 2, repeats=bad)
    with pytest.raises(ValueError, match="only when shuffling"):
        BucketBatchSampler(sizes, 2, shuffle=False, repeats=[1] * 10)


@pytest.mark.parametrize("words", [{"square": 0}, {"square": 1.5}, {"": 2}, {"square": True}, {3: 2}, "square", [2]])
def test_caption_repeats_config_refuses_what_is_not_a_word_and_a_count(words):
    from generator.config import DataConfig

    with pytest.raises(ValueError, match="caption_repeats maps words"):
        DataConfig(caption_repeats=words)


@pytest.mark.parametrize("buckets, weights, message", [
    ([[16, 64, 64]], [], "frames must be 1 \\+ 4k"),
    ([[69, 64, 64]], [], "frames must be 1 \\+ 4k"),
    ([[17, 60, 64]], [], "height must be a multiple of 8"),
    ([[17, 64, 16]], [], "width must be a multiple of 8 between 32 and 256"),
    ([[17, 64, 264]], [], "width must be a multiple of 8 between 32 and 256"),
    ([[17, 32, 96]], [], "aspect ratio"),
    ([[17, 64]], [], "\\[frames, height, width\\]"),
    ([[17, 64, 64], [17, 64, 64]], [], "twice"),
    ([[17, 64, 64], [9, 64, 64]], [1.0], "2 buckets"),
    ([[17, 64, 64]], [-1.0], "positive"),
    ([], [1.0], "without buckets"),
])
def test_bad_bucket_specs_are_clear_errors(tmp_path, buckets, weights, message):
    from generator.config import DiTTrainConfig, load_config

    p = tmp_path / "dit.yaml"
    p.write_text(f"data: {{buckets: {buckets}, bucket_weights: {weights}}}\n")
    with pytest.raises(ValueError, match=message):
        load_config(p, DiTTrainConfig)


def test_config_overrides_on_the_command_line(tmp_path):
    from generator.config import DiTTrainConfig, load_config
    from generator.train import main

    p = tmp_path / "dit.yaml"
    p.write_text("train: {lr: 0.001, run_dir: runs/a}\n")
    c = load_config(p, DiTTrainConfig, ["train.run_dir=runs/a_cd", "train.decay_start=500", "model.depth=2",
                                       "train.lr_schedule=cosine"])
    assert (c.train.run_dir, c.train.decay_start, c.model.depth, c.train.lr) == ("runs/a_cd", 500, 2, 0.001)
    assert c.train.lr_schedule == "cosine" and isinstance(c.train.decay_start, int)
    for bad, message in (("train.foo=1", "unknown TrainConfig keys: foo"), ("trainlr", "section.key=value"),
                         ("train=3", "section of keys"), ("train.lr.x=1", "not a section")):
        with pytest.raises(ValueError, match=message):
            load_config(p, DiTTrainConfig, [bad])
    with pytest.raises(ValueError, match="unknown TrainConfig keys: foo"):  # the entry point passes --set through
        main(["dit", "--config", str(p), "--set", "train.foo=1"])
    # values of the wrong kind stop at load time, named as typed; YAML 1.1's text "3e-4" is read as the number
    assert load_config(p, DiTTrainConfig, ["train.lr=3e-4", "train.ema_decay=1"]).train.lr == 3e-4
    assert isinstance(load_config(p, DiTTrainConfig, ["train.ema_decay=1"]).train.ema_decay, float)
    for bad, message in (("train.lr=abc", "train.lr must be a number, got 'abc'"),
                         ("train.timestep_shift=fast", "train.timestep_shift must be a number"),
                         ("train.max_steps=1.5", "train.max_steps must be a whole number"),
                         ("model.depth=true", "model.depth must be a whole number"),
                         ("train.compile=maybe", "train.compile must be true or false"),
                         ("train.run_dir=7", "train.run_dir must be text")):
        with pytest.raises(ValueError, match=message):
            load_config(p, DiTTrainConfig, [bad])


def test_config_files_that_are_not_sections_of_keys_stop_with_one_line(tmp_path):
    """A config that is not YAML, not text, not a mapping or not a file: one line naming the file, no traceback
    (`daas train` turns the ValueError into `error: ...` and exit 2)."""
    from generator.config import DiTTrainConfig, load_config

    cases = {"broken.yaml": ("train: {lr: [\n", "not valid YAML .* line 2"),
             "list.yaml": ("- 1\n- 2\n", "holds list, not sections"),
             "passwd.yaml": ("root:x:0:0:root:/root:/bin/bash\n", "holds str, not sections")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=f"config .*{name}: {message}"):
            load_config(tmp_path / name, DiTTrainConfig)
    (tmp_path / "png.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match="png.yaml: not a readable text file"):
        load_config(tmp_path / "png.yaml", DiTTrainConfig)
    with pytest.raises(ValueError, match="not a readable text file .IsADirectoryError"):
        load_config(tmp_path, DiTTrainConfig)
    (tmp_path / "ok.yaml").write_text("train: {lr: 0.001}\n")
    with pytest.raises(ValueError, match=r"override 'train.lr=\[1': the value is not valid YAML"):
        load_config(tmp_path / "ok.yaml", DiTTrainConfig, ["train.lr=[1"])
    assert load_config(tmp_path / "ok.yaml", DiTTrainConfig, ["train.lr=2e-4"]).train.lr == 2e-4
    cli = subprocess.run([sys.executable, "-m", "daas.cli", "train", "dit", "--config", str(tmp_path / "list.yaml")],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 2 and "holds list" in cli.stderr and "Traceback" not in cli.stderr


def test_bucket_shares_and_cache_names():
    from generator.config import DataConfig
    from generator.training import bucket_plan, latent_cache_name

    d = DataConfig(buckets=[[17, 64, 64], [9, 64, 64], [17, 48, 80]], bucket_weights=[2, 1, 1])
    assert [k for _, k, _ in bucket_plan(d, 101)] == [51, 25, 25]
    # training buckets take consecutive, disjoint train seeds; validation uses the same seeds in each bucket
    assert [o for _, _, o in bucket_plan(d, 101)] == [0, 51, 76]
    assert [(k, o) for _, k, o in bucket_plan(d, 8, per_bucket=True)] == [(8, 0)] * 3
    assert latent_cache_name(DataConfig(), "train", 100) == "latents_train_100.pt"  # old caches stay valid
    other = DataConfig(buckets=[[17, 64, 64], [9, 64, 64], [17, 80, 48]], bucket_weights=[2, 1, 1])
    names = {latent_cache_name(c, "train", 100) for c in (DataConfig(), d, other)}
    assert len(names) == 3  # another bucket list never reuses a cache


def test_old_single_bucket_latent_cache_still_loads(tmp_path):
    from generator.training import LatentDataset

    p = tmp_path / "latents_train_3.pt"
    torch.save({"latents": torch.zeros(3, 4, 2, 8, 8).half(), "captions": json.dumps([["a"], ["b"], ["c"]]),
                "seeds": torch.tensor([0, 1, 2])}, p)
    ds = LatentDataset(p, random_caption=False, legacy_bucket=(5, 32, 32))
    assert ds.sizes == [3] and ds.buckets == [(5, 32, 32)]
    item = ds[2]
    assert item["caption"] == "c" and item["seed"] == 2 and item["bucket"] == "5x32x32"
    assert item["latent"].dtype == torch.float32 and item["latent"].shape == (4, 2, 8, 8)


def test_latent_cache_of_another_latent_space_is_refused(tmp_path):
    from generator.config import DataConfig
    from generator.training import LatentDataset, _check_latents

    vae = VideoVAE(TINY_VAE)
    cfg = DataConfig(buckets=[[5, 32, 32]])
    for channels in (TINY_VAE.latent_channels, TINY_VAE.latent_channels + 4):
        p = tmp_path / f"latents_{channels}.pt"
        torch.save({"buckets": torch.tensor([[5, 32, 32]]), "latents": {"5x32x32": torch.zeros(2, channels, 2, 8, 8).half()},
                    "seeds": {"5x32x32": torch.tensor([0, 1])}, "captions": json.dumps({"5x32x32": [["a"], ["b"]]})}, p)
        if channels == TINY_VAE.latent_channels:
            _check_latents(LatentDataset(p), cfg, vae, p)  # the right space passes
        else:
            with pytest.raises(ValueError, match="delete it"):
                _check_latents(LatentDataset(p), cfg, vae, p)


def _tiny_vae_weights(tmp: Path, seed: int = 0) -> Path:
    from generator.weights import save_weights

    torch.manual_seed(seed)
    vae = VideoVAE(TINY_VAE)
    sd = dict(vae.state_dict(), latent_mean=0.1 * torch.arange(4.0), latent_std=1 + 0.25 * torch.arange(4.0))
    return save_weights(tmp / "vae.safetensors", sd, {"kind": "vae", "config": TINY_VAE.__dict__})


def _tiny_dit_yaml(tmp: Path, run: Path, family: str, train: str) -> Path:
    """A tiny DiT config on two buckets of one family's clips, over a tiny random VAE."""
    cfg = tmp / "dit.yaml"
    cfg.write_text(f"""
model: {{width: 32, depth: 2, heads: 2, mlp_ratio: 2.0}}
data: {{buckets: [[5, 32, 32], [5, 32, 48]], bucket_weights: [1, 1], latent_clips: 8, val_clips: 2,
        batch_size: 2, families: [{family}]}}
train: {{lr: 0.003, warmup_steps: 1, run_dir: {run}, {train}}}
vae_checkpoint: {_tiny_vae_weights(tmp)}
""")
    return cfg


def test_dit_trains_on_two_buckets_and_resumes(tmp_path):
    from generator.train import main
    from generator.training import LatentDataset
    from world import split_of

    run = tmp_path / "run"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", "max_steps: 4, checkpoint_every: 2, val_every: 2")
    main(["dit", "--config", str(cfg)])
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 4
    [train_file] = run.glob("latents_train_8_*.pt")
    [val_file] = run.glob("latents_val_2_*.pt")
    train, val = LatentDataset(train_file), LatentDataset(val_file)
    # each bucket rendered at its own size and encoded once: 5 frames -> 2 latent frames, sides / 4
    assert train.buckets == val.buckets == [(5, 32, 32), (5, 32, 48)]
    assert [tuple(x.shape) for x in train.latents] == [(4, 4, 2, 8, 8), (4, 4, 2, 8, 12)]
    assert all(x.dtype == torch.float16 for x in train.latents)
    seeds = [int(s) for x in train.seeds for s in x]
    assert len(set(seeds)) == 8 and {split_of(s) for s in seeds} == {"train"}
    assert {split_of(int(s)) for x in val.seeds for s in x} == {"val"}
    rows = [r for f in (run / "logs").glob("version_*/metrics.csv")
            for r in csv.DictReader(f.read_text().splitlines())]
    for key in ("val/loss", "val/loss_5x32x32", "val/loss_5x32x48"):  # validation over every bucket
        assert any(r.get(key) for r in rows), key
    mtime = train_file.stat().st_mtime_ns
    # resumes from last.ckpt, reuses the cache; a resumed run may weight clips by their captions
    main(["dit", "--config", str(cfg), "--max-steps", "6", "--set", "data.caption_repeats={rolls: 2}"])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 6 and blob["hyper_parameters"]["config"]["data"]["buckets"] == ((5, 32, 32), (5, 32, 48))
    assert blob["hyper_parameters"]["config"]["data"]["caption_repeats"] == {"rolls": 2}
    assert train_file.stat().st_mtime_ns == mtime


def test_a_run_exports_its_ema_weights_every_n_steps(tmp_path):
    """export_every: the shipped fp16 file of the EMA DiT is written during the run (a lent machine may be taken
    back before the end) and at its end, and the pipeline's loader reads it."""
    from generator.train import main
    from generator.weights import load_dit

    run, out = tmp_path / "run", tmp_path / "exported.safetensors"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", f"max_steps: 3, export_every: 2, export_to: {out}, val_every: 100")
    main(["dit", "--config", str(cfg)])
    dit, meta = load_dit(out)
    assert meta["step"] == 3 and dit.cfg.width == 32
    ema = {k[4:]: v for k, v in torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu",
                                           weights_only=False)["state_dict"].items() if k.startswith("ema.")}
    for k, v in dit.state_dict().items():
        assert torch.equal(v, ema[k].half().float()), k


def test_a_step_in_the_export_path_keeps_every_export(tmp_path):
    from generator.train import main
    from generator.weights import load_dit

    run = tmp_path / "run"
    out = tmp_path / "exp_{step}.safetensors"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", f"max_steps: 5, export_every: 2, export_to: '{out}', val_every: 100")
    main(["dit", "--config", str(cfg)])
    assert sorted(p.name for p in tmp_path.glob("exp_*")) == [f"exp_{k}.safetensors" for k in (2, 4, 5)]
    assert [load_dit(tmp_path / f"exp_{k}.safetensors")[1]["step"] for k in (2, 4, 5)] == [2, 4, 5]


def test_int8_weights_load_within_half_a_step_and_halve_the_file(tmp_path):
    """save_weights(int8=True): linear layers' weights in int8 with a scale per row, read back as floats within
    half a quantisation step; small and 1-D tensors stay fp16; the model computes nearly the same."""
    from generator.weights import INT8_SCALE, load_dit, quantize_int8, save_weights

    torch.manual_seed(0)
    dit = DiT(DiTConfig(width=64, depth=2, heads=2, mlp_ratio=2.0))
    for prm in dit.parameters():  # a trained model's weights are not zero (adaLN-Zero starts some at zero)
        prm.data.normal_(0, 0.05)
    meta = {"kind": "dit", "config": dit.cfg.__dict__}
    save_weights(tmp_path / "fp16.safetensors", dit.state_dict(), meta)
    save_weights(tmp_path / "int8.safetensors", dit.state_dict(), meta, int8=True)
    q = quantize_int8(dit.state_dict())
    quantised = [k for k in q if k.endswith(INT8_SCALE)]
    assert quantised and all(q[k[: -len(INT8_SCALE)]].dtype == torch.int8 for k in quantised)
    assert all(q[k].dtype != torch.int8 for k, v in dit.state_dict().items() if v.ndim < 2)
    assert (tmp_path / "int8.safetensors").stat().st_size < 0.6 * (tmp_path / "fp16.safetensors").stat().st_size
    back, m = load_dit(tmp_path / "int8.safetensors")
    assert m["int8_weights"] is True
    for k, v in dit.state_dict().items():
        w = back.state_dict()[k]
        step = v.abs().amax(1, keepdim=True) / 127 if k + INT8_SCALE in q else v.abs().clamp_min(1e-3) * 2 ** -10
        assert torch.all((w - v).abs() <= step * 0.5 + 1e-6), k
    x, text = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 3, 384)
    mask, t = torch.ones(1, 3, dtype=torch.bool), torch.tensor([0.5])
    with torch.no_grad():
        ref, out = dit(x, t, text, mask), back(x, t, text, mask)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_time_budget_sets_the_end_of_the_schedule_from_the_step_rate(monkeypatch):
    """TimeBudget: the measured step rate sets max_steps (and so where the cosine reaches its floor) to end as
    the budget runs out; past the budget the run stops."""
    from types import SimpleNamespace

    from generator import training

    clock = [100.0]
    monkeypatch.setattr(training.time, "time", lambda: clock[0])
    cfg = TrainConfig(max_steps=100_000, lr=1.0, warmup_steps=1, lr_schedule="cosine", min_lr_ratio=0.05)
    trainer = SimpleNamespace(global_step=0, should_stop=False, is_global_zero=False,
                              fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(max_steps=100_000)))
    budget = training.TimeBudget(60.0, cfg, every=10)
    schedule = training._schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), cfg)
    for step in range(1, 12):  # 2 steps a second from the first finished step on
        trainer.global_step = step
        budget.on_train_batch_end(trainer, None, None, None, step)
        clock[0] += 0.5
    # at step 11, 5 s in: 55 s left at 2 steps/s
    assert cfg.max_steps == trainer.fit_loop.epoch_loop.max_steps == 11 + 110
    assert schedule.lr_lambdas[0](121) == pytest.approx(0.05) and schedule.lr_lambdas[0](60) > 0.5
    clock[0] += 56
    trainer.global_step = 12
    budget.on_train_batch_end(trainer, None, None, None, 12)
    assert trainer.should_stop


@pytest.mark.parametrize("key", ["train.time_budget_s=-5", "train.export_every=-1", "train.time_budget_s=.nan",
                                 "train.moments_warmup_steps=-1"])
def test_negative_budget_or_export_interval_is_refused_before_any_work(tmp_path, key, monkeypatch, capsys):
    from daas.cli import main

    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["daas", "train", "dit", "--config", str(REPO / "configs" / "dit_vae16_gpu.yaml"),
                                      "--set", f"train.run_dir={run}", "--set", key])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "must be >= 0" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()  # nothing encoded, nothing written


def test_frame_conditioning_gives_leading_latent_frames():
    """A share frame_cond_prob of samples gets its first latent frame or first half given; the rest none."""
    from generator.config import DiTTrainConfig
    from generator.training import DiTModule

    torch.manual_seed(0)
    cfg = DiTTrainConfig(model=TINY_DIT)
    cfg.train.frame_cond_prob = 0.5
    x0 = torch.randn(400, 4, 5, 2, 2)
    _, mask = DiTModule(cfg)._frame_condition(x0)
    given = mask[:, 0, :, 0, 0]
    counts = given.sum(1)
    assert set(counts.tolist()) == {0.0, 1.0, 2.0}  # none, the first frame, or the first half (5 // 2)
    assert torch.equal(given, (torch.arange(5)[None] < counts[:, None]).float())  # always the leading frames
    assert 0.4 < (counts > 0).float().mean() < 0.6


def test_pipeline_generates_non_square_bucket_sizes():
    from generator.config import DataConfig
    from generator.pipeline import VideoPipeline
    from generator.text import get_text_encoder

    torch.manual_seed(0)
    stats = {"mean": torch.zeros(4), "std": torch.ones(4)}
    pipe = VideoPipeline(VideoVAE(TINY_VAE).eval(), stats, DiT(TINY_DIT).eval(), get_text_encoder(), {"dit": "tiny"})
    out = pipe("a red ball rolls to the left", num_frames=9, height=48, width=80, num_inference_steps=2)
    assert out.shape == (9, 48, 80, 3) and out.dtype == np.uint8
    tall = pipe("a red ball rolls to the left", num_frames=5, height=80, width=48, num_inference_steps=2,
                image=out[0][:, 16:64])  # image-to-video at a portrait size
    assert tall.shape == (5, 80, 48, 3)
    ext = pipe("a red ball rolls to the left", num_frames=9, height=48, width=80, num_inference_steps=2, video=out)
    assert ext.shape == (9 + 8, 48, 80, 3) and np.array_equal(ext[:9], out)
    # what a training bucket may be, the pipeline accepts (the extremes of the bucket rules)
    for b in ((1, 32, 32), (65, 256, 128), (17, 32, 64), (17, 256, 256)):
        DataConfig(buckets=[b])
        pipe.check(["a ball"], *b, 4, 4.0)


def test_object_maps_put_each_object_on_its_tokens():
    from generator.object_maps import ATTRIBUTES, latent_time_groups, object_maps
    from world import make_clip

    a = {name: k for k, name in enumerate(ATTRIBUTES)}
    clip = make_clip(3, family="fall")  # a red triangle and a purple ball
    m = object_maps(clip)
    assert m.shape == (len(ATTRIBUTES), 5, 8, 8) and m.min() >= 0 and m.max() <= 1
    named = {t.colour for t in clip.scene.tracks} | {t.cls for t in clip.scene.tracks}
    assert {name for name in ATTRIBUTES if m[a[name]].max() > 0} == named
    for t in clip.scene.tracks:  # each latent frame's map covers the object's centre in each of its frames
        for lt, frames in enumerate(latent_time_groups(17)):
            for f in frames:
                x, y = t.pos[f]
                assert m[a[t.colour], lt, int(y // 8), int(x // 8)] > 0 and m[a[t.cls], lt, int(y // 8), int(x // 8)] > 0
        assert m[a[t.colour]].sum() < 0.5 * m.shape[1] * 64  # and not the whole frame
    candle = make_clip(0, family="candle")  # the lit share of the candle's tokens goes out with its flame
    lit = object_maps(candle)[a["lit"]].sum(axis=(1, 2))
    assert lit[0] > 0 and lit[-1] == 0
    with pytest.raises(ValueError, match="not 1 \\+ a multiple of 4"):
        latent_time_groups(16)


def test_dit_trains_with_the_object_map_head_and_exports_without_it(tmp_path):
    from safetensors.torch import load_file

    from generator.object_maps import ATTRIBUTES
    from generator.train import main
    from generator.weights import export_dit

    run = tmp_path / "run"
    cfg = _tiny_dit_yaml(tmp_path, run, "fall",
                         "max_steps: 30, checkpoint_every: 30, val_every: 30, aux_weight: 1.0, aux_block: 0")
    main(["dit", "--config", str(cfg)])
    [maps_file] = run.glob("latents_train_8_*_objects.pt")
    maps = torch.load(maps_file, weights_only=True)
    assert maps["attributes"] == list(ATTRIBUTES)
    assert [tuple(x.shape) for x in maps["maps"].values()] == [(4, len(ATTRIBUTES), 2, 4, 4), (4, len(ATTRIBUTES), 2, 4, 6)]
    rows = [r for f in (run / "logs").glob("version_*/metrics.csv")
            for r in csv.DictReader(f.read_text().splitlines())]
    aux = [float(r["train/aux"]) for r in rows if r.get("train/aux")]
    assert len(aux) >= 2 and aux[-1] < 0.5 * aux[0]  # the head learns to read objects off the tokens
    ckpt = run / "checkpoints" / "last.ckpt"
    blob = torch.load(ckpt, weights_only=False)
    heads = [k for k in blob["state_dict"] if k.startswith("aux.")]
    dit = [k for k in blob["state_dict"] if k.startswith("dit.")]
    # the optimizer trains the head too (not only the DiT under a fixed random head)
    assert heads and sum(len(g["params"]) for g in blob["optimizer_states"][0]["param_groups"]) == len(dit) + len(heads)
    sd = load_file(export_dit(ckpt, tmp_path / "dit.safetensors"))
    assert sd and not any(k.startswith("aux") for k in sd)  # a training-only head: not shipped


@pytest.mark.parametrize("train, model, message", [
    ({"aux_weight": 1.0, "aux_block": 2}, {"depth": 2}, "not a block of a depth-2 DiT"),
    ({"aux_weight": 1.0, "aux_block": 0}, {"patch": (2, 2, 2)}, "patch of 1 x n x n"),
])
def test_object_map_head_settings_are_checked_when_the_config_loads(train, model, message):
    from generator.config import DiTTrainConfig, config_from_dict

    with pytest.raises(ValueError, match=message):
        config_from_dict(DiTTrainConfig, {"model": model, "train": train})


# ----------------------------------------------------------------------------------------------
# a high-noise expert (train.time_range, weights.save_dit_expert, pipeline.ExpertsByNoiseLevel)


def test_training_time_range_maps_the_usual_times_into_it():
    seen = []

    def model(x, t, *_):
        seen.append(t)
        return torch.zeros_like(x)

    x0 = torch.zeros(2000, 1, 1, 1, 1)
    for time_range in ((0.0, 1.0), (0.8, 1.0)):
        torch.manual_seed(0)
        flow_loss(model, x0, None, None, shift=3.0, time_range=time_range)
    full, high = seen
    assert torch.allclose(high, 0.8 + 0.2 * full)  # the same shifted draws, mapped linearly
    assert high.min() >= 0.8 and high.max() <= 1.0 and full.min() < 0.5
    assert TrainConfig(time_range=[0.8, 1.0]).time_range == [0.8, 1.0]
    for bad in ((0.9, 0.5), (0.5, 1.5), (0.2,), "high"):
        with pytest.raises(ValueError, match="time_range"):
            TrainConfig(time_range=bad)


def test_temporal_loss_term_charges_errors_that_change_between_latent_frames():
    torch.manual_seed(0)
    x0 = torch.randn(3, 4, 5, 2, 2)  # [B, C, latent frames, h, w]
    steady = torch.randn(3, 4, 1, 2, 2).expand_as(x0)  # the same error in every frame
    flicker = torch.randn_like(x0)

    def off_by(err):  # a model whose velocity is exactly `err` away from the truth
        return lambda xt, t, *_: (xt - (1 - t.view(-1, 1, 1, 1, 1)) * x0) / t.view(-1, 1, 1, 1, 1) - x0 + err

    t = torch.full((3,), 0.5)
    for err in (steady, flicker):
        plain = flow_loss(off_by(err), x0, None, None, t=t)
        assert plain.item() == pytest.approx(err.pow(2).mean().item(), rel=1e-4)
        weighted = flow_loss(off_by(err), x0, None, None, t=t, temporal_weight=2.0)
        jumps = (err[:, :, 1:] - err[:, :, :-1]).pow(2).mean().item()
        assert weighted.item() == pytest.approx(plain.item() + 2.0 * jumps, rel=1e-4)
    assert flow_loss(off_by(steady), x0, None, None, t=t, temporal_weight=2.0).item() == pytest.approx(
        steady.pow(2).mean().item(), rel=1e-4)  # a steady error costs no more
    # given frames (conditioning) are left out of both terms: only jumps between generated frames count
    cmask = torch.zeros(3, 1, 5, 1, 1)
    cmask[:, :, :2] = 1
    err = flicker.clone()
    err[:, :, :2] = 100.0  # whatever the model says at given frames
    got = flow_loss(off_by(err), x0, None, None, cond=torch.zeros_like(x0), cond_mask=cmask, t=t, temporal_weight=1.0)
    gen = err[:, :, 2:]
    want = gen.pow(2).mean() + (gen[:, :, 1:] - gen[:, :, :-1]).pow(2).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    assert TrainConfig(temporal_loss_weight=0.5).temporal_loss_weight == 0.5
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="temporal_loss_weight"):
            TrainConfig(temporal_loss_weight=bad)


def test_decoded_loss_is_zero_for_the_true_velocity_and_weighs_errors_by_the_decoder():
    from generator.flow import decoded_loss

    torch.manual_seed(0)
    x0, noise = torch.randn(2, 4, 3, 2, 2), torch.randn(2, 4, 3, 2, 2)
    t = torch.tensor([0.3, 0.8])
    tt = t.view(-1, 1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * noise
    weights = torch.tensor([10.0, 1.0, 1.0, 1.0]).view(1, 4, 1, 1, 1)  # a decoder that feels channel 0 ten times

    def decode(z):
        return (z * weights).sum(1, keepdim=True)

    truth = noise - x0
    assert decoded_loss(decode, xt, t, truth, x0).item() == pytest.approx(0.0, abs=1e-10)
    err = torch.zeros_like(x0)
    err[:, 0] = 0.1  # the same latent error, in a channel the decoder feels and in one it barely does
    loud = decoded_loss(decode, xt, t, truth + err, x0).item()
    quiet = decoded_loss(decode, xt, t, truth + err.roll(1, dims=1), x0).item()
    assert loud == pytest.approx(100 * quiet, rel=1e-4) and quiet > 0
    # x0_hat = x_t - t v, so a velocity error e costs (t e)^2 in a linear decoder
    want = ((tt * decode(err)) ** 2).mean().item()
    assert loud == pytest.approx(want, rel=1e-4)
    # given (conditioning) frames come from x0 whatever the model says there
    cmask = torch.zeros(2, 1, 3, 1, 1)
    cmask[:, :, 0] = 1
    wild = truth.clone()
    wild[:, :, 0] += 50.0
    assert decoded_loss(decode, xt, t, wild, x0, cmask).item() == pytest.approx(0.0, abs=1e-8)
    # gradients reach the prediction, not the (frozen) target
    pred = (truth + err).requires_grad_(True)
    decoded_loss(decode, xt, t, pred, x0).backward()
    assert pred.grad.abs().sum() > 0
    for bad in ({"decoded_loss_weight": -1.0}, {"decoded_loss_weight": float("nan")}, {"decoded_loss_clips": 0}):
        with pytest.raises(ValueError, match="decoded_loss"):
            TrainConfig(**bad)


def test_dit_trains_with_the_decoded_loss_through_the_frozen_decoder(tmp_path):
    from generator.train import main

    run = tmp_path / "run"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", "max_steps: 10, decoded_loss_weight: 1.0, decoded_loss_clips: 1")
    main(["dit", "--config", str(cfg)])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 10  # (logged every 10 steps)
    assert all(k.startswith(("dit.", "ema.")) for k in blob["state_dict"])  # the decoder is not saved
    rows = [r for f in (run / "logs").glob("version_*/metrics.csv")
            for r in csv.DictReader(f.read_text().splitlines())]
    decoded = [float(r["train/decoded"]) for r in rows if r.get("train/decoded")]
    assert decoded and all(math.isfinite(v) and v > 0 for v in decoded)


EXPERT_DIT = DiTConfig(width=64, depth=2, heads=2, mlp_ratio=2.0)  # wide enough for int8 and low-rank layers


def _tiny_base_and_expert(tmp: Path, rank: int) -> tuple[Path, dict]:
    """A small shipped-style DiT file (int8 linear weights) and a fine-tune of it whose weight changes have `rank`."""
    from generator.weights import load_dit, save_weights

    torch.manual_seed(0)
    dit = DiT(EXPERT_DIT)
    for prm in dit.parameters():
        prm.data.normal_(0, 0.05)
    base = save_weights(tmp / "dit.safetensors", dit.state_dict(), {"kind": "dit", "config": EXPERT_DIT.__dict__},
                        int8=True)
    expert = {}
    for k, v in load_dit(base)[0].state_dict().items():  # the base as it loads, then fine-tuned
        if v.ndim == 2 and v.numel() >= 4096:
            v = v + 0.02 * torch.randn(v.shape[0], rank) @ torch.randn(rank, v.shape[1]) / rank ** 0.5
        else:
            v = v + 0.01 * torch.randn_like(v)
        expert[k] = v
    return base, expert


def test_expert_file_rebuilds_the_finetuned_dit_on_its_base(tmp_path):
    from generator.weights import file_sha256, load_dit, load_dit_expert, save_dit_expert

    base_file, tuned = _tiny_base_and_expert(tmp_path, rank=3)
    base, _ = load_dit(base_file)
    sha = file_sha256(base_file)
    exact = save_dit_expert(tmp_path / "expert.safetensors", tuned, base_file, (0.8, 1.0), rank=3)
    expert, meta = load_dit_expert(exact, base, sha)
    assert meta["time_range"] == [0.8, 1.0] and meta["base_sha256"] == sha and meta["delta_energy_kept_min"] > 0.999
    for k, v in expert.state_dict().items():  # fp16 storage of the factors and of the whole tensors
        assert torch.allclose(v, tuned[k], atol=2e-3), k
    assert any(not torch.equal(v, base.state_dict()[k]) for k, v in expert.state_dict().items())
    assert exact.stat().st_size < 0.8 * base_file.stat().st_size  # smaller than the int8 base itself
    cut = save_dit_expert(tmp_path / "cut.safetensors", tuned, base_file, (0.8, 1.0), rank=1)
    cut_expert, cut_meta = load_dit_expert(cut, base, sha)
    assert cut_meta["delta_energy_kept_min"] < 0.9  # rank 1 of rank-3 changes: approximate, and it says so
    key = "blocks.0.mlp.0.weight"
    err_cut = (cut_expert.state_dict()[key] - tuned[key]).norm()
    assert err_cut > 10 * (expert.state_dict()[key] - tuned[key]).norm()
    with pytest.raises(DaasError, match="another DiT"):
        load_dit_expert(exact, base, "0" * 64)
    with pytest.raises(DaasError, match="not a DiT expert"):
        load_dit_expert(base_file, base, sha)
    with pytest.raises(DaasError, match="tensors"):
        save_dit_expert(tmp_path / "bad.safetensors", {"x": torch.zeros(2)}, base_file, (0.8, 1.0))


def test_pipeline_hands_the_high_noise_steps_to_its_expert(tmp_path):
    from generator import load_pipeline
    from generator.pipeline import ExpertsByNoiseLevel
    from generator.weights import save_dit_expert, save_weights

    vae_file = _tiny_vae_weights(tmp_path)
    base_file, tuned = _tiny_base_and_expert(tmp_path, rank=2)
    expert_file = save_dit_expert(tmp_path / "expert.safetensors", tuned, base_file, (0.8, 1.0), rank=2)
    assert load_pipeline(base_file, vae_file).expert is None  # another DiT than the shipped one: no expert
    pipe = load_pipeline(base_file, vae_file, precision="32-true", expert=expert_file)
    assert pipe.expert is not None and pipe.expert_above == 0.8 and pipe.checkpoint["expert"] == "expert.safetensors"
    calls = []
    for name, m in (("dit", pipe.dit), ("expert", pipe.expert)):
        m.register_forward_hook(lambda mod, args, out, name=name: calls.append((name, float(args[1][0]))))
    with_expert = pipe("a red ball falls", num_frames=5, height=32, width=32, num_inference_steps=4, seed=0,
                       restarts=0, sampler="heun")
    # 4 Heun steps at shift 3 evaluate at t = 1, .9, .9, .75, .75, .5, .5: the expert takes those above 0.8
    assert [n for n, t in calls] == ["expert"] * 3 + ["dit"] * 4
    assert all((n == "expert") == (t > 0.8) for n, t in calls)
    alone = load_pipeline(base_file, vae_file, precision="32-true", expert=False)
    assert not np.array_equal(with_expert, alone("a red ball falls", num_frames=5, height=32, width=32,
                                                  num_inference_steps=4, seed=0, restarts=0, sampler="heun"))
    router = ExpertsByNoiseLevel(pipe.dit, pipe.expert, 0.8)
    assert router.cfg is pipe.dit.cfg
    other = save_weights(tmp_path / "other.safetensors", DiT(EXPERT_DIT).state_dict(),
                         {"kind": "dit", "config": EXPERT_DIT.__dict__})
    with pytest.raises(DaasError, match="another DiT"):
        load_pipeline(other, vae_file, expert=expert_file)
    with pytest.raises(DaasError, match="not found"):
        load_pipeline(base_file, vae_file, expert=tmp_path / "missing.safetensors")


def test_loss_curve_plot_joins_resumes_and_reads_its_own_csv_back(tmp_path):
    """scripts/plot_dit_training.py: a resumed run's second metrics file replaces the steps it repeats, and a
    stage read back from the script's own CSV keeps its points (the lineage drawn again without its runs/)."""
    cols = ["epoch", "step", "train/loss", "val/loss"]

    def metrics(path, rows):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)

    metrics(tmp_path / "v0.csv", [[0, 9, 1.0, ""], [0, 19, 0.9, ""], [0, 29, 0.8, ""], [0, 29, "", 0.5]])
    metrics(tmp_path / "v1.csv", [[0, 19, 0.7, ""], [0, 39, 0.6, ""], [0, 39, "", 0.4]])
    script = Path(__file__).resolve().parents[1] / "scripts" / "plot_dit_training.py"
    first = tmp_path / "a" / "curves.png"
    joined = f"{tmp_path / 'v0.csv'}+{tmp_path / 'v1.csv'}"
    subprocess.run([sys.executable, str(script), "--out", str(first), "--smooth", "1",
                    "--stage", f"run={joined}:128:0"], check=True, capture_output=True)
    rows = list(csv.DictReader(first.with_suffix(".csv").read_text().splitlines()))
    assert [(r["kind"], int(r["step"]), float(r["loss"])) for r in rows] == [
        ("train", 9, 1.0), ("train", 19, 0.7), ("train", 39, 0.6), ("val", 39, 0.4)]
    again = tmp_path / "b" / "curves.png"
    subprocess.run([sys.executable, str(script), "--out", str(again), "--smooth", "1",
                    "--stage", f"run={first.with_suffix('.csv')}:128:0",
                    "--stage", f"next={tmp_path / 'v1.csv'}:128:5120"], check=True, capture_output=True)
    back = list(csv.DictReader(again.with_suffix(".csv").read_text().splitlines()))
    assert [r for r in back if r["stage"] == "run"] == rows
    assert len([r for r in back if r["stage"] == "next"]) == 3
    bad = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "c.png"),
                          "--stage", f"missing={first.with_suffix('.csv')}:128:0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "no loss" in bad.stderr and "Traceback" not in bad.stderr


def test_loss_curve_stages_never_share_a_style():
    """The lineage has more stages than matplotlib has colours: past 10 the colours come back with another line and
    marker, so a stage is never told from another by the legend's order alone."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "plot_dit_training.py"
    spec = importlib.util.spec_from_file_location("plot_dit_training", path)
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    styles = [tuple(sorted(plot.stage_style(i).items())) for i in range(30)]
    assert len(set(styles)) == 30
    assert plot.stage_style(0)["color"] == plot.stage_style(10)["color"] != plot.stage_style(1)["color"]


def _tiny_pipeline():
    from generator.pipeline import VideoPipeline
    from generator.text import get_text_encoder

    torch.manual_seed(0)
    stats = {"mean": 0.1 * torch.arange(4.0), "std": 1 + 0.25 * torch.arange(4.0)}
    return VideoPipeline(VideoVAE(TINY_VAE).eval(), stats, DiT(TINY_DIT).eval(), get_text_encoder(),
                         {"dit": "tiny", "dit_sha256": "d" * 64, "vae_sha256": "v" * 64}, precision="32-true")


def test_decoder_pairs_are_the_dits_latents_of_train_clips(tmp_path):
    from generator.decoder_pairs import FOCUS, DecoderPairs, make_decoder_pairs
    from world import make_clip, split_of
    from world.dataset import to_tensor

    pipe = _tiny_pipeline()
    a = make_decoder_pairs(tmp_path / "a.pt", 4, pipe, batch_size=2, log=None)
    b = make_decoder_pairs(tmp_path / "b.pt", 4, pipe, batch_size=2, log=None)
    blob_a, blob_b = (torch.load(p, weights_only=True) for p in (a, b))
    assert torch.equal(blob_a["latents"], blob_b["latents"])  # reproducible per seed
    z, seeds = blob_a["latents"], blob_a["seeds"].tolist()
    assert z.shape == (4, 4, 5, 16, 16) and z.dtype == torch.float16 and len(set(seeds)) == 4
    assert all(split_of(s) == "train" and s >= 600_000 for s in seeds)
    assert sum(make_clip(s).spec.family in FOCUS for s in seeds) >= 2  # every second one at least
    assert all(0.4 < t < 0.71 for t in blob_a["starts"].tolist())
    # the DiT moved the latents away from the clips' own (normalised back: the file holds VAE units)
    clean = torch.cat([pipe.encode(make_clip(s).frames) for s in seeds]) * pipe.std + pipe.mean
    assert (z.float() - clean).abs().mean() > 0.01
    ds = DecoderPairs(a)
    item = ds[1]
    assert torch.equal(item["video"], to_tensor(make_clip(seeds[1]).frames)) and torch.equal(item["latent"], z[1].float())
    with pytest.raises(ValueError, match="not found"):
        DecoderPairs(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pairs file")
    with pytest.raises(ValueError, match="unreadable"):
        DecoderPairs(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="grid time"):
        make_decoder_pairs(tmp_path / "c.pt", 2, pipe, starts=(0.41, 0.42), log=None)


def test_decoder_finetune_on_dit_pairs_decodes_the_given_latents(tmp_path):
    from generator.config import DataConfig, VAETrainConfig
    from generator.decoder_pairs import make_decoder_pairs
    from generator.train import main
    from generator.training import VAEModule, WorldDataModule

    pairs = make_decoder_pairs(tmp_path / "pairs.pt", 2, _tiny_pipeline(), batch_size=2, log=None)
    data = DataConfig(n_frames=17, batch_size=2, train_clips=200, dit_pairs=str(pairs), dit_pairs_share=0.5,
                      families=("roll",))
    loader = WorldDataModule(data).train_dataloader()
    ds = loader.dataset
    items = [ds[i] for i in range(200)]
    assert 0.35 < np.mean([it["has_latent"] for it in items]) < 0.65
    assert all(torch.equal(it["latent"], ds.pairs[ds.pairs.seeds.index(it["seed"])]["latent"])
               for it in items if it["has_latent"])
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 3, 17, 64, 64) and batch["latent"].shape == (2, 4, 5, 16, 16)
    # a training step decodes the given latent for a pair's clip and the clip's own latent for a world clip
    module = VAEModule(VAETrainConfig(model=TINY_VAE, data=data, train=TrainConfig(train_encoder=False)))
    decoded = []
    real_decode = module.vae.decode
    module.vae.decode = lambda z: decoded.append(z) or real_decode(z)
    module.log_dict = lambda *a, **k: None
    x = torch.stack([ds.pairs[0]["video"], ds.world[0]["video"]])
    given = ds.pairs[0]["latent"]
    torch.manual_seed(5)
    own = module._latents(x)[0][1]  # a sample of the world clip's own posterior
    torch.manual_seed(5)
    loss = module.training_step({"video": x, "latent": torch.stack([given, torch.zeros_like(given)]),
                                 "has_latent": torch.tensor([True, False])}, 0)
    assert torch.isfinite(loss) and torch.equal(decoded[-1][0], given) and torch.equal(decoded[-1][1], own)
    with pytest.raises(ValueError, match="decoder-only"):
        VAETrainConfig(model=TINY_VAE, data=data)
    with pytest.raises(ValueError, match="whole clips"):
        DataConfig(dit_pairs=str(pairs), crop_frames=9)
    with pytest.raises(ValueError, match="frames, height, width"):
        WorldDataModule(DataConfig(n_frames=9, dit_pairs=str(pairs))).train_dataloader()
    # and through `daas train vae`: a short decoder-only run on them
    cfg = tmp_path / "vae.yaml"
    cfg.write_text(f"""
model: {{channels: [8, 16], latent_channels: 4}}
data: {{batch_size: 2, train_clips: 16, val_clips: 2, families: [roll], dit_pairs: {pairs}, dit_pairs_share: 0.5}}
train: {{max_steps: 2, lr: 0.003, warmup_steps: 1, checkpoint_every: 2, val_every: 1000, run_dir: {tmp_path / 'run'},
        train_encoder: false, decoder_noise: 0.5}}
""")
    main(["vae", "--config", str(cfg)])
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    # a missing pairs file fails before the run's folder is made
    from generator.config import load_config
    from generator.training import train_vae

    bad = load_config(cfg, VAETrainConfig, [f"data.dit_pairs={tmp_path / 'gone.pt'}",
                                            f"train.run_dir={tmp_path / 'run2'}"])
    with pytest.raises(ValueError, match="not found"):
        train_vae(bad)
    assert not (tmp_path / "run2").exists()


def test_guidance_distillation_loss_is_zero_for_the_guided_velocity_and_skips_given_frames():
    from generator.flow import guidance_distillation_loss

    torch.manual_seed(0)
    teacher = DiT(DiTConfig(width=32, depth=1, heads=2, mlp_ratio=2.0))
    for prm in teacher.parameters():  # random, not zero-initialised: conditional and unconditional differ
        prm.data.normal_(0, 0.1)
    x0 = torch.randn(3, 4, 2, 4, 4)
    text, null = torch.randn(3, 5, 384), torch.zeros(3, 5, 384)
    mask, null_mask = torch.ones(3, 5, dtype=torch.bool), torch.ones(3, 5, dtype=torch.bool)
    w = torch.tensor([1.0, 2.5, 6.0])
    t = torch.tensor([0.2, 0.6, 0.95])

    def exact(x, tt, tx, m, c, cm, guidance):  # the student that has learnt CFG exactly
        v_c, v_u = teacher(x, tt, tx, m, c, cm), teacher(x, tt, null, null_mask, c, cm)
        return v_u + guidance.view(-1, 1, 1, 1, 1) * (v_c - v_u)

    def cond_only(x, tt, tx, m, c, cm, guidance):  # an undistilled student: the teacher's conditional velocity
        return teacher(x, tt, tx, m, c, cm)

    args = (teacher, x0, text, mask, null, null_mask, w)
    assert guidance_distillation_loss(exact, *args, t=t).item() == pytest.approx(0.0, abs=1e-10)
    miss = guidance_distillation_loss(cond_only, *args, t=t).item()
    assert miss > 1e-4
    # at w = 1 the guided velocity is the conditional one
    ones = torch.ones(3)
    assert guidance_distillation_loss(cond_only, teacher, x0, text, mask, null, null_mask, ones,
                                      t=t).item() == pytest.approx(0.0, abs=1e-10)
    # the error grows with the scale: (w - 1)^2 times the guidance delta
    big = guidance_distillation_loss(cond_only, teacher, x0, text, mask, null, null_mask, 2 * w - 1, t=t).item()
    assert big > 3 * miss
    # with its reference (validation's error of no distillation): the conditional velocity's error, from the same
    # single teacher evaluation
    noise, calls = torch.randn_like(x0), []

    def counted(*a):
        calls.append(a[0].shape[0])
        return teacher(*a)

    loss, ref = guidance_distillation_loss(exact, counted, *args[1:], t=t, noise=noise, with_reference=True)
    assert calls == [6] and loss.item() == pytest.approx(0.0, abs=1e-10)
    assert ref.item() == pytest.approx(guidance_distillation_loss(cond_only, *args, t=t, noise=noise).item(), rel=1e-5)
    # latent frames given as conditioning cost nothing, whatever the student says there
    cond = torch.randn_like(x0)
    cmask = torch.zeros(3, 1, 2, 1, 1)
    cmask[:, :, 0] = 1

    def wild_given(x, tt, tx, m, c, cm, guidance):
        return exact(x, tt, tx, m, c, cm, guidance) + 100.0 * cm

    assert guidance_distillation_loss(wild_given, *args, cond=cond, cond_mask=cmask,
                                      t=t).item() == pytest.approx(0.0, abs=1e-8)
    # gradients reach the student only, its guidance head included
    student = DiT(DiTConfig(width=32, depth=1, heads=2, mlp_ratio=2.0, guidance_head=True))
    for name, prm in student.named_parameters():  # a trained body (the adaLN-Zero start passes no gradient back)
        if not name.startswith("guidance_final"):
            prm.data.normal_(0, 0.1)
    guidance_distillation_loss(student, *args, t=t).backward()
    assert student.guidance_final.linear.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


TINY_TEACHER = DiTConfig(width=32, depth=2, heads=2, mlp_ratio=2.0)


def _random_dit_file(path: Path, cfg: DiTConfig) -> Path:
    """A DiT file of random weights, none zero (unlike a fresh DiT's adaLN-Zero start): its guidance does something."""
    from generator.weights import save_weights

    torch.manual_seed(0)
    dit = DiT(cfg)
    for prm in dit.parameters():
        prm.data.normal_(0, 0.05)
    return save_weights(path, dit.state_dict(), {"kind": "dit", "config": cfg.__dict__})


def test_guidance_head_starts_as_the_undistilled_dit_and_is_linear_in_the_scale(tmp_path):
    from generator.weights import dit_init_checkpoint

    cfg = TINY_TEACHER
    f = _random_dit_file(tmp_path / "dit.safetensors", cfg)
    grown_cfg = DiTConfig(**{**cfg.__dict__, "guidance_head": True})
    blob = torch.load(dit_init_checkpoint(f, tmp_path / "init.ckpt", model=grown_cfg), weights_only=False)
    assert sorted(blob["daas"]["fresh"]) == ["guidance_final.adaLN.1.bias", "guidance_final.adaLN.1.weight",
                                             "guidance_final.linear.bias", "guidance_final.linear.weight"]
    student = DiT(grown_cfg)
    student.load_state_dict({k[4:]: v for k, v in blob["state_dict"].items() if k.startswith("dit.")})
    base = DiT(cfg)
    base.load_state_dict({k: v.float() for k, v in student.state_dict().items() if not k.startswith("guidance_")})
    x, t = torch.randn(2, 4, 2, 4, 4), torch.tensor([0.3, 0.9])
    text, m = torch.randn(2, 3, 384), torch.ones(2, 3, dtype=torch.bool)
    want = base(x, t, text, m)
    for w in (None, torch.tensor([1.0, 1.0]), torch.tensor([4.0, 6.0])):  # the zero head adds nothing yet
        assert torch.allclose(student(x, t, text, m, guidance=w), want, atol=1e-6)
    for prm in student.guidance_final.parameters():  # once trained, the scale matters, linearly
        prm.data.normal_(0, 0.1)
    v = {w: student(x, t, text, m, guidance=torch.full((2,), w)) for w in (1.0, 2.0, 5.0)}
    assert torch.allclose(v[1.0], want, atol=1e-6) and not torch.allclose(v[2.0], want, atol=1e-3)
    assert torch.allclose(v[5.0] - v[1.0], 4 * (v[2.0] - v[1.0]), atol=1e-5)
    with pytest.raises(ValueError, match="no guidance head"):
        base(x, t, text, m, guidance=torch.tensor([4.0, 4.0]))


def test_distilled_guidance_sampler_needs_one_evaluation_where_cfg_needs_two():
    # a "teacher" whose velocity is the text embedding's first entry, and a student that returns its guided form
    def teacher(x, t, text, *_):
        return text[:, :1, :1, None, None].expand_as(x).clone() + 0.1 * x

    seen = []

    def student(x, t, text, mask, c, cm, guidance=None):
        seen.append(x.shape[0])
        w = 1.0 if guidance is None else guidance.view(-1, 1, 1, 1, 1)
        null = torch.zeros_like(text)
        return teacher(x, t, null) + w * (teacher(x, t, text) - teacher(x, t, null))

    x = torch.randn(2, 1, 1, 1, 1)
    cond, null = torch.ones(2, 1, 384), torch.zeros(1, 1, 384)
    m = torch.ones(2, 1, dtype=torch.bool)
    kw = dict(steps=4, guidance=3.0, method="heun", guidance_interval=(0.3, 0.8))
    cfg = sample(teacher, x, cond, m, null, m[:1], **kw)
    got = sample(student, x, cond, m, null, m[:1], distilled_guidance=True, **kw)
    assert torch.allclose(got, cfg, atol=1e-6)
    assert seen == [2] * 7  # every evaluation one batch of the two clips: none doubled for guidance


def test_dit_distils_a_teachers_guidance_and_the_pipeline_uses_it(tmp_path):
    from generator import load_pipeline
    from generator.train import main
    from generator.weights import file_sha256, load_dit

    teacher_file = _random_dit_file(tmp_path / "teacher.safetensors", TINY_TEACHER)
    run = tmp_path / "run"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", f"max_steps: 6, val_every: 3, export_every: 6, "
                                                f"distill_from: {teacher_file}, distill_guidance: [1.0, 5.0]")
    text = cfg.read_text().replace("mlp_ratio: 2.0}", "mlp_ratio: 2.0, guidance_head: true}")
    cfg.write_text(text)
    main(["dit", "--config", str(cfg)])
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 6
    keys = blob["state_dict"].keys()
    assert all(k.startswith(("dit.", "ema.")) for k in keys) and "dit.guidance_final.linear.weight" in keys  # no teacher
    rows = [r for f in (run / "logs").glob("version_*/metrics.csv")
            for r in csv.DictReader(f.read_text().splitlines())]
    rel = [float(r["val/distill_rel"]) for r in rows if r.get("val/distill_rel")]
    assert rel and all(math.isfinite(v) and v > 0 for v in rel)
    export = run / "export.safetensors"
    dit, meta = load_dit(export)
    assert dit.cfg.guidance_head
    assert meta["guidance_distilled"] == {"teacher": "teacher.safetensors", "teacher_sha256": file_sha256(teacher_file),
                                          "guidance_range": [1.0, 5.0]}
    pipe = load_pipeline(export, tmp_path / "vae.safetensors", precision="32-true")
    assert pipe.checkpoint["guidance_distilled_from"] == file_sha256(teacher_file)
    batches = []
    pipe.dit.register_forward_hook(lambda mod, args, out: batches.append(args[0].shape[0]))
    kw = dict(num_frames=5, height=32, width=32, num_inference_steps=4, seed=0, restarts=0, sampler="heun")
    assert pipe.embeds_guidance(4.0) and pipe.embeds_guidance(9.0) and not pipe.embeds_guidance(4.0, "a blue cube")
    pipe("a red ball rolls", guidance_scale=4.0, guidance_interval=(0.0, 1.0), **kw)
    assert batches == [1] * 7  # guided at every step, one clip per evaluation
    batches.clear()
    pipe("a red ball rolls", guidance_scale=4.0, guidance_interval=(0.0, 1.0), negative_prompt="a blue cube", **kw)
    assert batches == [2] * 7  # the head knows only the empty prompt: a negative prompt is guided by CFG
    # a student given as the teacher of another is refused before anything is written
    cfg.write_text(text.replace(str(teacher_file), str(export)).replace(f"run_dir: {run}", f"run_dir: {run}2"))
    with pytest.raises(DaasError, match="without a guidance head"):
        main(["dit", "--config", str(cfg)])
    assert not Path(f"{run}2").exists()


def test_distillation_config_is_checked():
    from generator.config import DiTTrainConfig

    for bad in ([0.5, 4.0], [4.0, 4.0], [1.0, 40.0], "x"):
        with pytest.raises(ValueError, match="distill_guidance"):
            TrainConfig(distill_guidance=bad)
    with pytest.raises(ValueError, match="guidance_head"):
        DiTTrainConfig(train=TrainConfig(distill_from="t.safetensors"))
    with pytest.raises(ValueError, match="replaces the flow loss"):
        DiTTrainConfig(model=DiTConfig(guidance_head=True),
                       train=TrainConfig(distill_from="t.safetensors", decoded_loss_weight=1.0))


def test_guidance_reuse_evaluates_the_unconditional_batch_once_per_time():
    # velocity: text entry + x (conditional 1 + x, unconditional x): the guidance direction is 1 wherever x is
    seen = []

    def model(x, t, text, *_):
        seen.append((x.shape[0], round(float(t[0]), 3)))
        return text[:, :1, :1, None, None].expand_as(x) + x

    x = torch.zeros(1, 1, 1, 1, 1)
    cond, null = torch.ones(1, 1, 384), torch.zeros(1, 1, 384)
    m = torch.ones(1, 1, dtype=torch.bool)
    kw = dict(steps=4, guidance=3.0, method="heun", guidance_interval=(0.3, 1.0))
    full = sample(model, x, cond, m, null, m, **kw)
    assert [b for b, _ in seen] == [2, 2, 2, 2, 2, 1, 1]
    seen.clear()
    reused = sample(model, x, cond, m, null, m, guidance_reuse=True, **kw)
    # each predictor at the time of the previous corrector (.75, .5) evaluates the conditional batch alone
    assert seen == [(2, 1.0), (2, 0.75), (1, 0.75), (2, 0.5), (1, 0.5), (1, 0.25), (1, 0.25)]
    assert torch.allclose(reused, full, atol=1e-6)  # the direction is the same everywhere here: nothing changes
    seen.clear()
    # a restart's fresh noise starts anew: the first evaluation after the jump evaluates both batches
    sample(model, x, cond, m, null, m, guidance_reuse=True, restart=(0.5, 0.75),
           restart_noise=[torch.zeros_like(x)], **kw)
    assert seen == [(2, 1.0), (2, 0.75), (1, 0.75), (2, 0.5), (2, 0.75), (2, 0.5), (1, 0.5), (1, 0.25), (1, 0.25)]


def test_pipeline_encodes_the_unconditional_prompt_once_per_string():
    """The prompt guidance pushes away from (empty, or a negative prompt) is encoded once per string and kept, and a
    call with it kept makes the frames of a call that encoded it."""
    pipe = _tiny_pipeline()
    kw = dict(num_frames=5, height=32, width=32, num_inference_steps=2, seed=3, restarts=0)
    first = pipe("a red ball rolls", **kw)
    encoded, real = [], pipe.text

    def counted(prompts):
        encoded.append(list(prompts))
        return real(prompts)

    pipe.text = counted
    again = pipe("a red ball rolls", **kw)
    pipe("a blue cube falls", negative_prompt="a green ball", **kw)
    pipe("a blue cube falls", negative_prompt="a green ball", **kw)
    assert encoded == [["a red ball rolls"], ["a blue cube falls"], ["a green ball"], ["a blue cube falls"]]
    assert np.array_equal(first, again)
    pipe.text, pipe._unconditional = real, {}
    assert np.array_equal(pipe("a red ball rolls", **kw), first)


@pytest.mark.slow
def test_dit_guidance_distillation_runs_under_ddp_with_two_cpu_processes(tmp_path):
    """The DiT's training path that a lent multi-GPU machine would take (What next 1 and 5 of the model card), with
    gloo on 2 CPU processes: the latent cache written once, each rank its own teacher, none of it in the checkpoint."""
    from generator.weights import load_dit

    teacher_file = _random_dit_file(tmp_path / "teacher.safetensors", TINY_TEACHER)
    run = tmp_path / "run"
    cfg = _tiny_dit_yaml(tmp_path, run, "roll", f"max_steps: 3, val_every: 3, export_every: 3, strategy: ddp, "
                                                f"devices: 2, threads: 1, distill_from: {teacher_file}, "
                                                f"distill_guidance: [1.0, 5.0]")
    cfg.write_text(cfg.read_text().replace("mlp_ratio: 2.0}", "mlp_ratio: 2.0, guidance_head: true}"))
    r = subprocess.run([sys.executable, "-m", "generator.train", "dit", "--config", str(cfg)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in r.stderr + r.stdout
    blob = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert blob["global_step"] == 3 and not any(k.startswith("_teacher") for k in blob["state_dict"])
    assert len(list(run.glob("latents_train_8_*.pt"))) == 1
    rows = [r for f in (run / "logs").glob("version_*/metrics.csv") for r in csv.DictReader(f.read_text().splitlines())]
    assert any(r.get("val/distill_rel") for r in rows)
    dit, meta = load_dit(run / "export.safetensors")
    assert dit.cfg.guidance_head and meta["guidance_distilled"]["guidance_range"] == [1.0, 5.0]
