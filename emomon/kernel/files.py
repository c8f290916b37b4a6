"""Files that are either whole or absent: every writer of a result, cache entry or checkpoint goes through
`atomic_write`, so a crash, a full disk or Ctrl-C never leaves half a file under the final name."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emomon.kernel.errors import InputError


def ensure_parent(path: str | os.PathLike) -> Path:
    """`path` as a Path, with its folder created; a folder that cannot be made is the user's input error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder for '{path}': {exc.strerror}") from None
    return path


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it is renamed onto `path`, on an error removed.

        with atomic_write("model.pt") as tmp:
            torch.save(state, tmp)
    """
    path = ensure_parent(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data, indent: int | None = 1) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
