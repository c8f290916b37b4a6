"""The data a source hands out (frames, info, counters) and the reader protocol it pulls frames from."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from emomon.kernel import utc_iso

from .kinds import SourceKind, redact_url


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    index: position in the source, counting frames skipped by vid_stride and frames dropped by a live
        source (so gaps show what was skipped); for images, the ordinal of the image that decoded.
    time: seconds; the container timestamp for files, wall-clock seconds since reading started for live
        sources, the index for images.
    image: BGR uint8 array of shape (H, W, 3).
    utc: the capture time as epoch seconds (UTC): the wall clock when a live frame was read; for files,
        the container's recorded start (`creation_time`) plus the frame's media timestamp; None where
        unknown (files that record no start, images).
    """

    index: int
    time: float
    image: np.ndarray
    utc: float | None = None


@dataclass(frozen=True)
class StreamEvent:
    """A live source lost its frames (`stream_lost`) or got them back (`stream_restored`).

    Handed out between frames by `VideoSource.with_events()`, in order. utc/time: when it happened (time on
    the frames' clock). last_frame, last_utc: the last frame before the loss. downtime_s (restored): from
    that last frame to the first one after it (the gap in the video). attempts (restored): reconnect tries.
    """

    kind: str  # "stream_lost" | "stream_restored"
    utc: float
    time: float
    last_frame: int
    last_utc: float | None = None
    reason: str | None = None
    downtime_s: float | None = None
    attempts: int | None = None

    def record(self) -> dict:
        """The event's JSONL record: `event` tells it apart from frame records (which have `frame`)."""
        out = {"event": self.kind, "utc": utc_iso(self.utc), "time": round(self.time, 4),
               "last_frame": self.last_frame, "last_utc": utc_iso(self.last_utc)}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.downtime_s is not None:
            out["downtime_s"] = round(self.downtime_s, 3)
        if self.attempts is not None:
            out["attempts"] = self.attempts
        return out


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source once it is open (None where the source cannot say)."""

    kind: SourceKind
    spec: str
    fps: float | None
    width: int
    height: int
    frame_count: int | None

    @property
    def label(self) -> str:
        """Human name for messages, with any URL password hidden."""
        if self.kind is SourceKind.WEBCAM:
            return f"webcam {self.spec}"
        if self.kind is SourceKind.NETWORK:
            return f"stream {redact_url(self.spec)}"
        noun = {SourceKind.FILE: "video", SourceKind.IMAGE: "image", SourceKind.IMAGES: "images"}[self.kind]
        return f"{noun} '{redact_url(self.spec)}'"


@dataclass
class SourceStats:
    """Counters of one source: frames pulled from it (stride-skipped ones included), frames handed to the
    consumer, frames a live source dropped because the consumer was slower, successful reconnects, losses
    (a loss the source never recovered from counts in `outages` only)."""

    read: int = 0
    yielded: int = 0
    dropped: int = 0
    reconnects: int = 0
    outages: int = 0


class FrameReader(Protocol):
    """Anything a VideoSource can pull frames from (a cv2.VideoCapture fits).

    Optional extras a VideoSource uses when present: `grab() -> bool` skips a frame without decoding it
    (cheap vid_stride), `position_s() -> float | None` gives the container time of the last frame.
    The reader is used, then released, by the reader thread only.
    """

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...
