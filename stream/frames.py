"""The data a source hands out (frames, info, counters) and the reader protocol it pulls frames from."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .kinds import SourceKind, redact_url


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    index: position in the source, counting frames skipped by vid_stride and frames dropped by a live
        source (so gaps show what was skipped); for images, the ordinal of the image that decoded.
    time: seconds; the container timestamp for files, wall-clock seconds since reading started for live
        sources, the index for images.
    image: BGR uint8 array of shape (H, W, 3).
    """

    index: int
    time: float
    image: np.ndarray


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
    consumer, frames a live source dropped because the consumer was slower, successful reconnects."""

    read: int = 0
    yielded: int = 0
    dropped: int = 0
    reconnects: int = 0


class FrameReader(Protocol):
    """Anything a VideoSource can pull frames from (a cv2.VideoCapture fits).

    Optional extras a VideoSource uses when present: `grab() -> bool` skips a frame without decoding it
    (cheap vid_stride), `position_s() -> float | None` gives the container time of the last frame.
    The reader is used, then released, by the reader thread only.
    """

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...
