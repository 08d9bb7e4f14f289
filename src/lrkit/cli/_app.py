"""The typer application, error handling and exit statuses shared by every verb.

Exit statuses: 0 success, 1 "a problem was found" (verbs that gate pipelines, e.g. diagnose),
2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console

from lrkit._mask import mask
from lrkit._optional import MissingExtraError
from lrkit._version import __version__

__all__ = ["app", "main", "run", "console", "err_console", "UserError"]

console = Console(soft_wrap=True)  # paths and one-line messages are never broken
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="lrkit",
    help="lrkit: find, schedule, diagnose, tune and advise the learning rate for PyTorch.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
)


class UserError(ValueError):
    """Bad input detected by the CLI layer itself (a file, a TARGET, a flag combination)."""


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what lrkit does.")] = False,
) -> None:
    """lrkit: find, schedule, diagnose, tune and advise the learning rate for PyTorch."""
    if version:
        console.print(f"lrkit {__version__}", highlight=False)
        raise typer.Exit(0)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _one_line(exc: BaseException) -> str:
    marked = getattr(exc, "one_line", None)  # errors that know their own one-line form
    if isinstance(marked, str):
        return mask(marked)
    text = str(exc).strip() or type(exc).__name__
    # a storage string may sit in any message: its password never reaches the terminal
    return mask(" ".join(text.splitlines()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    import lrkit.cli  # noqa: F401  (registers the verbs when this module is used on its own)

    args = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("LRKIT_DEBUG"))
    try:
        result = app(args=args, standalone_mode=False, prog_name="lrkit")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # e.g. --show-completion, which exits by itself
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except typer.Abort:
        err_console.print("lrkit: aborted", highlight=False)
        return 130
    except KeyboardInterrupt:
        err_console.print("lrkit: interrupted", highlight=False)
        return 130
    except (ValueError, OSError, MissingExtraError) as exc:
        # OSError: a path the user named cannot be read or written (missing, permission, full)
        if debug:
            raise
        err_console.print(f"lrkit: error: {_one_line(exc)}", highlight=False, markup=False)
        return 2
    except typer.TyperException as exc:
        # usage errors from the parser: unknown option, bad integer, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 0
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err_console.print(f"lrkit: error: {_one_line(Exception(message))}", highlight=False,
                          markup=False)
        return 2
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
