"""Composition: warmup, join, scale, floor, and the plateau / momentum forwarding through them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrkit.schedules import (
    Constant,
    Cosine,
    Exponential,
    Floor,
    Join,
    Linear,
    OneCycle,
    Plateau,
    Restarts,
    Scale,
    Step,
    Warmup,
    floor,
    join,
    parse,
    scale,
    warmup,
)


# ---------------------------------------------------------------------------------- warmup
def test_warmup_linear_ramps_from_start_fraction_to_inner_first_value() -> None:
    inner = Scale(Cosine(100), 0.5)  # first value 0.5
    s = warmup(10, inner, start=0.2)
    expected_ramp = [0.5 * (0.2 + 0.8 * i / 10) for i in range(10)]
    np.testing.assert_allclose(s.values(10), expected_ramp, rtol=1e-15)
    assert s(10) == inner(0) == 0.5  # hand-off: the inner schedule sees step 0
    assert s(37) == inner(27)
    assert max(s.values(10)) < inner(0)  # no overshoot before the hand-off


def test_warmup_default_start_is_one_percent_not_zero() -> None:
    s = warmup(100, Cosine(900))
    assert s(0) == pytest.approx(0.01)
    assert s(1) > s(0) > 0.0


def test_warmup_kinds_closed_forms() -> None:
    n = 20
    p = np.arange(n) / n
    lin = warmup(n, start=0.1, kind="linear").values(n)
    cos = warmup(n, start=0.1, kind="cosine").values(n)
    exp = warmup(n, start=0.1, kind="exponential").values(n)
    sqrt = warmup(n, start=0.1, kind="sqrt").values(n)
    np.testing.assert_allclose(lin, 0.1 + 0.9 * p, rtol=1e-14)
    np.testing.assert_allclose(cos, 0.1 + 0.9 * (1 - np.cos(np.pi * p)) / 2, rtol=1e-14)
    np.testing.assert_allclose(exp, 0.1 * 10.0**p, rtol=1e-14)  # geometric from 0.1 to 1
    np.testing.assert_allclose(sqrt, 0.1 + 0.9 * (1 - np.sqrt(1 - p)), rtol=1e-14)
    for values in (lin, cos, exp, sqrt):
        assert values[0] == pytest.approx(0.1) and np.all(np.diff(values) > 0)


def test_warmup_zero_steps_is_the_inner_schedule() -> None:
    inner = Cosine(50, floor=0.1)
    np.testing.assert_array_equal(warmup(0, inner).values(80), inner.values(80))


def test_warmup_bad_input() -> None:
    with pytest.raises(ValueError, match="steps must be an integer >= 0, but got steps=-1"):
        warmup(-1)
    with pytest.raises(ValueError, match=r"start must be a number <= 1, but got start=1.5"):
        warmup(10, start=1.5)
    with pytest.raises(ValueError, match=r"start must be a number > 0 when kind='exponential'"):
        warmup(10, kind="exponential", start=0.0)
    with pytest.raises(ValueError, match=r"kind must be one of 'linear', 'cosine'"):
        warmup(10, kind="quadratic")
    with pytest.raises(ValueError, match="schedule must be a Schedule"):
        warmup(10, "cosine(100)")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- join
def test_join_pieces_see_step_minus_boundary() -> None:
    a, b, c = Cosine(100), Exponential(0.9), Linear(10, start=0.3, end=0.1)
    s = join(a, 100, b, 150, c)
    assert s == Join((a, b, c), (100, 150))
    for step in range(0, 300):
        if step < 100:
            expected = a(step)
        elif step < 150:
            expected = b(step - 100)
        else:
            expected = c(step - 150)
        assert s(step) == expected
    # numpy's and Python's pow may differ in the last ulp
    np.testing.assert_allclose(s.values(300), [s(i) for i in range(300)], rtol=1e-14)


def test_join_bad_input() -> None:
    with pytest.raises(ValueError, match="parts must be an odd number >= 3"):
        join(Constant(), 10)
    with pytest.raises(ValueError, match=r"boundaries\[0\] must be an integer >= 1"):
        join(Constant(), 0, Constant())
    with pytest.raises(ValueError, match=r"boundaries\[1\] must be an integer > the previous"):
        join(Constant(), 10, Constant(), 10, Constant())
    with pytest.raises(ValueError, match="join argument 3 must be a Schedule"):
        join(Constant(), 10, 20)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"boundaries\[0\] must be an integer step"):
        join(Constant(), Constant(), Constant())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- scale, floor
def test_scale_and_floor() -> None:
    base = Exponential(0.5)
    assert scale(base, 0.1)(3) == 0.1 * 0.125
    assert floor(base, 0.2)(1) == 0.5 and floor(base, 0.2)(10) == 0.2
    assert scale(base, 0.0).values(5).tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="factor must be a number >= 0, but got factor=-1"):
        scale(base, -1)
    with pytest.raises(ValueError, match="minimum must be a finite number, but got minimum=nan"):
        floor(base, math.nan)
    assert Scale(base, 2) == Scale(base, 2.0) and isinstance(Scale(base, 2).factor, float)


# ---------------------------------------------------------------------------------- plateau
def test_plateau_behind_warmup() -> None:
    s = warmup(100, Plateau(factor=0.5))
    assert s.stateful
    assert s.active_plateau(99) is None
    assert s.active_plateau(100) == Plateau(factor=0.5)
    cut = s.reduce_at(150)
    assert cut == warmup(100, Plateau(factor=0.5, reductions=(50,)))
    assert cut(149) == 1.0 and cut(150) == 0.5
    with pytest.raises(ValueError, match="step must be a step after the warmup"):
        s.reduce_at(99)


def test_plateau_inside_join_scale_floor_uses_local_steps() -> None:
    s = floor(scale(join(Cosine(100), 100, Plateau(factor=0.5), 500, Constant()), 2.0), 0.3)
    assert s.stateful
    assert s.active_plateau(50) is None and s.active_plateau(500) is None
    assert s.active_plateau(100) == Plateau(factor=0.5)
    cut = s.reduce_at(200).reduce_at(300)
    inner = cut.schedule.schedule  # type: ignore[attr-defined]
    assert inner.pieces[1] == Plateau(factor=0.5, reductions=(100, 200))
    assert cut(199) == 2.0 and cut(200) == 1.0 and cut(300) == 0.5 and cut(499) == 0.5
    assert cut(500) == 2.0
    assert parse(str(cut)) == cut
    with pytest.raises(ValueError, match="step must be a step at which a reduce-on-plateau"):
        s.reduce_at(10)


def test_stateless_schedules_refuse_cuts() -> None:
    for s in (Cosine(10), warmup(5, Cosine(10)), join(Constant(), 5, Step(3))):
        assert not s.stateful and s.active_plateau(7) is None
        with pytest.raises(ValueError, match="step must be a step at which a reduce-on-plateau"):
            s.reduce_at(7)


# ---------------------------------------------------------------------------------- momentum
def test_momentum_is_forwarded_with_offsets() -> None:
    oc = OneCycle(100)
    s = join(Constant(), 50, scale(oc, 0.5), 150, Restarts(10))
    assert s.momentum(10) is None and s.momentum(160) is None
    assert s.momentum(50) == oc.momentum(0) and s.momentum(99) == oc.momentum(49)
    w = warmup(20, oc)
    assert w.momentum(5) == oc.momentum(0) and w.momentum(40) == oc.momentum(20)
    assert floor(oc, 0.1).momentum(30) == oc.momentum(30)
    assert Warmup(3, Constant()).momentum(1) is None
    assert isinstance(Floor(oc, 0.1), Floor)


def test_schedules_pickle_and_copy() -> None:
    import copy
    import pickle

    s = parse(
        "join(warmup(10, plateau(reductions=[3])), 100, floor(scale(onecycle(50), 0.5), 0.01))"
    )
    for clone in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert clone == s and str(clone) == str(s)
        np.testing.assert_array_equal(clone.values(200), s.values(200))


def test_joins_and_warmups_meet_continuously_without_off_by_one() -> None:
    s = join(Constant(), 500, Exponential(0.999))
    assert [s(t) for t in (498, 499, 500, 501)] == [1.0, 1.0, 1.0, 0.999]
    w = warmup(100, Cosine(900), start=0.0)
    assert w(99) == 0.99 and w(100) == 1.0 and w(101) < 1.0  # peak exactly once, no overshoot
    assert max(w.values(1000)) == 1.0 and int(np.argmax(w.values(1000))) == 100
    # a three-piece plan whose pieces are chosen to meet: no jump anywhere
    plan = join(warmup(10, start=0.0), 10, Cosine(90, floor=0.1), 100, scale(Constant(), 0.1))
    assert np.max(np.abs(np.diff(plan.values(200)))) <= 0.1 + 1e-12
