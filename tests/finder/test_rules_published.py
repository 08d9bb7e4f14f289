"""The published rules (torch-lr-finder's steepest, fastai's valley/minimum/slide) against hand
computations on small curves whose answers can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from lrkit.finder._rules import METHODS, Suggestion, suggest

LRS40 = np.geomspace(1e-6, 1.0, 40)


def test_methods_default_first() -> None:
    assert METHODS == ("lrkit", "steepest", "steepest_lightning", "valley", "minimum", "slide")


def test_steepest_drops_first_10_and_last_5_points() -> None:
    s = np.full(40, 5.0)
    s[3:] -= 3.0  # the steepest drop overall: between points 2 and 3, inside the first 10
    s[21:] -= 1.0  # the steepest drop after trimming: central difference largest at 20 and 21
    s[37:] -= 2.0  # inside the last 5: ignored
    # np.gradient on s[10:35] (unit spacing): -0.5 at trimmed indices 10 and 11 (orig 20, 21);
    # argmin takes the first, so orig index 20
    got = suggest(LRS40, s, s, "steepest")
    assert got == Suggestion("steepest", float(LRS40[20]), 20, got.reason)


def test_steepest_lightning_uses_the_slope_against_linear_lr() -> None:
    # equal drops of 1 at points 15 and 30: against unit spacing they tie, but against linear
    # lr the one at the smaller lr (point 15) is far steeper
    s = np.full(40, 5.0)
    s[15:] -= 1.0
    s[30:] -= 1.0
    s[39] = -100.0  # the last point is dropped
    got = suggest(LRS40, s, s, "steepest_lightning")
    # np.gradient(s, x) with spacings h_i = x[i+1] - x[i] (second order, non-uniform):
    # at i=14: -h13 / (h14 (h13 + h14)); at i=15: -h15 / (h14 (h14 + h15)), steeper as h15 > h13;
    # around point 30 the spacings are 10**(15/39) times larger, so the slopes far smaller
    h = np.diff(LRS40)
    g14, g15 = -h[13] / (h[14] * (h[13] + h[14])), -h[15] / (h[14] * (h[14] + h[15]))
    assert g15 < g14 < 0
    assert np.gradient(s[10:-1], LRS40[10:-1])[5] == pytest.approx(g15)
    assert got.index == 15 and got.lr == float(LRS40[15])
    short = suggest(LRS40[:12], s[:12], s[:12], "steepest_lightning")
    assert short.lr is None and "too short" in short.reason


def test_steepest_too_short() -> None:
    lrs = np.geomspace(1e-3, 1, 16)
    got = suggest(lrs, np.linspace(2, 1, 16), np.linspace(2, 1, 16), "steepest")
    assert got.lr is None and "too short" in got.reason


def test_valley_hand_computation() -> None:
    s = np.full(40, 10.0)
    s[8:30] = np.linspace(9.0, 1.0, 22)  # strictly decreasing run of 22 points
    s[30:] = 20.0
    # trimmed to [4:35]: four 10s, the 22 decreasing points (trimmed 4..25), then 20s.
    # longest strictly decreasing subsequence: one 10 + 22 points = 23, ending at trimmed 25;
    # fastai's start = 25 - 23 = 2; sections = 23 / 3; index = 2 + 7 + int(7.67 / 2) = 12,
    # i.e. 12 + 4 = 16 on the full curve
    got = suggest(LRS40, s, s, "valley")
    assert got.index == 16 and got.lr == float(LRS40[16])


def test_minimum_is_a_tenth_of_the_trimmed_argmin() -> None:
    s = np.linspace(5.0, 1.0, 40)
    s[38] = 0.0  # in the last 5 points: trimmed away
    s[2] = -1.0  # in the first tenth: trimmed away
    s[25] = 0.5  # the minimum of the trimmed curve [4:35]
    got = suggest(LRS40, s, s, "minimum")
    assert got.lr == pytest.approx(LRS40[25] / 10, rel=1e-15)


def test_slide_linear_curve_stops_at_once() -> None:
    s = np.linspace(5.0, 1.0, 40)  # constant gradient: |g[r] - g[l]| = 0 <= 0.005
    # trimmed [4:35] has 31 points; r = 30, l = 15 -> trimmed 15 -> full index 19
    got = suggest(LRS40, s, s, "slide")
    assert got.index == 19 and got.lr == float(LRS40[19])


def test_slide_quadratic_curve_walks_to_the_left_end() -> None:
    s = 0.01 * np.arange(40.0) ** 2  # gradient 0.02 i: differences 0.3 > 0.005 everywhere
    got = suggest(LRS40, s, s, "slide")
    assert got.index == 4 and got.lr == float(LRS40[4])


@pytest.mark.parametrize("method", METHODS[1:])
def test_published_rules_are_schedule_blind(method: str) -> None:
    x = np.log10(LRS40)
    s = 2 - np.tanh(2 * (x + 3)) + np.maximum(x + 1, 0) ** 2
    assert suggest(LRS40, s, s, method) == suggest(LRS40, s, s, method, schedule="cosine")


@pytest.mark.parametrize("method", METHODS)
def test_curve_is_cut_at_the_first_non_finite_loss(method: str) -> None:
    x = np.log10(LRS40)
    s = 2 - np.tanh(2 * (x + 3)) + np.maximum(x + 1, 0) ** 2
    broken = s.copy()
    broken[36] = np.nan
    broken[37:] = 1e-9  # garbage after the NaN must not matter
    assert suggest(LRS40, broken, broken, method) == suggest(LRS40[:36], s[:36], s[:36], method)


def test_bad_inputs() -> None:
    s = np.linspace(2, 1, 40)
    with pytest.raises(ValueError, match="method must be one of"):
        suggest(LRS40, s, s, "fastest")
    with pytest.raises(ValueError, match="schedule must be one of 'constant', 'cosine'"):
        suggest(LRS40, s, s, schedule="step")
    with pytest.raises(ValueError, match="40 values like lrs"):
        suggest(LRS40, s[:-1], s)
    with pytest.raises(ValueError, match="strictly increasing"):
        suggest(LRS40[::-1], s, s)
    with pytest.raises(ValueError, match="lrs must be finite learning rates > 0"):
        suggest(np.r_[0.0, LRS40[1:]], s, s)
