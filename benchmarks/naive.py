"""The naive baseline: the straightforward loop a newcomer would write, measured in the same run.

Decode inline (no reader thread), detect and track, then for every person, one at a time: crop, preprocess
the crop and the whole frame, run the scene tower (again for every person), the body tower and the heads
in fp32 eager PyTorch; no batching, no reuse across frames. Smoothing, overlay and video encoding are the
product's own, so both runs produce the same kind of output and the ratio compares like with like.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.e2e import CONSUMER_STAGES, _summary, executed_flops, stage_report
from benchmarks.stats import rate, synchronize

log = logging.getLogger(__name__)


class _Stopwatch:
    """Adds synchronized seconds to per-stage accumulators of the current frame."""

    def __init__(self, device):
        self.device = device
        self.frame: dict[str, float] = {}

    def __call__(self, stage: str, fn, *args):
        synchronize(self.device)
        t0 = time.perf_counter()
        out = fn(*args)
        synchronize(self.device)
        self.frame[stage] = self.frame.get(stage, 0.0) + time.perf_counter() - t0
        return out


def naive_frame(model, device, detector, frame: np.ndarray, watch: _Stopwatch, smoother=None, n: int = 0,
                max_persons: int | None = None):
    """One frame the naive way: (detections, per-detection `PersonResult`s, None where a box was unusable).
    `max_persons` limits the work (for warm-up only)."""
    from fusion import PersonResult, crop_persons, preprocess_images

    dets = watch("detect_track", detector.track, frame)
    keypoints = dets.data.get("keypoints") if getattr(dets, "data", None) else None
    ids = dets.tracker_id if dets.tracker_id is not None else [None] * len(dets)
    persons: list = []
    for i, box in enumerate(dets.xyxy[:max_persons]):
        def prepare(box=box):
            crops = crop_persons(frame, [box])
            if not crops.images:
                return None
            body = preprocess_images(crops.images, model.body_preprocess).to(device)
            return body, preprocess_images([frame], model.scene_preprocess).to(device)

        inputs = watch("crop_preprocess", prepare)
        if inputs is None:
            persons.append(None)
            continue
        with torch.no_grad():
            s = watch("scene", model.encode_scene, inputs[1])
            b = watch("body", model.encode_body, inputs[0])

            def heads(b=b, s=s):
                out = model.forward_features(b, s)
                return model.probabilities(out["cat_logits"])[0].cpu().numpy(), out["vad"][0].cpu().numpy()

            probs, vad = watch("heads", heads)
        tid = None if ids[i] is None or int(ids[i]) < 0 else int(ids[i])
        if smoother is not None:
            probs, vad = watch("smoothing", smoother.update, tid, n, probs, vad)
        kp = keypoints[i] if keypoints is not None and len(keypoints) > i else None
        persons.append(PersonResult(i, box, probs, vad, track_id=tid, keypoints=kp))
    return dets, persons


def run_naive(path: str, frames: int, detector, model, device: str, smoothing=None, warmup_frames: int = 1,
              flops: dict | None = None, detector_flops: int | None = None, peak_flops: float | None = None,
              work_dir: str | Path | None = None, max_seconds: float = math.inf, min_frames: int = 2,
              outputs: list | None = None) -> dict:
    """The naive loop over the first `frames` frames of a video, or fewer once `max_seconds` have passed (it
    is slow by design), but never fewer than `min_frames` (the floor that keeps its median stable): the
    floor wins over the time budget. `model` is used as it is: pass an fp32 copy (accelerated backends may
    have converted theirs). `outputs`, when given, gets one {track id: (probs, vad)} dict per frame."""
    import cv2

    from emomon.pipeline import EmotionOverlay, SmoothingConfig, TrackSmoother, VideoWriter

    model = model.float().to(device).eval()
    overlay = EmotionOverlay()
    smoother = TrackSmoother(smoothing or SmoothingConfig())
    watch = _Stopwatch(device)
    samples: dict[str, list[float]] = {stage: [] for stage in ("decode", *CONSUMER_STAGES)}
    done_at: list[float] = []
    persons_total, scene_calls = 0, 0
    stopped_by = "frames"
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        capture = cv2.VideoCapture(str(path))
        try:
            for _ in range(warmup_frames):  # untimed: lazy initialisation, kernel selection
                ok, image = capture.read()
                if ok:
                    naive_frame(model, device, detector, image, _Stopwatch(device), max_persons=1)
            detector.reset()
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            writer = VideoWriter(Path(tmp) / "naive.mp4", capture.get(cv2.CAP_PROP_FPS))
            start = time.perf_counter()
            for n in range(frames):
                elapsed = time.perf_counter() - start
                last = done_at[-1] - (done_at[-2] if n > 1 else start) if done_at else 0.0
                if n >= min_frames and elapsed + last >= max_seconds:  # the next frame would end past the budget
                    log.info("bench naive: stopping after %d frames (time budget %.0f s)", n, max_seconds)
                    stopped_by = "time budget"
                    break
                watch.frame = {}
                ok, image = watch("decode", capture.read)
                if not ok:
                    stopped_by = "end of video"
                    break
                dets, persons = naive_frame(model, device, detector, image, watch, smoother, n)
                watch("smoothing", smoother.forget_stale, n)
                annotated = watch("annotate", overlay.annotate, image, dets, persons)
                watch("encode", writer.write, annotated)
                for stage in samples:
                    samples[stage].append(watch.frame.get(stage, 0.0))
                done_at.append(time.perf_counter())
                done = [p for p in persons if p is not None]
                persons_total += len(done)
                scene_calls += len(done)
                if outputs is not None:
                    outputs.append({p.track_id: (p.probs.copy(), np.asarray(p.vad).copy()) for p in done
                                    if p.track_id is not None})
            writer.close()
            wall = time.perf_counter() - start
        finally:
            capture.release()
    n = len(done_at)
    stages = stage_report(samples, wall)
    executed = executed_flops(flops, n, scene_calls, persons_total, detector_flops)
    result = {
        **_summary(n, persons_total, wall, done_at, start),
        "backend": "torch fp32 eager, per person",
        "precision": "fp32",
        "min_frames": min_frames,
        "max_frames": frames,
        "max_seconds": max_seconds if math.isfinite(max_seconds) else None,
        "stopped_by": stopped_by,
        "stages": stages,
        "emotion_frame_s": [sum(samples[s][i] for s in ("crop_preprocess", "scene", "body", "heads"))
                            for i in range(n)],
        "other_s": max(0.0, wall - sum(stages[s]["total_s"] for s in stages)),
        "executed_flops": executed,
        "achieved_flops_per_s": rate(executed, wall) if executed else None,
        "fraction_of_peak": rate(executed, wall) / peak_flops if executed and peak_flops else None,
    }
    log.info("bench pipeline (naive): %d frames in %.1f s = %.2f frames/s, %.1f persons/s", n, wall, result["fps"],
             result["persons_per_s"])
    return result
