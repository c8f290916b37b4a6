"""Smoothing, summaries, outputs and reuse decisions of the pipeline, without models."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from scripted import ScriptedDetector

from emomon.kernel import write_json_atomic
from emomon.pipeline import (
    CSV_COLUMNS,
    CsvWriter,
    EmotionPipeline,
    JsonlWriter,
    PipelineConfig,
    ReuseConfig,
    RunSummary,
    SmoothingConfig,
    TrackSmoother,
    VideoWriter,
    box_iou,
)
from fusion import EMOTIC_CATEGORIES, PersonResult, Predictor, create_model


def test_ema_smoothing_damps_flicker_per_track():
    s = TrackSmoother(SmoothingConfig("ema", alpha=0.5))
    a, b = np.zeros(26, np.float32), np.ones(26, np.float32)
    vad = np.full(3, 5.0, np.float32)
    assert s.update(1, 0, a, vad)[0][0] == 0
    assert s.update(1, 1, b, vad)[0][0] == pytest.approx(0.5)
    assert s.update(1, 2, a, vad)[0][0] == pytest.approx(0.25)
    assert s.update(2, 2, b, vad)[0][0] == 1, "tracks are independent"
    assert s.update(None, 3, b, vad)[0][0] == 1, "untracked persons pass through"


def test_window_smoothing_and_forgetting():
    s = TrackSmoother(SmoothingConfig("window", window=2, max_age=3))
    vad = np.full(3, 5.0, np.float32)
    for frame, value in enumerate([0.0, 1.0, 1.0]):
        out = s.update(7, frame, np.full(26, value, np.float32), vad)[0]
    assert out[0] == 1.0  # the window holds the last two
    s.forget_stale(10)
    assert s.update(7, 10, np.zeros(26, np.float32), vad)[0][0] == 0, "stale state was dropped"
    with pytest.raises(ValueError):
        SmoothingConfig("median")


def person(tid, top1="Peace", p=0.9, v=(5.0, 6.0, 7.0)):
    probs = np.full(len(EMOTIC_CATEGORIES), 0.01)
    probs[EMOTIC_CATEGORIES.index(top1)] = p
    return PersonResult(0, np.array([1.0, 2.0, 30.0, 60.0]), probs, np.array(v), track_id=tid, score=0.8)


def test_summary_dominant_emotion_and_mean_vad():
    s = RunSummary()
    s.add(0, 0.0, [person(1, "Peace"), person(None)])
    s.add(1, 0.04, [person(1, "Peace"), person(2, "Anger")])
    s.add(2, 0.08, [person(1, "Happiness", v=(7.0, 6.0, 7.0))])
    d = s.to_dict(source="x")
    t1 = d["tracks"][0]
    assert t1["track_id"] == 1 and t1["frames"] == 3 and t1["dominant_emotion"] == "Peace"
    assert (t1["first_frame"], t1["last_frame"], t1["last_time"]) == (0, 2, 0.08)
    assert t1["mean_vad"]["valence"] == pytest.approx(17 / 3, abs=1e-3)
    assert d["untracked_detections"] == 1 and [t["track_id"] for t in d["tracks"]] == [1, 2]


def test_writers_produce_valid_files(tmp_path):
    record = {"frame": 3, "time": 0.125, "utc": "2026-12-02T14:03:07.250Z", "persons": [person(4).record(top_k=1)]}
    j, c = JsonlWriter(tmp_path / "a" / "o.jsonl"), CsvWriter(tmp_path / "o.csv")
    j.write(record)
    c.write(record)
    assert json.loads((tmp_path / "a" / "o.jsonl").read_text()) == record, "flushed before close"
    j.close(), c.close()
    with open(tmp_path / "o.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS and len(rows) == 2 and rows[1][2] == "2026-12-02T14:03:07.250Z" and rows[1][3] == "4"
    assert rows[1][9] == "Peace"
    v = VideoWriter(tmp_path / "o.mp4", fps=10)
    for i in range(5):
        v.write(np.full((48, 64, 3), i * 40, np.uint8))
    v.close()
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    write_json_atomic(tmp_path / "s.json", {"a": 1})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1}


def test_a_new_video_replaces_a_longer_one_from_an_earlier_run(tmp_path):
    path = tmp_path / "o.mp4"
    path.write_bytes(b"\0" * 2_000_000)  # larger than what follows: a run was said to shrink the file and stop
    v = VideoWriter(path, fps=10)
    for i in range(20):
        v.write(np.full((48, 64, 3), i * 10, np.uint8))
    v.close()
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20 and path.stat().st_size < 2_000_000


def test_box_iou():
    a = np.array([0, 0, 10, 10.0])
    assert box_iou(a, a) == 1 and box_iou(a, np.array([20, 20, 30, 30.0])) == 0
    assert box_iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(1 / 3)


def run_scripted(reuse, frames, images):
    det = ScriptedDetector(frames)
    pipe = EmotionPipeline(det, Predictor(create_model("two_stream_tiny", pretrained=False)),
                           PipelineConfig(reuse=reuse, smoothing=SmoothingConfig("none")))
    return pipe, [pipe.process(i, i / 10, im) for i, im in enumerate(images)]


def test_reuse_recomputes_on_schedule_and_on_change():
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    frames = [([[10, 10, 60, 110], [80, 10, 130, 110]], [1, 2])] * 6
    pipe, results = run_scripted(ReuseConfig(scene_every=3, scene_change=0.05, refresh_every=2, refresh_iou=0.5),
                                 frames, [still] * 6)
    assert pipe.counts["scene_computed"] == 2 and pipe.counts["scene_reused"] == 1  # frames 0, 4 vs 2
    assert pipe.counts["persons_computed"] == 6 and pipe.counts["persons_reused"] == 6
    assert all(len(r.persons) == 2 for r in results)
    # Every frame different: the scene is recomputed whenever people are computed.
    images = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(6)]
    pipe, _ = run_scripted(ReuseConfig(scene_every=3, scene_change=0.05, refresh_every=2), frames, images)
    assert pipe.counts["scene_reused"] == 0
    # A box that jumps forces a refresh of that person only.
    moving = [([[10, 10, 60, 110], [80 + 40 * (i % 2), 10, 130 + 40 * (i % 2), 110]], [1, 2]) for i in range(4)]
    pipe, _ = run_scripted(ReuseConfig(scene_every=1, refresh_every=10, refresh_iou=0.5), moving, [still] * 4)
    assert pipe.counts["persons_computed"] == 2 + 3 and pipe.counts["persons_reused"] == 3


def test_every_frame_config_and_reset():
    still = np.zeros((120, 160, 3), np.uint8)
    frames = [([[10, 10, 60, 110]], [1])] * 3
    pipe, results = run_scripted(ReuseConfig(scene_every=1, refresh_every=1), frames, [still] * 3)
    assert pipe.counts["persons_computed"] == 3 and pipe.counts["scene_computed"] == 3
    assert results[0].record()["persons"][0]["track_id"] == 1
    pipe.reset()
    assert pipe.detector.resets == 2  # once at construction, once now


def test_aligned_persons_follow_detection_order_with_gaps():
    """A degenerate box gets no emotions: aligned() keeps a None in its place, even with duplicate boxes."""
    frames = [([[10, 10, 60, 110], [0, 0, 1, 1], [10, 10, 60, 110]], [1, 2, 3])]
    pipe, results = run_scripted(ReuseConfig(scene_every=1, refresh_every=1), frames,
                                 [np.zeros((120, 160, 3), np.uint8)])
    aligned = results[0].aligned()
    assert [p and p.track_id for p in aligned] == [1, None, 3]
    assert [p.index for p in results[0].persons] == [0, 2], "each result names its detection row"


def test_ctrl_c_between_two_outputs_of_a_frame_waits_for_the_frame(tmp_path, street_video, monkeypatch):
    """The race CI once hit: Ctrl-C right after the JSONL line, before the video frame. Both must agree."""
    import os
    import signal

    from emomon.pipeline import OutputPaths, run_pipeline
    from emomon.pipeline.outputs import JsonlWriter as Writer
    from stream import open_source

    real_write = Writer.write

    def write_then_ctrl_c(self, record):
        real_write(self, record)
        if record["frame"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Writer, "write", write_then_ctrl_c)
    det = ScriptedDetector([([[100, 50, 200, 300]], [1])] * 6)
    pipe = EmotionPipeline(det, Predictor(create_model("two_stream_tiny", pretrained=False)), PipelineConfig())
    out = OutputPaths(video=str(tmp_path / "o.mp4"), jsonl=str(tmp_path / "o.jsonl"), csv=str(tmp_path / "o.csv"),
                      summary=str(tmp_path / "s.json"))
    with open_source(street_video, max_frames=6) as source, pytest.raises(KeyboardInterrupt):
        run_pipeline(source, pipe, out, progress=False)
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1, 2]
    with open(tmp_path / "o.csv", newline="") as f:
        assert [int(r["frame"]) for r in csv.DictReader(f)] == [0, 1, 2]
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped_by"] == "interrupted"


# -- non-finite numbers (issue 12, item 9): never in a record, a summary or a JSON file ------------------------
def strict_json(text: str):
    """json.loads that fails on NaN/Infinity (Python's parser accepts them; most others do not)."""
    def refuse(constant):
        raise AssertionError(f"non-finite number {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_record_and_summary_never_hold_a_non_finite_number():
    bad = person(5, "Anger").replace(probs=np.full(26, np.nan), vad=np.array([np.inf, 5.0, np.nan]))
    partly = person(6, "Fear").replace(probs=np.where(np.arange(26) == 0, np.nan, 0.1 + np.arange(26) / 100))
    assert not bad.is_finite and not partly.is_finite and person(1).is_finite
    record = bad.record()
    assert set(record["emotions"].values()) == {None} and record["top"] == []
    assert record["vad"] == {"valence": None, "arousal": 5.0, "dominance": None}
    assert partly.record(top_k=2)["top"][0][0] == "Yearning", "NaN is never a top emotion"
    strict_json(json.dumps([record, partly.record()], allow_nan=False))
    s = RunSummary()
    s.add(0, 0.0, [person(1, "Peace"), bad])
    s.add(1, float("nan"), [person(1, "Peace"), partly])
    d = s.to_dict(fps=float("inf"))
    assert d["person_detections"] == 2 and s.nonfinite == 2 and [t["track_id"] for t in d["tracks"]] == [1]
    assert d["fps"] is None and d["tracks"][0]["last_time"] is None and d["tracks"][0]["mean_vad"]["valence"] == 5
    strict_json(json.dumps(d, allow_nan=False))


def test_json_writers_never_write_non_finite_numbers(tmp_path):
    """The last line of defence: the per-frame writer raises instead of writing `NaN` (records are made finite
    before it), and whole-file JSON (summaries, training results) writes non-finite numbers as null."""
    writer = JsonlWriter(tmp_path / "o.jsonl")
    with pytest.raises(ValueError):
        writer.write({"frame": 0, "time": float("nan"), "persons": []})
    writer.close()
    write_json_atomic(tmp_path / "s.json", {"fps": float("inf"), "mAP": [0.5, float("nan")]})
    assert json.loads((tmp_path / "s.json").read_text()) == {"fps": None, "mAP": [0.5, None]}


def nan_model(trained_model):
    import torch

    with torch.no_grad():
        trained_model.cat_head.weight.fill_(float("nan"))
    return trained_model


def test_pipeline_leaves_out_persons_with_non_finite_scores_and_warns_once(trained_model, caplog):
    det = ScriptedDetector([([[10, 10, 60, 110], [80, 10, 130, 110]], [1, 2])] * 3)
    pipe = EmotionPipeline(det, Predictor(nan_model(trained_model)),
                           PipelineConfig(reuse=ReuseConfig.every_frame()))
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    with caplog.at_level("DEBUG", logger="fusion.predictor"):
        results = [pipe.process(i, i / 10, image) for i in range(3)]
    assert all(r.persons == [] and r.aligned() == [None, None] for r in results)
    assert all(r.record()["persons"] == [] for r in results)
    warnings = [r for r in caplog.records if r.name == "fusion.predictor" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "non-finite" in warnings[0].getMessage(), caplog.text
    assert pipe.predictor.nonfinite == 6
    assert sum(r.levelname == "DEBUG" and "non-finite" in r.getMessage() for r in caplog.records) == 5
