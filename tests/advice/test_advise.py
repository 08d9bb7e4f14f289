"""The advisor against the reference table (shared/reference/advice.md) and the scaling rules."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.advice import ARCHITECTURES, OPTIMIZERS, advise, normalize_optimizer
from lrkit.advice import _table as T
from lrkit.schedules import parse


# ----------------------------------------------------------------- reference table values
@pytest.mark.parametrize(
    ("optimizer", "arch", "fine_tuning", "lr", "source"),
    [
        ("adam", "mlp", False, 3e-4, "common practice"),  # Karpathy's constant
        ("adam", "cnn", False, 1e-3, "common practice"),
        ("adam", "transformer", False, 3e-4, "common practice"),  # 3e-4 with warmup
        ("adamw", "transformer", False, 3e-4, "common practice"),  # GPT-style
        ("adamw", "resnet", True, 1e-5, "Devlin et al. 2019"),  # fine-tuning
        ("adamw", "transformer", True, 1e-5, "Devlin et al. 2019"),
        ("adamw", "vit", False, 1e-4, "Dosovitskiy et al. 2021"),  # ViT: 1e-4 .. 1e-5
        ("sgd+momentum", "cnn", False, 1e-2, "common practice"),
        ("sgd_momentum", "resnet", False, 1e-1, "He et al. 2016"),
        ("nesterov", "resnet", False, 1e-1, "He et al. 2016"),
        ("sgd", "lstm", False, 1.0, "Zaremba et al. 2014"),  # LSTM LM, clipped gradients
    ],
)
def test_reference_table_values(
    optimizer: str, arch: str, fine_tuning: bool, lr: float, source: str
) -> None:
    advice = advise(optimizer, arch, fine_tuning=fine_tuning)
    assert advice.lr == lr
    assert not advice.fallback
    assert advice.reasons[0].topic == "learning rate"
    assert advice.reasons[0].source == source
    low, high = advice.lr_range
    assert low < advice.lr < high


@pytest.mark.parametrize(
    ("optimizer", "arch", "default"),
    [
        ("adam", "rnn", 1e-3),  # "any | unknown | Adam-family 1e-3"
        ("adamw", "mlp", 1e-3),
        ("sgd", "gnn", 1e-2),  # "SGD 1e-2"
        ("sgd_momentum", "transformer", 1e-2),
        ("rmsprop", "cnn", 1e-3),
        ("adagrad", "mlp", 1e-2),
    ],
)
def test_unknown_combination_falls_back_with_a_note(
    optimizer: str, arch: str, default: float
) -> None:
    advice = advise(optimizer, arch)
    assert advice.fallback
    assert advice.lr == default
    assert any(note.startswith("no table entry for") for note in advice.notes)


def test_lion_is_adamw_divided_by_three() -> None:
    for arch in ARCHITECTURES:
        adamw = advise("adamw", arch)
        lion = advise("lion", arch)
        if adamw.fallback:
            assert lion.fallback and lion.lr == 1e-4
        else:
            assert lion.lr == pytest.approx(adamw.lr / 3, rel=1e-12)
            assert lion.reasons[0].source == "Chen et al. 2023"
    assert advise("lion", "mlp", fine_tuning=True).lr == pytest.approx(1e-5 / 3, rel=1e-12)


def test_fine_tuning_without_an_entry_falls_back() -> None:
    advice = advise("sgd", "cnn", fine_tuning=True)
    assert advice.fallback and advice.lr == 1e-2
    assert "fine-tuning with sgd" in advice.notes[0]


# ----------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("SGD+momentum", "sgd_momentum"),
        ("sgd-momentum", "sgd_momentum"),
        ("sgd_momentum", "sgd_momentum"),
        ("sgd momentum", "sgd_momentum"),
        ("SGDM", "sgd_momentum"),
        ("NAG", "nesterov"),
        ("AdamW", "adamw"),
    ],
)
def test_optimizer_spellings(spelling: str, name: str) -> None:
    assert normalize_optimizer(spelling) == name


def test_architecture_aliases() -> None:
    assert advise("adam", "LSTM").architecture == "rnn"
    assert advise("adam", "GRU").architecture == "rnn"


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"optimizer must be one of sgd, sgd_momentum.*'adamx'"):
        advise("adamx", "mlp")
    with pytest.raises(ValueError, match=r"architecture must be one of mlp, cnn.*'unet'"):
        advise("adam", "unet")
    with pytest.raises(ValueError, match="architecture"):
        advise("adam", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 32, "reference_batch_size": -1}, "reference_batch_size"),
        ({"reference_batch_size": 256}, "batch_size"),
        ({"total_steps": 5}, "total_steps"),
        ({"total_steps": 1.5}, "total_steps"),
        ({"fine_tuning": "yes"}, "fine_tuning"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        advise("adam", "mlp", **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------- batch-size scaling
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(OPTIMIZERS),
    st.sampled_from(ARCHITECTURES),
    st.integers(1, 65536),
    st.integers(1, 4096),
)
def test_scaling_formulas(optimizer: str, arch: str, batch: int, ref: int) -> None:
    base = advise(optimizer, arch)
    scaled = advise(optimizer, arch, batch_size=batch, reference_batch_size=ref)
    k = batch / ref
    expected = k if optimizer in ("sgd", "sgd_momentum", "nesterov") else math.sqrt(k)
    assert scaled.scale_factor == pytest.approx(expected, rel=1e-12)
    assert scaled.lr == pytest.approx(base.lr * expected, rel=1e-12)
    assert scaled.lr_range[0] == pytest.approx(base.lr_range[0] * expected, rel=1e-12)
    assert scaled.lr_range[1] == pytest.approx(base.lr_range[1] * expected, rel=1e-12)
    assert scaled.base_lr == base.lr
    assert scaled.scaling == (
        "linear" if optimizer in ("sgd", "sgd_momentum", "nesterov") else "sqrt"
    )
    if k > 1:
        assert any("critical batch size (McCandlish" in n for n in scaled.notes)


def test_goyal_example_linear_rule() -> None:
    # Goyal et al.: lr 0.1 per 256 images -> 3.2 at batch 8192
    advice = advise("sgd_momentum", "resnet", batch_size=8192, reference_batch_size=256)
    assert advice.lr == pytest.approx(3.2, rel=1e-12)
    assert not any("8192:" in n or "> 8192" in n for n in advice.notes)
    beyond = advise("sgd_momentum", "resnet", batch_size=16384)
    assert beyond.reference_batch_size == 256  # the table's published batch size
    assert beyond.lr == pytest.approx(6.4, rel=1e-12)
    assert any("> 8192" in n and "Goyal" in n for n in beyond.notes)
    assert any("reference_batch_size not given" in n for n in beyond.notes)


def test_sqrt_rule_for_adam() -> None:
    advice = advise("adamw", "transformer", batch_size=1024, reference_batch_size=256)
    assert advice.lr == pytest.approx(3e-4 * 2, rel=1e-12)
    assert advice.reasons[1].source == "Hoffer et al. 2017; Malladi et al. 2022"


def test_extrapolated_rules_say_so() -> None:
    advice = advise("lion", "transformer", batch_size=512, reference_batch_size=256)
    assert any("extrapolated" in n for n in advice.notes)


def test_batch_without_reference_is_not_scaled_and_says_so() -> None:
    advice = advise("adam", "mlp", batch_size=512)
    assert advice.scale_factor == 1.0 and advice.lr == 3e-4
    assert any("no scaling applied" in n for n in advice.notes)


# ----------------------------------------------------------------- schedules
def test_transformer_warmup_cosine() -> None:
    advice = advise("adamw", "transformer", total_steps=10_000)
    assert advice.schedule == "warmup(500, cosine(9500))"
    assert advice.warmup_steps == 500  # 5% of 10000
    s = parse(advice.schedule)
    assert s(500) == 1.0
    assert s(0) == pytest.approx(0.01)
    assert s(9999) == pytest.approx(0.5 * (1 + math.cos(math.pi * 9499 / 9500)))
    # capped at the original Transformer's 4000 steps
    assert advise("adamw", "transformer", total_steps=1_000_000).warmup_steps == 4000


def test_transformer_without_budget_is_inverse_sqrt() -> None:
    advice = advise("adamw", "vit")
    assert advice.schedule == "warmup(4000, inverse_sqrt(4000))"


def test_fine_tuning_is_linear_decay_with_ten_percent_warmup() -> None:
    advice = advise("adamw", "transformer", fine_tuning=True, total_steps=3000)
    assert advice.schedule == "warmup(300, linear(2700))"
    s = parse(advice.schedule)
    assert s(300) == 1.0 and s(1650) == pytest.approx(0.5) and s(3000) == 0.0


def test_quick_is_one_cycle_and_unknown_budget_is_plateau() -> None:
    quick = advise("adam", "cnn", quick=True, total_steps=1000)
    assert quick.schedule.startswith("onecycle(1000")
    assert quick.warmup_steps == 300
    plateau = advise("adam", "cnn")
    assert parse(plateau.schedule).stateful
    assert any("give total_steps" in n for n in plateau.notes)


def test_resnet_step_decay_milestones_are_absolute_with_warmup() -> None:
    plain = parse(advise("sgd_momentum", "resnet", total_steps=9000).schedule)
    warm = advise("sgd_momentum", "resnet", batch_size=1024, total_steps=9000)
    assert warm.warmup_steps == 450  # 5% of 9000 (Goyal's gradual warmup)
    scaled = parse(warm.schedule)
    for s in (plain, scaled):
        v = s.values(9000)
        assert v[2999] == pytest.approx(1.0) and v[3000] == pytest.approx(0.1)
        assert v[5999] == pytest.approx(0.1) and v[6000] == pytest.approx(0.01)
    assert scaled(0) < 0.05 and scaled(450) == 1.0


def test_every_combination_gives_a_parsable_schedule() -> None:
    for opt, arch, ft, quick, total in itertools.product(
        OPTIMIZERS, ARCHITECTURES, (False, True), (False, True), (None, 10, 777, 123_456)
    ):
        advice = advise(
            opt,
            arch,
            fine_tuning=ft,
            quick=quick,
            total_steps=total,
            batch_size=512,
            reference_batch_size=128,
        )
        schedule = parse(advice.schedule)
        assert str(schedule) == advice.schedule
        if total is not None:
            values = schedule.values(total)
            assert np.all(np.isfinite(values)) and np.all(values >= 0)
            assert values.max() == pytest.approx(1.0)
            assert 0 <= advice.warmup_steps < total
        assert len(advice.reasons) >= 3
        assert all(r.source and r.why for r in advice.reasons)


def test_to_dict_is_json_and_str_names_sources() -> None:
    advice = advise("sgdm", "resnet", batch_size=512, total_steps=1000)
    data = json.loads(json.dumps(advice.to_dict()))
    assert data["lr"] == pytest.approx(0.2)
    assert data["schedule"] == advice.schedule
    assert {r["source"] for r in data["reasons"]} >= {"He et al. 2016", "Goyal et al. 2017"}
    text = str(advice)
    assert "Goyal et al. 2017" in text and "0.2" in text and advice.schedule in text


def test_table_sources_exist() -> None:
    for entry in [
        *T.ENTRIES.values(),
        *T.FINE_TUNING_ENTRIES.values(),
        *T.OPTIMIZER_DEFAULTS.values(),
    ]:
        assert entry.source in T.SOURCES
        assert entry.low < entry.lr < entry.high
    assert set(T.SCALING) == set(OPTIMIZERS) == set(T.OPTIMIZER_DEFAULTS)


@pytest.mark.parametrize(
    ("optimizer", "arch", "fine_tuning"),
    [("adam", "mlp", False), ("adamw", "transformer", False), ("lion", "gnn", True)],
)
def test_search_range_reason_states_the_real_factors(
    optimizer: str, arch: str, fine_tuning: bool
) -> None:
    advice = advise(optimizer, arch, fine_tuning=fine_tuning)
    low, high = advice.lr_range
    reason = next(r for r in advice.reasons if r.topic == "search range")
    below, above = advice.lr / low, high / advice.lr
    assert reason.why.startswith(f"{below:.2g}x below to {above:.2g}x above the starting point")
