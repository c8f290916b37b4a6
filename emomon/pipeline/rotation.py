"""`--rotate DURATION`: new JSONL, CSV and video files on a schedule, each complete on its own.

A monitor that runs for days should not write one ever-growing file. Every output but the summary is
written in parts named with their start time, `cam.jsonl` -> `cam.20261202T140000Z.jsonl`:

- live sources: parts follow the UTC wall clock, aligned to multiples of the period (`1h` rolls over on the
  hour); the first part is named with the run's start;
- files: parts follow the media time (part k holds [k*period, (k+1)*period) of the video), named with the
  file's recorded start plus that offset where the file records one, else the offset (`street.t000130.jsonl`
  for 1 min 30 s in).

Parts switch between two frames, never inside one: every output's part k holds the same frames. The
runner rewrites the summary (atomically) at every switch; it lists the parts written so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from emomon.kernel import file_stamp, utc_now


def part_path(path: str | Path, stamp: str) -> str:
    """`out/cam.jsonl` with `stamp` before its extension: `out/cam.<stamp>.jsonl`."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{stamp}{p.suffix}"))


def media_stamp(seconds: float) -> str:
    """`t000130` for 90 s into a video (hours may exceed 99)."""
    whole = int(seconds)
    return f"t{whole // 3600:02d}{whole // 60 % 60:02d}{whole % 60:02d}"


@dataclass
class Part:
    """One set of files: its name stamp, the frames it holds, and the files themselves."""

    stamp: str
    first_frame: int | None = None
    frames: int = 0
    files: dict[str, str] = field(default_factory=dict)  # output kind -> path

    def to_dict(self) -> dict:
        return {"start": self.stamp, "first_frame": self.first_frame, "frames": self.frames, **self.files}


class Rotation:
    """Which part a frame belongs to, the parts' names, and the writers to switch (anything with `reopen`)."""

    def __init__(self, period_s: float, live: bool, start_utc: float | None = None, started_utc: float | None = None):
        if not period_s >= 1:
            raise ValueError(f"the rotation period must be at least 1 s, got {period_s}")
        self.period_s, self.live, self.start_utc = float(period_s), live, start_utc
        self._outputs: list[tuple[str, str, object]] = []  # (kind, user's path, writer)
        self._key = None
        self.parts: list[Part] = []
        self._used: set[str] = set()
        self._begin(self._stamp_for(None, started_utc if started_utc is not None else utc_now()))

    def name(self, path: str) -> str:
        """The current part's file for the output the user named `path`."""
        return part_path(path, self.parts[-1].stamp)

    def add(self, kind: str, path: str, writer) -> None:
        """Switch `writer` (opened on `name(kind, path)`) at every new part."""
        self._outputs.append((kind, path, writer))
        self.parts[-1].files[kind] = str(writer.path)

    def due(self, utc: float | None, time_s: float) -> bool:
        """Whether a frame captured at `utc` / media time `time_s` starts a new part (the first frame never does)."""
        key = self._part_key(utc, time_s)
        if self._key is None:
            self._key = key
            return False
        return key != self._key

    def rotate(self, utc: float | None, time_s: float) -> Part:
        """Close every output's part and open the next, starting with this frame. Returns the closed part."""
        closed = self.parts[-1]
        self._key = key = self._part_key(utc, time_s)
        self._begin(self._stamp_for(key, utc))
        for kind, path, writer in self._outputs:
            writer.reopen(self.name(path))
            self.parts[-1].files[kind] = str(writer.path)
        return closed

    def count(self, frame: int) -> None:
        """One more frame written into the current part."""
        part = self.parts[-1]
        if part.first_frame is None:
            part.first_frame = frame
        part.frames += 1

    def _begin(self, stamp: str) -> None:
        base = stamp
        n = 1
        while stamp in self._used:  # two parts within one second: keep both
            n += 1
            stamp = f"{base}-{n}"
        self._used.add(stamp)
        self.parts.append(Part(stamp))

    def _part_key(self, utc: float | None, time_s: float) -> int:
        if self.live and utc is not None:
            return math.floor(utc / self.period_s)
        return math.floor(time_s / self.period_s)

    def _stamp_for(self, key: int | None, utc: float | None) -> str:
        """A part's name: its start on the wall clock (live), or in the file (recorded start + offset, or offset)."""
        if self.live:
            start = utc if key is None else key * self.period_s
            return file_stamp(start if start is not None else utc_now())
        offset = 0.0 if key is None else key * self.period_s
        if self.start_utc is not None:
            return file_stamp(self.start_utc + offset)
        return media_stamp(offset)
