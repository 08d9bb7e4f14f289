"""The spec grammar: parsing, printing, round trips, error messages and the kinds registry."""

from __future__ import annotations

import pytest

from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    Cyclic,
    Exponential,
    Floor,
    Join,
    KindInfo,
    Linear,
    MultiStep,
    OneCycle,
    Plateau,
    Restarts,
    Scale,
    SpecError,
    Step,
    Warmup,
    format_spec,
    kinds,
    parse,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("constant()", Constant()),
        ("constant", Constant()),
        ("step(30)", Step(30)),
        ("step(30, gamma=0.5)", Step(30, gamma=0.5)),
        ("multistep([30, 60], gamma=0.1)", MultiStep((30, 60), gamma=0.1)),
        ("multistep([60, 30,])", MultiStep((30, 60))),
        ("exponential(0.999)", Exponential(0.999)),
        ("linear(1_000, start=1, end=0)", Linear(1000, start=1.0, end=0.0)),
        ("cosine(900, floor=5e-2)", Cosine(900, floor=0.05)),
        ("cosine(1e3)", Cosine(1000)),
        ("restarts(10, mult=2, decay=0.5)", Restarts(10, mult=2.0, decay=0.5)),
        (
            "cyclic(10, down=None, mode=exp_range, gamma=0.99)",
            Cyclic(10, mode="exp_range", gamma=0.99),
        ),
        ("cyclic(10, mode='triangular2')", Cyclic(10, mode="triangular2")),
        (
            "onecycle(100, three_phase=true, anneal=linear)",
            OneCycle(100, three_phase=True, anneal="linear"),
        ),
        ("wsd(100, 20, cooldown=sqrt)", WSD(100, 20, cooldown="sqrt")),
        ("plateau(patience=3, reductions=[5])", Plateau(patience=3, reductions=(5,))),
        (
            "warmup(100, cosine(900, floor=0.05), start=0.01)",
            Warmup(100, Cosine(900, floor=0.05), start=0.01),
        ),
        ("warmup(10)", Warmup(10, Constant())),
        ("warmup(10, kind=exponential, start=0.1)", Warmup(10, start=0.1, shape="exponential")),
        (
            "join(constant(), 500, exponential(0.999))",
            Join((Constant(), Exponential(0.999)), (500,)),
        ),
        ("scale(cosine(10), 0.5)", Scale(Cosine(10), 0.5)),
        ("floor(exponential(0.9), 0.1)", Floor(Exponential(0.9), 0.1)),
        ("  warmup ( 5 ,\n cosine( 10 ) , ) ", Warmup(5, Cosine(10))),
    ],
)
def test_parse(spec: str, expected: object) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "constant()",
        "step(30)",
        "step(30, gamma=0.5)",
        "multistep([30, 60])",
        "multistep([])",
        "exponential(0.999)",
        "linear(1000, start=0.5, end=1.5)",
        "polynomial(100, power=2.0, end=0.01)",
        "cosine(900, floor=0.05)",
        "restarts(500, mult=1.5, decay=0.8, floor=0.01)",
        "cyclic(2000, down=1000, low=0.05, mode=exp_range, gamma=0.9999)",
        "onecycle(10000, pct_start=0.25, div_factor=10.0, final_div_factor=100.0, "
        "anneal=linear, three_phase=True, max_momentum=0.9, base_momentum=0.8, "
        "cycle_momentum=False)",
        "inverse_sqrt(4000)",
        "wsd(8000, 1500, cooldown=sqrt, floor=0.1, cycles=1.0)",
        "plateau(factor=0.5, patience=3, threshold=0.01, threshold_mode=abs, mode=max, "
        "cooldown=2, min_scale=0.001, eps=0.0, reductions=[10, 20, 20])",
        "warmup(100, cosine(900, floor=0.05))",
        "warmup(100, start=0.0, kind=cosine)",
        "warmup(100, plateau(factor=0.5), start=0.1, kind=sqrt)",
        "join(constant(), 500, exponential(0.999), 900, scale(cosine(100), 0.1))",
        "floor(scale(restarts(7), 2.0), 0.1)",
        "join(warmup(10, onecycle(100)), 110, plateau())",
    ],
)
def test_canonical_specs_round_trip_exactly(spec: str) -> None:
    schedule = parse(spec)
    assert str(schedule) == spec
    assert parse(str(schedule)) == schedule
    assert repr(schedule) == f"parse({spec!r})"
    assert format_spec(schedule) == spec


def test_floats_print_with_repr_and_round_trip() -> None:
    for value in (0.1, 1 / 3, 1e-300, 5e-324, 0.30000000000000004, 1e-05):
        s = Cosine(10, floor=value)
        assert str(s) == f"cosine(10, floor={value!r})"
        assert parse(str(s)).floor == value  # type: ignore[attr-defined]


def test_defaults_are_omitted_and_non_defaults_kept() -> None:
    assert str(Step(30, gamma=0.1)) == "step(30)"
    assert str(Warmup(10, Constant(), start=0.01)) == "warmup(10)"
    assert str(Warmup(10, Constant(), start=0.0)) == "warmup(10, start=0.0)"
    assert str(Cyclic(10, down=10)) == "cyclic(10, down=10)"
    assert parse("cyclic(10, down=10)") != parse("cyclic(10)")  # equal curves, other params


# ---------------------------------------------------------------------------------- errors
def _error(spec: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(spec)
    assert isinstance(info.value, ValueError)
    return info.value


def _caret_at(err: SpecError) -> int:
    lines = str(err).splitlines()
    assert lines[1] == "  " + err.spec
    return lines[2].index("^") - 2


def test_unknown_kind_points_at_it_and_lists_kinds() -> None:
    err = _error("warmup(100, cosin(900))")
    assert err.position == 12 == _caret_at(err)
    text = str(err)
    assert "unknown schedule kind 'cosin' (did you mean 'cosine'?)" in text
    assert "spec='warmup(100, cosin(900))'" in text
    assert "valid kinds: constant, step, multistep, exponential, linear" in text
    assert "plateau, warmup, join, scale, floor" in text
    assert err.one_line == (
        "unknown schedule kind 'cosin' (did you mean 'cosine'?) at position 12 in spec "
        "'warmup(100, >>>cosin(900))'; " + err.hint
    )
    assert "\n" not in err.one_line


def test_unknown_parameter_lists_valid_parameters() -> None:
    err = _error("cosine(900, flor=0.1)")
    assert err.position == 12 == _caret_at(err)
    assert "unknown parameter 'flor' of cosine (did you mean 'floor'?)" in str(err)
    assert err.hint == "valid parameters: cosine(steps, *, floor=0.0)"


def test_missing_parameter() -> None:
    err = _error("cosine(floor=0.1)")
    assert "missing parameter 'steps' of cosine" in str(err)
    assert err.position == len("cosine(floor=0.1")
    assert "valid parameters: cosine(steps, *, floor=0.0)" in str(err)
    err = _error("multistep(gamma=0.5)")
    assert "missing parameter 'milestones' of multistep" in str(err)


def test_duplicate_parameter() -> None:
    err = _error("step(30, gamma=0.1, gamma=0.2)")
    assert "parameter 'gamma' of step given twice" in str(err)
    assert err.position == 20
    err = _error("cosine(100, steps=100)")
    assert "parameter 'steps' of cosine given twice" in str(err)


def test_too_many_positional_and_order() -> None:
    err = _error("step(30, 0.5)")
    assert "step takes 1 positional argument(s) (size); name the others" in str(err)
    assert err.position == 9
    err = _error("warmup(start=0.1, 10)")
    assert "positional argument after a named one" in str(err)


@pytest.mark.parametrize(
    ("spec", "message", "position"),
    [
        ("cosine(-5)", "steps must be an integer >= 1, but got steps=-5", 7),
        ("cosine(900.5)", "steps must be an integer >= 1, but got steps=900.5", 7),
        ("cosine(100, floor=nan)", "floor must be a finite number, but got floor=nan", 18),
        ("cosine(100, floor=-0.1)", "floor must be a number >= 0, but got floor=-0.1", 18),
        ("exponential(inf)", "gamma must be a finite number, but got gamma=inf", 12),
        (
            "cyclic(10, mode=sawtooth)",
            "mode must be one of 'triangular', 'triangular2', 'exp_range', but got mode='sawtooth'",
            16,
        ),
        (
            "warmup(10, start=0, kind=exponential)",
            "start must be a number > 0 when kind='exponential', but got start=0.0",
            17,
        ),
        (
            "join(constant(), 50, constant(), 20, constant())",
            "boundaries[1] must be an integer > the previous boundary 50",
            33,
        ),
        ("multistep([10, -1])", "milestones must be an integer >= 0, but got milestones=-1", 10),
    ],
)
def test_invalid_values_name_argument_and_value(spec: str, message: str, position: int) -> None:
    err = _error(spec)
    assert message in str(err)
    assert err.position == position


@pytest.mark.parametrize(
    ("spec", "reason", "position"),
    [
        ("", "empty spec", 0),
        ("cosine(100", "expected ',' or ')', found the end of the spec", 10),
        ("cosine(100))", "unexpected ')' after the schedule", 11),
        ("cosine(100 200)", "expected ',' or ')', found '200'", 11),
        ("cosine(100, floor=)", "expected a value, found ')'", 18),
        ("cosine(100) # note", "unexpected character '#'", 12),
        ("100", "expected a schedule", 0),
        ("'cosine'", "expected a schedule", 0),
        ("cosine([100])", "'steps' of cosine must be an integer", 7),
        ("cosine(constant())", "'steps' of cosine must be an integer", 7),
        ("multistep(30)", "'milestones' of multistep must be a list like [30, 60]", 10),
        ("multistep([constant()])", "'milestones' of multistep must be an integer", 11),
        ("warmup(10, 20)", "expected a schedule for 'schedule'", 11),
        ("onecycle(100, three_phase=yes)", "'three_phase' of onecycle must be True or False", 26),
        ("cyclic(10, mode=3)", "'mode' of cyclic must be one of triangular, triangular2", 16),
        ("join(constant(), 10)", "join needs an odd number >= 3 of arguments, got 2", 0),
        ("join(constant(), 1.5, constant())", "expected an integer step boundary", 17),
        ("join(constant(), 10, constant(), at=3)", "join takes no named parameters", 33),
        ("cosine(1.2.3)", "expected ',' or ')', found '.3'", 10),
    ],
)
def test_malformed_specs(spec: str, reason: str, position: int) -> None:
    err = _error(spec)
    assert reason in str(err)
    assert err.position == position == _caret_at(err)


def test_nesting_limit_is_a_spec_error_not_a_recursion_error() -> None:
    deepest = "scale(" * 99 + "cosine(10)" + ", 0.5)" * 99  # 100 nested calls
    assert parse(deepest)(0) == 0.5**99
    too_deep = "scale(" + deepest + ", 0.5)"
    err = _error(too_deep)
    assert "nesting deeper than 100 levels" in str(err)
    assert err.position == too_deep.index("cosine") == _caret_at(err)
    err = _error("multistep(" + "[" * 5000 + "]" * 5000 + ")")
    assert "nesting deeper than 100 levels" in str(err)
    assert err.position == len("multistep(") + 99


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="spec must be a schedule spec string"):
        parse(42)  # type: ignore[arg-type]
    assert parse(Cosine(10)) == Cosine(10)  # type: ignore[arg-type]


def test_format_spec_rejects_foreign_schedules() -> None:
    from lrkit.schedules import Schedule

    class Mine(Schedule):
        def _at(self, step: int) -> float:
            return 1.0

        def _values(self, steps):  # type: ignore[no-untyped-def]
            return steps * 0.0 + 1.0

    with pytest.raises(TypeError, match="Mine has no spec form"):
        format_spec(Mine())


# ---------------------------------------------------------------------------------- registry
def test_kinds_registry_covers_every_kind_with_working_examples() -> None:
    infos = kinds()
    assert all(isinstance(k, KindInfo) for k in infos)
    names = [k.name for k in infos]
    assert names == [
        "constant", "step", "multistep", "exponential", "linear", "polynomial", "cosine",
        "restarts", "cyclic", "onecycle", "inverse_sqrt", "wsd", "plateau",
        "warmup", "join", "scale", "floor",
    ]  # fmt: skip
    for info in infos:
        assert info.summary, info.name
        schedule = parse(info.example)
        assert parse(str(schedule)) == schedule
        assert info.name in info.example
        assert info.signature.startswith(info.name + "(")
        assert info.torch or info.hf or info.name in ("scale", "floor"), info.name
        assert info.composition == (info.name in ("warmup", "join", "scale", "floor"))


def test_kinds_registry_parameters() -> None:
    cosine = next(k for k in kinds() if k.name == "cosine")
    assert [(p.name, p.default) for p in cosine.params] == [("steps", None), ("floor", "0.0")]
    cyclic = next(k for k in kinds() if k.name == "cyclic")
    mode = next(p for p in cyclic.params if p.name == "mode")
    assert mode.default == "triangular"
    assert mode.choices == ("triangular", "triangular2", "exp_range")
    assert mode.type == "choice"
    assert [p.type for p in cosine.params] == ["int", "real"]
    warm = next(k for k in kinds() if k.name == "warmup")
    assert warm.signature == ("warmup(steps, schedule=constant(), *, start=0.01, kind=linear)")
    assert [p.name for p in warm.params] == ["steps", "schedule", "start", "kind"]
