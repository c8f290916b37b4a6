"""One video of a corpus through a loaded pipeline into its own result folder, atomically.

The outputs are written by `emomon.pipeline.run_pipeline` (the code behind `emomon run`, so a video's JSONL is
what `emomon run` writes for it) into `OUT/.partial/NAME.ATTEMPT/`, flushed to disk, and only then renamed to
`OUT/NAME/`. A worker that dies mid-video leaves only a `.partial` folder, which is never read and is cleared by
the next run; the manifest line comes after the rename, from the driver.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from emomon.cluster.config import BatchConfig
from emomon.cluster.inputs import VideoItem
from emomon.cluster.manifest import DONE, FAILED
from emomon.kernel import InputError, first_line

log = logging.getLogger(__name__)

PARTIAL = ".partial"
RESULT_FILES = {"jsonl": "frames.jsonl", "csv": "frames.csv", "summary": "summary.json", "video": "annotated.mp4"}


def result_files(config: BatchConfig) -> dict[str, str]:
    """The files of one video's result folder, by kind."""
    wanted = {"jsonl": True, "csv": config.csv, "summary": True, "video": config.video}
    return {kind: name for kind, name in RESULT_FILES.items() if wanted[kind]}


def process_video(item: VideoItem, pipeline, out_dir: str | os.PathLike, config: BatchConfig,
                  source_config=None, on_frame=None) -> dict:
    """Run `item` through `pipeline`; the manifest entry comes back (`done`, or `failed` with the one-line
    reason). Ctrl-C and stop signals are raised, not recorded: the video is simply not finished."""
    from emomon.pipeline import OutputPaths, RunReport, run_pipeline
    from stream import open_source

    out_dir = Path(out_dir)
    partial = out_dir / PARTIAL / f"{item.name}.{uuid.uuid4().hex[:12]}"
    files = result_files(config)
    entry = {"source": item.source, "name": item.name, "worker": f"{socket.gethostname()}:{os.getpid()}"}
    report = RunReport()
    start = time.perf_counter()
    try:
        partial.mkdir(parents=True)
        outputs = OutputPaths(**{kind: str(partial / name) for kind, name in files.items()})
        source = open_source(item.source, vid_stride=config.vid_stride, max_frames=config.max_frames,
                             config=source_config)
        with source:
            run_pipeline(source, pipeline, outputs, progress=False, on_frame=on_frame, report=report)
        _commit(partial, out_dir / item.name)
    except Exception as exc:  # noqa: BLE001 - one video's failure is its manifest line; the corpus goes on
        reason = str(exc) if isinstance(exc, InputError) else first_line(exc)
        log.debug("%s: failed: %s", item.source, reason)  # the driver logs it, with the progress
        return {**entry, "status": FAILED, "reason": reason, "frames": report.frames,
                "seconds": round(time.perf_counter() - start, 3)}
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    seconds = time.perf_counter() - start
    return {**entry, "status": DONE, "frames": report.frames, "persons": report.persons,
            "seconds": round(seconds, 3), "fps": round(report.frames / seconds, 2) if seconds > 0 else None,
            "stopped_by": report.stopped_by, "files": {kind: f"{item.name}/{name}" for kind, name in files.items()}}


def _commit(partial: Path, final: Path) -> None:
    """Flush every file, then rename the folder into place. A folder already there was left by a run that died
    between its rename and its manifest line (the manifest does not list it as done): it is replaced."""
    for path in partial.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    stale = None
    if final.exists():
        stale = partial.with_name(partial.name + ".stale")
        os.rename(final, stale)
    os.rename(partial, final)
    _fsync_dir(final.parent)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clear_partials(out_dir: str | os.PathLike) -> None:
    """Remove what unfinished attempts left (only while no worker writes there: before and after a run)."""
    shutil.rmtree(Path(out_dir) / PARTIAL, ignore_errors=True)
