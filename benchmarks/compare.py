"""Two runs side by side: how much faster one is on the same frames, and how far its outputs are apart.

    >>> fast = {"frames": 4, "frame_done_s": [0.1, 0.2, 0.3, 0.4], "emotion_frame_s": [0.05] * 4}
    >>> slow = {"frames": 2, "frame_done_s": [1.0, 2.0], "emotion_frame_s": [0.9, 0.9]}
    >>> s = speedup(fast, slow, "every_frame", "naive")
    >>> s["frames"], round(s["speedup"], 6)        # over the first 2 frames: 2/0.2 frames/s vs 2/2.0
    (2, 10.0)

The speed-up is a ratio of frames/s over the same first frames of both runs (the fewer of the two runs'
frames); per-frame spreads of both sides come with it. Outputs are compared person by person, matched by
(frame, track id): the work-reuse figures (reuse vs every frame) and the check that the naive baseline
computes what the every-frame pipeline computes (the "exact" speed-up).
"""

from __future__ import annotations

import numpy as np

from benchmarks.e2e import frame_seconds, prefix_fps
from benchmarks.stats import summarize


def speedup(run: dict, baseline: dict, run_name: str, baseline_name: str) -> dict:
    """`run` against `baseline` over their first k frames, k = the fewer frames of the two."""
    k = min(run["frames"], baseline["frames"])
    fast, slow = prefix_fps(run, k), prefix_fps(baseline, k)
    run_ms = summarize(frame_seconds(run["frame_done_s"][:k]))
    base_ms = summarize(frame_seconds(baseline["frame_done_s"][:k]))
    run_emotion = sum(run["emotion_frame_s"][:k]) / k if k else 0.0
    base_emotion = sum(baseline["emotion_frame_s"][:k]) / k if k else 0.0
    return {
        "run": run_name,
        "baseline": baseline_name,
        "frames": k,
        "run_fps": fast,
        "baseline_fps": slow,
        "speedup": fast / slow if slow > 0 and fast > 0 else None,
        "run_frame_ms": run_ms,
        "baseline_frame_ms": base_ms,
        "median_frame_speedup": (base_ms["p50"] / run_ms["p50"]) if run_ms and base_ms and run_ms["p50"] > 0
        else None,
        "run_emotion_ms_per_frame": 1000.0 * run_emotion,
        "baseline_emotion_ms_per_frame": 1000.0 * base_emotion,
        "emotion_speedup": base_emotion / run_emotion if run_emotion > 0 else None,
    }


def output_deviation(reference: list[dict], candidate: list[dict], frames: int | None = None) -> dict:
    """How far `candidate`'s outputs are from `reference`'s over their first `frames` common frames.

    Both are lists (one entry per frame, in order) of {track id: (probs (26,), vad (3,))}. Persons are
    matched by (frame, track id); top-1 is the argmax of the probabilities. Mean and p99 figures are over every
    matched person's every value (26 probabilities, 3 VAD values each).
    """
    k = min(len(reference), len(candidate)) if frames is None else min(frames, len(reference), len(candidate))
    prob_diffs, vad_diffs, same_top1, matched = [], [], 0, 0
    for ref, cand in zip(reference[:k], candidate[:k]):
        for tid, (probs, vad) in ref.items():
            if tid not in cand:
                continue
            other_probs, other_vad = cand[tid]
            matched += 1
            prob_diffs.append(np.abs(np.asarray(probs, np.float64) - np.asarray(other_probs, np.float64)))
            vad_diffs.append(np.abs(np.asarray(vad, np.float64) - np.asarray(other_vad, np.float64)))
            same_top1 += int(np.argmax(probs) == np.argmax(other_probs))
    probs_all = np.concatenate(prob_diffs) if prob_diffs else np.zeros(0)
    vad_all = np.concatenate(vad_diffs) if vad_diffs else np.zeros(0)
    return {
        "frames": k,
        "reference_persons": sum(len(f) for f in reference[:k]),
        "candidate_persons": sum(len(f) for f in candidate[:k]),
        "matched": matched,
        "prob_max_abs": float(probs_all.max()) if matched else None,
        "prob_mean_abs": float(probs_all.mean()) if matched else None,
        "prob_p99_abs": float(np.percentile(probs_all, 99)) if matched else None,
        "vad_max_abs": float(vad_all.max()) if matched else None,
        "vad_mean_abs": float(vad_all.mean()) if matched else None,
        "top1_agreement": same_top1 / matched if matched else None,
    }
