"""One-line messages from exceptions raised by libraries (Ultralytics, ONNX Runtime, TensorRT, scipy)."""

from __future__ import annotations

import re


def first_line(exc: BaseException, limit: int = 200) -> str:
    """`Type: first line` of an exception, without Ultralytics' 'ERROR ❌' style prefix, at most `limit` chars."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = re.sub(r"^(ERROR|WARNING)?[^\w'\"/.]*", "", lines[0]) if lines else ""
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
