"""Drive a pipeline over a source and write the outputs; always leaves valid files behind."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from emomon.kernel import write_json_atomic
from emomon.pipeline.emotion_pipeline import EmotionPipeline
from emomon.pipeline.interrupts import InterruptGuard
from emomon.pipeline.outputs import CsvWriter, JsonlWriter, VideoWriter
from emomon.pipeline.results import FrameResult
from emomon.pipeline.summary import RunSummary

log = logging.getLogger(__name__)


@dataclass
class OutputPaths:
    video: str | None = None
    jsonl: str | None = None
    csv: str | None = None
    summary: str | None = None


@dataclass
class RunReport:
    frames: int = 0
    persons: int = 0
    seconds: float = 0.0
    dropped: int = 0
    stopped_by: str = "end of source"
    stages: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_pipeline(source, pipeline: EmotionPipeline, outputs: OutputPaths, overlay=None, show: bool = False,
                 progress: bool = True, on_frame=None) -> RunReport:
    """Process every frame of `source`; outputs are flushed per frame and closed however the run ends."""
    pipeline.reset()
    info = source.info
    pipeline.tracking = getattr(getattr(info, "kind", None), "value", "file") not in ("image", "images")
    report = RunReport()
    summary = RunSummary()
    writers = []
    video = None
    with InterruptGuard() as guard:
        try:
            if outputs.jsonl:
                writers.append(JsonlWriter(outputs.jsonl))
            if outputs.csv:
                writers.append(CsvWriter(outputs.csv))
            if outputs.video:
                video = VideoWriter(outputs.video, info.fps)
            if (video is not None or show) and overlay is None:
                from emomon.pipeline.overlay import EmotionOverlay

                overlay = EmotionOverlay()
            bar = _progress_bar(info, progress)
            start = time.perf_counter()
            try:
                for frame in source:
                    result: FrameResult = pipeline.process(frame.index, frame.time, frame.image)
                    record = result.record()
                    annotated = None
                    if video is not None or show:
                        t = time.perf_counter()
                        annotated = overlay.annotate(frame.image, result.detections)
                        pipeline.times.add("annotate", time.perf_counter() - t)
                    # Every output gets this frame or none does: Ctrl-C waits for the end of this block.
                    with guard.deferred():
                        for w in writers:
                            w.write(record)
                        summary.add(result.index, result.time, result.persons)
                        if video is not None:
                            t = time.perf_counter()
                            video.write(annotated)
                            pipeline.times.add("encode", time.perf_counter() - t)
                        report.frames += 1
                        report.persons += len(result.persons)
                    if show and _show(annotated):
                        report.stopped_by = "window closed"
                        break
                    if on_frame is not None:
                        on_frame(result)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(persons=len(result.persons), refresh=False)
                else:
                    report.stopped_by = getattr(source, "end_reason", None) or "end of source"
            except KeyboardInterrupt:
                report.stopped_by = "interrupted"
                raise
            finally:
                report.seconds = time.perf_counter() - start
                if bar is not None:
                    bar.close()
        finally:
            # Closing writes the video index and the summary; a Ctrl-C now would only corrupt them.
            with guard.deferred(reraise=False):
                _close_outputs(writers, video, show)
                report.dropped = getattr(source, "dropped", 0)
                report.stages = pipeline.times.summary()
                report.counts = dict(pipeline.counts)
                if outputs.summary:
                    write_json_atomic(outputs.summary, summary.to_dict(
                        source=info.label if hasattr(info, "label") else str(info.spec),
                        fps=report.fps, stopped_by=report.stopped_by, dropped_frames=report.dropped))
            log.info("processed %d frames (%.1f frames/s), %d person detections; stopped by %s%s",
                     report.frames, report.fps, report.persons, report.stopped_by,
                     f"; {report.dropped} frames dropped (live source)" if report.dropped else "")
            for path in (outputs.video, outputs.jsonl, outputs.csv, outputs.summary):
                if path and Path(path).exists():
                    log.info("wrote %s", path)
    return report


def _close_outputs(writers, video, show: bool) -> None:
    for w in writers:
        w.close()
    if video is not None:
        video.close()
    if show:
        _close_windows()


def _progress_bar(info, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    total = info.frame_count if info.frame_count else None
    return tqdm(total=total, unit="frame", desc="emomon", dynamic_ncols=True, smoothing=0.1)


def _show(image) -> bool:
    """Show a frame; True when the user asked to stop (q or Esc)."""
    import cv2

    cv2.imshow("emomon", image)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)


def _close_windows() -> None:
    try:
        import cv2

        cv2.destroyAllWindows()
    except Exception:  # noqa: BLE001 - headless builds have no windows to close
        pass
