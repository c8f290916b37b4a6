"""Where emomon keeps what it can rebuild: ONNX exports, TensorRT engines, text embeddings, detector exports."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$EMOMON_CACHE`, else `~/.cache/emomon`; read at call time so tests and users can redirect it."""
    return Path(os.environ.get("EMOMON_CACHE") or Path.home() / ".cache" / "emomon")


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root (not created: writers create what they write)."""
    return cache_root().joinpath(*parts)
