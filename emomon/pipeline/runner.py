"""Drive a pipeline over a source and write the outputs; always leaves valid files behind.

Every output path is checked before the first frame, every output gets a whole frame or none of it, and
however the run ends (the end of the source, --max-frames, Ctrl-C, SIGTERM/SIGHUP, a dropped stream, a full
disk, an error) every output is closed, the summary says why it stopped, and the first failure is the one
raised: a second one while closing is logged, never raised over it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from emomon.kernel import InputError, write_json_atomic
from emomon.kernel.files import check_writable
from emomon.pipeline.anonymize import FaceAnonymizer
from emomon.pipeline.emotion_pipeline import EmotionPipeline
from emomon.pipeline.interrupts import InterruptGuard, Terminated
from emomon.pipeline.outages import OutageLog
from emomon.pipeline.outputs import CsvWriter, JsonlWriter, SummaryWriter, VideoWriter, check_video_path
from emomon.pipeline.overlap import Overlap
from emomon.pipeline.results import FrameResult
from emomon.pipeline.rotation import Rotation, part_path
from emomon.pipeline.summary import RunSummary
from stream import StreamEvent

log = logging.getLogger(__name__)


@dataclass
class OutputPaths:
    video: str | None = None
    jsonl: str | None = None
    csv: str | None = None
    summary: str | None = None
    rotate_s: float | None = None  # start new JSONL/CSV/video files every this many seconds (None: one file each)


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


def check_outputs(outputs: OutputPaths) -> None:
    """Before any work: each output's folder can be made and written, the video's extension is one it can
    write, and no two outputs are the same file. InputError naming the file and the cause."""
    seen: dict[str, str] = {}
    for what, path in (("video", outputs.video), ("JSONL", outputs.jsonl), ("CSV", outputs.csv),
                       ("summary", outputs.summary)):
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise InputError(f"cannot write '{path}': it is also the {seen[key]} output")
        seen[key] = what
        if what == "video":
            check_video_path(path)
        else:
            check_writable(path)


def stop_reason(exc: BaseException) -> str:
    """What `stopped_by` says for a run that ended on `exc`."""
    if isinstance(exc, Terminated):
        return exc.name
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, InputError):
        return f"error: {exc}"
    return f"error: {type(exc).__name__}: {exc}"


def run_pipeline(source, pipeline: EmotionPipeline, outputs: OutputPaths, overlay=None, show: bool = False,
                 progress: bool = True, on_frame=None, report: RunReport | None = None) -> RunReport:
    """Process every frame of `source`; outputs are written per frame and closed however the run ends.

    Raises the first failure once every output is closed (InputError for a bad output or a failed write,
    naming the file; KeyboardInterrupt for Ctrl-C; `Terminated` for SIGTERM/SIGHUP). Pass `report` to read
    what was done when it raises.
    """
    report = report if report is not None else RunReport()
    try:
        check_outputs(outputs)
    except InputError as exc:
        report.stopped_by = stop_reason(exc)
        raise
    pipeline.reset()
    info = source.info
    pipeline.tracking = getattr(getattr(info, "kind", None), "value", "file") not in ("image", "images")
    summary = RunSummary()
    outages = OutageLog()
    rotation = _rotation(outputs, info, source)  # None without --rotate
    named = rotation.name if rotation is not None else str
    writers: list = []
    video = None
    summary_out = None
    bar = None
    overlap = None
    failure: BaseException | None = None

    def summary_data(stopped_by: str) -> dict:
        return summary.to_dict(
            source=info.label if hasattr(info, "label") else str(info.spec),
            fps=report.frames / report.seconds if report.seconds > 0 else 0.0, stopped_by=stopped_by,
            dropped_frames=getattr(source, "dropped", 0),
            **getattr(pipeline, "run_info", {}),  # which runtimes and precisions ran (build.run_info)
            **({"vlm": pipeline.vlm.to_dict()} if getattr(pipeline, "vlm", None) is not None else {}),
            **({"outages": outages.to_dict()} if _live(info) else {}),
            **({"parts": [part.to_dict() for part in rotation.parts],
                "tracks_scope": "the current part; earlier parts: the file under parts[].summary"}
               if rotation is not None else {}))

    def end_part(part) -> None:
        """`--rotate`: the part's own summary file (its tracks, over its frames), written before it is listed."""
        path = part_path(outputs.summary, part.stamp)
        write_json_atomic(path, summary.end_part(
            source=info.label if hasattr(info, "label") else str(info.spec), part=part.to_dict()))
        part.files["summary"] = path

    with InterruptGuard() as guard:
        start = time.perf_counter()
        try:
            if outputs.summary:  # first: it holds its room on disk from the start (see SummaryWriter)
                summary_out = SummaryWriter(outputs.summary)
            if outputs.jsonl:
                writers.append(JsonlWriter(named(outputs.jsonl)))
                _in_parts(rotation, "jsonl", outputs.jsonl, writers[-1])
            if outputs.csv:
                writers.append(CsvWriter(named(outputs.csv), getattr(pipeline, "labels", None)))
                _in_parts(rotation, "csv", outputs.csv, writers[-1])
            if outputs.video:  # opened now when the source knows its frame size, else before frame 0 is written
                video = VideoWriter(named(outputs.video), info.fps, size=_frame_size(info))
                _in_parts(rotation, "video", outputs.video, video)
            if (video is not None or show) and overlay is None:
                from emomon.pipeline.overlay import EmotionOverlay

                overlay = EmotionOverlay()
            hide_faces = FaceAnonymizer(pipeline.config.privacy.anonymize)  # on the drawn copy, after the model
            bar = _progress_bar(info, progress)
            start = time.perf_counter()
            if getattr(pipeline.config, "overlap", False):  # the next frames are detected while this one is finished
                items = overlap = Overlap(_frames_and_events(source), pipeline, live=_live(info))
            else:
                items = ((item, None) for item in _frames_and_events(source))
            for frame, detections in items:
                if isinstance(frame, StreamEvent):  # a live source dropped or came back: a line of its own
                    with guard.deferred():
                        event = outages.record(frame, pipeline)
                        for w in writers:
                            w.write_event(event)
                    if overlap is not None:
                        overlap.resume()
                    continue
                result: FrameResult = pipeline.process(frame.index, frame.time, frame.image, detections)
                result.utc = getattr(frame, "utc", None)
                record = result.record(keypoints=pipeline.config.privacy.keypoints)
                annotated = None
                if video is not None or show:
                    t = time.perf_counter()
                    annotated = overlay.annotate(hide_faces(frame.image, result.detections), result.detections)
                    pipeline.times.add("annotate", time.perf_counter() - t)
                if video is not None and not video.opened:
                    video.open((annotated.shape[1], annotated.shape[0]))
                # Every output gets this frame or none does: a stop signal waits for the end of this block.
                with guard.deferred():
                    if rotation is not None and rotation.due(result.utc, result.time):  # new files from here
                        closed = rotation.rotate(result.utc, result.time)
                        if summary_out is not None:
                            end_part(closed)
                            report.seconds = time.perf_counter() - start
                            summary_out.checkpoint(summary_data("running"))
                    if summary_out is not None:  # before any output gets the frame: nothing to take back
                        summary_out.reserve(len(summary.tracks) + len(result.persons)
                                            + (len(rotation.parts) if rotation is not None else 0))
                    _write_frame(writers, video, record, annotated, pipeline.times)
                    summary.add(result.index, result.time, result.persons)
                    if rotation is not None:
                        rotation.count(result.index)
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
                report.stopped_by = _end_reason(source, report)
        except BaseException as exc:  # noqa: BLE001 - recorded, every output closed below, then raised again
            failure = exc
            report.stopped_by = stop_reason(exc)
        # Closing writes the video index and the summary; a stop signal now would only corrupt them.
        with guard.deferred(reraise=False):
            report.seconds = time.perf_counter() - start
            if overlap is not None:
                overlap.close()
            if bar is not None:
                bar.close()
            problems = _close_outputs(writers, video, show)
            if problems and failure is None:
                report.stopped_by = stop_reason(problems[0])
            report.dropped = getattr(source, "dropped", 0)
            report.stages = pipeline.times.summary()
            report.counts = dict(pipeline.counts)
            if summary_out is not None:
                try:
                    data = summary_data(report.stopped_by)  # (the last part's tracks are the summary's own)
                    if rotation is not None and rotation.parts[-1].frames:
                        end_part(rotation.parts[-1])
                        data["parts"] = [part.to_dict() for part in rotation.parts]
                    summary_out.write(data)
                except Exception as exc:  # noqa: BLE001 - reported below, after the first failure
                    summary_out.discard()
                    problems.append(exc)
                    _remove_stale(outputs.summary)
            elif outputs.summary:  # it could not even be opened: an earlier run's would mislead
                _remove_stale(outputs.summary)
    _log_end(report, outputs, [e for e in (failure, *problems) if e is not None])
    if failure is None and problems:
        failure = problems.pop(0)
    for extra in problems:
        log.warning("while closing the outputs: %s", extra)
    if failure is not None:
        raise failure
    return report


def _rotation(outputs: OutputPaths, info, source) -> Rotation | None:
    if not outputs.rotate_s:
        return None
    return Rotation(outputs.rotate_s, _live(info), start_utc=getattr(source, "start_utc", None))


def _in_parts(rotation: Rotation | None, kind: str, path: str, writer) -> None:
    if rotation is not None:
        rotation.add(kind, path, writer)


def _frames_and_events(source):
    """The source's frames, with its lost/restored events between them where it hands those out."""
    with_events = getattr(source, "with_events", None)
    return with_events() if with_events is not None else source


def _live(info) -> bool:
    return getattr(getattr(info, "kind", None), "value", None) in ("webcam", "network")


def _frame_size(info) -> tuple[int, int] | None:
    w, h = getattr(info, "width", 0) or 0, getattr(info, "height", 0) or 0
    return (int(w), int(h)) if w > 0 and h > 0 else None


def _end_reason(source, report: RunReport) -> str:
    reason = getattr(source, "end_reason", None)
    if reason:
        return reason
    limit = getattr(source, "max_frames", None)
    if isinstance(limit, int) and limit > 0 and report.frames >= limit:
        return f"max frames ({limit})"
    return "end of source"


def _write_frame(writers, video, record: dict, annotated, times) -> None:
    """One frame to every output, or to none: a failure takes the frame back out of the outputs that had it."""
    marks = [w.mark() for w in writers]
    try:
        for w in writers:
            w.write(record)
        if video is not None:
            t = time.perf_counter()
            video.write(annotated)
            times.add("encode", time.perf_counter() - t)
    except BaseException:
        for w, mark in zip(writers, marks):
            w.rollback(mark)
        raise


def _close_outputs(writers, video, show: bool) -> list[BaseException]:
    """Close everything; the errors come back in order instead of stopping the others from closing."""
    problems: list[BaseException] = []
    for close in [w.close for w in writers] + ([video.close] if video is not None else []):
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - each output closes whatever another one did
            problems.append(exc)
    if show:
        _close_windows()
    return problems


def _remove_stale(path: str) -> None:
    """A summary left from an earlier run would describe other frames than the new JSONL/CSV/video."""
    try:
        if Path(path).is_file():
            Path(path).unlink()
            log.warning("removed the summary '%s' of an earlier run: this run could not replace it", path)
    except OSError as exc:
        log.warning("could not remove the earlier summary '%s': %s", path, exc.strerror or exc)


def _log_end(report: RunReport, outputs: OutputPaths, errors: list[BaseException]) -> None:
    log.info("processed %d frames (%.1f frames/s), %d person detections; stopped by %s%s",
             report.frames, report.fps, report.persons, report.stopped_by,
             f"; {report.dropped} frames dropped (live source)" if report.dropped else "")
    messages = [str(e) for e in errors]
    for path in (outputs.video, outputs.jsonl, outputs.csv, outputs.summary):
        if not path or not Path(path).exists():
            continue
        if any(f"'{path}'" in m or f"'{Path(path)}'" in m for m in messages):
            log.info("kept %s (%d whole frames)", path, report.frames)
        else:
            log.info("wrote %s", path)


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
