"""Ctrl-C that never lands between two outputs of the same frame.

A run writes each frame to several outputs (JSONL, CSV, summary, video). A KeyboardInterrupt raised between
two of those writes would leave them disagreeing by one frame. `InterruptGuard` keeps Ctrl-C immediate
everywhere else (a run blocked on a reconnecting stream still stops at once), and only inside
`guard.deferred()` holds it back until the block ends.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)


class InterruptGuard:
    """Install with `with InterruptGuard() as guard:`; a no-op off the main thread (signals go there only)."""

    def __init__(self) -> None:
        self._inside = False
        self._pending = False
        self._previous = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum, frame) -> None:
        if self._inside:
            self._pending = True
            return
        if callable(self._previous) and self._previous is not signal.default_int_handler:
            self._previous(signum, frame)
            return
        if self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self, reraise: bool = True):
        """Hold Ctrl-C back for the block; with `reraise`, raise it once the block has finished cleanly."""
        outer = self._inside
        self._inside = True
        try:
            yield
        finally:
            self._inside = outer
        if self._pending and not outer and reraise:
            self._pending = False
            raise KeyboardInterrupt
