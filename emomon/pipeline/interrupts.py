"""Ctrl-C, SIGTERM and SIGHUP that never land between two outputs of the same frame.

A run writes each frame to several outputs (JSONL, CSV, summary, video). A stop raised between two of those
writes would leave them disagreeing by one frame. `InterruptGuard` keeps the stop immediate everywhere else
(a run blocked on a reconnecting stream still stops at once), and only inside `guard.deferred()` holds it
back until the block ends.

Ctrl-C raises `KeyboardInterrupt`; SIGTERM (service managers, `docker stop`, `kill`) and SIGHUP (a closed
terminal) raise `Terminated`, a `KeyboardInterrupt` that knows its signal, so the run closes every output
the same way and the command exits with 128 + the signal number (143 for SIGTERM).
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Signals that stop a run cleanly. SIGHUP does not exist on Windows.
STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than Ctrl-C (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (143 for SIGTERM)."""
        return 128 + self.signum


def stop_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class InterruptGuard:
    """Install with `with InterruptGuard() as guard:`; a no-op off the main thread (signals go there only).

    SIGINT is always taken over (a custom previous handler is still called outside deferred blocks).
    SIGTERM and SIGHUP are taken over only while they have their default action: an ignored signal
    (`nohup` ignores SIGHUP) or a program's own handler (the web app's) stays as it is.
    """

    def __init__(self) -> None:
        self._inside = False
        self._pending: int | None = None  # the first stop signal held back by a deferred block
        self._previous: dict[int, object] = {}

    @property
    def pending(self) -> int | None:
        return self._pending

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if signum != signal.SIGINT and previous is not signal.SIG_DFL:
                    continue
                signal.signal(signum, self._on_signal)
                self._previous[signum] = previous
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame) -> None:
        if self._inside:
            if self._pending is None:
                self._pending = signum
            return
        if signum != signal.SIGINT:
            raise Terminated(signum)
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
            return
        if previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self, reraise: bool = True):
        """Hold stop signals back for the block; with `reraise`, raise the first once the block has finished
        cleanly (KeyboardInterrupt for Ctrl-C, `Terminated` for SIGTERM/SIGHUP)."""
        outer = self._inside
        self._inside = True
        try:
            yield
        finally:
            self._inside = outer
        if self._pending is not None and not outer and reraise:
            signum, self._pending = self._pending, None
            if signum == signal.SIGINT:
                previous = self._previous.get(signum)
                if callable(previous) and previous is not signal.default_int_handler:
                    previous(signum, None)
                    return
                if previous == signal.SIG_IGN:
                    return
            raise stop_exception(signum)
