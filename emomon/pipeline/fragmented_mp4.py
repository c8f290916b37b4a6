"""MP4 that survives a crash: a fragmented MP4 (`moof` + `mdat` per fragment, an empty `moov` up front).

A plain MP4 is unplayable until its index (`moov`) is written at the end, so a SIGKILL, a power cut or an
out-of-memory kill loses the whole video of a long run. Here every fragment (about one second: it starts at
each key frame) is complete on disk as soon as it is written, and players read the fragments that are there.
Written with PyAV (FFmpeg's mp4 muxer, `movflags=frag_keyframe+empty_moov+default_base_moof`), the codec is
MPEG-4 Part 2 as OpenCV's `mp4v`; the object has the small part of `cv2.VideoWriter`'s interface the
run's `VideoWriter` uses (`isOpened`, `write`, `release`).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
FRAGMENT_S = 1.0  # a key frame, hence a fragment, about this often: at most this much is lost to a crash


class FragmentedMp4:
    """Frames of one size (even width and height) into a fragmented MP4; errors from FFmpeg are raised (OSError
    for a failed write) and leave it closed."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], container: str = "mp4",
                 bits_per_pixel: float = 0.15):
        import av

        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self._n = 0
        self._container = None
        rate = Fraction(fps).limit_denominator(1001)
        container = av.open(str(self.path), "w", format=container, options={"movflags": MOVFLAGS,
                                                                             "flush_packets": "1"})
        try:
            stream = container.add_stream("mpeg4", rate=rate)
            stream.width, stream.height = self.size
            stream.pix_fmt = "yuv420p"
            stream.gop_size = max(1, round(float(rate) * FRAGMENT_S))
            stream.bit_rate = max(200_000, int(self.size[0] * self.size[1] * float(rate) * bits_per_pixel))
            stream.codec_context.open()  # a size or rate the codec refuses fails here, before any frame
        except Exception:
            container.close()
            self.path.unlink(missing_ok=True)
            raise
        self._container, self._stream = container, stream

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return self._container is not None

    def write(self, image: np.ndarray) -> None:
        import av

        if self._container is None:
            raise OSError(0, "the video encoder stopped")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._n
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except Exception:
            self._abandon()
            raise
        self._n += 1

    def release(self) -> None:
        """Flush the encoder and close the file (the index of fragments at the end is optional for players)."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            container.close()

    def _abandon(self) -> None:
        container, self._container = self._container, None
        try:
            container.close()
        except Exception as exc:  # noqa: BLE001 - the write's own error is the one raised
            log.debug("closing '%s' after a failed write: %s", self.path, exc)


def fragmented_size(size: tuple[int, int]) -> tuple[int, int]:
    """The frame size the encoder takes for `size`: yuv420p needs even sides (one pixel row/column dropped)."""
    return (int(size[0]) - int(size[0]) % 2, int(size[1]) - int(size[1]) % 2)
