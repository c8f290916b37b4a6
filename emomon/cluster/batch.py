"""`emomon batch`'s driver: which videos are left to do, the manifest, the progress line, the corpus table.

Exactly once: a video is finished when its result folder was renamed into place *and* the manifest says
`done`; a re-run (resume is the default) skips those and redoes every other one, whatever happened to it.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from emomon.cluster.corpus_table import write_table
from emomon.cluster.inputs import VideoItem, hashed_name
from emomon.cluster.manifest import DONE, Manifest
from emomon.cluster.video_job import clear_partials

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    videos: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0      # finished by an earlier run (resume)
    frames: int = 0
    seconds: float = 0.0  # the whole run, starting the workers and loading the models included
    work_seconds: float = 0.0  # from the moment the workers had loaded the models
    workers: int = 0
    failures: list = field(default_factory=list)  # (source, reason)
    table: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Frames per second across all workers, once they had loaded the models."""
        return self.frames / self.work_seconds if self.work_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {"videos": self.videos, "done": self.done, "failed": self.failed, "skipped": self.skipped,
                "frames": self.frames, "seconds": round(self.seconds, 2),
                "work_seconds": round(self.work_seconds, 2), "fps": round(self.fps, 2),
                "workers": self.workers, "table": self.table}


class Progress:
    """Videos done/failed/running and frames/s across all workers: a bar on a terminal, a log line per video."""

    def __init__(self, report: BatchReport, total: int, enabled: bool):
        self.report, self.total = report, total
        self.start, self.started = time.perf_counter(), False  # restarted once the workers have loaded the models
        self.running, self.in_progress = 0, 0
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="video", desc="emomon batch", dynamic_ncols=True, file=sys.stderr)

    def fps(self) -> float:
        seconds = time.perf_counter() - self.start
        return (self.report.frames + self.in_progress) / seconds if seconds > 0 else 0.0

    def line(self) -> str:
        r = self.report
        return (f"{r.done + r.failed}/{self.total} videos: {r.done} done, {r.failed} failed, {self.running} running;"
                f" {self.fps():.1f} frames/s")

    def tick(self, in_progress: int, running: int) -> None:
        if not self.started:
            self.started, self.start = True, time.perf_counter()
        self.in_progress, self.running = in_progress, running
        if self.bar is not None:
            self.bar.set_postfix_str(self.line().split(": ", 1)[1], refresh=True)

    def finished(self, entry: dict) -> None:
        self.in_progress = 0
        self.running = max(0, self.running - 1)
        what = f"done, {entry.get('frames', 0)} frames" if entry["status"] == DONE else f"failed: {entry['reason']}"
        log.info("%s: %s [%s]", entry["name"], what, self.line())
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.line().split(": ", 1)[1], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def plan(items: list[VideoItem], manifest: Manifest, resume: bool) -> tuple[list[VideoItem], int]:
    """(the videos to process, how many are skipped as finished). A name an earlier run gave another source
    keeps that source's folder: the new video gets its hashed name."""
    todo, skipped = [], 0
    taken = {e["name"]: s for s, e in manifest.entries.items() if e.get("status") == DONE}
    for item in items:
        if resume and manifest.finished(item.source):
            skipped += 1
            continue
        if taken.get(item.name, item.source) != item.source:
            item = VideoItem(item.source, hashed_name(item.source))
        todo.append(item)
    return todo, skipped


def run_batch(items: list[VideoItem], out_dir: str, pool, resume: bool = True,
              progress: bool = False) -> BatchReport:
    """Process `items` on `pool` into `out_dir`; returns what was done. Failed videos are in the report and the
    manifest, not raised; the corpus table covers every finished video in the folder (this run's and earlier)."""
    out = Path(out_dir)
    report = BatchReport(videos=len(items))
    with Manifest(out) as manifest:
        clear_partials(out)
        todo, report.skipped = plan(items, manifest, resume)
        if report.skipped:
            log.info("resume: %d of %d videos are finished in '%s' and skipped (--no-resume redoes them)",
                     report.skipped, len(items), out)
        bar = Progress(report, len(todo), progress)

        def on_result(entry: dict) -> None:
            manifest.append(entry)  # after the folder's rename: a line never names a partial result
            if entry["status"] == DONE:
                report.done += 1
                report.frames += entry.get("frames", 0)
            else:
                report.failed += 1
                report.failures.append((entry["source"], entry.get("reason", "")))
            bar.finished(entry)

        start = time.perf_counter()

        def finish() -> None:
            report.seconds = time.perf_counter() - start
            report.work_seconds = time.perf_counter() - bar.start if bar.started else 0.0
            report.workers = getattr(pool, "workers", 1)
            bar.close()
            clear_partials(out)
            done = [e for e in manifest.entries.values() if e.get("status") == DONE and manifest.finished(e["source"])]
            report.table = write_table(out, done)

        try:
            if todo:
                pool.run(todo, on_result, bar.tick)
        except BaseException:  # Ctrl-C, a bad model: the table still covers what finished; the error stays first
            try:
                finish()
            except Exception as exc:  # noqa: BLE001
                log.warning("could not write the corpus table: %s", exc)
            raise
        finish()
    return report

