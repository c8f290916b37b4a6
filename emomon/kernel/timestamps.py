"""Absolute time as records and file names write it: UTC, ISO 8601 with milliseconds and a `Z`.

One format everywhere (JSONL, CSV, events, the summary, rotated file names), so that "what happened at
14:03" is a string comparison. Epoch seconds travel inside the program; text is made only here.

    >>> utc_iso(1764684187.25)
    '2025-12-02T14:03:07.250Z'
    >>> parse_utc('2025-12-02T14:03:07.250Z')
    1764684187.25
    >>> file_stamp(1764684187.25)
    '20251202T140307Z'
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


def utc_now() -> float:
    """The wall clock (epoch seconds), read where a frame is captured."""
    return time.time()


def utc_iso(epoch_s: float | None) -> str | None:
    """'2025-12-02T14:03:07.250Z' for epoch seconds (None stays None: a frame whose time is not known)."""
    if epoch_s is None:
        return None
    moment = datetime.fromtimestamp(round(float(epoch_s), 3), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> float:
    """Epoch seconds from an ISO 8601 time (`Z` or an offset; a time without a zone is taken as UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def file_stamp(epoch_s: float) -> str:
    """'20251202T140307Z': a start time that sorts and is safe in any file name."""
    return datetime.fromtimestamp(float(epoch_s), tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
