"""Files that are either whole or absent: every writer of a result, cache entry or checkpoint goes through
`atomic_write`, so a crash, a full disk or Ctrl-C never leaves half a file under the final name."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emomon.kernel.errors import InputError

log = logging.getLogger(__name__)


def ensure_parent(path: str | os.PathLike) -> Path:
    """`path` as a Path, with its folder created; a folder that cannot be made is the user's input error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder for '{path}': {exc.strerror}") from None
    return path


def write_error(path: str | os.PathLike, exc: OSError) -> InputError:
    """The one-line error for a failed write: "cannot write 'out/run.jsonl': No space left on device"."""
    error = InputError(f"cannot write '{path}': {exc.strerror or exc}")
    error.path = str(path)
    return error


def check_writable(path: str | os.PathLike) -> Path:
    """Fail before the work, not after it: `path` is not a folder, its folder exists or can be made, and a
    file can be created in it (a read-only file system, a missing permission or a full inode table shows
    here). The probe file is removed at once."""
    path = Path(path)
    if path.is_dir():
        raise write_error(path, IsADirectoryError(21, "it is a folder"))
    path = ensure_parent(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise write_error(path, PermissionError(13, "Permission denied"))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".probe.tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    _remove_quietly(Path(probe))
    return path


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file; a failure is logged, never raised (it must not hide the error being handled)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary file '%s': %s", path, exc.strerror or exc)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it is renamed onto `path`, on an error removed.

        with atomic_write("model.pt") as tmp:
            torch.save(state, tmp)

    A failed rename is an InputError naming `path`; the temporary file is removed however the block ends.
    """
    path = ensure_parent(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise write_error(path, exc) from None
    finally:
        _remove_quietly(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a whole text file or nothing; a failed write (a full disk) is an InputError naming `path`."""
    with atomic_write(path) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise write_error(path, exc) from None
    return Path(path)


def _plain(value):
    """A numpy scalar as the Python number it holds (found by duck typing: the kernel does not import numpy)."""
    return value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") else value


def finite_json(data):
    """`data` in plain JSON types: numpy scalars become Python numbers, and every non-finite float (NaN, inf)
    becomes None. JSON has no such numbers, and most parsers refuse the `NaN` token Python would write (an
    empty split's mAP, a broken model's output)."""
    if isinstance(data, dict):
        return {_plain(k): finite_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_json(v) for v in data]
    data = _plain(data)
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def write_json_atomic(path: str | os.PathLike, data, indent: int | None = 1) -> Path:
    """Whole or absent; non-finite numbers become null (see `finite_json`)."""
    return write_text_atomic(path, json.dumps(finite_json(data), indent=indent, allow_nan=False))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing) for the block, so processes and threads
    that fill one cache entry take turns (e.g. Ray workers starting together). Without fcntl (Windows) the
    block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    path = ensure_parent(path)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
