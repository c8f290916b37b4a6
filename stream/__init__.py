"""Frame sources: webcam, video file, RTSP/HTTP stream, images; read in a background thread.

One entry point, `open_source(spec)`, turns what a user typed into a `VideoSource` that yields `Frame`s
(index, time in seconds, BGR image). A bounded queue sits between the reader thread and the consumer:
files and images never drop a frame, live sources (webcam, network) keep the newest and count the drops.
Network streams and webcams that drop are re-opened with capped exponential backoff and jitter, forever by
default (`SourceConfig`); `VideoSource.with_events()` also yields a `StreamEvent` when one is lost and when
it is back. Every frame carries its capture time in UTC where it is known (`Frame.utc`). Bad input raises
`SourceError` (an `InputError`) with a one-line message at open time.

Example:
    >>> from pathlib import Path
    >>> import cv2, numpy as np, tempfile
    >>> from stream import open_source, SourceKind
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     _ = cv2.imwrite(str(folder / f"img{i}.png"), np.full((4, 6, 3), i, np.uint8))
    >>> with open_source(folder) as source:
    ...     print(source.info.kind is SourceKind.IMAGES, source.info.frame_count)
    ...     print([(frame.index, frame.image.shape) for frame in source])
    True 3
    [(0, (4, 6, 3)), (1, (4, 6, 3)), (2, (4, 6, 3))]
"""

from .capture import CaptureReader
from .config import SourceConfig
from .errors import SourceError
from .factory import open_source
from .frames import Frame, FrameReader, SourceInfo, SourceStats, StreamEvent
from .images import IMAGE_SUFFIXES, ImageReader
from .kinds import SourceKind, detect_kind, is_live
from .source import VideoSource

__all__ = [
    "IMAGE_SUFFIXES",
    "CaptureReader",
    "Frame",
    "FrameReader",
    "ImageReader",
    "SourceConfig",
    "SourceError",
    "SourceInfo",
    "SourceKind",
    "SourceStats",
    "StreamEvent",
    "VideoSource",
    "detect_kind",
    "is_live",
    "open_source",
]
