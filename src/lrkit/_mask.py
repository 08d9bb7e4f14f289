"""Passwords out of sight: mask the secrets of every storage form before it is shown or logged.

Optuna takes SQLAlchemy URLs (``postgresql://user:secret@host/db``, ``...?password=secret``);
libpq, and so lrkit's ``storage=``, also takes key=value connection strings
(``host=db user=u password=secret dbname=hpo``, values optionally single-quoted with ``\\'``
escapes, spaces allowed around ``=``). :func:`mask` hides the password of each of these forms
wherever it appears in a text (a URL inside an error message, a connection string inside a
``repr``); :func:`scrub` also hides every literal occurrence of a known storage string's
password (a driver that echoes the password alone).

Pure standard library: the CLI applies it to every error line it prints.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["mask", "passwords", "scrub"]

MASK = "***"

# URL user info: the password runs to the last "@" before the host (a password with an
# unencoded "@" is masked whole, not up to its first "@")
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S*?)@"
    r"(?=[^@\s/?#]*(?:[/?#'\"\s]|$))"
)
# a URL query parameter: the value runs to the next "&" (or the end of the URL)
_QUERY = re.compile(r"(?P<key>[?&;](?:ssl|pg)?password=)(?P<pw>[^&#\s'\"]*)", re.IGNORECASE)
# a libpq key=value pair: a quoted value with backslash escapes, or a run of non-blanks
_KEYVALUE = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_?&;])(?:ssl|pg)?password\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.)*(?:'|$)|(?:[^\s\\]|\\.|\\$)+)",
    re.IGNORECASE | re.DOTALL,
)


def _glued_tail(value: str) -> str:
    """The closing character of the text around an unquoted value glued to it (a repr's
    quote, a parenthesis), kept so that the text stays balanced: ``'password=abc'``."""
    if value.startswith("'") or len(value) < 2:
        return ""
    last = value[-1]
    return last if last in "'\")]}," and last not in value[:-1] else ""


def _keyvalue(m: re.Match[str]) -> str:
    return f"{m['key']}{MASK}{_glued_tail(m['pw'])}"


def mask(text: str) -> str:
    """Replace every password in ``text`` with ``***``: URL user info, URL ``?password=``
    and libpq ``password=...`` pairs (quoted or not, with or without spaces around ``=``).

    Example:
        >>> mask("postgresql://me:s3cret@db.example:5432/hpo")
        'postgresql://me:***@db.example:5432/hpo'
        >>> mask("host=db user=u password = 'a b' dbname=hpo")
        'host=db user=u password = *** dbname=hpo'
    """
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    masked = _QUERY.sub(lambda m: f"{m['key']}{MASK}", masked)
    return _KEYVALUE.sub(_keyvalue, masked)


def _unquote_libpq(value: str) -> str:
    if value.startswith("'"):
        body = value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:]
    else:
        tail = _glued_tail(value)
        body = value[: len(value) - len(tail)]
    return re.sub(r"\\(.)", r"\1", body)


def passwords(storage: str) -> list[str]:
    """The passwords written in a storage string (any form), as written and as decoded."""
    found = [m["pw"] for m in _USERINFO.finditer(storage)]
    found += [m["pw"] for m in _QUERY.finditer(storage)]
    for m in _KEYVALUE.finditer(storage):
        raw = m["pw"]
        found += [raw[: len(raw) - len(_glued_tail(raw))], _unquote_libpq(raw)]
    out: list[str] = []
    for p in found:
        for variant in (p, unquote(p)):
            if variant and variant not in out:
                out.append(variant)
    # longest first, so that a password containing another is replaced whole
    return sorted(out, key=len, reverse=True)


def scrub(text: str, storage: str) -> str:
    """:func:`mask` ``text``, and hide every literal occurrence of ``storage``'s password(s).

    Example:
        >>> scrub("authentication failed for 'pa ss'", "host=db password='pa ss'")
        'authentication failed for ***'
    """
    result = mask(text)
    for password in passwords(storage):
        result = result.replace(password, MASK)
    return result
