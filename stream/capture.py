"""OpenCV VideoCapture readers for files, webcams and network streams, opened fail-fast.

Opening decodes the first frame right away: OpenCV happily "opens" some files and URLs that never yield
a frame, and a source that cannot produce one frame should fail at open time with a clear message.
"""

import logging
import os

import cv2
import numpy as np

from emomon.kernel import parse_utc

from .config import SourceConfig
from .errors import SourceError
from .frames import SourceInfo
from .kinds import SourceKind, redact_url

logger = logging.getLogger(__name__)

_PLAUSIBLE_START = 315532800.0  # 1980-01-01 UTC


class CaptureReader:
    """A cv2.VideoCapture whose first frame was already decoded at open time and is handed out first."""

    def __init__(self, capture: cv2.VideoCapture, first: np.ndarray):
        self._capture = capture
        self._pending: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        self._first_position = self._capture_position()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return True, image
        self._first_position = None
        ok, image = self._capture.read()
        return (True, image) if ok and image is not None else (False, None)

    def grab(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        self._first_position = None
        return bool(self._capture.grab())

    def position_s(self) -> float | None:
        msec = self._first_position if self._first_position is not None else self._capture_position()
        return msec / 1000.0 if msec is not None else None

    def release(self) -> None:
        self._capture.release()

    def _capture_position(self) -> float | None:
        msec = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        return msec if msec >= 0 else None

    def info(self, kind: SourceKind, spec: str) -> SourceInfo:
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return SourceInfo(
            kind=kind,
            spec=spec,
            fps=fps if fps > 0 else None,
            width=int(self.width),
            height=int(self.height),
            # Live streams report nonsense here (an RTSP stream of a file reports the file's count).
            frame_count=count if kind is SourceKind.FILE and count > 0 else None,
        )


def open_capture(target: str | int, kind: SourceKind, config: SourceConfig) -> CaptureReader:
    """Open a file, webcam or URL and decode its first frame, or raise SourceError saying why not."""
    if kind is SourceKind.FILE and isinstance(target, str) and "://" not in target:
        if not os.path.exists(target):
            raise SourceError(f"cannot open video '{target}': file not found")
        if os.path.isdir(target):
            raise SourceError(f"cannot open video '{target}': it is a directory")
    capture = _new_capture(target, kind, config)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open {_describe(target, kind)}: {_open_hint(kind, config)}")
    ok, image = capture.read()
    if not ok or image is None:
        capture.release()
        raise SourceError(f"cannot read {_describe(target, kind)}: opened but no frame could be decoded "
                          f"({_read_hint(kind)})")
    return CaptureReader(capture, image)


def _new_capture(target: str | int, kind: SourceKind, config: SourceConfig) -> cv2.VideoCapture:
    if kind is SourceKind.WEBCAM:
        return cv2.VideoCapture(target)
    if isinstance(target, str) and "://" in target:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(config.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(config.read_timeout_s * 1000)]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(target)


def _describe(target: str | int, kind: SourceKind) -> str:
    if kind is SourceKind.WEBCAM:
        return f"webcam {target}"
    if kind is SourceKind.NETWORK:
        return f"stream {redact_url(str(target))}"
    return f"video '{redact_url(str(target))}'"


def _open_hint(kind: SourceKind, config: SourceConfig) -> str:
    if kind is SourceKind.WEBCAM:
        return "no such camera, or it is in use by another program"
    if kind is SourceKind.NETWORK:
        return (f"refused, unreachable or silent for {config.open_timeout_s:g} s "
                "(wrong host, port, path or credentials, or the camera is off)")
    return "OpenCV cannot decode it (not a video, truncated, or an unsupported codec)"


def _read_hint(kind: SourceKind) -> str:
    if kind is SourceKind.FILE:
        return "corrupt, truncated, or not a video"
    return "the device or stream sends no video"


def recorded_start(path: str) -> float | None:
    """The start a video file records (its `creation_time`, as cameras and phones write it), as epoch
    seconds; None for a URL or a file that records none. OpenCV does not read container tags; PyAV does."""
    if "://" in path:
        return None
    try:
        import av

        with av.open(path) as container:
            tags = [container.metadata, *(s.metadata for s in container.streams.video)]
    except Exception as exc:  # noqa: BLE001 - OpenCV already decoded the file; a missing tag is no error
        logger.debug("no recorded start for '%s': %s", path, exc)
        return None
    for text in (t.get("creation_time") for t in tags):
        if text:
            try:
                start = parse_utc(text)
            except ValueError:
                logger.debug("'%s': unreadable creation_time %r", path, text)
                continue
            if start >= _PLAUSIBLE_START:  # muxers write 1970 or 1904 when they know nothing
                return start
    return None
