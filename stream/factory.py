"""open_source: one entry point from a user's spec (webcam index, file, URL, image, directory, glob)."""

import logging
import os
import time

from .capture import CaptureReader, open_capture, recorded_start
from .config import SourceConfig
from .errors import SourceError
from .images import open_images
from .kinds import SourceKind, detect_kind, redact_url
from .source import VideoSource, check_limits

logger = logging.getLogger(__name__)


def open_source(
    spec: int | str | os.PathLike,
    *,
    vid_stride: int = 1,
    max_frames: int | None = None,
    config: SourceConfig | None = None,
) -> VideoSource:
    """Open a source and decode its first frame, so bad input fails here with a one-line SourceError.

    spec: webcam index (0 or "0", or /dev/videoN), video file, rtsp/rtmp/http(s) URL, image file,
    directory of images, or glob pattern of images. vid_stride: keep every k-th frame. max_frames: stop
    after yielding this many. The reader thread starts when iteration starts.
    """
    config = config or SourceConfig()
    check_limits(vid_stride, max_frames)
    if isinstance(spec, bool) or not isinstance(spec, int | str | os.PathLike):
        raise SourceError(f"a source must be a webcam index, path or URL, got {spec!r}")
    kind = detect_kind(spec)
    text = str(spec) if isinstance(spec, int) else os.fspath(spec)
    if not text.strip():
        raise SourceError("the source is empty: give a webcam index, path or URL")
    limits = {"vid_stride": vid_stride, "max_frames": max_frames, "config": config}

    if kind in (SourceKind.IMAGE, SourceKind.IMAGES):
        reader = open_images(text, kind)
        return VideoSource(reader, reader.info(kind, text), **limits)
    if kind is SourceKind.WEBCAM:
        target = int(text) if text.strip().isdigit() else text
        reader = open_capture(target, kind, config)
        return VideoSource(reader, reader.info(kind, text.strip()), reopen=lambda: open_capture(target, kind, config),
                           **limits)
    if kind is SourceKind.NETWORK:
        reader = _open_with_retries(text, config)
        return VideoSource(reader, reader.info(kind, text), reopen=lambda: open_capture(text, kind, config),
                           **limits)
    reader = open_capture(text, kind, config)
    return VideoSource(reader, reader.info(kind, text), start_utc=recorded_start(text), **limits)


def _open_with_retries(url: str, config: SourceConfig) -> CaptureReader:
    """A camera that is briefly away at start-up gets config.open_attempts tries, with backoff."""
    for attempt in range(1, config.open_attempts + 1):
        try:
            return open_capture(url, SourceKind.NETWORK, config)
        except SourceError as error:
            if attempt == config.open_attempts:
                suffix = f"; gave up after {attempt} attempts" if attempt > 1 else ""
                raise SourceError(f"{error}{suffix}") from None
            delay = config.backoff_s(attempt)
            logger.warning("stream %s: open attempt %d/%d failed; retrying in %.1f s",
                           redact_url(url), attempt, config.open_attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
