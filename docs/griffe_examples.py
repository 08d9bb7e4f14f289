"""Griffe extension: read lrkit's docstrings the way they are written.

- Doctests sit under ``Example:``; griffe's Google parser knows ``Examples:``. Renaming the
  section before parsing renders the ``>>>`` lines as code instead of markdown text.
- Sphinx roles (``:func:`find_lr```, ``:class:`~lrkit.finder.RangeTest```) become inline code
  (the last component for ``~`` names), instead of showing the role markup.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _TITLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(_role, text)
