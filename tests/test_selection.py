"""Best-of-N's prompt-blind scores (generator.selection) on clips made here: a ball that rolls, vanishes for a frame,
changes colour for two, or lights a lamp that stays lit."""
from __future__ import annotations

import numpy as np
import pytest

from generator.selection import HUE_BINS, clip_scores, colour_mass, drift_score, flicker_score, score_clip

T, S = 17, 48
GREY = (200, 196, 190)


def _clip(ball=(220, 40, 40), gap=(), recolour=(), lamp_from=None):
    """A ball rolling right over a muted background; optionally missing in the `gap` frames, blue in the
    `recolour` frames, and a yellow lamp lit from frame `lamp_from` on."""
    frames = np.empty((T, S, S, 3), np.uint8)
    frames[:] = GREY
    yy, xx = np.mgrid[:S, :S]
    for t in range(T):
        if t not in gap:
            disc = (yy - 30) ** 2 + (xx - (6 + 2 * t)) ** 2 <= 16
            frames[t][disc] = (40, 60, 220) if t in recolour else ball
        if lamp_from is not None and t >= lamp_from:
            frames[t, 4:10, 20:28] = (240, 220, 30)
    return frames


def test_colour_mass_puts_saturated_hues_in_their_bins_and_ignores_muted_ones():
    m = colour_mass(_clip())
    assert m.shape == (T, HUE_BINS)
    disc_share = np.sum((np.mgrid[:S, :S][0] - 30) ** 2 + (np.mgrid[:S, :S][1] - 20) ** 2 <= 16) / S ** 2
    assert m[7].sum() == pytest.approx(disc_share, rel=0.05)  # the red disc, and nothing of the grey
    assert m[7, [0, HUE_BINS - 1]].sum() == pytest.approx(m[7].sum())  # red: the bins either side of hue 0
    assert colour_mass(np.full((3, 8, 8, 3), 128, np.uint8)).sum() == 0  # grey is no colour
    with pytest.raises(ValueError, match="frames must be"):
        colour_mass(np.zeros((8, 8, 3), np.uint8))


def test_flicker_score_sees_transient_changes_and_not_lasting_ones():
    steady = flicker_score(_clip())
    assert steady < 1e-4  # a rolling ball keeps its colour mass
    vanish, recolour = flicker_score(_clip(gap=(8,))), flicker_score(_clip(recolour=(9, 10)))
    assert vanish > 10 * max(steady, 1e-6) and recolour > vanish  # two frames of another colour: more flicker
    lamp = _clip(lamp_from=9)
    assert flicker_score(lamp) < 1e-4  # a lamp that lights up and stays lit is a step, not a flicker
    assert drift_score(lamp) > 10 * drift_score(_clip()) + 1e-4  # the clip-wide median counts it
    assert score_clip(lamp, "flicker") == flicker_score(lamp) and score_clip(lamp, "drift") == drift_score(lamp)
    assert clip_scores(lamp) == {"flicker": flicker_score(lamp), "drift": drift_score(lamp)}  # one reading, both
    with pytest.raises(ValueError, match="unknown score"):
        score_clip(lamp, "sharpness")
