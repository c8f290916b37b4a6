"""The trained test model (tests/assets/trained_tiny.pt) is fit for tests about outputs: different persons
get clearly different emotions, unlike random weights. Every parity tolerance in the suite is far below
the gap between two persons, so a swapped person, a reordered chunk or a stale value shows."""

from __future__ import annotations

import json

import cv2
import numpy as np
from conftest import TRAINED_MODEL

from fusion import Predictor, create_model, load_checkpoint

PERSONS = [[750, 37, 866, 378], [175, 51, 316, 445], [628, 83, 745, 455], [413, 76, 610, 550],
           [61, 55, 172, 368], [408, 32, 502, 202]]  # group_photo.jpg, as YOLO11n-pose finds them
LARGEST_PARITY_TOLERANCE = 1e-2  # bf16 and GPU fast paths (test_backends.py); fp32 paths use 1e-4..1e-5


def pair_gaps(people) -> np.ndarray:
    return np.array([np.abs(a.probs - b.probs).max() for i, a in enumerate(people) for b in people[i + 1:]])


def test_persons_get_clearly_different_emotions(group_photo):
    frame = cv2.imread(str(group_photo))
    people = Predictor(load_checkpoint(TRAINED_MODEL).eval()).predict(frame, PERSONS)
    gaps = pair_gaps(people)
    assert gaps.max() >= 10 * LARGEST_PARITY_TOLERANCE, gaps
    assert gaps.min() > 2 * LARGEST_PARITY_TOLERANCE, "every two persons differ beyond every parity tolerance"
    assert len({p.top1 for p in people}) >= 2, "not everyone has the same top emotion"
    assert np.ptp([p.vad[0] for p in people]) > 0.5, "valence differs between persons"


def test_random_weights_would_not_do(group_photo):
    """Why the trained model exists: with random weights persons are nearly indistinguishable."""
    import torch

    torch.manual_seed(0)
    frame = cv2.imread(str(group_photo))
    people = Predictor(create_model("two_stream_tiny", pretrained=False).eval()).predict(frame, PERSONS)
    assert pair_gaps(people).max() < LARGEST_PARITY_TOLERANCE


def test_the_checkpoint_records_how_it_was_made():
    record = json.loads(TRAINED_MODEL.with_suffix(".json").read_text())
    assert record["train"][:2] == ["emomon", "train"] and record["commit"]
    assert record["result"]["test"]["mAP"] > 0.5  # an untrained model scores 0.23-0.29 on the synthetic set
    assert load_checkpoint(TRAINED_MODEL).source.kind == "checkpoint"
