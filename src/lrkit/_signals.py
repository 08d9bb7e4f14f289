"""Keep Ctrl-C (SIGINT) and SIGTERM from cutting a restore of the user's state in half.

A restore writes hundreds of tensors back in place. Python raises ``KeyboardInterrupt`` wherever
the main thread happens to be when the signal arrives, so a second Ctrl-C pressed during the
restore that a first Ctrl-C started would leave some parameters trained and some restored.
:class:`SignalShield` installs a handler (main thread only; elsewhere it does nothing) that
either delivers a signal at once (``deferring`` False) or records it (``deferring`` True); on
exit the previous handlers come back and every recorded signal is delivered to them, so the
``KeyboardInterrupt`` is raised after the critical section has completed.

Two uses:

* ``with SignalShield(defer=True): restore()`` -- nothing interrupts ``restore``;
* a shield around a whole operation (``find_lr``): a signal is delivered at once, and from
  that moment on the shield defers every further signal, so the clean-up that the first
  signal starts (a ``finally`` block) runs to its end however often Ctrl-C is pressed.

A signal whose previous disposition is the default action (terminate: SIGTERM, or SIGINT set to
``SIG_DFL``) unwinds the stack as :class:`Terminated`, so ``finally`` blocks restore and clean
up; on exit the shield re-raises the signal with the default action, and the process ends by
that signal as it would have without lrkit.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

__all__ = ["SignalShield", "Terminated", "uninterruptible"]

logger = logging.getLogger(__name__)

_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


class Terminated(BaseException):
    """A terminating signal, turned into an exception while a shield is active (internal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


class SignalShield:
    """Defer SIGINT / SIGTERM while ``deferring`` is True; deliver them on exit.

    Example:
        >>> with SignalShield(defer=True) as shield:
        ...     pass  # a Ctrl-C here is delivered when the block ends
        >>> shield.pending
        []
    """

    def __init__(self, *, defer: bool = False) -> None:
        #: True: a signal is recorded and delivered on exit; False: delivered at once (and
        #: from then on the shield defers, see the module docstring)
        self.deferring = defer
        self.pending: list[int] = []
        self._previous: dict[int, Any] = {}
        self._told = False

    def __enter__(self) -> SignalShield:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread receives signals (and may set handlers)
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if previous is None:  # a handler set outside Python: leave it alone
                continue
            try:
                signal.signal(sig, self._handle)
            except (OSError, ValueError):  # pragma: no cover - platform refuses
                continue
            self._previous[sig] = previous
        return self

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Defer inside the block; on leaving it, deliver what arrived (unless still deferring)."""
        before = self.deferring
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = before
            if not before and self.pending:
                pending, self.pending = self.pending, []
                for sig in self._ordered(pending):
                    self._deliver_now(sig, None)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring:
            self.pending.append(signum)
            if not self._told:
                self._told = True
                logger.warning(
                    "%s received: lrkit first finishes saving or restoring your training state",
                    signal.Signals(signum).name,
                )
            return
        self._deliver_now(signum, frame)

    def _deliver_now(self, signum: int, frame: FrameType | None) -> None:
        try:
            _deliver(signum, frame, self._previous.get(signum, signal.SIG_DFL))
        except BaseException:
            # the exception unwinds into a restore: no further signal may cut it short
            self.deferring = True
            raise

    def _ordered(self, pending: list[int]) -> list[int]:
        """Distinct signals, terminating ones first (after them nothing else matters)."""
        return sorted(
            dict.fromkeys(pending),
            key=lambda s: self._previous.get(s, signal.SIG_DFL) is not signal.SIG_DFL,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pending, self.pending = self.pending, []
        if isinstance(exc, Terminated) and self._previous:
            pending.insert(0, exc.signum)
        order = self._ordered(pending)
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not order or not previous:
            return
        if all(previous.get(s) is signal.default_int_handler for s in order):
            if isinstance(exc, KeyboardInterrupt):
                return  # already on its way out: one KeyboardInterrupt is enough
            # the default Ctrl-C handler: raise here and now, not a few bytecodes later
            raise KeyboardInterrupt
        for sig in order:
            signal.raise_signal(sig)  # through the handler in place before the shield


def _deliver(signum: int, frame: FrameType | None, previous: Any) -> None:
    """Do what the handler in place before the shield would have done."""
    if previous is signal.SIG_IGN:
        return
    if previous is signal.SIG_DFL or previous is None:
        raise Terminated(signum)
    if callable(previous):
        previous(signum, frame)


@contextmanager
def uninterruptible() -> Iterator[None]:
    """``with uninterruptible(): ...``: SIGINT / SIGTERM wait until the block has finished.

    Example:
        >>> with uninterruptible():
        ...     x = 1 + 1
    """
    with SignalShield(defer=True):
        yield
