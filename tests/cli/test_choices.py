"""Options with a fixed set of values list them in ``--help`` and complete them in the shell,
and the sets are the library's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lrkit.cli import main
from lrkit.cli._options import EarlyStopping, FinderSchedule, Ramp, Strategy


def test_the_cli_choices_are_the_library_values() -> None:
    import torch

    from lrkit.finder import SCHEDULES, find_lr, ramp
    from lrkit.tuning import EARLY_STOPPING, STRATEGIES

    assert [c.value for c in FinderSchedule] == list(SCHEDULES)
    assert [c.value for c in Strategy] == list(STRATEGIES)
    assert [c.value for c in EarlyStopping] == list(EARLY_STOPPING)
    for mode in Ramp:  # every CLI value is a ramp find_lr accepts ...
        assert len(ramp(1e-4, 1.0, 5, mode=mode.value)) == 5
    model = torch.nn.Linear(2, 1)
    data = [(torch.zeros(4, 2), torch.zeros(4, 1))]
    with pytest.raises(ValueError, match="mode"):  # ... and others are not
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        find_lr(model, opt, torch.nn.functional.mse_loss, data, mode="cosine")


@pytest.mark.parametrize(
    ("verb", "shown"),
    [
        ("find", ["exp|linear", "constant|cosine"]),
        ("tune", ["grid|random|qmc|tpe|gp", "none|median|asha|hyperband"]),
    ],
)
def test_help_lists_the_choices(
    verb: str, shown: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main([verb, "--help"]) == 0
    out = capsys.readouterr().out
    for choices in shown:
        assert choices in out


def _complete(words: str) -> list[str]:
    """What bash completion offers after ``words`` (the real entry point, as the shell runs it)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(cword), _LRKIT_COMPLETE="complete_bash")
    code = "from lrkit.cli import run; run()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    return done.stdout.split()


def test_shell_completion_offers_the_choices_and_names() -> None:
    assert _complete("lrkit tune --strategy ") == ["grid", "random", "qmc", "tpe", "gp"]
    assert _complete("lrkit find --schedule co") == ["constant", "cosine"]
    # the advisor also takes other spellings; completion offers the canonical names
    assert _complete("lrkit advise --optimizer ada") == ["adam", "adamw", "adagrad"]
    assert _complete("lrkit sch") == ["schedule"]


def test_completion_script_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--show-completion", "bash"]) == 0
    assert "_LRKIT_COMPLETE=complete_bash" in capsys.readouterr().out
