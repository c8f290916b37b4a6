"""The app keeps nothing of a browser session after it ends: its uploads and results are deleted when the
session closes (Gradio's unload event: the page was closed or reloaded) or, at the latest, `--keep-minutes`
after they were written (a browser that vanished without closing, a session left open).

Which files belong to which session is seen where Gradio hands them over: every request's inputs (uploads, as
sent and as preprocessed) and outputs (the files a handler returns and the copies Gradio caches to serve
them, images included). Only files inside the app's own folders (Gradio's upload/cache folder, the app's
work folder) are ever claimed, so a server path a user typed (`--server-sources`) is never deleted. Gradio
names cached files by their content, so two sessions can hold the same file: it goes when the last goes.
Uploads never used by a handler fall to the keep time (Gradio's own `delete_cache` sweep, set from it).

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "run-1").mkdir(); (root / "run-1" / "out.mp4").write_bytes(b"x")
    1
    >>> files = SessionFiles([root], keep_s=3600)
    >>> files.hold("abc", [str(root / "run-1" / "out.mp4"), "/etc/hostname"])  # outside the roots: ignored
    >>> [p.name for p in files.release("abc")], (root / "run-1").exists()
    (['out.mp4'], False)
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import gradio as gr
from gradio import utils as gr_utils

log = logging.getLogger(__name__)

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("emomon_session", default=None)


def page_notice(keep_minutes: float) -> str:
    """What the page says about what it keeps."""
    return (f"**Nothing is kept.** Your uploads and results are deleted from the server when you close this page, "
            f"and at the latest {keep_minutes:g} minutes after they were made.")


def file_paths(value, depth: int = 0) -> list[str]:
    """Every file path in a request's data: strings, `Path`s and Gradio file payloads (`{"path": ...}`), in
    dicts, lists and tuples (other objects, arrays and tables are not walked)."""
    if depth > 6:
        return []
    if isinstance(value, (str, Path)):
        text = str(value)
        return [text] if os.path.isabs(text) and len(text) < 4096 else []
    if hasattr(value, "model_dump") and not isinstance(value, type):  # Gradio's FileData and friends
        try:
            value = value.model_dump()
        except Exception:  # noqa: BLE001 - not a pydantic model after all
            return []
    if isinstance(value, dict):
        return [p for v in value.values() for p in file_paths(v, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in file_paths(v, depth + 1)]
    return []


class SessionFiles:
    """The files each browser session made on the server; `release(session)` deletes them (unless another
    session holds the same file), `sweep()` deletes everything older than `keep_s`."""

    def __init__(self, work_dirs: Sequence[str | Path], keep_s: float = 3600.0, cache_dir: str | Path | None = None):
        """`work_dirs`: the app's own folders (everything in them is swept by age); `cache_dir`: Gradio's
        upload and cache folder (default: Gradio's own), shared with whatever else uses Gradio here, so only
        files a session held are deleted there."""
        if keep_s <= 0:
            raise ValueError("the keep time must be > 0")
        self.own = [Path(r).resolve() for r in work_dirs]
        self.roots = [*self.own, Path(cache_dir or gr_utils.get_upload_folder()).resolve()]
        self.keep_s = float(keep_s)
        self._held: dict[str, set[Path]] = {}
        self._busy: Counter[Path] = Counter()  # files a queued or running job still reads (`pin`)
        self._orphans: set[Path] = set()       # released while busy: deleted when the last pin goes
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _owned(self, path: str) -> Path | None:
        try:
            p = Path(path).resolve()
        except (OSError, RuntimeError):
            return None
        inside = any(p != root and p.is_relative_to(root) for root in self.roots)
        return p if inside and p.is_file() else None

    def hold(self, session: str | None, paths: Iterable[str]) -> None:
        """Note that `session` has these files (paths outside the app's folders and missing files are ignored)."""
        if not session:
            return
        owned = {p for p in map(self._owned, paths) if p is not None}
        if owned:
            with self._lock:
                self._held.setdefault(session, set()).update(owned)

    def held(self, session: str) -> set[Path]:
        with self._lock:
            return set(self._held.get(session, ()))

    def pin(self, paths: Iterable[str]) -> frozenset[Path]:
        """Keep these files while a job needs them (a video waiting in the queue when its page reloads):
        `release` and `sweep` pass them over until `unpin` with what this returned."""
        owned = frozenset(p for p in map(self._owned, paths) if p is not None)
        with self._lock:
            self._busy.update(owned)
        return owned

    def unpin(self, pinned: frozenset[Path]) -> list[Path]:
        """The job is over: files released meanwhile by every session that held them are deleted now."""
        with self._lock:
            self._busy.subtract(pinned)
            free = {p for p in pinned if self._busy[p] <= 0}
            for p in free:
                del self._busy[p]
            held = set().union(*self._held.values()) if self._held else set()
            doomed = (self._orphans & free) - held
            self._orphans -= doomed
        return [p for p in sorted(doomed) if self._remove(p)]

    def release(self, session: str | None) -> list[Path]:
        """Delete the files of a session that ended; those another session still holds, or a job still
        reads (`pin`), stay (the latter until the job ends). Returns the files deleted."""
        with self._lock:
            mine = self._held.pop(session, set()) if session else set()
            others = set().union(*self._held.values()) if self._held else set()
            busy = {p for p in mine - others if self._busy[p] > 0}
            self._orphans |= busy
        removed = [p for p in sorted(mine - others - busy) if self._remove(p)]
        if removed:
            log.info("session ended: deleted %d of its files", len(removed))
        return removed

    def sweep(self, now: float | None = None) -> list[Path]:
        """Delete every file older than the keep time: held ones, and anything in the app's work folders."""
        cutoff = (time.time() if now is None else now) - self.keep_s
        with self._lock:
            held = set().union(*self._held.values()) if self._held else set()
            busy = {p for p, n in self._busy.items() if n > 0}
        candidates = set(held)
        for root in self.own:
            candidates.update(p for p in root.rglob("*") if p.is_file())
        removed = [p for p in sorted(candidates - busy) if _age_start(p) < cutoff and self._remove(p)]
        gone = {p for p in held if not p.exists()}
        if gone:
            with self._lock:
                for paths in self._held.values():
                    paths -= gone
                for session in [s for s, paths in self._held.items() if not paths]:
                    del self._held[session]
        if removed:
            log.info("deleted %d files older than %.0f minutes", len(removed), self.keep_s / 60)
        return removed

    def _remove(self, path: Path) -> bool:
        """Delete a file, then its folders up to (not including) its root while they are empty."""
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("could not delete %s: %s", path.name, exc.strerror or exc)
            return False
        root = next((r for r in self.roots if path.is_relative_to(r)), None)
        parent = path.parent
        while root is not None and parent != root and parent.is_relative_to(root):
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop here
                break
            parent = parent.parent
        return True

    # -- wiring into a Gradio page ------------------------------------------------------------------------------

    @property
    def delete_cache(self) -> tuple[float, float]:
        """`gr.Blocks(delete_cache=...)`: Gradio's own sweep of its cached files, at the keep time."""
        return (min(60.0, max(1.0, self.keep_s / 4)), self.keep_s)

    def attach(self, demo: gr.Blocks) -> None:
        """Claim files per session in `demo` (a `TrackedBlocks`), delete them when its sessions close, and
        sweep old ones in the background."""
        demo.session_files = self

        def session_closed(request: gr.Request):
            self.release(getattr(request, "session_hash", None))

        demo.unload(session_closed)
        threading.Thread(target=self._sweeper, name="emomon-retention", daemon=True).start()

    def _sweeper(self) -> None:
        every = self.delete_cache[0]
        while not self._stop.wait(every):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - one bad pass must not end the sweeping
                log.exception("retention sweep failed")

    def stop(self) -> None:
        self._stop.set()


def _age_start(path: Path) -> float:
    """When a file was made (the later of its change and modification times; a copy keeps an old mtime)."""
    try:
        st = path.stat()
    except OSError:
        return float("inf")
    return max(st.st_ctime, st.st_mtime)


FILE_COMPONENTS = (gr.File, gr.Image, gr.Video, gr.Audio, gr.Gallery)  # the only values claimed as files


def _component_files(components, values) -> list[str]:
    """The file paths among `values` (one per component) of file components; a textbox's text is never one."""
    if len(components) == 1 and not (isinstance(values, list) and len(values) == 1):
        values = [values]  # a single output is not wrapped in a list
    if not isinstance(values, (list, tuple)):
        return []
    return [p for c, v in zip(components, values) if isinstance(c, FILE_COMPONENTS) for p in file_paths(v)]


class TrackedBlocks(gr.Blocks):
    """`gr.Blocks` that tells its `session_files` (set by `SessionFiles.attach`) every file a request of a
    session brings in or takes out, as its file components carry them."""

    session_files: SessionFiles | None = None

    def _hold(self, paths: list[str], session: str | None = None) -> None:
        session = session or _SESSION.get()
        if self.session_files is not None and session and paths:
            self.session_files.hold(session, paths)

    async def process_api(self, *args, **kwargs):
        session = kwargs.get("session_hash")
        fn = kwargs.get("block_fn")
        fn = self.fns.get(fn) if isinstance(fn, int) else fn
        token = _SESSION.set(session)
        try:
            output = await super().process_api(*args, **kwargs)
        finally:
            _SESSION.reset(token)
        if fn is not None and not fn.batch:
            self._hold(_component_files(fn.inputs, kwargs.get("inputs")) +  # uploads as sent
                       _component_files(fn.outputs, output.get("data")), session)  # the copies Gradio serves
        return output

    async def preprocess_data(self, block_fn, inputs, *args, **kwargs):
        processed = await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        self._hold(_component_files(block_fn.inputs, processed))  # as the handler gets them (converted copies)
        return processed

    async def postprocess_data(self, block_fn, predictions, state):
        if not isinstance(predictions, dict):  # (a dict maps components to values: Gradio sorts it out)
            self._hold(_component_files(block_fn.outputs, predictions))  # result files as the handler wrote them
        return await super().postprocess_data(block_fn, predictions, state)
