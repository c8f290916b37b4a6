"""Logging set-up for emomon's entry points (the CLI, the app): one format, quiet third-party loggers.

Third-party chatter stays out of the default level, so emomon's own line is the first thing on stderr:
- chatty libraries' loggers (`NOISY`) log warnings and up only;
- Ultralytics' logger prints to *stdout* (which breaks `--json`): its records go through emomon's stderr log
  instead, errors only by default, warnings too with `-v`;
- Python `warnings` (emomon itself never uses them: it logs) raised from an installed library's files
  (site-packages, dist-packages, the standard library) become DEBUG log lines: visible with `-v`, one line
  each, never a two-line `file:line: UserWarning` dump. Any other warning is one WARNING log line.
Native libraries write to the process's stderr themselves; the CLI sets their environment (OpenCV, FFmpeg).
"""

from __future__ import annotations

import logging
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NOISY = ("PIL", "matplotlib", "httpx", "urllib3", "h5py")
ULTRALYTICS = "ultralytics"
# Folders whose warnings are third-party chatter: installed packages and the standard library.
_LIBRARY_DIRS = tuple(sorted({str(Path(p)) for p in (sysconfig.get_paths().get(k) for k in ("purelib", "platlib",
                                                                                          "stdlib")) if p}))
_WARNINGS_LOG = logging.getLogger("py.warnings")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    route_ultralytics(logging.WARNING if verbose else logging.ERROR)
    warnings.showwarning = _show_warning


class _ToEmomonLog(logging.Filter):
    """A logger filter that sends the logger's records at `level` and up to emomon's (root) handlers and
    stops them there: the logger's own handlers (Ultralytics': stdout) never see a record."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            logging.getLogger().handle(record)
        return False


def route_ultralytics(level: int = logging.ERROR) -> None:
    """Ultralytics logs to stdout through its own handler; make its records go to emomon's stderr log, from
    `level` up. A filter on the logger, so it holds whether Ultralytics is imported before or after this (its
    `set_logging` replaces the handler and the level, never the filters)."""
    logger = logging.getLogger(ULTRALYTICS)
    for f in [f for f in logger.filters if isinstance(f, _ToEmomonLog)]:
        logger.removeFilter(f)
    logger.addFilter(_ToEmomonLog(level))


def is_library_file(filename: str) -> bool:
    """True for a file of an installed package or of the standard library (not of emomon's own tree)."""
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    return ("site-packages" in path or "dist-packages" in path
            or any(path.startswith(d + "/") or path.startswith(d + "\\") for d in _LIBRARY_DIRS))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning`: one log line; a library's own warning at DEBUG (shown with -v)."""
    level = logging.DEBUG if is_library_file(filename) else logging.WARNING
    text = str(message).strip().splitlines()[0] if str(message).strip() else ""
    _WARNINGS_LOG.log(level, "%s: %s (%s:%s)", category.__name__, text, Path(filename).name, lineno)


@contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of chatty third-party loggers for a block (exporters log every rewrite at INFO)."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)
