"""The text form of schedules: one grammar for the CLI and for configs.

Grammar (function-call style, whitespace ignored)::

    spec   := call
    call   := NAME "(" [arg ("," arg)* [","]] ")"   |  NAME        (kinds without required args)
    arg    := [NAME "="] value                      (positional arguments first)
    value  := call | NUMBER | "[" [value ("," value)*] "]" | NAME | "string"
    NUMBER := 100, 10_000, 0.05, 1e-4, -1 (ints stay ints)
    NAME   := bare word: a kind, an enum value (cos, triangular2, min), True/False/None, nan/inf

``parse(str(s)) == s`` for every schedule: :func:`format_spec` prints floats with ``repr`` and
omits parameters left at their default.

Errors are :class:`SpecError` (a ``ValueError``): the reason, the spec with a caret under the
position, and the valid kind names or the valid parameters of the kind.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import MISSING, dataclass, fields
from typing import Any

from lrkit._validate import fail
from lrkit.schedules._base import Schedule
from lrkit.schedules._compose import Floor, Join, Scale, Warmup
from lrkit.schedules._kinds import KIND_CLASSES, _Kind
from lrkit.schedules._meta import Param

__all__ = ["SpecError", "parse", "format_spec", "kinds", "KindInfo", "ParamInfo"]

_CLASSES: tuple[type[_Kind], ...] = (*KIND_CLASSES, Warmup, Join, Scale, Floor)
_BY_NAME: dict[str, type[_Kind]] = {cls.kind: cls for cls in _CLASSES}


class SpecError(ValueError):
    """A malformed schedule spec: ``reason``, ``spec``, ``position`` (0-based) and ``hint``.

    ``str(error)`` is three or four lines: the reason with the spec, the spec, a caret under the
    position, and the hint (valid names or parameters).
    """

    def __init__(self, reason: str, spec: str, position: int, hint: str = "") -> None:
        self.reason = reason
        self.spec = spec
        self.position = max(0, min(position, len(spec)))
        self.hint = hint
        lines = [
            f"{reason} at position {self.position} in spec={spec!r}",
            "  " + spec,
            "  " + " " * self.position + "^",
        ]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    @property
    def one_line(self) -> str:
        """The message on one line, with the position marked inline by ``>>>``."""
        marked = self.spec[: self.position] + ">>>" + self.spec[self.position :]
        text = f"{self.reason} at position {self.position} in spec {marked!r}"
        return f"{text}; {self.hint}" if self.hint else text


# ------------------------------------------------------------------------------ tokens
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[+-]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<punct>[()\[\],=])
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str  # num, name, str, punct, end
    text: str
    pos: int


def _tokenize(spec: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(spec):
        m = _TOKEN.match(spec, pos)
        if m is None:
            raise SpecError(f"unexpected character {spec[pos]!r}", spec, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(spec)))
    return tokens


# ------------------------------------------------------------------------------ syntax tree
@dataclass
class _Node:
    pos: int


@dataclass
class _Num(_Node):
    value: int | float


@dataclass
class _Word(_Node):
    text: str
    quoted: bool = False


@dataclass
class _List(_Node):
    items: list[_Node]


@dataclass
class _Arg:
    name: str | None
    name_pos: int
    value: _Node


@dataclass
class _Call(_Node):
    name: str
    args: list[_Arg]
    end: int


#: deepest nesting of calls and lists that a spec may have
_MAX_DEPTH = 100


class _Parser:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.toks = _tokenize(spec)
        self.i = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, reason: str, pos: int, hint: str = "") -> SpecError:
        return SpecError(reason, self.spec, pos, hint)

    def expect(self, text: str, what: str) -> _Tok:
        tok = self.peek()
        if tok.kind != "punct" or tok.text != text:
            found = "the end of the spec" if tok.kind == "end" else repr(tok.text)
            raise self.error(f"expected {what}, found {found}", tok.pos)
        return self.take()

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise self.error("empty spec", 0, _kind_hint())
        node = self.value()
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"unexpected {tok.text!r} after the schedule", tok.pos)
        return node

    def enter(self, tok: _Tok) -> None:
        """Go one call or list deeper (at ``tok``); the caller steps back out when done."""
        if self.depth >= _MAX_DEPTH:  # deeper would end in a RecursionError
            raise self.error(f"nesting deeper than {_MAX_DEPTH} levels", tok.pos)
        self.depth += 1

    def value(self) -> _Node:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            return _Num(tok.pos, _number(tok, self.spec))
        if tok.kind == "str":
            self.take()
            return _Word(tok.pos, tok.text[1:-1], quoted=True)
        if tok.kind == "name":
            self.take()
            if self.peek().kind == "punct" and self.peek().text == "(":
                self.enter(tok)
                node = self.call(tok)
                self.depth -= 1
                return node
            return _Word(tok.pos, tok.text)
        if tok.kind == "punct" and tok.text == "[":
            self.enter(tok)
            self.take()
            items: list[_Node] = []
            while not (self.peek().kind == "punct" and self.peek().text == "]"):
                items.append(self.value())
                if self.peek().kind == "punct" and self.peek().text == ",":
                    self.take()
                else:
                    break
            self.expect("]", "',' or ']'")
            self.depth -= 1
            return _List(tok.pos, items)
        found = "the end of the spec" if tok.kind == "end" else repr(tok.text)
        raise self.error(f"expected a value, found {found}", tok.pos)

    def call(self, name: _Tok) -> _Call:
        self.expect("(", "'('")
        args: list[_Arg] = []
        while not (self.peek().kind == "punct" and self.peek().text == ")"):
            tok = self.peek()
            if tok.kind == "name" and self.peek(1).kind == "punct" and self.peek(1).text == "=":
                self.take()
                self.take()
                args.append(_Arg(tok.text, tok.pos, self.value()))
            else:
                args.append(_Arg(None, tok.pos, self.value()))
            if self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
            else:
                break
        end = self.expect(")", "',' or ')'")
        return _Call(name.pos, name.text, args, end.pos)


def _number(tok: _Tok, spec: str) -> int | float:
    text = tok.text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        return float(text)
    except ValueError:
        raise SpecError(f"malformed number {tok.text!r}", spec, tok.pos) from None


# ------------------------------------------------------------------------------ building
def _kind_hint() -> str:
    return "valid kinds: " + ", ".join(_BY_NAME)


def _signature(cls: type[_Kind]) -> str:
    if cls is Join:
        return "join(schedule, step, schedule[, step, schedule ...])"
    defaults = _defaults(cls)
    parts = []
    for i, param in enumerate(cls._params):
        default = defaults.get(param.field, MISSING)
        text = param.name if default is MISSING else f"{param.name}={_fmt(default)}"
        if i == cls._positional and i > 0:
            parts.append("*")
        parts.append(text)
    return f"{cls.kind}({', '.join(parts)})"


def _param_hint(cls: type[_Kind]) -> str:
    return f"valid parameters: {_signature(cls)}"


def _defaults(cls: type[_Kind]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


_WORDS: dict[str, object] = {
    "True": True,
    "true": True,
    "False": False,
    "false": False,
    "None": None,
    "none": None,
    "null": None,
    "nan": math.nan,
    "inf": math.inf,
}


class _Builder:
    def __init__(self, spec: str) -> None:
        self.spec = spec

    def error(self, reason: str, pos: int, hint: str = "") -> SpecError:
        return SpecError(reason, self.spec, pos, hint)

    def schedule(self, node: _Node, what: str = "a schedule") -> Schedule:
        if isinstance(node, _Word) and not node.quoted:
            node = _Call(node.pos, node.text, [], node.pos + len(node.text))
        if not isinstance(node, _Call):
            raise self.error(f"expected {what}, e.g. cosine(1000)", node.pos, _kind_hint())
        cls = _BY_NAME.get(node.name)
        if cls is None:
            close = difflib.get_close_matches(node.name, list(_BY_NAME), n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(f"unknown schedule kind {node.name!r}{guess}", node.pos, _kind_hint())
        if cls is Join:
            return self.join(node)
        return self.build(cls, node)

    def join(self, node: _Call) -> Schedule:
        hint = _param_hint(Join)
        for arg in node.args:
            if arg.name is not None:
                raise self.error("join takes no named parameters", arg.name_pos, hint)
        if len(node.args) < 3 or len(node.args) % 2 == 0:
            raise self.error(
                f"join needs an odd number >= 3 of arguments, got {len(node.args)}",
                node.pos,
                hint,
            )
        pieces: list[Schedule] = []
        bounds: list[int] = []
        for i, arg in enumerate(node.args):
            if i % 2 == 0:
                pieces.append(self.schedule(arg.value))
            else:
                v = arg.value
                if not isinstance(v, _Num) or not isinstance(v.value, int):
                    raise self.error("expected an integer step boundary", v.pos, hint)
                bounds.append(v.value)
        try:
            return Join(tuple(pieces), tuple(bounds))
        except ValueError as exc:
            pos = node.pos
            m = re.match(r"boundaries\[(\d+)\]", str(exc))
            if m:
                pos = node.args[2 * int(m.group(1)) + 1].value.pos
            raise self.error(str(exc), pos, hint) from None

    def build(self, cls: type[_Kind], node: _Call) -> Schedule:
        params = cls._params
        by_name = {p.name: p for p in params}
        hint = _param_hint(cls)
        given: dict[str, tuple[Param, _Arg]] = {}
        seen_keyword = False
        positional = 0
        for arg in node.args:
            if arg.name is None:
                if seen_keyword:
                    raise self.error("positional argument after a named one", arg.value.pos, hint)
                if positional >= cls._positional:
                    names = ", ".join(p.name for p in params[: cls._positional]) or "none"
                    raise self.error(
                        f"{cls.kind} takes {cls._positional} positional argument(s) ({names}); "
                        "name the others",
                        arg.value.pos,
                        hint,
                    )
                param = params[positional]
                positional += 1
            else:
                seen_keyword = True
                found = by_name.get(arg.name)
                if found is None:
                    close = difflib.get_close_matches(arg.name, list(by_name), n=1)
                    guess = f" (did you mean {close[0]!r}?)" if close else ""
                    raise self.error(
                        f"unknown parameter {arg.name!r} of {cls.kind}{guess}", arg.name_pos, hint
                    )
                param = found
            if param.name in given:
                raise self.error(
                    f"parameter {param.name!r} of {cls.kind} given twice", arg.name_pos, hint
                )
            given[param.name] = (param, arg)
        defaults = _defaults(cls)
        for param in params:
            if param.name not in given and param.field not in defaults:
                raise self.error(f"missing parameter {param.name!r} of {cls.kind}", node.end, hint)
        kwargs = {p.field: self.convert(p, a.value, cls) for p, a in given.values()}
        try:
            return cls(**kwargs)
        except ValueError as exc:
            message = str(exc)
            pos = node.pos
            for param, arg in given.values():
                if message.startswith((f"{param.name} ", f"{param.field} ")):
                    pos = arg.value.pos
                    break
            raise self.error(message, pos, hint) from None

    def convert(self, param: Param, node: _Node, cls: type[_Kind]) -> object:
        hint = _param_hint(cls)
        kind = param.type
        if kind == "schedule":
            return self.schedule(node, f"a schedule for {param.name!r}")
        if kind == "ints":
            if not isinstance(node, _List):
                raise self.error(
                    f"{param.name!r} of {cls.kind} must be a list like [30, 60]", node.pos, hint
                )
            return tuple(self.scalar(param, item, cls, "an integer") for item in node.items)
        if kind == "choice":
            if not isinstance(node, _Word):
                choices = ", ".join(param.choices)
                raise self.error(
                    f"{param.name!r} of {cls.kind} must be one of {choices}", node.pos, hint
                )
            return node.text
        if kind == "bool":
            if isinstance(node, _Word) and not node.quoted and node.text in _WORDS:
                value = _WORDS[node.text]
                if isinstance(value, bool):
                    return value
            raise self.error(f"{param.name!r} of {cls.kind} must be True or False", node.pos, hint)
        if kind == "int?" and isinstance(node, _Word) and node.text in ("None", "none", "null"):
            return None
        expected = "an integer" if kind in ("int", "int?") else "a number"
        return self.scalar(param, node, cls, expected)

    def scalar(self, param: Param, node: _Node, cls: type[_Kind], expected: str) -> object:
        if isinstance(node, _Num):
            return node.value
        if isinstance(node, _Word) and not node.quoted and node.text in ("nan", "inf"):
            return _WORDS[node.text]
        raise self.error(
            f"{param.name!r} of {cls.kind} must be {expected}", node.pos, _param_hint(cls)
        )


def parse(spec: str) -> Schedule:
    """Parse a schedule spec such as ``"warmup(100, cosine(900, floor=0.05))"``.

    Raises :class:`SpecError` (a ValueError) pointing at the position of the problem.

    Example:
        >>> s = parse("warmup(100, cosine(900, floor=0.05), start=0.01)")
        >>> round(s(550), 6)
        0.525
        >>> parse(str(s)) == s
        True
    """
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        fail("spec", spec, "a schedule spec string such as 'cosine(1000)'")
    tree = _Parser(spec).parse()
    return _Builder(spec).schedule(tree)


# ------------------------------------------------------------------------------ formatting
def _fmt(value: object) -> str:
    if isinstance(value, Schedule):
        return format_spec(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    raise TypeError(f"cannot format {value!r} in a schedule spec")


def format_spec(schedule: Schedule) -> str:
    """The spec of ``schedule``; :func:`parse` turns it back into an equal schedule.

    Example:
        >>> from lrkit.schedules import Cosine
        >>> format_spec(Cosine(1000, floor=0.05))
        'cosine(1000, floor=0.05)'
    """
    if isinstance(schedule, Join):
        parts: list[str] = []
        for i, piece in enumerate(schedule.pieces):
            if i:
                parts.append(str(schedule.boundaries[i - 1]))
            parts.append(format_spec(piece))
        return f"join({', '.join(parts)})"
    cls = type(schedule)
    if not isinstance(schedule, _Kind) or _BY_NAME.get(cls.kind) is not cls:
        raise TypeError(f"{cls.__name__} has no spec form (not an lrkit schedule kind)")
    defaults = _defaults(cls)
    params = cls._params
    values = [getattr(schedule, p.field) for p in params]

    def is_default(i: int) -> bool:
        field_name = params[i].field
        return field_name in defaults and values[i] == defaults[field_name]

    last = -1
    for i in range(cls._positional):
        if not is_default(i):
            last = i
    out = [_fmt(values[i]) for i in range(last + 1)]
    for i in range(cls._positional, len(params)):
        if not is_default(i):
            out.append(f"{params[i].name}={_fmt(values[i])}")
    return f"{cls.kind}({', '.join(out)})"


# ------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a kind: ``default`` is its spec text, or None when required."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] = ()
    #: value type in the grammar: int, real, bool, choice, schedule, ints (a list) or int?
    type: str = ""


@dataclass(frozen=True)
class KindInfo:
    """A schedule kind (or composition) as ``lrkit schedule --list`` shows it."""

    name: str
    signature: str
    summary: str
    params: tuple[ParamInfo, ...]
    example: str
    torch: str
    hf: str
    composition: bool


def kinds() -> list[KindInfo]:
    """Every kind and composition of the grammar, in documentation order.

    Example:
        >>> [k.name for k in kinds()][:3]
        ['constant', 'step', 'multistep']
        >>> parse(kinds()[6].example) == parse("cosine(1000, floor=0.05)")
        True
    """
    out: list[KindInfo] = []
    for cls in _CLASSES:
        defaults = _defaults(cls)
        params = tuple(
            ParamInfo(
                p.name,
                _fmt(defaults[p.field]) if p.field in defaults else None,
                p.doc,
                p.choices,
                p.type,
            )
            for p in cls._params
        )
        out.append(
            KindInfo(
                name=cls.kind,
                signature=_signature(cls),
                summary=cls.summary,
                params=params,
                example=cls.example,
                torch=cls.torch,
                hf=cls.hf,
                composition=cls not in KIND_CLASSES,
            )
        )
    return out
