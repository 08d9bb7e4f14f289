"""lrkit's default rule on synthetic curves with known answers, noise, spikes and bad curves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.finder import _rules
from lrkit.finder._rules import METHODS, Suggestion, suggest, suggest_range

LRS = np.geomspace(1e-7, 10.0, 100)  # find_lr's default ramp: 12.4 points per decade
X = np.log10(LRS)


def ideal(knee_lr: float = 1e-3, blow_lr: float = 1.0) -> np.ndarray:
    """Flat at 2, a logistic descent to 0.5 centred a decade below ``knee_lr``, then a blow-up.

    The logistic 1.5 / (1 + exp(-4 (x - c))) has done 90% of its descent where
    exp(-4 (x - c)) = 1/9, i.e. at x = c + ln(9) / 4 = c + 0.549 decades.
    """
    c = np.log10(knee_lr) - np.log(9) / 4
    descent = 0.5 + 1.5 / (1 + np.exp(4 * (X - c)))
    return descent + 20 * np.maximum(X - np.log10(blow_lr), 0) ** 2


def ema(values: np.ndarray, beta: float = 0.98) -> np.ndarray:
    out, avg = [], 0.0
    for k, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**k))
    return np.asarray(out)


def lrkit(
    losses: np.ndarray,
    lrs: np.ndarray = LRS,
    schedule: str = "constant",
    optimizer: str | None = "adaptive",
) -> Suggestion:
    return suggest(lrs, losses, ema(losses), "lrkit", schedule=schedule, optimizer=optimizer)


def shelf(edge: float = -2.0, fall_to: float = -3.0) -> np.ndarray:
    """Flat at 2, a straight fall (in log lr) to 0.5 at ``10**fall_to``, a flat bottom at 0.5
    up to ``10**edge``, then a steep rise: the bottom spans [10**fall_to, 10**edge] (minus the
    smoothing's rounding of its corners, symmetric), so its geometric middle is
    10**((fall_to + edge) / 2); the centred smoothing (+-0.4 decades) shows the rise a little
    before 10**edge."""
    fall = np.clip(2 * (X - fall_to + 0.5), 0.0, 1.0)
    return 2.0 - 1.5 * fall + 40 * np.maximum(X - edge, 0) ** 2


def expected(family: str, schedule: str, bottom: float, edge: float) -> float:
    """The rule's formula, from the curve's exact features."""
    lr = _rules._FACTORS[family][schedule] * np.sqrt(bottom * edge)
    if schedule == "constant":
        lr = min(lr, _rules._EDGE_CAP * edge)
    return float(lr)


@pytest.mark.parametrize("family", ["adaptive", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_known_answer_is_the_factor_times_the_mean_of_bottom_and_edge(
    family: str, schedule: str
) -> None:
    losses = shelf(edge=-2.0, fall_to=-3.0)
    f = _rules.curve_features(LRS, losses)
    assert f.lr_bottom == pytest.approx(10**-2.5, rel=0.15)
    assert f.i_edge is not None
    assert 10**-2.3 < LRS[f.i_edge] < 10**-1.9
    got = lrkit(losses, schedule=schedule, optimizer=family)
    assert got.lr is not None and got.method == "lrkit"
    assert got.lr == pytest.approx(expected(family, schedule, f.lr_bottom, LRS[f.i_edge]))
    # and close to the formula on the true features (a decade-wide bottom ending at 1e-2)
    assert got.lr == pytest.approx(
        _rules._FACTORS[family][schedule] * np.sqrt(10**-2.5 * 10**-2), rel=0.25
    )
    assert family in got.reason and schedule in got.reason and "bottom" in got.reason


def test_the_factors_order_sgd_above_adaptive_and_cosine_above_constant() -> None:
    factors = _rules._FACTORS
    for family in ("adaptive", "sgd"):
        assert factors[family]["cosine"] >= factors[family]["constant"]
    for schedule in ("constant", "cosine"):
        assert factors["sgd"][schedule] > factors["adaptive"][schedule]


def test_a_constant_lr_never_reaches_the_edge() -> None:
    # a descent straight into a blow-up: the bottom is a single point next to the edge
    losses = ideal(knee_lr=1e-3, blow_lr=1e-3)
    f = _rules.curve_features(LRS, losses)
    assert f.i_edge is not None
    for family in ("adaptive", "sgd"):
        got = lrkit(losses, optimizer=family)
        assert got.lr is not None
        assert got.lr <= _rules._EDGE_CAP * LRS[f.i_edge] * (1 + 1e-12)
        assert got.lr == pytest.approx(expected(family, "constant", f.lr_bottom, LRS[f.i_edge]))


def test_the_cap_binds_when_the_factor_would_pass_it(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = shelf(edge=-2.0, fall_to=-3.0)
    f = _rules.curve_features(LRS, losses)
    assert f.i_edge is not None
    monkeypatch.setitem(_rules._FACTORS, "sgd", {"constant": 5.0, "cosine": 5.0})
    const = lrkit(losses, optimizer="SGD")
    cos = lrkit(losses, schedule="cosine", optimizer="SGD")
    assert const.lr == pytest.approx(_rules._EDGE_CAP * LRS[f.i_edge])
    assert "most a constant lr" in const.reason
    assert cos.lr == pytest.approx(5.0 * np.sqrt(f.lr_bottom * LRS[f.i_edge]))


def test_without_an_edge_the_end_of_the_curve_is_the_edge() -> None:
    fall = np.clip(2 * (X + 3.5), 0.0, 1.0)
    losses = 2.0 - 1.5 * fall  # falls and stays down to the end of the ramp
    f = _rules.curve_features(LRS, losses)
    assert f.i_edge is None
    got = lrkit(losses, schedule="cosine")
    assert got.lr == pytest.approx(expected("adaptive", "cosine", f.lr_bottom, LRS[-1]))
    assert "end of the test" in got.reason


def test_optimizer_family() -> None:
    assert _rules.optimizer_family("SGD") == "sgd"
    assert _rules.optimizer_family("ASGD") == "sgd"
    assert _rules.optimizer_family("sgd") == "sgd"
    for name in ("Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "adaptive", None):
        assert _rules.optimizer_family(name) == "adaptive"
    with pytest.raises(ValueError, match="optimizer"):
        _rules.optimizer_family("")


@pytest.mark.parametrize("seed", range(5))
def test_noise_and_spikes_move_it_little(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clean = lrkit(ideal()).lr
    noisy = ideal() + rng.normal(0, 0.08, len(LRS))
    spikes = rng.choice(len(LRS) - 10, 4, replace=False)
    noisy[spikes] += 3.0  # isolated loss spikes (a bad batch)
    got = lrkit(noisy).lr
    assert clean is not None and got is not None
    assert clean / 1.5 < got < clean * 1.5


def test_a_deep_local_dip_before_the_minimum_is_not_taken() -> None:
    losses = ideal()
    losses[30] -= 1.0  # one very low point (lucky batch) early on
    clean = lrkit(ideal()).lr
    got = lrkit(losses).lr
    assert clean is not None and got == pytest.approx(clean)


def test_stable_across_shifted_seeds_of_the_same_curve() -> None:
    lrs_found = []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        lrs_found.append(lrkit(ideal() + rng.normal(0, 0.05, len(LRS))).lr)
    assert max(lrs_found) / min(lrs_found) < 2.0  # type: ignore[operator]


def test_flat_curve_gives_no_answer() -> None:
    rng = np.random.default_rng(0)
    got = lrkit(2.0 + rng.normal(0, 0.02, len(LRS)))
    assert got.lr is None and "flat curve" in got.reason


PATTERN = np.array([3.9, 4.1, 5.1, 6.0, 8.4, 2.5, 5.8, 2.7])  # 8 batches, very unequal losses


def test_short_curve_with_batch_to_batch_noise_and_a_real_descent_is_accepted() -> None:
    # 40 steps cycling 8 batches whose losses differ 3x; the level falls to a third over
    # points 24-31, stays low, then the run blows up: a clear descent, though within the
    # spread of the batch losses
    lrs = np.geomspace(1e-7, 1.0, 40)
    level = np.ones(40)
    level[24:32] = np.linspace(1.0, 1 / 3, 8)
    level[32:] = 1 / 3
    level[37:] = [2.0, 20.0, 200.0]
    losses = np.tile(PATTERN, 5) * level
    got = suggest(lrs, losses, ema(losses), "lrkit", optimizer="SGD")
    assert got.lr is not None, got.reason
    assert lrs[24] <= got.lr <= lrs[37]


def test_short_flat_curve_with_batch_to_batch_noise_gives_no_answer() -> None:
    lrs = np.geomspace(1e-7, 1.0, 40)
    losses = np.tile(PATTERN, 5)
    got = suggest(lrs, losses, ema(losses), "lrkit")
    assert got.lr is None and "flat curve" in got.reason


def test_immediately_divergent_curve_gives_no_answer() -> None:
    got = lrkit(1.0 + 0.5 * np.arange(40.0), lrs=LRS[:40])
    assert got.lr is None and "diverged at once" in got.reason


def test_too_short_curve_gives_no_answer() -> None:
    got = lrkit(np.linspace(2, 1, 12), lrs=LRS[:12])
    assert got.lr is None and "too short" in got.reason
    assert suggest_range(LRS[:12], np.linspace(2, 1, 12), np.linspace(2, 1, 12)) is None


def test_nan_after_divergence_is_cut() -> None:
    losses = ideal()
    cut = losses.copy()
    cut[90:] = np.nan
    assert lrkit(cut).lr == pytest.approx(lrkit(losses[:90], lrs=LRS[:90]).lr)


def test_range_brackets_the_cosine_peak() -> None:
    losses = ideal()
    low, high = suggest_range(LRS, losses, ema(losses))  # type: ignore[misc]
    peak = lrkit(losses, schedule="cosine", optimizer=None).lr
    assert high == pytest.approx(peak) and low == pytest.approx(high / 10)


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-5.0, 5.0),
    lr_scale_exp=st.integers(-3, 3),
)
def test_invariant_to_loss_units_and_lr_units(
    scale: float, shift: float, lr_scale_exp: int
) -> None:
    # the answer moves with the lr axis and ignores the loss's units and offset
    base = ideal()
    ref = lrkit(base).lr
    lr_scale = 10.0**lr_scale_exp
    got = lrkit(base * scale + shift, lrs=LRS * lr_scale).lr
    assert ref is not None and got is not None
    assert got == pytest.approx(ref * lr_scale, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=60))
def test_every_rule_returns_a_suggestion_for_any_finite_curve(values: list[float]) -> None:
    losses = np.asarray(values, dtype=float)
    lrs = np.geomspace(1e-5, 1, len(values)) if values else np.array([])
    for method in METHODS:
        got = suggest(lrs, losses, losses, method)
        assert isinstance(got, Suggestion)
        assert got.lr is None or (np.isfinite(got.lr) and got.lr > 0)
        assert got.lr is not None or got.reason
