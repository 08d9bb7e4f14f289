from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.tuning import DEFAULT_LR_RANGE, grid_values, parse_space
from lrkit.tuning._space import space_to_dict


def test_default_space_is_lr_log_uniform() -> None:
    (param,) = parse_space(None)
    assert (param.name, param.kind, param.low, param.high) == ("lr", "log", *DEFAULT_LR_RANGE)


def test_declarative_space_round_trips() -> None:
    spec = {
        "lr": ("log", 1e-5, 1e-1),
        "warmup": ("float", 0.0, 0.1),
        "schedule": ["cosine(1000)", "constant()"],
        "weight_decay": ("log", 1e-6, 1e-2),
        "batch_size": [32, 64, 128],
        "layers": ("int", 1, 4),
        "momentum": 0.9,
    }
    space = parse_space(spec)
    assert [p.kind for p in space] == ["log", "float", "choice", "log", "choice", "int", "const"]
    assert space_to_dict(space) == {
        "lr": ["log", 1e-5, 1e-1],
        "warmup": ["float", 0.0, 0.1],
        "schedule": ["cosine(1000)", "constant()"],
        "weight_decay": ["log", 1e-6, 1e-2],
        "batch_size": [32, 64, 128],
        "layers": ["int", 1, 4],
        "momentum": 0.9,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lr": ("log", 1e-3, 1e-3)}, "empty"),
        ({"lr": ("log", 1e-1, 1e-3)}, "inverted"),
        ({"warmup": ("float", 0.2, 0.1)}, "inverted"),
        ({"lr": ("log", 0.0, 1.0)}, "0 < low"),
        ({"lr": ("cubic", 1e-3, 1.0)}, "kind one of"),
        ({"lr": ("log", 1e-3)}, "kind one of"),
        ({"lr": ("log", 1e-3, float("inf"))}, "finite"),
        ({"n": ("int", 1.5, 3)}, "whole-number"),
        ({"bs": []}, "non-empty list"),
        ({"bs": [32, 32]}, "distinct"),
        ({"schedule": ["cosine(1000)", "nonsense(("]}, "invalid schedule spec"),
        ({}, "non-empty mapping"),
        ({"momentum": 0.9}, "at least one searched"),
        ("lr", "mapping"),
        ([("log", 1e-3, 1)], "mapping"),
    ],
)
def test_bad_spaces_raise_value_error_naming_the_parameter(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_space(spec)


def test_error_names_the_parameter_and_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_space({"weight_decay": ("log", 1e-2, 1e-6)})
    assert "space['weight_decay']" in str(info.value)
    assert "0.01" in str(info.value)


def test_log_grid_exact_values() -> None:
    (lr,) = parse_space({"lr": ("log", 1e-5, 1e-1)})
    assert grid_values(lr, per_decade=1) == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    (lr,) = parse_space(None)
    values = grid_values(lr, per_decade=3)
    assert len(values) == 19  # 6 decades x 3 + 1
    assert values[0] == 1e-6 and values[-1] == 1.0
    assert values[3] == pytest.approx(1e-5) and values[1] == pytest.approx(10 ** (-6 + 1 / 3))


def test_other_grids() -> None:
    f, i, big, c, k = parse_space(
        {
            "w": ("float", 0.0, 0.1),
            "n": ("int", 1, 4),
            "m": ("int", 0, 1000),
            "s": ["a", "b"],
            "k": 3,
        }
    )
    assert grid_values(f) == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1])
    assert grid_values(i) == [1, 2, 3, 4]
    assert grid_values(big) == [0, 250, 500, 750, 1000]
    assert grid_values(c) == ["a", "b"]
    assert grid_values(k) == [3]


@given(
    low_exp=st.floats(-8, 0),
    width=st.floats(0.3, 6),
    per_decade=st.integers(1, 6),
)
def test_log_grid_is_geometric_and_spans_the_range(
    low_exp: float, width: float, per_decade: int
) -> None:
    low, high = 10.0**low_exp, 10.0 ** (low_exp + width)
    (p,) = parse_space({"lr": ("log", low, high)})
    values = grid_values(p, per_decade=per_decade)
    assert values[0] == pytest.approx(low, rel=1e-9) and values[-1] == pytest.approx(high, rel=1e-9)
    assert len(values) == max(2, round(math.log10(high / low) * per_decade) + 1)
    ratios = [math.log(b / a) for a, b in zip(values, values[1:], strict=False)]
    assert all(r == pytest.approx(ratios[0], rel=1e-6) for r in ratios)
