"""Video jobs for the app: run the pipeline over a file or URL, write a browser-playable video and the logs.

OpenCV's `mp4v` MP4s do not play in browsers, so the annotated video is encoded as H.264 (yuv420p,
`+faststart`) straight away with PyAV (which supervision already installs), in the same pass: no second
transcoding step and no system ffmpeg needed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from emomon.kernel import InputError, output_fps, write_json_atomic
from emomon.pipeline import EmotionOverlay, FaceAnonymizer, FrameResult, OutputPaths, OverlayConfig, run_pipeline
from emomon.webapp.config import Settings
from emomon.webapp.engine import AppEngine
from emomon.webapp.views import Timeline

log = logging.getLogger(__name__)


class H264Writer:
    """Annotated frames to a browser-playable MP4 (H.264, yuv420p); opened lazily on the first frame."""

    def __init__(self, path: str | Path, fps: float | None):
        self.path = Path(path)
        self.fps = output_fps(fps)
        self.frames = 0
        self._container = self._stream = None

    def write(self, image: np.ndarray) -> None:
        import av

        h, w = image.shape[:2]
        if self._container is None:
            self._size = (w - w % 2, h - h % 2)  # yuv420p needs even sizes
            container = av.open(str(self.path), "w", options={"movflags": "+faststart"})
            try:
                stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
                stream.width, stream.height = self._size
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "23", "preset": "veryfast"}
            except Exception:
                container.close()
                raise
            self._container, self._stream = container, stream
        if (w, h) != self._size:  # odd sizes lose a pixel row/column; a stream that changed size is resized
            image = (image[: self._size[1], : self._size[0]] if (w - self._size[0], h - self._size[1]) in
                     ((0, 0), (0, 1), (1, 0), (1, 1)) else cv2.resize(image, self._size))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None


class Stopped(Exception):
    """The user pressed Stop: keep what was processed so far."""


@dataclass
class VideoRun:
    video: str | None
    jsonl: str
    csv: str
    summary: str
    frames: int
    seconds: float
    persons: int
    stopped_by: str
    timeline: Timeline = field(default_factory=Timeline)
    summary_data: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def process_video(engine: AppEngine, spec: str, settings: Settings, out_dir: Path, *, max_seconds: float = 0,
                  stride: int = 1, progress: Callable[[int, int | None, str], None] | None = None,
                  cancel: threading.Event | None = None, name: str = "video", label: str | None = None,
                  job=None) -> VideoRun:
    """Run the pipeline over `spec` (a file path or URL); outputs go to `out_dir`. Raises InputError for bad input.

    `label` is what messages and the summary call the source instead of `spec` (an upload's own file name,
    not the server folder Gradio keeps it in). A `job` (`jobs.VideoJob`) gets progress and preview frames and
    its `cancel` stops the run like `cancel`.
    """
    cancel = cancel or (job.cancel if job is not None else None)
    from stream import open_source

    def public(text: str) -> str:
        return text.replace(str(spec), label) if label else text

    stride = max(1, int(stride or 1))
    try:
        source = open_source(spec, vid_stride=stride)  # SourceError (an InputError) for bad files, in one line
    except InputError as exc:
        if not label:
            raise
        raise InputError(public(str(exc))) from None
    info = source.info
    total = math.ceil(info.frame_count / stride) if info.frame_count else None
    if max_seconds and max_seconds > 0 and info.fps:
        limit = max(1, math.ceil(max_seconds * info.fps / stride))
        source.max_frames = limit if total is None else min(limit, total)
        total = source.max_frames
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = OutputPaths(None, str(out_dir / f"{name}.jsonl"), str(out_dir / f"{name}.csv"),
                        str(out_dir / f"{name}_summary.json"))
    video_path = out_dir / f"{name}_annotated.mp4"
    writer = H264Writer(video_path, (info.fps / stride) if info.fps else None)
    overlay = EmotionOverlay(OverlayConfig(top_k=settings.top_k))
    timeline = Timeline()
    pipeline = engine.pipeline(settings, prefix="video")  # (checks the settings)
    hide_faces = FaceAnonymizer(pipeline.config.privacy.anonymize)  # the model saw the original frame already
    state = {"frames": 0, "persons": 0, "start": time.perf_counter()}
    stopped_by = "end of video"

    def on_frame(result: FrameResult) -> None:
        annotated = overlay.annotate(hide_faces(result.image, result.detections), result.detections)
        writer.write(annotated)
        timeline.add(result.time, result.persons)
        state["frames"] += 1
        state["persons"] += len(result.persons)
        rate = state["frames"] / max(time.perf_counter() - state["start"], 1e-6)
        if progress is not None:
            progress(state["frames"], total, f"{rate:.1f} frames/s, {len(result.persons)} persons in frame")
        if job is not None:
            job.report(state["frames"], total, rate, len(result.persons), annotated[..., ::-1])
        if cancel is not None and cancel.is_set():
            raise Stopped

    try:
        with source:
            try:
                run_pipeline(source, pipeline, paths, progress=False, on_frame=on_frame)
                if source.end_reason:
                    stopped_by = public(source.end_reason)
                elif total is not None and info.frame_count and total < math.ceil(info.frame_count / stride):
                    stopped_by = f"time limit ({max_seconds:g} s)"
            except Stopped:
                stopped_by = "stopped by the user"
    finally:
        writer.close()
        pipeline.close()
    seconds = time.perf_counter() - state["start"]
    summary = json.loads(Path(paths.summary).read_text(encoding="utf-8"))
    public_summary = {**summary, "stopped_by": stopped_by}
    if "source" in summary:
        public_summary["source"] = public(str(summary["source"]))
    if public_summary != summary:
        summary = public_summary
        write_json_atomic(paths.summary, summary)
    return VideoRun(str(video_path) if writer.frames else None, paths.jsonl, paths.csv, paths.summary,
                    state["frames"], seconds, state["persons"], stopped_by, timeline, summary)


def probe_video(path: str, label: str) -> tuple[int | None, float | None]:
    """(frame count, fps) of a video the app can play, read by the same decoder as the job; an InputError
    in one line naming `label` when no frame can be decoded (not a video, damaged, an unknown codec)."""
    cap = cv2.VideoCapture(str(path))
    try:
        ok = cap.isOpened() and cap.read()[0]
        if not ok:
            raise InputError(f"'{label}' cannot be played: it is not a video file this app can decode "
                             "(try an MP4, WebM, MOV or AVI file).")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        return (count if count > 0 else None), (fps if 0 < fps < 1000 else None)
    finally:
        cap.release()
