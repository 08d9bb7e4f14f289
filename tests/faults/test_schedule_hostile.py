"""Hostile numbers in every numeric parameter of every schedule kind, alone and nested.

Each spec either fails at parse time with one line that names the argument (``lrkit schedule``
exits 2 with that line; ``attach`` leaves the optimizer as it was), or gives a schedule whose
every value is finite, >= 0 and <= ``MAX_MULTIPLIER`` at steps from 0 to 2**63 - 1, where
``schedule(step)`` and ``values()`` agree, ``attach`` sets finite learning rates and
``lrkit schedule`` exits 0. Steps beyond 2**63 - 1 are refused by both paths alike.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from _proc import TALLY

from lrkit.cli import main
from lrkit.schedules import MAX_MULTIPLIER, SpecError, attach, kinds, parse

pytestmark = pytest.mark.faults

HOSTILE = [
    "1e308", "1.7976931348623157e308", "1e309", "inf", "-inf", "nan", "-1", "-0.0", "0", "0.0",
    "5e-324", "1e-320", "1e-300", "1e-7", "2e-6", "0.999999999", "1", "1e6", "1000000.0000001",
    "1e7", "4611686018427387904", "4611686018427387905", "9223372036854775807",
    "9223372036854775808", "1" + "0" * 400, "1_000",
]  # fmt: skip
PROBES = [0, 1, 2, 3, 10, 99, 100, 101, 10**6, 2**53 + 1, 2**62, 2**63 - 2, 2**63 - 1]
#: every spec checks: one-line error naming the argument (and exit 2, optimizer untouched) or
#: finite / non-negative / bounded values, both paths agreeing, finite lrs and exit 0
INVARIANTS = 4

_FILLER = {"int": "100", "int?": "100", "real": "0.5", "ints": "[10]", "schedule": "cosine(100)"}


def _params() -> list[tuple[str, str, str]]:
    """(kind, parameter, spec template with {} where the hostile number goes)."""
    out = []
    for info in kinds():
        if info.name == "join":
            out.append(("join", "boundaries", "join(constant(), {}, cosine(10))"))
            continue
        for p in info.params:
            if p.type not in _FILLER or p.type == "schedule":
                continue
            args = []
            for q in info.params:
                if q is p:
                    value = "[{}]" if q.type == "ints" else "{}"
                elif q.default is None:
                    value = _FILLER[q.type]
                else:
                    continue
                args.append(f"{q.name}={value}")
            out.append((info.name, p.name, f"{info.name}({', '.join(args)})"))
    return out


PARAMS = _params()
NESTED = [  # (template, the argument an error must name)
    ("scale(scale(constant(), {}), 10)", "factor"),
    ("scale(scale(constant(), 1e3), {})", "factor"),
    ("scale(linear(10, start=1e6), {})", "factor"),
    ("floor(scale(cosine(100), {}), 0.5)", "factor"),
    ("scale(floor(constant(), {}), 2)", ""),  # floor's minimum or scale's factor
    ("warmup(10, scale(cosine(100), {}))", "factor"),
    ("join(constant(), 5, scale(constant(), {}), 10, constant())", "factor"),
    ("onecycle(100, div_factor={}, final_div_factor=1e-3)", "div_factor"),
    ("onecycle(100, div_factor=1e-6, final_div_factor={})", "final_div_factor"),
    ("scale(onecycle(100, div_factor=1e-3), {})", "factor"),
]


def _cli(spec: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["schedule", spec, "--steps", "200", "--json"])
    return code, err.getvalue()


def _check(spec: str, name: str, cli: bool) -> bool:
    """Check one spec (``cli``: through ``lrkit schedule`` too); True when it parsed."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    try:
        schedule = parse(spec)
    except SpecError as exc:
        # one line, pointing at the number (and naming the argument when it is out of range)
        line = exc.one_line
        assert "\n" not in line and "at position" in line, (spec, line)
        assert name in line or "must be" not in line.split(" at position")[0], (spec, line)
        with pytest.raises(ValueError):
            attach(opt, spec)
        assert opt.param_groups[0]["lr"] == 0.1 and "initial_lr" not in opt.param_groups[0]
        if cli:
            code, err = _cli(spec)
            assert code == 2 and err == f"lrkit: error: {line}\n", (spec, err)
        return False
    values = schedule.values(np.asarray(PROBES, dtype=np.int64))
    assert np.all(np.isfinite(values)) and np.all(values >= 0), (spec, values)
    assert np.all(values <= MAX_MULTIPLIER), (spec, values)
    scalar = [schedule(t) for t in PROBES]
    np.testing.assert_allclose(scalar, values, rtol=1e-9, atol=1e-300, err_msg=spec)
    for beyond in (2**63, 2**64):
        with pytest.raises(ValueError, match=r"2\*\*63 - 1"):
            schedule(beyond)
        with pytest.raises(ValueError, match=r"2\*\*63 - 1"):
            schedule.values([beyond])
    sched = attach(opt, schedule)
    for _ in range(3):
        opt.step()
        sched.step()
        assert all(math.isfinite(g["lr"]) and g["lr"] >= 0 for g in opt.param_groups), spec
    if cli:
        code, err = _cli(spec)
        assert code == 0 and not err, (spec, err)
    return True


def _check_all(template: str, name: str) -> None:
    """Every hostile number; the command line for the first refused and first accepted one."""
    seen: set[bool] = set()
    for number in HOSTILE:
        parsed = _check(template.format(number), name, cli=False)
        TALLY.add(1, INVARIANTS)
        if parsed not in seen:
            seen.add(parsed)
            _check(template.format(number), name, cli=True)


@pytest.mark.parametrize(
    ("kind", "name", "template"), PARAMS, ids=[f"{k}.{n}" for k, n, _ in PARAMS]
)
def test_hostile_numbers_in_every_parameter(kind: str, name: str, template: str) -> None:
    _check_all(template, name)


@pytest.mark.parametrize(("template", "name"), NESTED)
def test_hostile_numbers_in_nested_specs(template: str, name: str) -> None:
    _check_all(template, name)


def test_the_reported_spec_is_refused_naming_the_factor() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"factor must be a number <= 1e\+06") as info:
        attach(opt, "scale(scale(constant(), 1e308), 10)")
    assert "1e+308" in str(info.value) and opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]"):
        attach(torch.optim.SGD(model.parameters(), lr=1e303), "scale(constant(), 1e6)")


def test_values_near_2_63_agree_with_calling_the_schedule() -> None:
    big = 2**62
    specs = ["exponential(0.5)", "cyclic(1000)", "linear(100, start=1, end=0.5)",
             "warmup(10, cosine(100))", "restarts(7)",
             f"join(constant(), {big}, exponential(0.9))"]  # fmt: skip
    for spec in specs:
        s = parse(spec)
        last = 2**63 - 1
        assert s.values([last - 1, last]).tolist() == pytest.approx([s(last - 1), s(last)])
        for arr in ([2**63], np.array([2**63], dtype=np.uint64), [2.0**63], [2**64]):
            with pytest.raises(ValueError, match=r"<= 2\*\*63 - 1"):
                s.values(arr)
