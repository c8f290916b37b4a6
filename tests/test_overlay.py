"""The emotion overlay on a real frame with real detections, at 640x360 and 1080p."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from emomon.overlay import EmotionOverlay
from fusion import EMOTIC_CATEGORIES

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def fake_person(i, box, kp):
    rng = np.random.default_rng(i)
    probs = rng.random(26)
    order = np.argsort(-probs)
    return {"track_id": i + 1, "box": box, "score": 0.9,
            "emotions": dict(zip(EMOTIC_CATEGORIES, probs.tolist())),
            "top": [[EMOTIC_CATEGORIES[j], float(probs[j])] for j in order[:3]],
            "vad": {"valence": 2 + i, "arousal": 5.0, "dominance": 9 - i}, "keypoints": kp}


@pytest.fixture(scope="module")
def scene():
    from conftest import shared_file

    from detector import DetectorConfig, PersonDetector

    image = cv2.imread(str(shared_file("data/group_photo.jpg")))
    det = PersonDetector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))))
    return image, det.detect(image)


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080)])
def test_overlay_draws_inside_boxes_and_keeps_input(scene, size):
    image, dets = scene
    sx, sy = size[0] / image.shape[1], size[1] / image.shape[0]
    frame = cv2.resize(image, size)
    dets = sv.Detections(xyxy=dets.xyxy * [sx, sy, sx, sy], confidence=dets.confidence, class_id=dets.class_id,
                         tracker_id=np.arange(1, len(dets) + 1), data={"keypoints": dets.data["keypoints"]})
    kps = dets.data["keypoints"] * [sx, sy, 1]
    persons = [fake_person(i, b.tolist(), kps[i].tolist()) for i, b in enumerate(dets.xyxy)]
    persons[-1] = None  # a detection without emotions: box only
    before = frame.copy()
    out = EmotionOverlay().annotate(frame, dets, persons)
    assert out.shape == frame.shape and np.array_equal(frame, before), "input untouched"
    for x1, y1, x2, y2 in dets.xyxy.astype(int):
        assert np.abs(out[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2]).sum() > 0
    ARTIFACTS.mkdir(exist_ok=True)
    cv2.imwrite(str(ARTIFACTS / f"overlay_{size[1]}p.png"), out)


def test_overlay_with_nobody_and_without_ids():
    frame = np.zeros((360, 640, 3), np.uint8)
    empty = sv.Detections.empty()
    assert np.array_equal(EmotionOverlay().annotate(frame, empty, []), frame)
    dets = sv.Detections(xyxy=np.array([[-20, -30, 100, 400.0]]), confidence=np.array([0.8]),
                         class_id=np.array([0]))
    out = EmotionOverlay().annotate(frame, dets, [fake_person(0, [-20, -30, 100, 400], None) | {"track_id": None}])
    assert out.any(), "a box partly outside the frame is still drawn"
