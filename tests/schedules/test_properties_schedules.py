"""Property tests over randomly generated, randomly nested schedules."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    Cyclic,
    Exponential,
    Floor,
    InverseSqrt,
    Join,
    Linear,
    MultiStep,
    OneCycle,
    Plateau,
    Polynomial,
    Restarts,
    Scale,
    Schedule,
    Step,
    Warmup,
    parse,
)

INT64_MAX = 2**63 - 1
HUGE = [10**12, 10**15, 2**53 + 1, 10**18, INT64_MAX - 1, INT64_MAX]

settings.register_profile(
    "lrkit-schedules",
    # modest by default to keep the suite fast; raise it for a soak run
    max_examples=int(os.environ.get("LRKIT_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("lrkit-schedules")

steps_ = st.integers(1, 5000)
frac = st.floats(0.0, 1.0, allow_nan=False)
gamma_ = st.floats(0.5, 1.0, allow_nan=False) | st.sampled_from([0.0, 0.1, 0.9, 0.999, 1.0])


def _onecycle() -> st.SearchStrategy[OneCycle]:
    return st.builds(
        OneCycle,
        st.integers(10, 5000),
        pct_start=st.floats(0.2, 0.45),
        div_factor=st.floats(1.0, 100.0) | st.floats(1.0, 1e6),
        final_div_factor=st.floats(1.0, 1e5) | st.floats(1.0, 1e12),
        anneal=st.sampled_from(["cos", "linear"]),
        three_phase=st.booleans(),
        max_momentum=frac,
        base_momentum=frac,
        cycle_momentum=st.booleans(),
    )


kinds_ = st.one_of(
    st.just(Constant()),
    st.builds(Step, steps_, gamma=gamma_),
    st.builds(MultiStep, st.lists(st.integers(0, 5000), max_size=5).map(tuple), gamma=gamma_),
    st.builds(Exponential, gamma_),
    st.builds(Linear, steps_, start=st.floats(0.0, 2.0), end=st.floats(0.0, 2.0)),
    st.builds(Polynomial, steps_, power=st.floats(0.1, 4.0), end=frac),
    st.builds(Cosine, steps_, floor=frac),
    st.builds(
        Restarts,
        st.integers(1, 500),
        mult=st.sampled_from([1.0, 2.0, 3.0]) | st.floats(1.0, 3.0),
        decay=frac,
        floor=frac,
    ),
    st.builds(
        Cyclic,
        steps_,
        down=st.none() | st.integers(0, 5000),
        low=frac,
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gamma=st.floats(0.9, 1.0),
    ),
    _onecycle(),
    st.builds(InverseSqrt, st.integers(1, 10_000)),
    st.builds(
        WSD,
        st.integers(0, 5000),
        st.integers(0, 5000),
        cooldown=st.sampled_from(["linear", "cosine", "sqrt"]),
        floor=frac,
        cycles=st.sampled_from([0.5, 0.25, 1.0]),
    ),
    st.builds(
        Plateau,
        factor=st.floats(0.01, 0.99),
        patience=st.integers(0, 20),
        threshold=st.floats(0.0, 0.1),
        threshold_mode=st.sampled_from(["rel", "abs"]),
        mode=st.sampled_from(["min", "max"]),
        cooldown=st.integers(0, 5),
        min_scale=frac,
        eps=st.sampled_from([1e-8, 0.0]),
        reductions=st.lists(st.integers(0, 5000), max_size=4).map(tuple),
    ),
)


def _warmup(inner: st.SearchStrategy[Schedule]) -> st.SearchStrategy[Warmup]:
    linearish = st.builds(
        Warmup,
        st.integers(0, 2000),
        inner,
        start=frac,
        shape=st.sampled_from(["linear", "cosine", "sqrt"]),
    )
    exponential = st.builds(
        Warmup,
        st.integers(0, 2000),
        inner,
        start=st.floats(1e-4, 1.0),
        shape=st.just("exponential"),
    )
    return linearish | exponential


@st.composite
def _join(draw: st.DrawFn, inner: st.SearchStrategy[Schedule]) -> Join:
    pieces = draw(st.lists(inner, min_size=2, max_size=4))
    bounds = sorted(
        draw(st.sets(st.integers(1, 5000), min_size=len(pieces) - 1, max_size=len(pieces) - 1))
    )
    return Join(tuple(pieces), tuple(bounds))


def _bounded_scale(inner: Schedule, factor: float) -> Scale:
    from lrkit.schedules import MAX_MULTIPLIER

    return Scale(inner, min(factor, MAX_MULTIPLIER / max(inner._peak(), 1.0)))


schedules = st.recursive(
    kinds_,
    lambda inner: st.one_of(
        _warmup(inner),
        _join(inner),
        st.builds(_bounded_scale, inner, st.floats(0.0, 10.0)),
        st.builds(Floor, inner, frac),
    ),
    max_leaves=6,
)

some_steps = st.lists(st.integers(0, 20_000), min_size=1, max_size=30)


@PROFILE
@given(schedules, some_steps)
def test_values_are_finite_non_negative_and_both_paths_agree(s: Schedule, steps: list[int]) -> None:
    all_steps = steps + HUGE
    vector = s.values(np.asarray(all_steps, dtype=np.int64))
    assert np.all(np.isfinite(vector)) and np.all(vector >= 0.0)
    scalar = [s(t) for t in all_steps]
    assert all(isinstance(v, float) for v in scalar)
    # numpy's and libm's pow / cos may differ in the last ulps
    np.testing.assert_allclose(scalar, vector, rtol=1e-10, atol=1e-15)


@PROFILE
@given(schedules)
def test_steps_beyond_int64_are_rejected_by_both_paths(s: Schedule) -> None:
    # the last step evaluates (finite, both paths agree); every later one is refused by
    # schedule(step), momentum(step) and values() alike, never wrapped around
    last = s(INT64_MAX)
    assert math.isfinite(last) and last >= 0.0
    assert s.values([INT64_MAX])[0] == pytest.approx(last, rel=1e-10, abs=1e-15)
    beyond: list[object] = [2**63, 2**64 - 1, 2**64, 10**30]
    for t in beyond:
        with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*63 - 1\]"):
            s(t)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*63 - 1\]"):
            s.momentum(t)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"steps must be whole step numbers <= 2\*\*63 - 1"):
            s.values([0, t])
    for arr in (np.array([2**63], dtype=np.uint64), np.array([2.0**63]), np.array([1e19])):
        with pytest.raises(ValueError, match=r"steps must be whole step numbers <= 2\*\*63 - 1"):
            s.values(arr)


@PROFILE
@given(schedules)
def test_every_value_is_at_most_the_bound_and_the_peak(s: Schedule) -> None:
    from lrkit.schedules import MAX_MULTIPLIER

    values = s.values(np.asarray([0, 1, 5, 50, 500, 5000, 20_000, *HUGE], dtype=np.int64))
    assert np.all(values <= s._peak() * (1 + 1e-12)) and s._peak() <= MAX_MULTIPLIER


@PROFILE
@given(schedules)
def test_spec_round_trip(s: Schedule) -> None:
    text = str(s)
    again = parse(text)
    assert again == s
    assert str(again) == text
    assert hash(again) == hash(s)


@PROFILE
@given(schedules, some_steps)
def test_resume_from_the_spec_gives_identical_values(s: Schedule, steps: list[int]) -> None:
    """A resumed run rebuilds the schedule from its spec and jumps to the step: bit-identical."""
    resumed = parse(str(s))
    for t in steps:
        assert resumed(t) == s(t)
        assert resumed.momentum(t) == s.momentum(t)
    np.testing.assert_array_equal(resumed.values(np.asarray(steps)), s.values(np.asarray(steps)))


@PROFILE
@given(_warmup(kinds_))
def test_warmup_is_monotone_and_hands_off_exactly(s: Warmup) -> None:
    ramp = s.values(s.steps + 1)  # the ramp and the hand-off step
    target = s._target  # the inner schedule's first value before any plateau cut
    assert np.all(np.diff(ramp[:-1]) >= 0.0)
    assert np.all(ramp[:-1] <= target)
    assert s(s.steps) == s.schedule(0)
    if not s.stateful:  # a plateau cut at the hand-off step may drop it below the ramp
        assert target == s.schedule(0)
        assert np.all(np.diff(ramp) >= 0.0)
    picks = list(range(0, s.steps + 1, max(1, s.steps // 50)))
    np.testing.assert_allclose([s(i) for i in picks], ramp[picks], rtol=1e-14)


@PROFILE
@given(_join(schedules))
def test_join_evaluates_each_piece_from_its_boundary(s: Join) -> None:
    starts = (0, *s.boundaries)
    for k, piece in enumerate(s.pieces):
        b = starts[k]
        assert s(b) == piece(0)
        assert s.values(np.asarray([b]))[0] == piece.values(np.asarray([0]))[0]
        if k:
            prev, prev_start = s.pieces[k - 1], starts[k - 1]
            assert s(b - 1) == prev(b - 1 - prev_start)
    for t in {max(0, b + d) for b in starts for d in (-2, -1, 0, 1, 2, 9)}:
        k = max(i for i, b in enumerate(starts) if b <= t)
        assert s(t) == s.pieces[k](t - starts[k])


@PROFILE
@given(schedules, st.integers(0, 5000))
def test_plateau_cuts_lower_or_keep_the_value_and_round_trip(s: Schedule, step: int) -> None:
    if s.active_plateau(step) is None:
        return
    cut = s.reduce_at(step)
    assert cut.stateful and cut != s or cut(step) == s(step)
    later = np.arange(step, step + 50)
    assert np.all(cut.values(later) <= s.values(later) + 1e-15)
    assert np.array_equal(cut.values(step), s.values(step))  # nothing before the cut changes
    assert parse(str(cut)) == cut
