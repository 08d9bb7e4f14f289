"""lrkit.diagnosis._stats against independent formulas (naive loops, scipy where available)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.diagnosis._stats import (
    MAD_SCALE,
    bin_means,
    ema,
    mad,
    mann_kendall,
    rolling_median,
    runs,
    sens_slope,
)

floats = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def _ema_loop(x: list[float], alpha: float) -> list[float]:
    out, s, w = [], 0.0, 0.0
    for v in x:
        if math.isfinite(v):
            s = (1 - alpha) * s + alpha * v
            w = (1 - alpha) * w + alpha
            out.append(s / w)
        else:
            s, w = (1 - alpha) * s, (1 - alpha) * w
            out.append(v)
    return out


@pytest.mark.parametrize("alpha", [0.01, 0.3, 0.9, 1.0])
def test_ema_matches_the_bias_corrected_recursion(alpha: float) -> None:
    x = np.random.default_rng(1).normal(size=3000).tolist()
    x[10] = math.nan
    x[2000] = math.inf
    got = ema(x, alpha)
    want = _ema_loop(x, alpha)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert math.isnan(got[10]) and got[2000] == math.inf


def test_ema_first_value_is_unbiased_and_alpha_is_checked() -> None:
    assert ema([5.0, 5.0], 0.01).tolist() == pytest.approx([5.0, 5.0])
    with pytest.raises(ValueError, match="alpha"):
        ema([1.0], 0.0)


def test_mad_is_scaled_median_absolute_deviation() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0, 100.0, math.nan])
    finite = x[np.isfinite(x)]
    want = MAD_SCALE * np.median(np.abs(finite - np.median(finite)))
    assert mad(x) == pytest.approx(want)
    # consistency with the standard deviation on normal data
    assert mad(np.random.default_rng(0).normal(scale=2.0, size=200_000)) == pytest.approx(
        2.0, rel=0.02
    )


@given(st.lists(floats, min_size=1, max_size=60), st.integers(1, 12), st.booleans())
@settings(max_examples=60, deadline=None)
def test_rolling_median_matches_a_naive_loop(
    values: list[float], window: int, trailing: bool
) -> None:
    x = np.array(values)
    got = rolling_median(x, window, trailing=trailing)
    n, w = len(values), min(window, len(values))
    for i in range(n):
        if trailing:
            chunk = [x[j] if j >= 0 else x[0] for j in range(i - w, i)]
        else:
            left = w // 2
            chunk = [x[min(max(j, 0), n - 1)] for j in range(i - left, i - left + w)]
        assert got[i] == pytest.approx(float(np.median(chunk)))


@given(st.lists(floats, min_size=1, max_size=200), st.integers(1, 50))
@settings(max_examples=60, deadline=None)
def test_bin_means_cover_everything_once(values: list[float], bins: int) -> None:
    x = np.array(values)
    means, edges = bin_means(x, bins)
    assert edges[0] == 0 and edges[-1] == x.size
    assert np.all(np.diff(edges) >= 1)
    for i, m in enumerate(means):
        assert m == pytest.approx(float(np.mean(x[edges[i] : edges[i + 1]])), abs=1e-9)


def test_sens_slope_is_the_median_pairwise_slope() -> None:
    rng = np.random.default_rng(3)
    x = 0.5 * np.arange(200) + rng.standard_cauchy(200)
    pairs = [(x[j] - x[i]) / (j - i) for i in range(200) for j in range(i + 1, 200)]
    assert sens_slope(x) == pytest.approx(float(np.median(pairs)))
    assert sens_slope([0.0, 2.0, 4.0, 100.0, 8.0]) == 2.0
    assert math.isnan(sens_slope([1.0]))


def test_mann_kendall_without_correction_matches_the_textbook_test() -> None:
    rng = np.random.default_rng(7)
    x = np.cumsum(rng.normal(size=80)) * 0.1 + 0.02 * np.arange(80)
    n = x.size
    s = sum(np.sign(x[j] - x[i]) for i in range(n) for j in range(i + 1, n))
    var = n * (n - 1) * (2 * n + 5) / 18
    z = (s - np.sign(s)) / math.sqrt(var)
    p = math.erfc(abs(z) / math.sqrt(2))
    result = mann_kendall(x, autocorrelation=False)
    assert result.s == s
    assert result.z == pytest.approx(z)
    assert result.p == pytest.approx(p)
    assert result.tau == pytest.approx(s / (n * (n - 1) / 2))
    scipy_stats = pytest.importorskip("scipy.stats")
    assert result.tau == pytest.approx(scipy_stats.kendalltau(np.arange(n), x).statistic)


def test_mann_kendall_autocorrelation_widens_the_variance() -> None:
    rng = np.random.default_rng(11)
    e = rng.normal(size=400)
    ar = np.zeros(400)
    for t in range(1, 400):
        ar[t] = 0.9 * ar[t - 1] + e[t]
    corrected = mann_kendall(ar)
    plain = mann_kendall(ar, autocorrelation=False)
    assert corrected.variance_inflation > 2.0
    assert abs(corrected.z) < abs(plain.z)
    assert corrected.p > plain.p
    # independent noise: (nearly) no correction and no trend
    iid = mann_kendall(rng.normal(size=400))
    assert iid.variance_inflation < 1.5
    assert iid.trend == "none"


def test_mann_kendall_detects_trends_and_bins_long_series() -> None:
    assert mann_kendall(np.arange(10.0)).trend == "increasing"
    long = -np.arange(1_000_000.0) + np.random.default_rng(0).normal(size=1_000_000)
    result = mann_kendall(long, max_points=500)
    assert result.n == 500 and result.trend == "decreasing"
    assert mann_kendall([1.0, 2.0]).p == 1.0


@given(st.lists(floats, min_size=3, max_size=40))
@settings(max_examples=50, deadline=None)
def test_mann_kendall_statistic_is_invariant_to_increasing_transforms(values: list[float]) -> None:
    x = np.array(values)
    a = mann_kendall(x, autocorrelation=False)
    dense_ranks = np.unique(x, return_inverse=True)[1].astype(float)
    b = mann_kendall(np.exp(dense_ranks / 10.0) * 3.0 + 1.0, autocorrelation=False)
    c = mann_kendall(x * 4.0, autocorrelation=False)
    assert a.s == b.s == c.s


@given(st.lists(st.booleans(), max_size=50))
def test_runs_rebuild_the_mask(mask: list[bool]) -> None:
    starts, stops = runs(mask)
    rebuilt = np.zeros(len(mask), dtype=bool)
    for a, b in zip(starts, stops, strict=True):
        assert a < b
        rebuilt[a:b] = True
    assert rebuilt.tolist() == mask
