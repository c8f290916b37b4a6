"""Faces hidden in written frames (`--anonymize`), never in what the emotion model sees; `--no-keypoints`.

Real YOLO on the group photo and the street clip, the trained test model (its outputs depend on the pixels,
so a run that hid faces from the model too would log other emotions). Runs with and without hiding are
compared frame by frame, written as MJPG (every 8x8 block coded on its own: blocks away from a change are
written bit for bit alike), without overlays so that only the hiding differs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import supervision as sv
from conftest import TRAINED_MODEL, shared_file

from detector import DetectorConfig
from emomon.pipeline import (
    AnonymizeConfig,
    EmotionModelConfig,
    FaceAnonymizer,
    MonitorConfig,
    OutputPaths,
    PipelineConfig,
    PrivacyConfig,
    build_detector,
    build_pipeline,
    build_predictor,
    run_pipeline,
)

STREET_FRAMES = 6
FACE = (0, 1, 2)  # nose, eyes


class NoOverlay:
    """Draws nothing, so a comparison sees only what the anonymiser changed."""

    def annotate(self, frame, detections, persons=None):
        return frame.copy()


@pytest.fixture(scope="module")
def detector():
    return build_detector(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))))


@pytest.fixture(scope="module")
def predictor():
    return build_predictor(EmotionModelConfig(emotion_model=str(TRAINED_MODEL)))


def run(detector, predictor, source_path, out_dir, anonymize: str, max_frames=None):
    from stream import open_source

    config = MonitorConfig(pipeline=PipelineConfig(privacy=PrivacyConfig(anonymize=anonymize)))
    pipeline = build_pipeline(config, detector=detector, predictor=predictor)
    out = OutputPaths(video=str(out_dir / f"{anonymize}.avi"), jsonl=str(out_dir / f"{anonymize}.jsonl"))
    with open_source(str(source_path), max_frames=max_frames) as source:
        run_pipeline(source, pipeline, out, overlay=NoOverlay(), progress=False)
    cap = cv2.VideoCapture(out.video)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.int16))
    cap.release()
    records = [json.loads(line) for line in (out_dir / f"{anonymize}.jsonl").read_text().splitlines()]
    return frames, records


@pytest.fixture(scope="module", params=["group_photo.jpg", "street_crossing.mp4"])
def paired_runs(request, detector, predictor, tmp_path_factory):
    """The same source written with faces blurred and as it is."""
    source = shared_file(f"data/{request.param}")
    out = tmp_path_factory.mktemp("anon")
    limit = STREET_FRAMES if source.suffix == ".mp4" else None
    return run(detector, predictor, source, out, "blur", limit), run(detector, predictor, source, out, "none", limit)


def face_patches(person, shape):
    """Where the face is, from the logged keypoints: a square around nose and eyes, sized by the eye gap."""
    kp = np.asarray(person["keypoints"], float)
    face = kp[list(FACE)]
    if (face[:, 2] < 0.5).any():
        return None
    cx, cy = face[:, :2].mean(axis=0)
    half = max(3.0, 0.75 * float(np.linalg.norm(face[1, :2] - face[2, :2])))
    h, w = shape[:2]
    x1, y1, x2, y2 = (int(np.clip(v, 0, lim)) for v, lim in
                      ((cx - half, w), (cy - half, h), (cx + half + 1, w), (cy + half + 1, h)))
    return (slice(y1, y2), slice(x1, x2)) if x2 - x1 >= 4 and y2 - y1 >= 4 else None


def _detail(patch) -> float:
    """Fine detail: mean absolute Laplacian of the grey patch."""
    grey = cv2.cvtColor(patch.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def test_blur_hides_every_face_and_nothing_else(paired_runs):
    (blurred, rec_blur), (plain, rec_plain) = paired_runs
    assert len(blurred) == len(plain) == len(rec_plain) > 0
    faces, details = 0, []
    for frame_b, frame_p, record in zip(blurred, plain, rec_plain):
        diff = np.abs(frame_b - frame_p).max(axis=2)
        away = np.ones(diff.shape, bool)  # two 8x8 blocks from every person's box (a padded head: more above)
        for person in record["persons"]:
            x1, y1, x2, y2 = (int(v) for v in person["box"])
            away[max(0, y1 - 16 - (x2 - x1) // 3):y2 + 16, max(0, x1 - 16):x2 + 16] = False
            patch = face_patches(person, diff.shape)
            if patch is not None:
                faces += 1
                before, after = frame_p[patch], frame_b[patch]
                change = float(np.abs(after - before).mean())  # the codec alone changes ~1 grey level
                details.append(_detail(after) / max(_detail(before), 1e-6))
                assert change > 8, f"frame {record['frame']}, face of {person['box']}: changed by {change:.1f} only"
        assert away.any() and diff[away].max() == 0, "pixels away from every person changed"
    assert faces >= 4 * len(plain), "the sources show several faces per frame"
    # 10-pixel faces of the street clip keep some block edges; the photo's faces lose nearly all detail
    assert np.median(details) < 0.35, f"faces keep {np.median(details):.0%} of their detail (median)"


def test_emotions_do_not_see_the_anonymised_frame(paired_runs):
    """The model computes on the original pixels: the logs of both runs are the same, number for number."""
    (_, rec_blur), (_, rec_plain) = paired_runs
    assert rec_blur == rec_plain
    assert sum(len(r["persons"]) for r in rec_plain) >= 5


# -- the anonymiser on its own ---------------------------------------------------------------------------------

def person(box, head=None, tid=1):
    """One detection; `head` = (cx, cy, eye gap) places nose, eyes and ears with confidence 0.9."""
    kp = np.zeros((1, 17, 3), np.float32)
    if head is not None:
        cx, cy, gap = head
        kp[0, :5] = [[cx, cy + gap / 2, 0.9], [cx + gap / 2, cy, 0.9], [cx - gap / 2, cy, 0.9],
                     [cx + 1.2 * gap, cy, 0.9], [cx - 1.2 * gap, cy, 0.9]]
    return sv.Detections(xyxy=np.array([box], np.float32), tracker_id=np.array([tid]),
                         data={"keypoints": kp})


def noise(h=360, w=640, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["blur", "pixelate", "box"])
def test_each_mode_hides_the_head_from_keypoints_and_leaves_the_input_alone(mode):
    frame = noise()
    before = frame.copy()
    out = FaceAnonymizer(mode)(frame, person([250, 40, 350, 340], head=(300, 80, 16)))
    assert np.array_equal(frame, before), "the input frame (what the model sees) must stay untouched"
    head = (slice(70, 92), slice(285, 316))
    assert np.abs(out[head].astype(int) - before[head]).mean() > 40  # noise is ~85 apart on average
    assert out[head].std() < 0.5 * before[head].std()  # the detail is gone, not just shifted
    assert np.array_equal(out[200:], before[200:])  # the body below the head is untouched
    assert np.array_equal(out[:, :200], before[:, :200])


def test_person_without_head_keypoints_gets_the_top_of_the_box_hidden():
    frame = noise()
    out = FaceAnonymizer("box")(frame, person([100, 50, 200, 350]))  # seen from behind: no face keypoints
    top = out[55:140, 105:195]
    assert (top == top[0, 0]).all(), "the upper box region is covered"
    assert np.array_equal(out[250:], frame[250:])


def test_head_box_follows_the_track_and_never_lags():
    """Smoothed per track, yet always covering the newest head: a fast move never uncovers the face."""
    anon = FaceAnonymizer("box", AnonymizeConfig(smooth=0.3))
    regions = [anon.regions(person([x - 50, 40, x + 50, 340], head=(x, 80, 16))).copy()[0]
               for x in (300, 300, 300, 340)]
    raw = FaceAnonymizer("box").regions(person([290, 40, 390, 340], head=(340, 80, 16)))[0]
    moved = regions[-1]
    assert moved[0] <= raw[0] and moved[2] >= raw[2], "covers the newest head box"
    assert moved[0] < raw[0] - 5, "and still the smoothed past: no jump"
    assert np.allclose(regions[0], regions[2]), "a still head keeps its box"
    lost = anon.regions(person([290, 40, 390, 340]))[0]  # head keypoints vanish for a frame
    assert lost[3] - lost[1] < 0.3 * 300, "the track's last head box stands in, not the whole upper region"
    assert lost[0] <= raw[0] + 1 and lost[2] >= raw[2] - 1


def test_none_mode_and_empty_frames():
    frame = noise()
    assert FaceAnonymizer("none")(frame, person([0, 0, 10, 10])) is frame
    assert np.array_equal(FaceAnonymizer("blur")(frame, sv.Detections.empty()), frame)
    with pytest.raises(ValueError, match="anonymize must be one of"):
        FaceAnonymizer("smudge")


# -- the command line ------------------------------------------------------------------------------------------

def test_run_logs_what_it_stores_and_leaves_keypoints_out(tmp_path, group_photo, yolo_weights, trained_model_path):
    proc = subprocess.run(
        [sys.executable, "-m", "emomon", "run", "--source", str(group_photo), "--emotion-model",
         str(trained_model_path), "--detector-weights", str(yolo_weights), "--output", str(tmp_path / "o.mp4"),
         "--jsonl", str(tmp_path / "o.jsonl"), "--csv", str(tmp_path / "o.csv"), "--anonymize", "pixelate",
         "--no-keypoints", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    notice = [line for line in proc.stderr.splitlines() if "stored:" in line]
    assert len(notice) == 1, proc.stderr
    assert (f"images of people in {tmp_path / 'o.mp4'} (annotated video, faces pixelated); numbers only in "
            f"{tmp_path / 'o.jsonl'} (emotions, boxes; no keypoints), {tmp_path / 'o.csv'} (emotions, boxes); "
            "no crops or raw frames") in notice[0]
    persons = json.loads((tmp_path / "o.jsonl").read_text())["persons"]
    assert len(persons) == 6 and all("keypoints" not in p and "emotions" in p for p in persons)


def test_bad_anonymize_value_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "emomon", "run", "--source", "x.mp4", "--anonymize", "smudge"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--anonymize" in proc.stderr
