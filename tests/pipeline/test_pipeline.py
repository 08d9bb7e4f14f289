"""``lrkit.auto`` end to end on a built-in task and on a user setup (small, seeded, CPU)."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from lrkit._setup import Setup
from lrkit.advice import fmt_lr
from lrkit.pipeline import AutoResult, auto, code_snippet, infer_architecture, infer_optimizer
from lrkit.pipeline._pipeline import finder_schedule
from lrkit.schedules import parse

torch.set_num_threads(1)


# ----------------------------------------------------------------- inference
def _params() -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1), "sgd"),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "sgd_momentum"),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), "nesterov"),
        (lambda p: torch.optim.Adam(p), "adam"),
        (lambda p: torch.optim.AdamW(p), "adamw"),
        (lambda p: torch.optim.RMSprop(p), "rmsprop"),
        (lambda p: torch.optim.Adagrad(p), "adagrad"),
    ],
)
def test_infer_optimizer(make: Callable[[Any], torch.optim.Optimizer], name: str) -> None:
    assert infer_optimizer(make(_params())) == name


def test_infer_optimizer_unknown() -> None:
    with pytest.raises(ValueError, match="optimizer must be an optimizer the advisor knows"):
        infer_optimizer(torch.optim.LBFGS(_params()))


class BasicBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


@pytest.mark.parametrize(
    ("model", "arch"),
    [
        (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), "mlp"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(2)), "cnn"),
        (nn.Sequential(BasicBlock(), nn.Flatten()), "resnet"),
        (nn.LSTM(4, 8), "rnn"),
        (nn.TransformerEncoderLayer(16, 2, batch_first=True), "transformer"),
    ],
)
def test_infer_architecture(model: nn.Module, arch: str) -> None:
    assert infer_architecture(model) == arch


def test_infer_architecture_unknown() -> None:
    with pytest.raises(ValueError, match="pass architecture=NAME"):
        infer_architecture(nn.ReLU())


@pytest.mark.parametrize(
    ("spec", "total", "family"),
    [
        ("warmup(50, cosine(950))", 1000, "cosine"),
        ("cosine(100)", None, "cosine"),
        ("onecycle(300)", 300, "cosine"),  # ends far below its peak
        ("warmup(300, linear(2700))", 3000, "cosine"),
        ("multistep([3000, 6000])", 9000, "cosine"),  # ends at 1% of the peak
        ("exponential(0.99)", 100, "constant"),  # ends at 37% of the peak
        ("warmup(4000, inverse_sqrt(4000))", 10000, "constant"),  # ends at 63% of the peak
        ("plateau()", 300, "constant"),
        ("onecycle(300)", None, "constant"),  # no budget: nothing to decide on
    ],
)
def test_finder_schedule(spec: str, total: int | None, family: str) -> None:
    assert finder_schedule(spec, total) == family


# ----------------------------------------------------------------- the snippet runs
@pytest.mark.parametrize(
    ("optimizer", "cls"), [("adamw", torch.optim.AdamW), ("nesterov", torch.optim.SGD)]
)
def test_code_snippet_is_runnable(optimizer: str, cls: type) -> None:
    spec = "warmup(3, cosine(7))"
    code = code_snippet(optimizer, 0.01, spec, 10, {"weight_decay": 0.05})
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    data = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(10)]
    namespace: dict[str, Any] = {
        "model": model,
        "train_loader": data,
        "loss_fn": nn.functional.mse_loss,
    }
    exec(compile(code, "<snippet>", "exec"), namespace)  # noqa: S102 - the point of the test
    opt = namespace["optimizer"]
    assert isinstance(opt, cls)
    assert opt.defaults["weight_decay"] == 0.05
    if optimizer == "nesterov":
        assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    # after 10 optimizer steps the lr is lr * schedule(10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * parse(spec)(10), rel=1e-12)


def test_code_snippet_lines_fit_a_terminal() -> None:
    long = code_snippet(
        "nesterov", 0.1, "cosine(900)", 900, {"weight_decay": 5e-4, "dampening": 0.1}
    )
    short = code_snippet("adam", 3e-4, "cosine(900)", 900)
    assert max(len(line) for line in (long + short).splitlines()) <= 79
    assert "optimizer = torch.optim.Adam(model.parameters(), lr=3e-04)" in short
    assert "optimizer = torch.optim.SGD(\n    model.parameters(),\n    lr=0.1,\n" in long
    compile(long, "<snippet>", "exec")


# ----------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def digits_result(tmp_path_factory: pytest.TempPathFactory) -> AutoResult:
    out = tmp_path_factory.mktemp("report")
    seen: list[tuple[str, int, int]] = []
    result = auto(
        task="digits",
        train_steps=60,
        range_steps=40,
        out=out,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    assert seen[0] == ("range test", 0, 40) and ("range test", 40, 40) in seen
    range_calls = [done for stage, done, _ in seen if stage == "range test"]
    assert range_calls == sorted(range_calls)
    race_calls = [(done, total) for stage, done, total in seen if stage == "race"]
    assert race_calls[0][0] == 0 and race_calls[-1][0] == race_calls[-1][1]
    # each check run of the closed loop reports its steps 0..60
    training = [done for stage, done, _ in seen if stage == "training"]
    assert training == list(range(61)) * len(result.attempts)
    return result


def test_auto_on_digits(digits_result: AutoResult) -> None:
    r = digits_result
    assert (r.name, r.optimizer, r.architecture) == ("digits", "adam", "mlp")
    assert r.inferred == {
        "optimizer": "adam (read from the task)",
        "architecture": "mlp (read from the task)",
    }
    # the schedule is the advisor's for the 60-step budget ...
    assert r.schedule == r.advice.schedule == "cosine(60)"
    assert r.total_steps == 60
    # ... the range test's quick answer for that schedule is kept next to the race's ...
    assert r.suggestion == r.range_test.suggest(schedule="cosine").lr
    assert r.race is not None and r.race.range_test is r.range_test
    assert r.race.schedule == "cosine(60)" and r.race.total_steps == 60
    # ... and the lr is the race's winner (unless the check runs moved it)
    assert r.lr_source.startswith("race")
    assert r.race.lr is not None and r.attempts[0].lr == r.race.lr
    assert (
        r.lr == r.attempts[-1].lr
        if r.attempts[-1].factor is None
        else r.lr in {a.lr for a in r.attempts}
    )
    assert r.budget == 3 and r.spent_steps == r.race.spent_steps <= 3 * 60
    assert r.lr_range is None or r.lr_range[0] < r.lr_range[1]
    # the finder's default sweep 1e-7 .. 10, widened where the advisor's range reaches beyond
    low, high = r.advice.lr_range
    assert r.range_test.settings["start_lr"] == pytest.approx(min(1e-7, low / 100))
    assert r.range_test.settings["end_lr"] == pytest.approx(max(10.0, high * 10))
    # the (last) check run used its lr and the schedule
    last = r.attempts[-1].lr
    assert len(r.training.train_loss) == 60
    assert r.training.lrs[0] == pytest.approx(last * parse("cosine(60)")(0))
    assert r.training.lrs[30] == pytest.approx(last * parse("cosine(60)")(30))
    assert r.diagnosis is not None and isinstance(r.diagnosis.verdict, str)
    assert isinstance(r.guard_events, list)


def test_auto_report_files(digits_result: AutoResult) -> None:
    paths = digits_result.report
    assert {"html", "markdown", "json", "range_test", "race", "schedule", "training"} <= set(paths)
    for key in ("range_test", "race", "schedule", "training"):
        assert paths[key].read_bytes().startswith(b"\x89PNG")
    md = paths["markdown"].read_text()
    assert "![" in md and "range_test.png" in md and "training.png" in md
    assert "from lrkit.schedules import attach" in md
    assert digits_result.schedule in md
    data = json.loads(paths["json"].read_text())
    assert data["lr"] == digits_result.lr and data["schedule"] == digits_result.schedule
    html = paths["html"].read_text()
    # four plots, each once as a thumbnail at the top (linking to its section) and once in it
    assert html.count("data:image/png;base64,") == 8
    assert re.findall(r'<a class="thumb" href="#([^"]+)"', html) == [
        "range-test",
        "race",
        "schedule",
        "diagnosis",
    ]
    for anchor in ("range-test", "race", "cost", "schedule", "diagnosis"):
        assert f'<section id="{anchor}">' in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.browser
def test_auto_report_in_chromium(
    digits_result: AutoResult, chromium_probe: Callable[[Path], dict[str, Any]]
) -> None:
    probe = chromium_probe(digits_result.report["html"])
    assert probe["errors"] == [] and probe["console"] == []
    assert probe["resources"] == []
    assert len(probe["images"]) == 8  # 4 thumbnails + 4 plots
    assert all(i["w"] > 100 and i["h"] > 100 and i["complete"] for i in probe["images"])
    natural = [(i["w"], i["h"]) for i in probe["images"]]
    assert natural[:4] == natural[4:]  # the thumbnails are the same plots
    assert all(i["shown_w"] > 100 and i["shown_h"] > 50 for i in probe["images"])


def test_the_reported_snippet_runs_and_trains(digits_result: AutoResult) -> None:
    # the code users copy out of report.md and report.html is the result's snippet ...
    r = digits_result
    md = r.report["markdown"].read_text()
    from_md = re.search(r"```python\n(.*?)```", md, re.S)
    page = r.report["html"].read_text()
    from_html = re.search(r"<pre><code>(.*?)</code></pre>", page, re.S)
    assert from_md is not None and from_html is not None
    assert from_md.group(1) == html.unescape(from_html.group(1)) == r.snippet
    # ... and it runs as pasted: one epoch of digits with the recommended optimizer + schedule
    from lrkit.tasks import evaluate, get_task

    setup = get_task("digits").setup(seed=0)
    before = evaluate(setup)
    namespace: dict[str, Any] = {
        "model": setup.model,
        "train_loader": setup.train_loader,
        "loss_fn": setup.loss_fn,
    }
    exec(compile(r.snippet, "<report snippet>", "exec"), namespace)  # noqa: S102
    optimizer = namespace["optimizer"]
    assert isinstance(optimizer, torch.optim.Adam)
    steps = len(list(setup.train_loader))
    written = float(fmt_lr(r.lr))  # the snippet spells the lr with 3 significant digits
    assert written == pytest.approx(r.lr, rel=5e-3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(written * parse(r.schedule)(steps))
    assert evaluate(setup) < 0.5 * before


def test_range_section_marks_the_rule_used(digits_result: AutoResult) -> None:
    r = digits_result
    md = r.report["markdown"].read_text()
    if r.suggestion is None:
        assert "(used)" not in md
        return
    assert r.suggestion_reason == r.range_test.suggest(schedule=r.finder_schedule).reason
    assert f"Suggestion: {fmt_lr(r.suggestion)}, {r.suggestion_reason}" in md
    # the race's table: one row per candidate, the winner's emphasised, and the stage costs
    assert f"| **{r.race.lr:.3g} (winner)** |" in md
    assert f"| search in all | {r.race.spent_steps} |" in md
    row = next(line for line in md.splitlines() if line.startswith("| **lrkit (used)** |"))
    assert row.endswith(f"| **{fmt_lr(r.suggestion)}** |")
    assert '<tr class="chosen"><td>lrkit (used)</td>' in r.report["html"].read_text()


def test_an_unhealthy_check_run_puts_the_action_in_the_headline(
    digits_result: AutoResult,
) -> None:
    from lrkit.pipeline._content import build_content

    sick = SimpleNamespace(
        verdict="diverging",
        action=SimpleNamespace(text="divide the learning rate by 10"),
        findings=[],
        smoothed=None,
    )
    content = build_content(dataclasses.replace(digits_result, diagnosis=sick))
    assert content.headline_tone == "bad"
    assert f"The {digits_result.train_steps}-step check run is diverging (" in content.headline
    assert "The diagnosis says: divide the learning rate by 10." in content.headline
    card = next(c for c in content.cards if c.label == "Diagnosis")
    assert (card.value, card.tone) == ("diverging", "bad")
    healthy = build_content(digits_result)
    if digits_result.diagnosis.verdict == "healthy":
        assert "diagnosis says" not in healthy.headline


def test_to_dict_is_json(digits_result: AutoResult) -> None:
    data = json.loads(json.dumps(digits_result.to_dict()))
    assert data["advice"]["optimizer"] == "adam"
    assert data["range_test"]["stop_reason"] == digits_result.range_test.stop_reason
    assert data["diagnosis"]["verdict"] == digits_result.diagnosis.verdict
    assert "attach(optimizer" in data["snippet"]


def _user_setup() -> Setup:
    torch.manual_seed(1)
    x = torch.randn(256, 6)
    y = (x[:, :2].sum(1) > 0).long()
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return Setup(
        model=model,
        optimizer=opt,
        train_loader=data,
        loss_fn=nn.CrossEntropyLoss(),
        val_loader=data[:2],
    )


def test_the_seed_fixes_the_range_test_of_a_model_with_dropout() -> None:
    """Dropout draws from the global RNG: the caller's RNG state must not change the answer."""
    answers = []
    for state in (1, 2):
        setup = _user_setup()
        torch.manual_seed(0)
        setup.model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
        setup.optimizer = torch.optim.Adam(setup.model.parameters())
        torch.manual_seed(state)  # as if the caller had drawn other random numbers before
        result = auto(setup, quick=True, total_steps=400, range_steps=30, seed=5)
        answers.append((result.lr, list(result.range_test.losses)))
    assert answers[0] == answers[1]


def test_auto_on_a_user_setup_leaves_it_unchanged() -> None:
    setup = _user_setup()
    before = {k: v.clone() for k, v in setup.model.state_dict().items()}
    opt_before = [dict(g) for g in setup.optimizer.param_groups]
    result = auto(setup, train_steps=20, range_steps=20)
    assert result.optimizer == "sgd_momentum" and result.architecture == "mlp"
    assert result.inferred == {
        "optimizer": "sgd_momentum (from SGD)",
        "architecture": "mlp (from the layers of Sequential)",
    }
    assert result.optimizer_kwargs == {"weight_decay": 1e-4}
    assert "weight_decay=1e-04" in result.snippet and "momentum=0.9" in result.snippet
    assert result.report == {}
    for key, value in setup.model.state_dict().items():
        assert torch.equal(value, before[key])
    assert setup.optimizer.state == {} or all(not s for s in setup.optimizer.state.values())
    for group, old in zip(setup.optimizer.param_groups, opt_before, strict=True):
        assert group["lr"] == old["lr"]
    assert len(result.training.train_loss) == 20


def test_tasks_run_on_one_thread_and_the_count_is_restored() -> None:
    seen: set[tuple[str, int]] = set()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        auto(
            task="digits",
            train_steps=10,
            range_steps=10,
            progress=lambda stage, done, total: seen.add((stage, torch.get_num_threads())),
        )
        assert torch.get_num_threads() == 2
        # a user's setup keeps the caller's thread count
        auto(
            _user_setup(),
            train_steps=10,
            range_steps=10,
            progress=lambda stage, done, total: seen.add(
                ("user " + stage, torch.get_num_threads())
            ),
        )
    finally:
        torch.set_num_threads(before)
    assert ("range test", 1) in seen and ("training", 1) in seen
    assert ("range test", 2) not in seen and ("training", 2) not in seen
    assert ("user training", 2) in seen and ("user training", 1) not in seen


def test_auto_names_override_inference() -> None:
    result = auto(_user_setup(), optimizer="nesterov", architecture="cnn", range_steps=20)
    assert (result.optimizer, result.architecture) == ("nesterov", "cnn")
    assert result.inferred == {}
    assert result.training is None and result.diagnosis is None
    # no budget: the advisor's schedule needs none
    assert result.schedule == "plateau()"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "digits", "train_steps": 5}, "train_steps must be"),
        ({"task": "digits", "budget": -1}, "budget must be a number >= 0"),
        ({"task": "digits", "quick": True, "budget": 2}, "budget must be 0 or None"),
        ({"task": "digits", "train_steps": 10, "range_steps": 10, "budget": 1}, "is too small"),
        ({"task": "digits", "max_attempts": 0}, "max_attempts must be"),
        ({"task": "digits", "range_steps": 3}, "range_steps must be"),
        ({"task": "nope"}, "task must be one of"),
        ({"task": "digits", "optimizer": "adamx"}, "optimizer must be one of"),
        ({}, "target must be"),
    ],
)
def test_auto_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auto(**kwargs)


def test_a_bad_worker_count_is_refused_before_any_training() -> None:
    stages: list[str] = []
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        auto(task="digits", budget=3, workers=0, progress=lambda stage, *_: stages.append(stage))
    assert stages == []  # no range test ran first


def test_auto_refuses_target_and_task() -> None:
    with pytest.raises(ValueError, match="task must be None when a target is given"):
        auto(_user_setup(), task="digits")


def test_auto_out_must_not_be_a_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("")
    with pytest.raises(ValueError, match="out must be a directory"):
        auto(task="digits", out=target)


def test_auto_quick_uses_one_cycle_and_the_decaying_rule(tmp_path: Path) -> None:
    result = auto(
        task="digits", quick=True, one_cycle=True, train_steps=40, range_steps=30, max_attempts=1
    )
    assert result.race is None and result.spent_steps == len(result.range_test.train_losses)
    assert result.schedule == "onecycle(40)"
    assert result.finder_schedule == "cosine"  # one-cycle ends far below its peak
    expected = result.range_test.suggest(schedule="cosine").lr
    assert result.lr == (expected if expected is not None else result.advice.lr)
    one_cycle = parse("onecycle(40)")
    assert result.training.lrs[0] == pytest.approx(result.lr * one_cycle(0))
    assert result.training.lrs[12] == pytest.approx(result.lr * one_cycle(12))


def test_auto_budget_differs_from_check_run() -> None:
    result = auto(task="digits", total_steps=5000, train_steps=30, range_steps=20, budget=0)
    assert result.schedule == "cosine(5000)" and result.total_steps == 5000
    assert result.train_schedule == "cosine(30)"
    assert any("same kind of schedule over 30 steps" in n for n in result.notes)


class _Flat(nn.Module):
    """Output ignores the input and the weights: the range-test curve is flat."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * 0.0


def test_no_clear_answer_falls_back_to_the_advisor_and_says_why(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(4)]
    model = _Flat()
    setup = Setup(
        model=model,
        optimizer=torch.optim.Adam(model.parameters()),
        train_loader=data,
        loss_fn=nn.CrossEntropyLoss(),
    )
    result = auto(setup, range_steps=20, out=tmp_path)
    assert result.suggestion is None and result.suggestion_reason
    assert result.lr == result.advice.lr == 3e-4  # Adam + MLP
    assert result.lr_source.startswith("advisor")
    assert any(n.startswith("range test: no clear answer") for n in result.notes)
    # the report says so too, marks no rule as used and claims no measurement
    md = result.report["markdown"].read_text()
    assert "this is the advisor's generic starting point: test it with a check run" in md
    assert "the range test measured" not in md and "(used)" not in md
    assert "| lrkit | no clear answer |" in md
    assert "drawn over 1000 steps (no budget given)" in md  # plateau(): no step budget
    page = result.report["html"].read_text()
    assert page.count('<a class="thumb"') == 2  # range test and schedule: no check run


def test_without_a_run_length_an_explicit_budget_is_an_error() -> None:
    with pytest.raises(ValueError, match="total_steps must be given for a race"):
        auto(_user_setup(), range_steps=20, budget=2)


def test_the_default_budget_falls_back_to_the_quick_answer_when_a_race_cannot_fit() -> None:
    result = auto(task="digits", train_steps=10, range_steps=10, max_attempts=1)
    assert result.race is None and not result.lr_source.startswith("race")
    assert any(n.startswith("no race: budget=3 is too small") for n in result.notes)


def test_a_check_run_whose_lr_is_too_high_lowers_it_and_checks_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lrkit.pipeline import _pipeline

    # force a far too high lr for Adam: the check run goes wrong, its diagnosis asks for a
    # lower lr (a third for oscillation, a tenth for divergence); the loop follows it, at most
    # max_attempts runs
    monkeypatch.setattr(_pipeline, "_answer", lambda *args: (30.0, "forced"))
    result = auto(
        task="digits", train_steps=40, range_steps=20, budget=0, max_attempts=3, out=tmp_path
    )
    lrs = [a.lr for a in result.attempts]
    assert lrs[0] == 30.0 and len(lrs) >= 2
    for a, b in zip(result.attempts, result.attempts[1:], strict=False):
        assert a.factor is not None and b.lr == pytest.approx(a.lr * a.factor)
        assert a.decision.startswith("multiply the learning rate by")
    first = result.attempts[0]
    assert first.verdict in ("diverged", "diverging", "oscillating", "spiking")
    assert first.factor is not None
    assert first.factor < 1
    # the recommendation is the attempt that settled (or the best of them)
    assert result.lr in lrs and result.lr < 30.0
    assert "after the check runs' diagnosis" in result.lr_source
    md = result.report["markdown"].read_text()
    assert "## Check runs (closed loop)" in md
    assert md.count("| multiply the learning rate by") == len(result.attempts) - (
        result.attempts[-1].factor is None
    )


def test_without_optuna_the_default_is_the_quick_answer_with_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lrkit._optional import MissingExtraError
    from lrkit.pipeline import _pipeline

    monkeypatch.setattr(_pipeline, "_optuna_installed", lambda: False)
    with pytest.raises(MissingExtraError, match=r"budget=3 asks for the race.*lrkit\[tune\]"):
        auto(task="diabetes", budget=3)
    result = auto(task="diabetes")
    assert result.race is None and result.lr is not None
    assert any("needs Optuna" in note for note in result.notes)
