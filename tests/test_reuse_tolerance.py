"""Work reuse stays within the stated tolerance of the every-frame run on the real street clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The tolerance the README states for the reuse defaults (scene every 4 frames, persons every 2).
PROB_TOLERANCE = 0.05
VAD_TOLERANCE = 0.25


@pytest.mark.slow
def test_reuse_defaults_match_every_frame(tmp_path, street_video, yolo_weights):
    def run(name, *extra):
        out = tmp_path / f"{name}.jsonl"
        proc = subprocess.run([sys.executable, "-m", "emomon", "run", "--source", str(street_video), "--max-frames",
                               "40", "--emotion-model", "random:two_stream_tiny", "--detector-weights",
                               str(yolo_weights), "--jsonl", str(out), *extra],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-1500:]
        return out

    every, reuse = run("every", "--every-frame"), run("reuse")
    diff = compare_runs(every, reuse)
    assert diff["matched_persons"] > 100
    assert diff["prob_max_abs"] <= PROB_TOLERANCE, diff
    assert diff["vad_max_abs"] <= VAD_TOLERANCE, diff
    assert diff["top1_agreement"] >= 0.8, diff


def load_jsonl(path) -> dict[int, dict[int, dict]]:
    frames = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        frames[record["frame"]] = {p["track_id"]: p for p in record["persons"] if p["track_id"] is not None}
    return frames


def compare_runs(reference, candidate) -> dict:
    """Max absolute differences of category probabilities and VAD between two JSONL logs of the same source,
    persons matched by frame and track id, plus top-1 agreement."""
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
    return {"matched_persons": matched, "prob_max_abs": float(np.max(prob_diffs)),
            "vad_max_abs": float(np.max(vad_diffs)), "top1_agreement": top1_same / matched}
