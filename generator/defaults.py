"""Default sampling settings of the pipeline and `daas generate` (no torch import: the CLI reads them at start).

Heun with 8 steps costs the DiT 15 evaluations (its last step is Euler), as many as Euler with 16, and measured
better on the shipped checkpoint (held-out prompts, CFG 4: the figures are in generator/weights/MODEL_CARD.md).
"""
DEFAULT_SAMPLER = "heun"
DEFAULT_STEPS = 8
DEFAULT_GUIDANCE = 4.0
DEFAULT_SHIFT = 3.0  # timestep shift (> 1: more of the steps at high noise, as SD3 does): the shipped 16-channel DiT
# was trained with shift 3 and samples best with it (the 4-channel DiT shipped until session 13 used 1)
# Guidance only at t in (0.2, 1] (t = 1 is pure noise; Kynkaanniemi et al. 2024): with 8 Heun steps the two DiT
# evaluations at t = 0.125 run unguided, at half the cost. Shipped DiT, 128 held-out clips, CFG 4 (all checks /
# mean adherence / permanence): (0, 1] 14.8% / 0.650 / 74.1%, (0.2, 1] 15.6% / 0.653 / 78.4%, (0.3, 1] 14.8% /
# 0.662 / 74.1%, (0.4, 1] 14.8% / 0.645 / 73.3%; dropping guidance at high noise too, (0.2, 0.85], lost permanence
# (64 clips: 63% against 75%). The gains are within one standard error; no figure is worse and it is cheaper.
DEFAULT_GUIDANCE_INTERVAL = (0.2, 1.0)
