"""The YOLO person detector on real images and video with the real YOLO11n-pose weights."""

from __future__ import annotations

import collections

import cv2
import numpy as np
import pytest

from detector import DetectorConfig, DetectorError, PersonDetector


@pytest.fixture(scope="module")
def detector():
    from conftest import shared_file

    return PersonDetector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))))


def test_group_photo_six_persons_with_keypoints(detector, group_photo):
    dets = detector.detect(cv2.imread(str(group_photo)))
    assert len(dets) == 6
    assert (dets.confidence > 0.5).all()
    assert dets.data["keypoints"].shape == (6, 17, 3)
    assert (dets.class_id == 0).all()


def read_frames(video, n):
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def test_track_ids_persist_and_reset(detector, street_video):
    frames = read_frames(street_video, 60)
    detector.reset()
    per_frame = [detector.track(f) for f in frames]
    counts = collections.Counter(int(t) for d in per_frame if d.tracker_id is not None for t in d.tracker_id)
    assert counts.most_common(1)[0][1] >= 40
    first_ids = set(per_frame[0].tracker_id.tolist())
    detector.reset()
    again = detector.track(frames[0])
    assert set(again.tracker_id.tolist()) == first_ids, "after reset ids restart: no state leaks between sources"


def test_empty_frame_and_tiny_boxes(detector, group_photo, caplog):
    assert len(detector.detect(np.zeros((360, 640, 3), np.uint8))) == 0
    picky = PersonDetector(DetectorConfig(weights=detector.config.weights, min_box_size=5000))
    with caplog.at_level("INFO"):
        assert len(picky.detect(cv2.imread(str(group_photo)))) == 0
    assert picky.skipped == 6 and "below the 5000px minimum" in caplog.text


@pytest.mark.parametrize("content", [None, b"garbage, not a checkpoint"])
def test_bad_weights_are_one_line_errors(tmp_path, content):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DetectorError) as err:
        PersonDetector(DetectorConfig(weights=str(path)))
    msg = str(err.value)
    assert "\n" not in msg and "--detector-weights" in msg
    assert ("not found" in msg) if content is None else ("not a valid Ultralytics model" in msg)


def test_batch_detection_matches_single(detector, group_photo):
    image = cv2.imread(str(group_photo))
    batch = detector.detect_batch([image, image[:, ::-1].copy()])
    assert [len(d) for d in batch] == [6, 6]
    np.testing.assert_allclose(batch[0].xyxy, detector.detect(image).xyxy, atol=1.0)
