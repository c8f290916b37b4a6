"""Facts about media files shared by sources, training data, calibration sets and writers."""

from __future__ import annotations

# Every still-image format OpenCV decodes that users hand us (lower case, with the dot).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
# Video files: a URL ending in one of these is a remote file (finite, read without drops), not a live stream.
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})


def output_fps(fps: float | None, default: float = 25.0) -> float:
    """A frame rate a video writer accepts: the source's when it is sane (1-240), else `default`."""
    return float(fps) if fps and 1 <= fps <= 240 else default
