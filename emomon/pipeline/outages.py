"""A live source's outages, as a run records them: event lines in the JSONL and totals in the summary.

The source says when it lost its frames and when it got them back (`stream.StreamEvent`). Here each event
becomes its JSONL record, and a restored stream restarts tracking (the people in front of the camera may
all have changed during the gap): new track ids start above every id of the run, and the
`stream_restored` record says so (`tracks_reset`, `next_track_id`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from emomon.kernel import utc_iso
from stream import StreamEvent


@dataclass
class OutageLog:
    """Counts a run's outages: how many, their total and longest downtime, and one still going on."""

    outages: int = 0
    downtime_s: float = 0.0
    longest_s: float = 0.0
    _down_since: float | None = None  # monotonic time of the ongoing outage's last frame
    _down_utc: float | None = None

    def record(self, event: StreamEvent, pipeline=None) -> dict:
        """Count `event` and return its JSONL record; a restored stream restarts `pipeline`'s tracks."""
        record = event.record()
        if event.kind == "stream_lost":
            self.outages += 1
            last = event.last_utc if event.last_utc is not None else event.utc
            self._down_since = time.monotonic() - max(0.0, event.utc - last)  # the gap began at the last frame
            self._down_utc = last
        elif event.kind == "stream_restored":
            down = float(event.downtime_s or 0.0)
            self.downtime_s += down
            self.longest_s = max(self.longest_s, down)
            self._down_since = self._down_utc = None
            record["tracks_reset"] = pipeline is not None and hasattr(pipeline, "restart_tracks")
            if record["tracks_reset"]:
                record["next_track_id"] = pipeline.restart_tracks()
        return record

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def to_dict(self) -> dict:
        """The summary's `outages` entry; an outage still going on counts up to now."""
        ongoing = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        return {"count": self.outages, "total_downtime_s": round(self.downtime_s + ongoing, 3),
                "longest_s": round(max(self.longest_s, ongoing), 3),
                "down_since": utc_iso(self._down_utc) if self.down else None}

