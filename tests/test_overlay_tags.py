"""The compact-tag overlay: no two labels overlap on the street clip's most crowded frame, the skeleton leaves
the face alone, each track keeps a colour distinct from the others in view, panels switch to tags in crowds."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import supervision as sv
from conftest import ROOT

from emomon.pipeline import EmotionOverlay, OverlayConfig
from emomon.pipeline.overlay import PALETTE
from fusion import PersonResult

ARTIFACTS = ROOT / "test-artifacts"
CROWDED_FRAME = 12  # 13 persons at the detector's default confidence (found by scanning every 3rd frame)


def person(i: int, box, track_id: int | None = None, keypoints=None) -> PersonResult:
    probs = np.random.default_rng(i).random(26) ** 3
    return PersonResult(i, np.asarray(box, np.float32), probs, np.array([6.0, 4.0, 5.5]), track_id=track_id,
                        keypoints=keypoints)


@pytest.fixture(scope="module")
def crowded():
    from conftest import shared_file

    from detector import DetectorConfig, PersonDetector

    cap = cv2.VideoCapture(str(shared_file("data/street_crossing.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, CROWDED_FRAME)
    frame = cap.read()[1]
    cap.release()
    dets = PersonDetector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt")))).detect(frame)
    dets.tracker_id = np.arange(1, len(dets) + 1)
    return frame, dets


def disjoint(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)], ids=["360p", "720p"])
def test_tags_never_overlap_on_the_most_crowded_street_frame(crowded, size):
    frame, dets = crowded
    assert len(dets) >= 12, "the crowded frame has a crowd"
    s = size[0] / frame.shape[1]
    scaled = dets[np.arange(len(dets))]
    scaled.xyxy = (dets.xyxy * s).astype(np.float32)
    scaled.data["keypoints"] = dets.data["keypoints"] * np.array([s, s, 1], np.float32)
    image = cv2.resize(frame, size)
    persons = [person(i, b, int(t)) for i, (b, t) in enumerate(zip(scaled.xyxy, scaled.tracker_id))]
    overlay = EmotionOverlay()  # auto: a crowd gets tags
    out = overlay.annotate(image, scaled, persons)
    labels = overlay.labels
    assert {lab.kind for lab in labels} <= {"tag", "id"}
    assert sum(lab.kind == "tag" for lab in labels) >= 0.75 * len(dets), "most persons get a full tag"
    assert len({lab.index for lab in labels}) == len(labels)
    for a, b in itertools.combinations(labels, 2):
        assert disjoint(a.rect, b.rect), f"{a.text} overlaps {b.text}"
    h, w = image.shape[:2]
    colors = overlay.colors([int(t) for t in scaled.tracker_id])
    for lab in labels:
        x1, y1, x2, y2 = lab.rect
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert tuple(int(c) for c in out[y1, x1]) == colors[lab.index], "the rectangle is what was drawn"
        assert lab.text.startswith(f"#{lab.track_id}")
    th = labels[0].rect[3] - labels[0].rect[1]
    assert th >= 16 * (h / 360), "tags are tall enough to read"
    ARTIFACTS.mkdir(exist_ok=True)
    cv2.imwrite(str(ARTIFACTS / f"overlay_crowd_{h}p.png"), out)


def test_panels_for_a_few_persons_tags_for_more_and_a_highlight_gets_its_panel():
    frame = np.full((360, 640, 3), 90, np.uint8)
    boxes = [[20 + 150 * i, 120, 120 + 150 * i, 350] for i in range(4)]
    dets = sv.Detections(xyxy=np.array(boxes, np.float32), tracker_id=np.arange(1, 5))
    persons = [person(i, b, i + 1) for i, b in enumerate(boxes)]
    overlay = EmotionOverlay()
    overlay.annotate(frame, dets[np.arange(3)], persons[:3])
    assert [lab.kind for lab in overlay.labels] == ["panel"] * 3
    overlay.annotate(frame, dets, persons)
    assert sorted(lab.kind for lab in overlay.labels) == ["tag"] * 4
    highlighted = EmotionOverlay(OverlayConfig(highlight=2))
    highlighted.annotate(frame, dets, persons)
    assert {lab.track_id: lab.kind for lab in highlighted.labels} == {1: "tag", 2: "panel", 3: "tag", 4: "tag"}


def test_skeleton_leaves_the_face_out():
    frame = np.zeros((360, 640, 3), np.uint8)
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    kp[0:5, :2] = [[300, 60], [290, 50], [310, 50], [280, 55], [320, 55]]  # nose, eyes, ears
    kp[5:, :2] = [[270, 100], [330, 100], [260, 150], [340, 150], [255, 200], [345, 200], [280, 210],
                  [320, 210], [280, 270], [320, 270], [280, 330], [320, 330]]
    dets = sv.Detections(xyxy=np.array([[240, 30, 360, 350]], np.float32), tracker_id=np.array([1]),
                         data={"keypoints": kp[None]})
    out = EmotionOverlay(OverlayConfig(show_keypoints=True)).annotate(frame, dets, [None])
    face = out[40:70, 270:330]
    assert not face.any(), "no joint or line on the face"
    assert out[95:105, 265:275].any() and out[265:275, 275:285].any(), "the body is drawn"


def test_each_track_keeps_a_colour_distinct_from_the_others_in_view():
    overlay = EmotionOverlay()
    first = overlay.colors([1, 2, 3, 4, 5, 6, 7, 8])
    assert len(set(first)) == 8
    later = overlay.colors([3, 9, 10, 4, 11])  # old tracks keep theirs; new ones avoid colours in view
    assert later[0] == first[2] and later[3] == first[3]
    assert len(set(later)) == 5
    assert all(c in PALETTE for c in later)
