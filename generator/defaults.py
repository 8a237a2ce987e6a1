"""Default sampling settings of the pipeline and `daas generate` (no torch import: the CLI reads them at start).

Heun with 8 steps costs the DiT 15 evaluations (its last step is Euler), as many as Euler with 16, and measured
better on the shipped checkpoint (held-out prompts, CFG 4: the figures are in generator/weights/MODEL_CARD.md).
"""
DEFAULT_SAMPLER = "heun"
DEFAULT_STEPS = 8
DEFAULT_GUIDANCE = 4.0
DEFAULT_SHIFT = 1.0  # timestep shift (> 1: more of the steps at high noise, as SD3 does); the 16-channel DiT liked 3
