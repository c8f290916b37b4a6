"""Detecting ahead in a worker thread (`PipelineConfig.overlap`, emomon.pipeline.overlap) changes the speed of a
run, never its results: the same records as one frame after another, on the real clip with the real detector and
the trained test model (whose outputs differ per person, so a frame paired with another frame's detections
shows). A source that fails mid-run fails the run the same way, after the frames it gave."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from emomon.kernel import InputError
from emomon.pipeline import EmotionModelConfig, MonitorConfig, OutputPaths, build_pipeline, run_pipeline
from emomon.pipeline.overlap import FILE_AHEAD, Overlap
from stream import open_source

FRAMES = 10


def persons(path) -> list[list[tuple]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [[(p["track_id"], p["box"], p["vad"], p["top"][0][0], p["emotions"]) for p in r["persons"]] for r in rows]


@pytest.fixture
def monitor(trained_model_path, yolo_weights):
    config = MonitorConfig(model=EmotionModelConfig(str(trained_model_path)))
    return dataclasses.replace(config, detector=dataclasses.replace(config.detector, weights=str(yolo_weights)))


def test_overlapped_run_writes_the_same_records_as_a_sequential_one(monitor, street_video, tmp_path):
    pipeline = build_pipeline(monitor)
    assert pipeline.config.overlap, "on by default"
    out, threads = {}, []
    for overlap in (False, True):
        pipeline.config = dataclasses.replace(pipeline.config, overlap=overlap)
        out[overlap] = tmp_path / f"{overlap}.jsonl"
        with open_source(str(street_video), max_frames=FRAMES) as source:
            report = run_pipeline(source, pipeline, OutputPaths(jsonl=str(out[overlap])), progress=False,
                                  on_frame=lambda _, o=overlap: threads.append((o, pipeline.detector.threads)))
        assert report.frames == FRAMES
    if pipeline.detector.runtime == "openvino":  # beside the emotion model it gets half the cores, then all again
        half = max(1, len(os.sched_getaffinity(0)) // 2)
        assert set(threads) == {(False, 0), (True, half)} and pipeline.detector.threads == 0
    sequential, overlapped = persons(out[False]), persons(out[True])
    assert sum(map(len, sequential)) > 3 * FRAMES
    probs = np.array([list(p[4].values()) for frame in sequential for p in frame])
    assert np.ptp(probs, axis=0).max() > 0.2, "outputs differ per person, or this test could not see a mix-up"
    assert overlapped == sequential


class _Frame:
    def __init__(self, index: int):
        self.index, self.time, self.image = index, index / 10, np.full((48, 64, 3), index * 20, np.uint8)


class _Failing:
    """A source whose fourth frame cannot be decoded."""

    def __iter__(self):
        for i in range(3):
            yield _Frame(i)
        raise InputError("cannot read 'broken.mp4': frame 3 is corrupt")


class _CountingPipeline:
    def __init__(self):
        self.detected: list[int] = []

    def detect(self, image):
        self.detected.append(int(image[0, 0, 0]) // 20)
        return self.detected[-1]


def test_a_source_error_comes_after_the_frames_before_it_in_order():
    pipeline, got = _CountingPipeline(), []
    with Overlap(_Failing(), pipeline) as frames, pytest.raises(InputError, match="frame 3 is corrupt"):
        for frame, detections in frames:
            got.append((frame.index, detections))
    assert got == [(0, 0), (1, 1), (2, 2)]


def test_closing_early_stops_the_worker():
    pipeline = _CountingPipeline()
    endless = (_Frame(i % 10) for i in range(10**9))
    with Overlap(endless, pipeline) as frames:
        for frame, _ in frames:
            if frame.index == 2:
                break
    assert not frames._thread.is_alive()
    assert len(pipeline.detected) <= 3 + FILE_AHEAD + 1, "it stopped a few frames ahead at most"
