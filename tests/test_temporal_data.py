"""Temporal training data: the Aff-Wild2 / ABAW readers, the synthetic video set, feature extraction through the
real detector + tracker + trained test model (cached), and the commands from training to `emomon run`."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from emomon.cli import main
from emomon.kernel import InputError
from training.temporal.abaw import aligned, find_videos, read_expr_file, read_va_file


def write_video(path, frames: int, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 5 % 255, np.uint8))
    writer.release()


def test_va_reader_marks_unannotated_frames(tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("valence,arousal\n0.5,-0.25\n-5,-5\n-5,0.3\n-1,1\n\n")
    va = read_va_file(f)
    assert va.shape == (4, 2) and va[0].tolist() == [0.5, -0.25] and va[3].tolist() == [-1, 1]
    assert np.isnan(va[1]).all() and np.isnan(va[2]).all()  # -5 in either column: the frame is unannotated
    for bad, why in (("v,a\n0,0\n", "first line"), ("valence,arousal\n0.1\n", "line 2"),
                     ("valence,arousal\n0.1,2.5\n", r"\[-1, 1\]")):
        f.write_text(bad)
        with pytest.raises(InputError, match=why):
            read_va_file(f)
    e = tmp_path / "e.txt"
    e.write_text("Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n4\n-1\n0\n")
    assert read_expr_file(e).tolist() == [4, -1, 0]
    e.write_text("Neutral,Anger\n9\n")
    with pytest.raises(InputError, match="outside"):
        read_expr_file(e)


def test_layout_with_a_frame_count_mismatch_and_left_right_subjects(tmp_path):
    va_dir = tmp_path / "VA_Estimation_Challenge" / "Validation_Set"
    va_dir.mkdir(parents=True)
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "clip1.mp4", 6)
    write_video(tmp_path / "videos" / "pair.avi", 4)
    (va_dir / "clip1.txt").write_text("valence,arousal\n" + "\n".join(["0.1,0.2"] * 3 + ["-5,-5", "0.4,0.4"]) + "\n")
    (va_dir / "pair_left.txt").write_text("valence,arousal\n0.3,0.3\n")
    (va_dir / "pair_right.txt").write_text("valence,arousal\n-0.3,0.3\n")
    (va_dir / "orphan.txt").write_text("valence,arousal\n0,0\n")
    items = {i.name: i for i in find_videos(tmp_path, "val")}
    assert set(items) == {"clip1", "pair_left", "pair_right"}  # no video for orphan: skipped with a warning
    assert items["pair_left"].video.name == "pair.avi" and items["pair_left"].side == "left"
    clip = items["clip1"]
    assert clip.frames == 5 and clip.expr is None
    # aligned by index: the 4th frame is -5, the 6th video frame is past the 5-line annotation
    va = aligned(clip.va, np.arange(6), np.nan)
    assert np.isfinite(va[[0, 1, 2, 4]]).all() and np.isnan(va[[3, 5]]).all() and np.allclose(va[4], 0.4)
    with pytest.raises(InputError, match="no annotations"):
        find_videos(tmp_path, "train")


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory, yolo_weights_module):
    """Two 1.5 s synthetic videos (one train, one val) with the real detector cutting out the persons."""
    from pathlib import Path

    import ultralytics

    from detector import DetectorConfig, PersonDetector
    from training.temporal.synthetic_video import SyntheticVideoConfig, make_synthetic_videos

    root = tmp_path_factory.mktemp("synthv")
    image = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    detector = PersonDetector(DetectorConfig(weights=str(yolo_weights_module)))
    make_synthetic_videos(root, [str(image)], detector, SyntheticVideoConfig(train_videos=1, val_videos=2,
                                                                             seconds=1.5, unannotated=3))
    return root


@pytest.fixture(scope="module")
def yolo_weights_module():
    from conftest import shared_file

    return shared_file("weights/yolo11n-pose.pt")


def test_synthetic_set_is_in_the_abaw_layout(synthetic_set):
    items = find_videos(synthetic_set, "val")
    assert [i.name for i in items] == ["val_000", "val_001"]
    second = items[1]
    assert second.frames == 22 and np.isnan(second.va[:3]).all() and (second.expr[:3] == -1).all()
    assert np.isfinite(second.va[3:]).all() and (np.abs(second.va[3:]) <= 1).all()
    cap = cv2.VideoCapture(str(second.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 22


@pytest.fixture(scope="module")
def feature_cache(synthetic_set, yolo_weights_module, tmp_path_factory):
    """Both splits extracted once (real detector + tracker + the trained test model), for the tests below."""
    from conftest import TRAINED_MODEL

    from training.temporal import ExtractConfig, Extractor, load_sequences

    cache = tmp_path_factory.mktemp("features")
    cfg = ExtractConfig(frame_model=str(TRAINED_MODEL), detector_weights=str(yolo_weights_module), imgsz=320)
    with pytest.MonkeyPatch.context() as mp:  # the session's cache (conftest isolates per test, not yet here)
        mp.setenv("EMOMON_CACHE", str(tmp_path_factory.getbasetemp() / "emomon-cache"))
        extractor = Extractor(cfg, cache)
        return cache, cfg, {split: load_sequences(synthetic_set, split, extractor) for split in ("train", "val")}


def test_extraction_through_the_real_pipeline_is_cached(synthetic_set, feature_cache, monkeypatch):
    from training.temporal import Extractor, load_sequences

    cache, cfg, by_split = feature_cache
    seqs = by_split["val"]
    assert len(seqs) == 2
    s = seqs[1]
    assert s.features.shape[1] == 32 and len(s.frames) >= 18  # the person is tracked in (nearly) every frame
    assert np.isnan(s.va[s.frames < 3]).all() and s.video_frames == 22 and s.mismatch == 0
    assert np.std(s.features, axis=0).max() > 1e-3  # features follow the frames (the pulse), not constant
    # every frame's own feature (persons recomputed every frame, as a temporal head needs), none held by reuse
    assert np.any(np.diff(s.features, axis=0) != 0, axis=1).all()

    extractor = Extractor(cfg, cache)
    monkeypatch.setattr(extractor, "_pipeline", lambda: pytest.fail("extracted again instead of reading the cache"))
    again = load_sequences(synthetic_set, "val", extractor)
    np.testing.assert_array_equal(again[1].features, s.features)


def test_train_evaluate_and_run_with_a_temporal_model(synthetic_set, feature_cache, yolo_weights_module,
                                                      trained_model_path, street_video, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data", str(synthetic_set), "--emotion-model", str(trained_model_path), "--detector-weights",
              str(yolo_weights_module), "--imgsz", "320", "--feature-cache", str(feature_cache[0])]
    assert main(["train-temporal", *common, "--out", str(out), "--epochs", "2", "--window", "8", "--hidden", "16"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["val"]) >= {"ccc_valence", "ccc_arousal", "ccc_mean", "expr_f1"}
    capsys.readouterr()
    assert main(["evaluate-temporal", "--model", str(out / "temporal.pt"), *common[:2], "--detector-weights",
                 str(yolo_weights_module), "--imgsz", "320", "--feature-cache", str(feature_cache[0])]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ccc_mean"] == pytest.approx(metrics["val"]["ccc_mean"])  # frame model read from the head

    jsonl, csv_path = tmp_path / "o.jsonl", tmp_path / "o.csv"
    assert main(["run", "--source", str(street_video), "--max-frames", "3", "--emotion-model", str(trained_model_path),
                 "--temporal-model", str(out / "temporal.pt"), "--detector-weights", str(yolo_weights_module),
                 "--jsonl", str(jsonl), "--csv", str(csv_path), "--no-progress"]) == 0
    person = json.loads(jsonl.read_text().splitlines()[-1])["persons"][0]
    assert list(person["emotions"]) == ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
                                        "Other"]
    assert list(person["vad"]) == ["valence", "arousal"] and all(-1 <= v <= 1 for v in person["vad"].values())
    assert math.isclose(sum(person["emotions"].values()), 1.0, abs_tol=1e-3)  # ABAW expressions: one distribution
    header = csv_path.read_text().splitlines()[0].split(",")
    k = header.index("top1_prob") + 1
    assert header[k:k + 3] == ["valence", "arousal", "Neutral"] and header[-1] == "Other" and len(header) == k + 10

    # the wrong frame model for the head is one clear error, before any frame
    assert main(["run", "--source", str(street_video), "--max-frames", "1", "--emotion-model",
                 "random:zero_shot_tiny", "--temporal-model", str(out / "temporal.pt"), "--detector-weights",
                 str(yolo_weights_module), "--no-progress"]) == 2
    assert "reads 32-d features" in capsys.readouterr().err
