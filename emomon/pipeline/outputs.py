"""Run outputs, each optional: annotated video, JSONL log, CSV, per-track summary JSON.

Written as the run goes (JSONL and CSV are flushed per frame), and closed in `finally` blocks so that an
early stop (Ctrl-C, max-frames, a dropped stream, an error) still leaves a playable video and valid files.
"""

from __future__ import annotations

import csv
import json
import logging

import cv2
import numpy as np

from emomon.kernel import InputError, ensure_parent, output_fps
from fusion import EMOTIC_CATEGORIES, VAD_NAMES

log = logging.getLogger(__name__)


class JsonlWriter:
    """One JSON object per processed frame (`FrameResult.record()`), flushed as it goes."""

    def __init__(self, path):
        self.path = ensure_parent(path)
        try:
            self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise InputError(f"cannot write '{self.path}': {exc.strerror}") from None

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


CSV_COLUMNS = (["frame", "time", "track_id", "x1", "y1", "x2", "y2", "score", "top1", "top1_prob"]
               + list(VAD_NAMES) + list(EMOTIC_CATEGORIES))


class CsvWriter:
    """The same content as the JSONL (flattened from the same frame record), one row per person per frame."""

    def __init__(self, path):
        self.path = ensure_parent(path)
        try:
            self._f = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot write '{self.path}': {exc.strerror}") from None
        self._w = csv.writer(self._f)
        self._w.writerow(CSV_COLUMNS)

    def write(self, record: dict) -> None:
        for p in record["persons"]:
            top1, top1_p = p["top"][0]
            self._w.writerow([record["frame"], record["time"], "" if p["track_id"] is None else p["track_id"],
                              *p["box"], p["score"], top1, top1_p, *p["vad"].values(), *p["emotions"].values()])
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class VideoWriter:
    """MP4 (mp4v) at the source's frame rate; opened lazily on the first frame to learn its size."""

    def __init__(self, path, fps: float | None):
        self.path = ensure_parent(path)
        self.fps = output_fps(fps)
        self._writer = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".mov") else "MJPG"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video '{self.path}' (unsupported extension or folder not writable)")
            self._size = (w, h)
        if (image.shape[1], image.shape[0]) != self._size:  # a stream that changed resolution
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the index: the file is playable from here on
            self._writer = None

