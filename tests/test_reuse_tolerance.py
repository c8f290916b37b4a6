"""Work reuse stays within the stated tolerance of the every-frame run on the real street clip."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emomon.compare import compare_runs

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
