"""Robust curve statistics used by the offline diagnosis (pure numpy, vectorised).

Every function takes 1-D float arrays and returns plain numbers or arrays. The O(n^2) statistics
(Mann-Kendall, Sen's slope) are computed on at most ``max_points`` evenly binned values, so they
stay fast on curves with millions of points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from lrkit._validate import fail

__all__ = [
    "MAD_SCALE",
    "TrendTest",
    "bin_means",
    "ema",
    "mad",
    "mann_kendall",
    "robust_z",
    "rolling_median",
    "runs",
    "sens_slope",
]

FloatArray = NDArray[np.float64]

MAD_SCALE = 1.482602218505602
"""``1 / Phi^-1(3/4)``: makes the MAD a consistent estimate of the standard deviation."""


def ema(values: ArrayLike, alpha: float) -> FloatArray:
    """Exponential moving average with bias correction (TensorBoard-style smoothing).

    ``s_t = (1 - alpha) * s_{t-1} + alpha * x_t`` started at 0, divided by ``1 - (1 - alpha)^(t+1)``
    so the first values are not pulled towards 0. Non-finite inputs stay non-finite in the output
    at their own position and are skipped by the average (kept visible, as TensorBoard does).
    Computed in closed form in blocks (no Python loop per point).

    Example:
        >>> ema([1.0, 1.0, 1.0], 0.5).tolist()
        [1.0, 1.0, 1.0]
    """
    x = np.asarray(values, dtype=np.float64)
    if not 0.0 < alpha <= 1.0:
        fail("alpha", alpha, "a number in (0, 1]")
    n = x.size
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    w = finite.astype(np.float64)
    beta = 1.0 - alpha
    # Blocked closed form: inside a block of length L, s_t = beta^t * (s_0' + sum_j alpha x_j
    # beta^-j). The block length keeps beta^-L within floating-point range.
    if beta <= 0.0:
        num = alpha * xf
        den = alpha * w
    else:
        block = max(1, min(n, int(30.0 / max(-math.log(beta), 1e-12))))
        num = np.empty(n)
        den = np.empty(n)
        carry_num = 0.0
        carry_den = 0.0
        powers = beta ** np.arange(block, dtype=np.float64)
        inv = beta ** -np.arange(block, dtype=np.float64)
        for start in range(0, n, block):
            stop = min(n, start + block)
            k = stop - start
            p = powers[:k]
            q = inv[:k]
            num[start:stop] = p * (carry_num + np.cumsum(alpha * xf[start:stop] * q))
            den[start:stop] = p * (carry_den + np.cumsum(alpha * w[start:stop] * q))
            carry_num = float(num[stop - 1]) * beta
            carry_den = float(den[stop - 1]) * beta
        # ``den`` is the bias correction: 1 - beta^(t+1) counted over finite points only
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~finite] = x[~finite]
    return out


def mad(values: ArrayLike) -> float:
    """Median absolute deviation scaled to a standard deviation (``MAD_SCALE * MAD``).

    Example:
        >>> round(mad([1.0, 2.0, 3.0, 4.0, 100.0]), 4)
        1.4826
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan
    return float(MAD_SCALE * np.median(np.abs(x - np.median(x))))


def robust_z(values: ArrayLike, center: ArrayLike, scale: ArrayLike) -> FloatArray:
    """``(values - center) / scale`` with a zero scale treated as a tiny positive number."""
    x = np.asarray(values, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    with np.errstate(invalid="ignore"):
        return (x - c) / np.maximum(s, tiny)


def rolling_median(values: ArrayLike, window: int, *, trailing: bool = False) -> FloatArray:
    """Median over a sliding window: centred, or trailing (the ``window`` values before each).

    Edges are padded with the nearest value (the first value for trailing windows, so the
    trailing median at index 0 is ``values[0]``). Non-finite values are ignored (a window with
    no finite value gives NaN). O(n * window) with ``np.partition``.

    Example:
        >>> rolling_median([1.0, 9.0, 2.0, 3.0, 4.0], 3).tolist()
        [1.0, 2.0, 3.0, 3.0, 4.0]
        >>> rolling_median([1.0, 9.0, 2.0, 3.0, 4.0], 2, trailing=True).tolist()
        [1.0, 1.0, 5.0, 5.5, 2.5]
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if window < 1:
        fail("window", window, "an integer >= 1")
    if n == 0:
        return x.copy()
    window = min(window, n)
    if trailing:
        left, right = window, 0
    else:
        left = window // 2
        right = window - 1 - left
    padded = np.concatenate([np.full(left, x[0]), x, np.full(right, x[-1])])
    view = sliding_window_view(padded, window)[:n]
    if np.isfinite(x).all():
        return np.asarray(np.median(view, axis=1), dtype=np.float64)
    out = np.full(n, np.nan)
    valid = np.isfinite(view).any(axis=1)
    if valid.any():
        out[valid] = np.nanmedian(view[valid], axis=1)
    return out


def bin_means(values: ArrayLike, bins: int) -> tuple[FloatArray, NDArray[np.int64]]:
    """Means of ``bins`` contiguous, (nearly) equal-count bins, ignoring non-finite values.

    Returns ``(means, edges)`` where bin ``i`` covers ``values[edges[i]:edges[i+1]]``. A bin
    without a finite value has a NaN mean. O(n).

    Example:
        >>> means, edges = bin_means([1.0, 3.0, 5.0, 7.0], 2)
        >>> means.tolist(), edges.tolist()
        ([2.0, 6.0], [0, 2, 4])
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    bins = max(1, min(int(bins), n))
    edges = (np.arange(bins + 1, dtype=np.int64) * n) // bins
    finite = np.isfinite(x)
    sums = np.add.reduceat(np.where(finite, x, 0.0), edges[:-1])
    counts = np.add.reduceat(finite.astype(np.int64), edges[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means, edges


def _subsample(x: FloatArray, max_points: int) -> FloatArray:
    if x.size <= max_points:
        return x
    means, _ = bin_means(x, max_points)
    return means[np.isfinite(means)]


def sens_slope(values: ArrayLike, *, max_points: int = 1000) -> float:
    """Sen's slope: the median of pairwise slopes ``(x_j - x_i) / (j - i)`` per index step.

    Longer series are binned to ``max_points`` means first; the slope is rescaled to the
    original index step. NaN for fewer than 2 finite values.

    Example:
        >>> sens_slope([0.0, 2.0, 4.0, 100.0, 8.0])
        2.0
    """
    x = np.asarray(values, dtype=np.float64)
    n_orig = x.size
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan
    y = _subsample(x, max_points)
    factor = (y.size - 1) / (x.size - 1) if x.size > 1 else 1.0
    i, j = np.triu_indices(y.size, k=1)
    slopes = (y[j] - y[i]) / (j - i)
    del n_orig
    return float(np.median(slopes) * factor)


@dataclass(frozen=True)
class TrendTest:
    """Result of a Mann-Kendall trend test.

    Attributes:
        s: the Kendall S statistic (sum of signs of later-minus-earlier differences).
        z: the normal score, with the variance corrected for autocorrelation (Hamed-Rao).
        p: two-sided p-value.
        tau: Kendall's tau (S divided by the number of pairs), in [-1, 1].
        n: points used (after binning).
        variance_inflation: the Hamed-Rao ``n / n*`` factor (1 for independent data).
    """

    s: float
    z: float
    p: float
    tau: float
    n: int
    variance_inflation: float

    @property
    def trend(self) -> str:
        """ "increasing", "decreasing" or "none" at the 5% level."""
        if self.p < 0.05:
            return "increasing" if self.z > 0 else "decreasing"
        return "none"


def _ranks(x: FloatArray) -> FloatArray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(1, x.size + 1, dtype=np.float64)
    # average ranks for ties
    sorted_x = x[order]
    boundaries = np.flatnonzero(np.diff(sorted_x) != 0) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [x.size]])
    if starts.size != x.size:
        avg = (starts + stops + 1) / 2.0
        ranks[order] = np.repeat(avg, stops - starts)
    return ranks


def _acf(x: FloatArray) -> FloatArray:
    n = x.size
    centered = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centered, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acov[0] <= 0:
        return np.zeros(n)
    return np.asarray(acov / acov[0], dtype=np.float64)


def mann_kendall(
    values: ArrayLike, *, max_points: int = 1000, autocorrelation: bool = True
) -> TrendTest:
    """Mann-Kendall trend test with the Hamed-Rao (1998) autocorrelation correction.

    Non-finite values are dropped; series longer than ``max_points`` are binned into
    ``max_points`` means (O(n) then O(max_points^2)). The variance of S is inflated by
    ``1 + 2 / (n (n-1) (n-2)) * sum_k (n-k)(n-k-1)(n-k-2) rho_k`` over the lags whose rank
    autocorrelation ``rho_k`` of the Sen-detrended series is significant at 5%.

    Example:
        >>> mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).trend
        'increasing'
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    y = _subsample(x, max_points)
    n = int(y.size)
    if n < 3:
        return TrendTest(0.0, 0.0, 1.0, 0.0, n, 1.0)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(y[j] - y[i]).sum())
    # tie correction
    _, counts = np.unique(y, return_counts=True)
    ties = counts[counts > 1].astype(np.float64)
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    inflation = 1.0
    if autocorrelation and n >= 10:
        slope = float(np.median((y[j] - y[i]) / (j - i)))
        detrended = y - slope * np.arange(n)
        rho = _acf(_ranks(detrended))[1:]
        k = np.arange(1, n, dtype=np.float64)
        bound = 1.96 / math.sqrt(n)
        significant = np.abs(rho) > bound
        weights = (n - k) * (n - k - 1) * (n - k - 2)
        correction = 1.0 + 2.0 / (n * (n - 1) * (n - 2)) * float(
            np.sum(weights * rho * significant)
        )
        inflation = max(correction, 1.0)
    var *= inflation
    if var <= 0:
        return TrendTest(s, 0.0, 1.0, 0.0, n, inflation)
    if s > 0:
        z = (s - 1.0) / math.sqrt(var)
    elif s < 0:
        z = (s + 1.0) / math.sqrt(var)
    else:
        z = 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    tau = s / (n * (n - 1) / 2.0)
    return TrendTest(s, z, p, tau, n, inflation)


def runs(mask: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and stop indices (half-open) of the runs of True in a boolean array.

    Example:
        >>> starts, stops = runs([False, True, True, False, True])
        >>> starts.tolist(), stops.tolist()
        ([1, 4], [3, 5])
    """
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    padded = np.concatenate([[False], m, [False]]).astype(np.int8)
    change = np.diff(padded)
    starts = np.flatnonzero(change == 1).astype(np.int64)
    stops = np.flatnonzero(change == -1).astype(np.int64)
    return starts, stops
