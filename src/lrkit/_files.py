"""Files lrkit writes for the user: checked before any work, written whole or not at all.

* :func:`check_file_path` / :func:`check_dir_path`: reject at once (one ``ValueError`` naming
  the argument) a path that cannot be written: a directory where a file is expected, a file
  where a folder is expected, a parent that is a file or not writable, a device or pipe.
* :func:`write_files`: write several files so that each is either complete or untouched (a
  full disk leaves no partial file and no temporary file behind): every file is first written
  under a temporary name in its own folder, and only when all of them are written are they
  renamed into place (a rename needs no space).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from lrkit._validate import fail

__all__ = ["check_dir_path", "check_file_path", "write_files"]


def _as_path(name: str, value: object) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        fail(name, value, "a path (a non-empty str or os.PathLike)")
    text = os.fspath(value)
    if isinstance(text, bytes):
        fail(name, value, "a path given as str or os.PathLike[str]")
    if "\0" in text:
        fail(name, value, "a path without NUL characters")
    return Path(text)


def _check_parent(name: str, value: object, path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(name, str(value), f"a path whose folder can exist ({str(ancestor)!r} is a file)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        fail(name, str(value), f"a path in a folder you can write to (not {str(ancestor)!r})")


def check_file_path(name: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path` to a regular file that can be (over)written.

    Example:
        >>> check_file_path("log_path", "/tmp")
        Traceback (most recent call last):
        ...
        ValueError: log_path must be a file path, not a directory, but got log_path='/tmp'
    """
    path = _as_path(name, value)
    if path.is_dir():
        fail(name, str(value), "a file path, not a directory")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        fail(name, str(value), "a path to a regular file (not a device, pipe or socket)")
    _check_parent(name, value, path)
    return path


def check_dir_path(name: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path` to a folder that exists or can be created."""
    path = _as_path(name, value)
    if path.exists():
        if not path.is_dir():
            fail(name, str(value), "a folder, not a file")
        if not os.access(path, os.W_OK | os.X_OK):
            fail(name, str(value), "a folder you can write to")
        return path
    _check_parent(name, value, path)
    return path


def write_files(files: Mapping[Path, bytes | str]) -> None:
    """Write every file (text as UTF-8) whole, or leave every target as it was.

    On any error (a full disk, a missing permission) the temporary files are removed and the
    ``OSError`` is raised with the target's name; targets that existed keep their old content.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            staged.append((tmp, target))
            raw = data.encode("utf-8") if isinstance(data, str) else data
            try:
                with open(tmp, "wb") as handle:
                    handle.write(raw)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot write {target}: {exc.strerror or exc}") from exc
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - nothing more we can do
                pass
