"""The YOLO person detector on real images and video with the real YOLO11n-pose weights."""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import DetectorConfig, DetectorError, PersonDetector


@pytest.fixture(scope="module")
def detector():
    from conftest import shared_file

    return PersonDetector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))))


@pytest.fixture(scope="module")
def street_frames():
    from conftest import shared_file

    cap = cv2.VideoCapture(str(shared_file("data/street_crossing.mp4")))
    frames = [cap.read()[1] for _ in range(60)]
    cap.release()
    return frames


def test_group_photo_six_persons_with_keypoints(detector, group_photo):
    dets = detector.detect(cv2.imread(str(group_photo)))
    assert len(dets) == 6
    assert (dets.confidence > 0.5).all()
    assert dets.xyxy.dtype == np.float32 and dets.xyxy.shape == (6, 4)
    assert dets.data["keypoints"].shape == (6, 17, 3)
    assert (dets.class_id == 0).all() and dets.tracker_id is None


def test_track_ids_persist_and_reset(detector, street_frames):
    detector.reset()
    per_frame = [detector.track(f) for f in street_frames]
    assert all(d.tracker_id is not None and len(d.tracker_id) == len(d) for d in per_frame)
    counts = collections.Counter(int(t) for d in per_frame for t in d.tracker_id)
    assert counts.most_common(1)[0][1] >= 40
    first = per_frame[0].tracker_id.tolist()
    assert sorted(first) == list(range(1, len(first) + 1))
    assert max(counts) > len(first), "the clip creates new tracks, so a leaking counter would show"
    detector.reset()
    again = detector.track(street_frames[0]).tracker_id.tolist()
    assert again == first, "after reset ids restart at 1: no state leaks between sources"


def test_sources_are_tracked_independently(detector, street_frames):
    detector.reset()
    a, b = detector.track_batch([street_frames[0], street_frames[0]], sources=["cam-a", "cam-b"])
    assert a.tracker_id.tolist() == b.tracker_id.tolist() == list(range(1, len(a) + 1))
    detector.detect(street_frames[30])  # plain detection must not touch any tracker
    later = detector.track(street_frames[1], source="cam-a")
    assert set(later.tracker_id.tolist()) <= set(a.tracker_id.tolist())
    detector.reset()



def test_botsort_tracks_too(detector, street_frames):
    botsort = PersonDetector(DetectorConfig(weights=detector.config.weights, tracker="botsort.yaml"))
    ids = [botsort.track(f).tracker_id.tolist() for f in street_frames[:5]]
    assert ids[0] == list(range(1, len(ids[0]) + 1)) and set(ids[-1]) <= set(range(1, 20))
    assert sum(len(i) for i in ids) >= 5 * 5, "the clip has 5-8 people in every frame"


BLACK, SKY = np.zeros((360, 640, 3), np.uint8), np.full((240, 320, 3), (235, 206, 135), np.uint8)


@pytest.mark.parametrize("frame", [BLACK, SKY, None], ids=["black", "sky", "none"])
def test_nobody_gives_empty_detections(detector, frame):
    for dets in (detector.detect(frame), detector.track(frame, source="empty")):
        assert len(dets) == 0 and dets.xyxy.shape == (0, 4)
        assert dets.data["keypoints"].shape == (0, 17, 3)
    assert dets.tracker_id is not None and len(dets.tracker_id) == 0
    detector.reset("empty")


def test_tiny_boxes_are_skipped_with_a_reason(detector, group_photo, caplog):
    picky = PersonDetector(DetectorConfig(weights=detector.config.weights, min_box_size=5000))
    with caplog.at_level("DEBUG", logger="detector"):
        dets = picky.detect(cv2.imread(str(group_photo)))
    assert len(dets) == 0 and dets.data["keypoints"].shape == (0, 17, 3)
    assert picky.skipped == 6
    assert caplog.text.count("below the 5000px minimum") == 6


def one_line_error(weights, **kwargs) -> str:
    with pytest.raises(DetectorError) as err:
        PersonDetector(DetectorConfig(weights=str(weights), **kwargs))
    msg = str(err.value)
    assert "\n" not in msg and "--detector-weights PATH" in msg, msg
    return msg


@pytest.mark.parametrize("name", ["x.pt", "sub/x.pt", "x.onnx", "x.engine"])
def test_missing_weights_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert f"'{name}' not found" in one_line_error(name)


def test_garbage_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"garbage, not a checkpoint")
    msg = one_line_error(path)
    assert "not a valid Ultralytics model" in msg and str(path) in msg


def test_default_weights_offline_and_not_cached(tmp_path, monkeypatch):
    """What a user without internet sees: the file, where Ultralytics caches it, and the flag."""
    from ultralytics.utils import SETTINGS, downloads

    if (Path(SETTINGS["weights_dir"]) / "yolo11n-pose.pt").exists():
        pytest.skip("yolo11n-pose.pt is in Ultralytics' weights folder here")

    def offline(url, *args, **kwargs):  # what safe_download raises with no network, without trying one
        raise ConnectionError(f"Download failure for {url}. Environment may be offline.")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(downloads, "safe_download", offline)
    msg = one_line_error("yolo11n-pose.pt")
    assert "cannot get detector weights 'yolo11n-pose.pt'" in msg and str(SETTINGS["weights_dir"]) in msg


def test_any_detection_model_and_bad_kinds(group_photo):
    """A (random-init) detect model works without keypoints; a classifier and a bad tracker are refused."""
    det = PersonDetector(DetectorConfig(weights="yolo11n.yaml"))
    assert not det.has_keypoints
    assert "keypoints" not in det.detect(cv2.imread(str(group_photo))).data
    assert "'classify' model" in one_line_error("yolo11n-cls.yaml")
    for tracker in ("nope.yaml", "tracktrack.yaml"):
        with pytest.raises(DetectorError, match=f"tracker config '{tracker}'"):
            PersonDetector(DetectorConfig(weights="yolo11n.yaml", tracker=tracker))


def test_batch_detection_matches_single(detector, group_photo):
    image = cv2.imread(str(group_photo))
    batch = detector.detect_batch([image, image[:, ::-1].copy(), None])
    assert [len(d) for d in batch] == [6, 6, 0]
    np.testing.assert_allclose(batch[0].xyxy, detector.detect(image).xyxy, atol=1.0)


@pytest.mark.parametrize("tracker", ["bytetrack.yaml", "botsort.yaml"])
def test_tracking_keeps_low_score_persons_like_ultralytics(detector, street_frames, tracker):
    """The tracker gets the low-score boxes too (ByteTrack's second association), so the tracked persons and
    their ids are exactly those of Ultralytics' own `model.track` with the same tracker and default arguments.
    (Ultralytics' default tracker is TrackTrack in this version; ours is ByteTrack, so the YAML is named.)"""
    from ultralytics import YOLO

    ours = PersonDetector(DetectorConfig(weights=detector.config.weights, tracker=tracker, min_box_size=1))
    reference = YOLO(detector.config.weights)
    ours_ids, their_ids = [], []
    for frame in street_frames[:40]:
        ours_ids.append(sorted(ours.track(frame).tracker_id.tolist()))
        result = reference.track(frame, persist=True, classes=[0], tracker=tracker, verbose=False)[0]
        their_ids.append(sorted(result.boxes.id.int().tolist()) if result.boxes.id is not None else [])
    assert ours_ids == their_ids
    assert sum(map(len, ours_ids)) / len(ours_ids) > 7  # about 8 persons a frame on this clip


def test_a_new_person_needs_conf_and_a_tracked_one_may_dip_below(detector, street_frames):
    strict = PersonDetector(DetectorConfig(weights=detector.config.weights, conf=0.6))
    first_score, low_scores = {}, 0
    for frame in street_frames[:40]:
        dets = strict.track(frame)
        for tid, score in zip(dets.tracker_id.tolist(), dets.confidence.tolist()):
            first_score.setdefault(tid, score)
            low_scores += score < 0.6
    assert first_score and min(first_score.values()) >= 0.6, "a person is reported from a box of at least --conf"
    assert low_scores > 0, "a tracked person stays reported through a frame where the detector is less sure"
