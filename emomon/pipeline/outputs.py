"""Run outputs, each optional: annotated video, JSONL log, CSV, per-track summary JSON.

Written as the run goes, and closed in `finally` blocks so that an early stop (Ctrl-C, SIGTERM, max-frames, a
dropped stream, an error) still leaves a playable video and valid files. Every write is checked:

- JSONL and CSV go straight to the OS, one whole frame per write. A failed write (a full disk) is cut back
  to the last complete line and raised as an InputError naming the file and the cause; `mark()` and
  `rollback()` let the runner take a frame back out of one output when another output fails on it.
- The video (OpenCV, whose `write` reports nothing) is checked around every frame: before it, that its file
  system still has room to finish the file (the encoder's buffer and the index written on release), after
  it, that the writer is open and the file system is not full; after release, that the file is a playable
  video holding every frame written. A video that cannot be finished is removed, never left unplayable.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from emomon.kernel import InputError, ensure_parent, output_fps
from emomon.kernel.files import check_writable, write_error
from emomon.pipeline.fragmented_mp4 import FragmentedMp4, fragmented_size
from fusion import EMOTIC_CATEGORIES, VAD_NAMES
from fusion.models.labels import EMOTIC, LabelSpace

log = logging.getLogger(__name__)

# The video containers the writer produces, and the codec each is written with.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
# Those written as fragmented MP4 (see fragmented_mp4), with their FFmpeg muxer.
FRAGMENTED_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


class _Unopened:
    """What the writer holds when its encoder could not be opened."""

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return False

    def release(self) -> None:
        pass


class _RecordFile:
    """A file written in whole records, unbuffered: every `append` lands completely or not at all."""

    def __init__(self, path):
        self.path = ensure_parent(path)
        try:
            self._f = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self.size = 0

    def append(self, data: bytes) -> None:
        start = self.size
        view = memoryview(data)
        try:
            while view:
                n = self._f.write(view)
                self.size += n
                view = view[n:]
        except OSError as exc:
            self.truncate(start)
            raise write_error(self.path, exc) from None

    def truncate(self, size: int) -> None:
        """Cut the file back to `size` bytes (the end of its last whole record); a failure is only logged."""
        if self._f.closed or size >= self.size:
            return
        try:
            os.ftruncate(self._f.fileno(), size)
            self._f.seek(size)
            self.size = size
        except OSError as exc:
            log.warning("could not cut '%s' back to its last whole line: %s", self.path, exc.strerror or exc)

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError as exc:
                raise write_error(self.path, exc) from None


class _FrameRecords:
    """A writer of whole frames into a `_RecordFile`: `mark()` where the next frame starts, `rollback(mark)`
    takes every later frame back out (a frame another output missed), `close()`."""

    _file: _RecordFile
    _header = b""  # what a new file starts with

    def mark(self) -> int:
        return self._file.size

    def rollback(self, mark: int) -> None:
        self._file.truncate(mark)

    def write_event(self, record: dict) -> None:
        """A record that is not a frame (a stream lost or restored); outputs with one row per person skip it."""

    def reopen(self, path) -> None:
        """Close this file, whole, and go on in a new one (`--rotate`)."""
        self.close()
        self._file = _RecordFile(path)
        self.path = self._file.path
        if self._header:
            self._file.append(self._header)

    def close(self) -> None:
        self._file.close()


class JsonlWriter(_FrameRecords):
    """One JSON object per processed frame (`FrameResult.record()`), on disk as soon as it is written."""

    def __init__(self, path):
        self._file = _RecordFile(path)
        self.path = self._file.path

    def write(self, record: dict) -> None:
        self._file.append((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8"))

    write_event = write


CSV_COLUMNS = (["frame", "time", "utc", "track_id", "x1", "y1", "x2", "y2", "score", "top1", "top1_prob"]
               + list(VAD_NAMES) + list(EMOTIC_CATEGORIES))


def csv_columns(labels: LabelSpace = EMOTIC) -> list[str]:
    """CSV_COLUMNS for a model's label space: its continuous dimensions, then its categories."""
    return CSV_COLUMNS[:CSV_COLUMNS.index("top1_prob") + 1] + list(labels.dimension_names) + list(labels.categories)


class CsvWriter(_FrameRecords):
    """The same content as the JSONL (flattened from the same frame record), one row per person per frame;
    the columns follow the label space of the model (EMOTIC: CSV_COLUMNS)."""

    def __init__(self, path, labels: LabelSpace | None = None):
        self._file = _RecordFile(path)
        self.path = self._file.path
        try:
            self._header = self._rows([csv_columns(labels or EMOTIC)])
            self._file.append(self._header)
        except InputError:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise

    @staticmethod
    def _rows(rows) -> bytes:
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode("utf-8")

    def write(self, record: dict) -> None:
        rows = []
        for p in record["persons"]:
            top1, top1_p = p["top"][0]
            rows.append([record["frame"], record["time"], record.get("utc") or "",
                         "" if p["track_id"] is None else p["track_id"],
                         *p["box"], p["score"], top1, top1_p, *p["vad"].values(), *p["emotions"].values()])
        if rows:
            self._file.append(self._rows(rows))


class SummaryWriter:
    """The summary JSON: written once, at the end, but with its room on disk taken as the run goes.

    A temporary file beside the summary is grown (allocated, not just sized) ahead of what the summary will
    need, as part of each frame. A full disk therefore stops the run at a frame whose summary still fits,
    and the summary is written into space it already holds, then renamed onto its name: whole or absent,
    never a `.tmp` left behind (except after SIGKILL, like any temporary file).
    """

    BASE, PER_TRACK = 8 << 10, 2 << 10  # bytes of the JSON (indent 1): measured at most ~1.8 KiB per track

    def __init__(self, path):
        self.path = ensure_parent(path)
        self.tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self._f = open(self.tmp, "wb", buffering=0)  # noqa: SIM115 - closed in write() or discard()
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self.reserved = 0
        try:
            self.reserve(0)
        except InputError:
            self.discard()
            raise

    def reserve(self, tracks: int) -> None:
        """Hold room for a summary of `tracks` tracks; InputError (nothing else changed) when the disk is full."""
        need = self.BASE + self.PER_TRACK * tracks
        if need <= self.reserved:
            return
        target = max(need, 2 * self.reserved)
        try:
            _allocate(self._f, target)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self.reserved = target

    def write(self, data: dict) -> None:
        """Write the summary into the held room and rename it onto its name; InputError when it cannot."""
        blob = json.dumps(data, indent=1, allow_nan=False).encode("utf-8")
        try:
            self._f.seek(0)
            view = memoryview(blob)
            while view:
                view = view[self._f.write(view):]
            self._f.truncate(len(blob))
            self._f.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise write_error(self.path, exc) from None

    def checkpoint(self, data: dict) -> None:
        """Write the summary as it stands now (`--rotate`), then hold room for the next one."""
        self.write(data)
        self.__init__(self.path)

    def discard(self) -> None:
        """Close and remove the temporary file (every failure path); errors are logged, never raised."""
        try:
            if not self._f.closed:
                self._f.close()
        except OSError:
            pass
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the temporary file '%s': %s", self.tmp, exc.strerror or exc)


def _allocate(f, size: int) -> None:
    """Make `f` hold `size` bytes of disk: allocated blocks, so that writing into them cannot fail for room."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(f.fileno(), 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
    end = f.seek(0, os.SEEK_END)  # no fallocate here: write zeros up to `size`
    if end < size:
        try:
            block = bytes(min(size - end, 1 << 20))
            while end < size:
                end += f.write(block[: size - end])
        except OSError:
            f.truncate(end)
            raise


def video_codec(path) -> str:
    """The codec for a video output, from its extension; InputError for an extension it cannot write."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_CODECS:
        known = ", ".join(VIDEO_CODECS)
        what = f"unknown extension '{suffix}'" if suffix else "no extension"
        raise InputError(f"cannot write video '{path}': {what} (use one of {known})")
    return VIDEO_CODECS[suffix]


def check_video_path(path) -> Path:
    """Before any work: a known extension and a folder where the file can be created."""
    video_codec(path)
    return check_writable(path)


@contextmanager
def _quiet_opencv():
    """OpenCV logs its own warning per failed open or write; ours say it in one line."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def free_bytes(folder) -> int | None:
    """Bytes this process may still write on `folder`'s file system (root may use the reserved blocks);
    None where the file system does not say."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    if st.f_blocks == 0:
        return None
    blocks = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


class VideoWriter:
    """MP4 (mp4v; MJPG for .avi/.mkv) at the source's frame rate.

    Opened with `open(size)` (the runner does so before the first frame, from the source's reported size),
    else at the first `write`. Every frame is checked as described in the module docstring.
    """

    BUFFER_GUESS = 256 << 10  # what FFmpeg holds before writing to the file (measured; updated as it flushes)
    INDEX_BASE, INDEX_PER_FRAME = 16 << 10, 32  # the index written on release (MP4 moov, AVI idx1), generously

    def __init__(self, path, fps: float | None, size: tuple[int, int] | None = None):
        self.fourcc = video_codec(path)
        self.path = ensure_parent(path)
        self.fps = output_fps(fps)
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self._on_disk = 0  # bytes the encoder has written to the file so far
        self._frames_on_disk = 0  # frames written when the file last grew
        self._buffer = self.BUFFER_GUESS
        self._broken = False  # a check after a write failed: the file cannot be trusted
        if size is not None:
            self.open(size)

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def open(self, size: tuple[int, int]) -> None:
        """Create the file for frames of `size` (width, height); InputError naming the real cause."""
        w, h = int(size[0]), int(size[1])
        if self.path.is_file():  # an earlier run's video: the encoder would only cut it at its first write,
            os.truncate(self.path, 0)  # which the shrink check below would take for someone removing the file
        writer = self._new_encoder(w, h)
        if not writer.isOpened():
            writer.release()
            raise InputError(f"cannot write video '{self.path}': {self._open_failure(w, h)}")
        self._writer, self._size = writer, getattr(writer, "size", (w, h))
        self._on_disk = self._file_size()

    def _new_encoder(self, w: int, h: int):
        """MP4/MOV as a fragmented MP4 (playable up to its last fragment if the process dies); AVI and MKV
        with OpenCV (their frames are readable without the index written at the end)."""
        container = FRAGMENTED_FORMATS.get(self.path.suffix.lower())
        if container is not None:
            try:
                return FragmentedMp4(self.path, self.fps, fragmented_size((w, h)), container=container)
            except Exception as exc:  # noqa: BLE001 - _open_failure says why, in the user's terms
                log.debug("fragmented MP4 '%s' (%dx%d) did not open: %s", self.path, w, h, exc)
                return _Unopened()
        with _quiet_opencv():
            return cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))

    def reopen(self, path) -> None:
        """Finish this file (checked as `close` does) and go on in a new one of the same size (`--rotate`)."""
        size = self._size
        self.close()
        self.__init__(path, self.fps, size)

    def _open_failure(self, w: int, h: int) -> str:
        """Why OpenCV could not open the writer: the folder, the frame size, or the format itself."""
        try:
            check_writable(self.path)
        except InputError as exc:
            return str(exc).split(": ", 1)[-1]
        if w < 1 or h < 1:
            return f"the frame size {w}x{h} is empty"
        with tempfile.TemporaryDirectory(prefix="emomon-probe-") as tmp, _quiet_opencv():
            probe = cv2.VideoWriter(str(Path(tmp) / f"probe{self.path.suffix.lower()}"),
                                    cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (64, 48))
            small_ok = probe.isOpened()
            probe.release()
        if small_ok:
            return (f"the {self.fourcc} codec of {self.path.suffix.lower()} files cannot encode {w}x{h} frames "
                    "(too large)")
        return f"this OpenCV build cannot write {self.path.suffix.lower()} files with the {self.fourcc} codec"

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self.open((image.shape[1], image.shape[0]))
        if (image.shape[1], image.shape[0]) != self._size:  # a stream that changed resolution
            image = cv2.resize(image, self._size)
        self._check_room()
        try:
            with _quiet_opencv():
                self._writer.write(image)
        except OSError as exc:  # FFmpeg's own write failed (OpenCV's writer never says)
            self._broken = True
            raise write_error(self.path, exc) from None
        self.frames += 1
        try:
            self._check_written()
        except InputError:
            self._broken = True
            raise

    # -- checks ---------------------------------------------------------------------------------------

    def _file_size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _frame_bytes(self) -> int:
        """Encoded bytes per frame: measured once the encoder has written to the file, else a guess."""
        w, h = self._size
        if self._frames_on_disk and self._on_disk > 1024:
            return max(1, self._on_disk // self._frames_on_disk)
        return max(4096, w * h * 3 // 16)

    def room_needed(self) -> int:
        """Free bytes needed to take one more frame and still finish the file: what the encoder holds in
        memory, the next frame (twice: key frames are larger) and the index written on release."""
        per_frame = self._frame_bytes()
        held = max(self._buffer, (self.frames - self._frames_on_disk) * per_frame)
        return held + 2 * per_frame + self.INDEX_BASE + self.INDEX_PER_FRAME * (self.frames + 1)

    def _check_room(self) -> None:
        free = free_bytes(self.path.parent)
        if free is None:
            return
        need = self.room_needed()
        if free < need:
            raise InputError(f"cannot write '{self.path}': No space left on device ({free >> 10} KiB free, "
                             f"about {need >> 10} KiB needed to add a frame and finish the video)")

    def _check_written(self) -> None:
        if not self._writer.isOpened():
            raise InputError(f"cannot write '{self.path}': the video encoder stopped")
        size = self._file_size()
        if size < self._on_disk:
            raise InputError(f"cannot write '{self.path}': the file shrank while writing (removed or replaced?)")
        if size > self._on_disk:
            self._buffer = max(self._buffer, size - self._on_disk)
            self._on_disk, self._frames_on_disk = size, self.frames
            if free_bytes(self.path.parent) == 0:  # the encoder's last write filled the disk: it was cut
                raise InputError(f"cannot write '{self.path}': No space left on device")

    def close(self) -> None:
        """Release (writes the index: the file is playable from here on) and check the result: InputError,
        with the file removed, when it is not a playable video holding every frame written."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        with _quiet_opencv():
            writer.release()
        if self.frames == 0:  # opened before a first frame that never came: an empty container, not a video
            self._remove()
            log.info("no frame was written: removed the empty video '%s'", self.path)
            return
        if self._broken:  # the error that said so is already on its way
            self._remove()
            log.warning("removed the unfinished video '%s'", self.path)
            return
        problem = self._verify()
        if problem:
            self._remove()
            if free_bytes(self.path.parent) == 0:
                problem = "No space left on device"
            raise write_error(self.path, OSError(0, f"{problem}; the unplayable file was removed"))

    def _verify(self) -> str | None:
        if self._file_size() == 0:
            return "the finished file is empty"
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path))
            try:
                if not cap.isOpened() or not cap.read()[0]:
                    return "the finished file is not a playable video"
                count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            finally:
                cap.release()
        if count > 0 and count != self.frames:
            return f"the finished file holds {count} of {self.frames} frames"
        return None

    def _remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove '%s': %s", self.path, exc.strerror or exc)
