"""Still images as a frame source: one image, a directory of images, or a glob pattern."""

import glob
import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

from .errors import SourceError
from .frames import SourceInfo
from .kinds import IMAGE_SUFFIXES, SourceKind

logger = logging.getLogger(__name__)


def natural_key(path: str) -> list:
    """Sort frame_2.jpg before frame_10.jpg, as numbered frame dumps expect."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def list_images(spec: str) -> list[str]:
    """The image files a directory or glob names, in natural order; SourceError if there are none."""
    if os.path.isdir(spec):
        paths = [str(p) for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        where = f"directory '{spec}'"
    else:
        paths = [p for p in glob.glob(spec, recursive=True)
                 if Path(p).suffix.lower() in IMAGE_SUFFIXES and os.path.isfile(p)]
        where = f"pattern '{spec}'"
    if not paths:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        raise SourceError(f"no images found for {where} (looked for {suffixes})")
    return sorted(paths, key=natural_key)


def read_image(path: str) -> np.ndarray | None:
    """BGR uint8 (H, W, 3), or None when the file is not a decodable image."""
    return cv2.imread(path, cv2.IMREAD_COLOR)


class ImageReader:
    """Reads a list of image files in order. Images that fail to decode after the first are skipped with
    a warning, so one corrupt file does not end a long batch; the first must decode (fail fast)."""

    def __init__(self, paths: list[str]):
        first = read_image(paths[0])
        if first is None:
            raise SourceError(f"cannot read image '{paths[0]}': not a decodable image "
                              "(corrupt or unsupported)")
        self.paths = paths
        self.height, self.width = first.shape[:2]
        self._pending: np.ndarray | None = first
        self._next = 1
        self.skipped: list[str] = []

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return True, image
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = read_image(path)
            if image is not None:
                return True, image
            self.skipped.append(path)
            logger.warning("skipping image '%s': not a decodable image (corrupt or unsupported)", path)
        return False, None

    def grab(self) -> bool:
        """Skip one image without decoding it (vid_stride)."""
        if self._pending is not None:
            self._pending = None
            return True
        if self._next < len(self.paths):
            self._next += 1
            return True
        return False

    def release(self) -> None:
        self._pending = None

    def info(self, kind: SourceKind, spec: str) -> SourceInfo:
        return SourceInfo(kind=kind, spec=spec, fps=None, width=int(self.width), height=int(self.height),
                          frame_count=len(self.paths))


def open_images(spec: str, kind: SourceKind) -> ImageReader:
    """Open one image (IMAGE) or every image of a directory or glob (IMAGES), decoding the first."""
    if kind is SourceKind.IMAGE:
        if not os.path.exists(spec):
            raise SourceError(f"cannot open image '{spec}': file not found")
        return ImageReader([spec])
    return ImageReader(list_images(spec))
