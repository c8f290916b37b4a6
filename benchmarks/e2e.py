"""End-to-end benchmark of the real pipeline on a video: `emomon.pipeline.run_pipeline` with the product's
`EmotionPipeline`, background decoding, work reuse and video output, with timers wrapped around its parts.

Stages (each reported per frame as p50/p95/p99 ms and as a share of the wall time):
decode (reader thread), detect_track, crop_preprocess (crops, resizing and normalisation of body crops and
the scene image, host-to-device copies, reuse bookkeeping, unpacking results), scene, body, heads (backend
calls, synchronized), smoothing (per-track smoothing and the result records), annotate (overlay), encode
(video writer). Decode runs in its own thread in the optimized run, so its time is reported next to the time
the consumer actually waited for frames: the overlap is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.stats import rate, summarize
from benchmarks.timing import TimedBackend, TimedSource, open_video

log = logging.getLogger(__name__)

STAGES = ("decode", "detect_track", "crop_preprocess", "scene", "body", "heads", "smoothing", "annotate", "encode")
CONSUMER_STAGES = STAGES[1:]


def stage_report(samples: dict[str, list[float]], wall_s: float, calls: dict | None = None,
                 overlapped: tuple[str, ...] = ()) -> dict:
    """Per-stage figures from per-frame seconds: per-frame ms stats, total, share of wall time; for stages
    with separate calls (scene, body, heads) also per-call ms and the mean batch size."""
    out = {}
    for stage in STAGES:
        values = samples.get(stage, [])
        total = float(sum(values))
        entry = {"per_frame_ms": summarize(values), "total_s": total, "share": total / wall_s if wall_s > 0 else 0.0,
                 "overlapped": stage in overlapped}
        if calls and stage in calls:
            times, sizes = calls[stage]
            entry.update(calls=len(times), per_call_ms=summarize(times),
                         mean_batch=float(sum(sizes) / len(sizes)) if sizes else 0.0)
        out[stage] = entry
    return out


def executed_flops(flops: dict | None, frames: int, scene_calls: int, persons_computed: int,
                   detector_flops: int | None) -> int | None:
    """The model FLOPs a run actually executed (reused scenes and persons cost nothing)."""
    if not flops:
        return None
    per_person = (flops["body"] + flops["heads"]) / flops["persons"]
    return int(frames * (detector_flops or 0) + scene_calls * flops["scene"] + persons_computed * per_person)


def _summary(frames: int, persons: int, wall_s: float, done_at: list[float], start: float) -> dict:
    done = [round(t - start, 6) for t in done_at]
    return {"frames": frames, "persons": persons, "wall_s": wall_s, "fps": rate(frames, wall_s),
            "persons_per_s": rate(persons, wall_s), "mean_persons_per_frame": persons / frames if frames else 0.0,
            "frame_done_s": done, "frame_ms": summarize(frame_seconds(done))}


def frame_seconds(done: list[float]) -> list[float]:
    """Per-frame wall seconds from the cumulative completion times of a run (`frame_done_s`)."""
    return [t - (done[i - 1] if i else 0.0) for i, t in enumerate(done)]


def prefix_fps(run: dict, frames: int) -> float:
    """Frames/s over the first `frames` frames of a run (for side-by-side ratios on the same frames)."""
    done = run["frame_done_s"]
    k = min(frames, len(done))
    return rate(k, done[k - 1]) if k else 0.0


def person_outputs(result) -> dict[int, tuple]:
    """{track id: (probs, vad)} of a frame's tracked persons, for comparing runs on the same frames."""
    return {p.track_id: (p.probs.copy(), p.vad.copy()) for p in result.persons if p.track_id is not None}


def run_optimized(path: str, frames: int, detector, backend, pipeline_config=None, warmup_frames: int = 2,
                  flops: dict | None = None, detector_flops: int | None = None, peak_flops: float | None = None,
                  work_dir: str | Path | None = None, outputs: list | None = None) -> dict:
    """The product pipeline on the first `frames` frames of a video, after `warmup_frames` untimed ones.
    `outputs`, when given, gets one `person_outputs` dict per frame (not part of the returned report)."""
    from benchmarks.flops import precision_of
    from emomon.pipeline import EmotionPipeline, OutputPaths, StageTimes, run_pipeline
    from fusion import Predictor

    timed = TimedBackend(backend)
    pipeline = EmotionPipeline(detector, Predictor(timed, preprocess="auto"), pipeline_config)  # as `emomon run`
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, _quiet("emomon.pipeline.runner"):
        if warmup_frames:
            source, _, _ = open_video(path, max_frames=warmup_frames)
            with source:
                run_pipeline(source, pipeline, OutputPaths(video=str(Path(tmp) / "warmup.mp4")), progress=False)
        pipeline.times, pipeline.counts = StageTimes(), defaultdict(int)
        timed.calls.clear()
        timed.batch_sizes.clear()
        timed.take_frame()

        source, reader, open_s = open_video(path, max_frames=frames)
        timed_source = TimedSource(source)
        per_frame: list[dict] = []
        done_at: list[float] = []

        def on_frame(result):
            done_at.append(time.perf_counter())
            per_frame.append({"persons": len(result.persons), **timed.take_frame()})
            if outputs is not None:
                outputs.append(person_outputs(result))

        start = time.perf_counter()
        with source:
            report = run_pipeline(timed_source, pipeline, OutputPaths(video=str(Path(tmp) / "optimized.mp4")),
                                  progress=False, on_frame=on_frame)
        wall = time.perf_counter() - start
    n = report.frames
    t = pipeline.times.samples
    samples = {stage: [f[stage] for f in per_frame] for stage in ("scene", "body", "heads")}
    samples["crop_preprocess"] = [max(0.0, t["emotion"][i] - sum(per_frame[i][s] for s in ("scene", "body", "heads")))
                                  for i in range(n)]
    samples.update(detect_track=t["detect_track"][:n], smoothing=t["smooth"][:n], annotate=t["annotate"][:n],
                   encode=t["encode"][:n], decode=reader.read_s[:n])
    calls = {s: (timed.calls[s], timed.batch_sizes[s]) for s in ("scene", "body", "heads")}
    stages = stage_report(samples, wall, calls, overlapped=("decode",))
    consumer = sum(stages[s]["total_s"] for s in CONSUMER_STAGES)
    wait = float(sum(timed_source.wait_s[:n]))
    decode_busy = stages["decode"]["total_s"]
    counts = dict(pipeline.counts)
    executed = executed_flops(flops, n, counts.get("scene_computed", 0), counts.get("persons_computed", 0),
                              detector_flops)
    result = {
        **_summary(n, report.persons, wall, done_at, start),
        "backend": backend.name,
        "precision": precision_of(backend),
        "stages": stages,
        "emotion_frame_s": list(t["emotion"][:n]),
        "other_s": max(0.0, wall - consumer - wait),
        "overlap": {
            "decode_busy_s": decode_busy,
            "consumer_wait_s": wait,
            "consumer_wait_ms": summarize(timed_source.wait_s[:n]),
            "decode_hidden_fraction": max(0.0, min(1.0, 1 - wait / decode_busy)) if decode_busy > 0 else 0.0,
            "serial_estimate_s": consumer + decode_busy,
            "hidden_s": max(0.0, decode_busy - wait),
            "open_s": open_s,
            "note": "decode runs in the reader thread; hidden fraction = 1 - consumer wait / decode busy time",
        },
        "counts": counts,
        "reuse": _reuse_dict(pipeline.config),
        "executed_flops": executed,
        "achieved_flops_per_s": rate(executed, wall) if executed else None,
        "fraction_of_peak": rate(executed, wall) / peak_flops if executed and peak_flops else None,
    }
    log.info("bench pipeline (optimized, %s): %d frames in %.1f s = %.2f frames/s, %.1f persons/s", backend.name,
             n, wall, result["fps"], result["persons_per_s"])
    return result


@contextlib.contextmanager
def _quiet(name: str):
    """The runner logs every file it writes; the benchmark's temporary videos are not worth a line."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


def _reuse_dict(config) -> dict:
    r = config.reuse
    return {"scene_every": r.scene_every, "scene_change": r.scene_change, "refresh_every": r.refresh_every,
            "refresh_iou": r.refresh_iou, "smoothing": config.smoothing.mode}
