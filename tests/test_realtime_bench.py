"""`emomon bench --realtime`'s comparisons (box matching, track-id agreement, the accuracy guard rows) on
hand-made data, and its input errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from benchmarks.realtime import compare_tracks, guard_rows, markdown, match_boxes

A = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)


def test_match_boxes_is_one_to_one_and_best_first():
    b = np.array([[41, 0, 51, 10], [0, 0, 10, 10], [1, 0, 11, 10], [100, 100, 110, 110]], np.float32)
    pairs = match_boxes(A, b)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (2, 0)]  # box 0 takes its exact twin, never both
    assert pairs[0][2] == 1.0 and 0.5 <= pairs[1][2] < 1.0
    assert match_boxes(A, np.empty((0, 4), np.float32)) == []


def test_compare_tracks_counts_persons_and_id_switches():
    ref = [(A, np.array([1, 2, 3]))] * 4
    renamed = [(A, np.array([7, 8, 9]))] * 4  # other numbers, same identities: full agreement
    assert compare_tracks(ref, renamed)["id_agreement"] == 1.0
    switched = [(A, np.array([7, 8, 9]))] * 2 + [(A, np.array([8, 7, 9]))] * 2  # two persons swap ids halfway
    c = compare_tracks(ref, switched)
    assert c["id_agreement"] == 8 / 12 and c["matched_share"] == 1.0 and c["box_iou_min"] == 1.0
    missing = [(A[:2], np.array([1, 2]))] * 4
    c = compare_tracks(ref, missing)
    assert c["frames_same_person_count"] == 0 and c["matched_share"] == 8 / 12


def test_guard_rows_measure_each_matched_person():
    probs = np.full(26, 0.1)
    probs[3] = 0.9
    ref = [(A[:2], [(probs, np.full(3, 5.0), "Anticipation"), (probs, np.full(3, 5.0), "Anticipation")])]
    changed = probs.copy()
    changed[3], changed[4] = 0.3, 0.5
    other = [(A[:2][::-1].copy(), [(changed, np.full(3, 5.5), "Aversion"), (probs, np.full(3, 5.0), "Anticipation")])]
    row = guard_rows(ref, other)
    assert row["matched_persons"] == 2 and row["top1_agreement"] == 0.5
    assert np.isclose(row["prob_max"], 0.6) and np.isclose(row["vad_max"], 0.5)
    assert np.isclose(row["prob_mean"], 0.3)
    text = markdown({"command": "emomon bench --realtime", "environment": {"versions": {}},
                     "accuracy_guard": {"model": "m.pt", "frames": 1, "reference": {"name": "fp32 every frame"},
                                        "settings": [{"name": "fast", **row}]}})
    assert "| fast | 2/2 | 0.6000 |" in text and "50.0% |" in text


def test_realtime_needs_a_source_and_known_parts():
    run = [sys.executable, "-m", "emomon", "bench", "--realtime"]
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 2 and "--realtime needs --source VIDEO" in out.stderr
    out = subprocess.run([*run, "--source", "x.mp4", "--skip", "speed,naive"], capture_output=True, text=True)
    assert out.returncode == 2 and "not naive" in out.stderr
