"""The emotion overlay on a real frame with real detections, at 640x360 and 1080p, and its edge cases."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from emomon.pipeline import EmotionOverlay, OverlayConfig
from emomon.pipeline.overlay import _Style
from fusion import PersonResult

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def fake_person(i: int, box, keypoints, track_id: int | None = None) -> PersonResult:
    """One person with made-up, varied emotions and VAD."""
    probs = np.random.default_rng(i).random(26) ** 3
    return PersonResult(i, np.asarray(box, np.float32), probs, np.array([1.0 + 1.7 * i, 9.0 - 1.3 * i, 5.5]),
                        track_id=track_id, score=0.9,
                        keypoints=None if keypoints is None else np.asarray(keypoints, np.float32))


@pytest.fixture(scope="module")
def scene():
    from conftest import shared_file

    from detector import DetectorConfig, PersonDetector

    image = cv2.imread(str(shared_file("data/group_photo.jpg")))
    det = PersonDetector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))))
    dets = det.detect(image)
    dets.tracker_id = np.arange(1, len(dets) + 1) * 3  # ids as a tracker would give them
    return image, dets


def resized(image: np.ndarray, dets: sv.Detections, size: tuple[int, int]):
    sx, sy = size[0] / image.shape[1], size[1] / image.shape[0]
    out = dets[np.arange(len(dets))]
    out.xyxy = (dets.xyxy * [sx, sy, sx, sy]).astype(np.float32)
    out.data["keypoints"] = dets.data["keypoints"] * np.array([sx, sy, 1], np.float32)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), out


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080)], ids=["360p", "1080p"])
def test_overlay_draws_every_person_and_keeps_input(scene, size):
    frame, dets = resized(*scene, size)
    persons = [fake_person(i, b, kp, int(t)) for i, (b, kp, t)
               in enumerate(zip(dets.xyxy, dets.data["keypoints"], dets.tracker_id))]
    persons[2] = None  # a detection without emotions yet: box (and skeleton) only
    persons[4] = persons[4].replace(keypoints=None)  # keypoints then come from the detections
    before = frame.copy()
    overlay = EmotionOverlay(OverlayConfig(top_k=3, show_keypoints=True, show_vad=True))
    out = overlay.annotate(frame, dets, persons)
    assert out.shape == frame.shape and out.dtype == frame.dtype
    assert np.array_equal(frame, before), "the input frame is untouched"
    for x1, y1, x2, y2 in dets.xyxy.astype(int):
        assert (out[y1:y2, x1:x2] != frame[y1:y2, x1:x2]).any()
    ARTIFACTS.mkdir(exist_ok=True)
    cv2.imwrite(str(ARTIFACTS / f"overlay_{size[1]}p.png"), out)


def test_overlay_with_nobody():
    frame = np.full((360, 640, 3), 90, np.uint8)
    assert np.array_equal(EmotionOverlay().annotate(frame, sv.Detections.empty(), []), frame)


def test_overlay_edge_cases_do_not_crash():
    """No track ids, boxes partly outside the frame, fewer persons than boxes, no keypoints anywhere."""
    frame = np.zeros((360, 640, 3), np.uint8)
    boxes = np.array([[-20, -30, 100, 400], [600, 300, 700, 420], [10, 10, 30, 30]], np.float32)
    dets = sv.Detections(xyxy=boxes, confidence=np.array([0.8, 0.7, 0.6]), class_id=np.zeros(3, int))
    persons = [fake_person(0, boxes[0], None), fake_person(1, boxes[1], None)]  # the third is missing
    out = EmotionOverlay().annotate(frame, dets, persons)
    assert out.shape == frame.shape and out[:, :120].any() and out[290:, 560:].any() and out[8:32, 8:32].any()
    quiet = EmotionOverlay(OverlayConfig(top_k=1, show_keypoints=False, show_vad=False))
    assert quiet.annotate(frame, dets, [None, None, None]).any(), "boxes only"


@pytest.mark.parametrize("y1, panel_side", [(150, "above"), (5, "below")])
def test_panels_stay_in_frame_and_off_faces(y1, panel_side):
    """Side by side: each panel goes above its box (below it at the frame's top edge), faces stay clear."""
    frame = np.full((360, 640, 3), 90, np.uint8)
    boxes = np.array([[100, y1, 220, y1 + 190], [230, y1, 350, y1 + 190]], np.float32)
    dets = sv.Detections(xyxy=boxes, class_id=np.zeros(2, int), tracker_id=np.array([1, 2]))
    persons = [fake_person(i, b, None, i + 1) for i, b in enumerate(boxes)]
    out = EmotionOverlay().annotate(frame, dets, persons)
    for x1, top, x2, bottom in boxes.astype(int):
        face = (slice(top + 3, top + 38), slice(x1 + 25, x2 - 25))
        assert np.array_equal(out[face], frame[face]), "the face region is not covered"
        band = slice(max(0, top - 20), top - 2) if panel_side == "above" else slice(bottom + 3, bottom + 20)
        assert (out[band, x1:x2] != frame[band, x1:x2]).any(), f"a panel {panel_side} the box"


def test_non_finite_scores_do_not_crash_the_overlay():
    """A broken model's NaN/inf scores get no panel (the box is still drawn); finite persons keep theirs."""
    frame = np.zeros((360, 640, 3), np.uint8)
    boxes = np.array([[20, 40, 140, 330], [300, 40, 420, 330], [450, 40, 570, 330]], np.float32)
    dets = sv.Detections(xyxy=boxes, class_id=np.zeros(3, int), tracker_id=np.array([1, 2, 3]))
    nan_probs = fake_person(0, boxes[0], None, 1).replace(probs=np.full(26, np.nan))
    inf_vad = fake_person(1, boxes[1], None, 2).replace(vad=np.array([np.inf, np.nan, 5.0]))
    good = fake_person(2, boxes[2], None, 3)
    out = EmotionOverlay().annotate(frame, dets, [nan_probs, inf_vad, good])
    assert out.shape == frame.shape
    assert out[40:330, 20:140].any() and out[40:330, 300:420].any(), "boxes of broken persons are still drawn"
    for i, broken in ((0, nan_probs), (1, inf_vad)):
        one = dets[np.array([i])]
        assert np.array_equal(EmotionOverlay().annotate(frame, one, [broken]),
                              EmotionOverlay().annotate(frame, one, [None])), "no panel without finite scores"
    one = dets[np.array([2])]
    assert not np.array_equal(EmotionOverlay().annotate(frame, one, [good]),
                              EmotionOverlay().annotate(frame, one, [None])), "a finite person has a panel"
    # The drawing helpers themselves take NaN (drawn empty or neutral) instead of failing on int(NaN).
    overlay, style = EmotionOverlay(), _Style.for_frame(frame.shape)
    overlay._bar(frame.copy(), 10, 10, 40, style, float("nan"), (255, 255, 255))
    overlay._vad(frame.copy(), {"valence": float("nan"), "arousal": float("inf")}, 10, 30, style)
