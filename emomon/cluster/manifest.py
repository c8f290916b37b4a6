"""The corpus manifest: one JSON line per finished or failed video, appended after its outputs are in place.

A line is written with one `write` call on a file opened for appending, then flushed to disk, so a process
that dies leaves at most one partial last line; opening the manifest cuts such a line off, and reading skips
it. The newest line of a source is its state: `done` (its result folder is complete and renamed into place)
or `failed` (with the one-line reason). A video with no line, or whose folder is gone, is not finished.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

from emomon.kernel import InputError, finite_json, utc_iso, utc_now

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
DONE, FAILED = "done", "failed"


class Manifest:
    """`emomon batch`'s record of what is finished in an output folder; also the folder's lock, so two runs
    never write the same corpus at once."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.folder / ".lock", "a")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise InputError(f"cannot write the output folder '{folder}': {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise InputError(f"another emomon batch is writing to '{folder}' (its .lock is held)") from None
        self._repair()
        self.entries: dict[str, dict] = read_manifest(self.path)

    def _repair(self) -> None:
        """Cut off a partial last line (a process that died while appending it)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("manifest '%s': removed a partial last line (an earlier run died while writing it)",
                        self.path)
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())

    def finished(self, source: str) -> dict | None:
        """The `done` entry of `source` when its result folder is still there."""
        entry = self.entries.get(source)
        if entry and entry.get("status") == DONE and (self.folder / entry["name"]).is_dir():
            return entry
        return None

    def append(self, entry: dict) -> dict:
        entry = finite_json({**entry, "utc": utc_iso(utc_now())})
        line = (json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(28, "short write (disk full?)")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise InputError(f"cannot write '{self.path}': {exc.strerror or exc}") from None
        self.entries[entry["source"]] = entry
        return entry

    def close(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path: str | os.PathLike) -> dict[str, dict]:
    """The newest entry per source; a line that is not whole JSON (only ever the last) is skipped."""
    entries: dict[str, dict] = {}
    path = Path(path)
    if not path.exists():
        return entries
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[entry["source"]] = entry
        except (ValueError, KeyError, TypeError):
            log.warning("manifest '%s': line %d is not a whole entry; skipped", path, number)
    return entries
