"""Compare two JSONL logs of the same source: how far apart are their per-person outputs?

Used to choose the work-reuse defaults (reuse vs every-frame) and to check them in tests. Persons are
matched by frame and track id.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_jsonl(path) -> dict[int, dict[int, dict]]:
    frames = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        frames[record["frame"]] = {p["track_id"]: p for p in record["persons"] if p["track_id"] is not None}
    return frames


def compare_runs(reference, candidate) -> dict:
    """Max and mean absolute differences of category probabilities and VAD, plus top-1 agreement."""
    a, b = load_jsonl(reference), load_jsonl(candidate)
    prob_diffs, vad_diffs, top1_same, matched = [], [], 0, 0
    for frame, persons in a.items():
        for tid, p in persons.items():
            q = b.get(frame, {}).get(tid)
            if q is None:
                continue
            matched += 1
            prob_diffs.append(np.abs(np.fromiter(p["emotions"].values(), float)
                                     - np.fromiter(q["emotions"].values(), float)))
            vad_diffs.append(np.abs(np.fromiter(p["vad"].values(), float) - np.fromiter(q["vad"].values(), float)))
            top1_same += p["top"][0][0] == q["top"][0][0]
    if not matched:
        return {"matched_persons": 0}
    probs, vad = np.stack(prob_diffs), np.stack(vad_diffs)
    return {"matched_persons": matched, "prob_max_abs": float(probs.max()), "prob_mean_abs": float(probs.mean()),
            "prob_p99_abs": float(np.percentile(probs.max(axis=1), 99)), "vad_max_abs": float(vad.max()),
            "vad_mean_abs": float(vad.mean()), "top1_agreement": top1_same / matched}
