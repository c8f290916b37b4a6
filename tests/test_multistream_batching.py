"""Many streams through one detector and one emotion model (`benchmarks.multistream`): batching across streams
must not change any stream's results, the batcher's holds stay within --max-wait-ms and its batches within
--max-batch (asserted on what the batcher itself records, not on speed), each source is decoded once, and a
stream count that would overrun the budget is skipped and named."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from benchmarks import multistream as ms

STREAMS, FRAMES, STAGGER = 3, 5, 4


@pytest.fixture(scope="module")
def street():
    from tests.conftest import shared_file

    return str(shared_file("data/street_crossing.mp4")), str(shared_file("weights/yolo11n-pose.pt"))


@pytest.fixture(scope="module")
def detector(street):
    from detector.config import DetectorConfig
    from emomon.pipeline import build_detector

    return build_detector(DetectorConfig(weights=street[1], imgsz=320, runtime="torch"))


class _OneSource:
    """The detector as one stream alone sees it: its own tracker (`source`), one frame per call."""

    def __init__(self, detector, source):
        self.detector, self.source = detector, source

    def track(self, frame):
        return self.detector.track(frame, self.source)

    def detect(self, frame):
        return self.track(frame)

    def reset(self):
        self.detector.reset(self.source)


def test_batched_streams_give_each_stream_what_it_gets_alone(street, detector):
    """The trained test model (outputs depend on the pixels), 3 streams 4 frames apart, max batch 2: every
    stream's persons, track ids and emotions equal those of the same stream run alone, frame by frame."""
    from emomon.pipeline import EmotionPipeline, PipelineConfig
    from fusion import Predictor, load_checkpoint
    from tests.conftest import TRAINED_MODEL

    predictor = Predictor(load_checkpoint(TRAINED_MODEL).eval())
    decoded = ms.DecodedSource(street[0], FRAMES + STAGGER * (STREAMS - 1))
    batched: list = []
    report = ms.run_multistream(street[0], STREAMS, FRAMES, detector, predictor, PipelineConfig(), max_wait_s=0.5,
                                max_batch=2, stagger=STAGGER, decoded=decoded, outputs=batched)
    assert report["frames"] == STREAMS * FRAMES and report["persons"] >= 3 * STREAMS * FRAMES
    for kind in ("track", "scene", "predict"):
        b = report["batching"][kind]
        assert b["max_requests"] <= 2 and b["mean_requests"] > 1, (kind, b)   # merged, never past max_batch
    assert report["batching"]["track"]["reasons"].get("full", 0) > 0
    assert decoded.report["frames"] == FRAMES + STAGGER * (STREAMS - 1)  # decoded once for all streams
    assert report["decode"]["decoder"].startswith("OpenCV") and report["decode"]["fps"] > 0
    assert report["stream_latency_p50_ms"] > 0 and report["stream_latency_p95_ms"] >= report["stream_latency_p50_ms"]

    worst, differ = 0.0, 0.0
    for i in range(STREAMS):
        alone = EmotionPipeline(_OneSource(detector, f"alone-{i}"), predictor, PipelineConfig())
        for n, (_, image) in enumerate(decoded.stream(i, FRAMES, STAGGER)):
            from benchmarks.e2e import person_outputs

            ref = person_outputs(alone.process(n, n / 24, image))
            got = batched[i][n]
            assert sorted(got) == sorted(ref) and ref, (i, n)
            for tid, (probs, vad) in ref.items():
                worst = max(worst, float(np.abs(got[tid][0] - probs).max()), float(np.abs(got[tid][1] - vad).max()))
                if i:   # the same track id in stream 0 at this frame is another person's crop
                    other = batched[0][n].get(tid)
                    if other is not None:
                        differ = max(differ, float(np.abs(other[0] - probs).max()))
    assert worst < 1e-3, worst
    assert differ > 20 * max(worst, 1e-5)   # streams really show different persons: a mix-up would show


class _StubPredictor:
    def encode_scene(self, frames):
        return torch.zeros(len(frames), 4)

    def predict_many(self, frames, boxes, scenes):
        return [[f] for f in frames]


def test_a_slow_stream_never_holds_the_others_past_max_wait():
    """Stream 0 asks every 0.4 s, stream 1 as fast as it can: stream 1's calls go alone after at most
    max_wait; every hold the batcher records stays within it (plus the scheduler's slack)."""
    batcher = ms.MicroBatcher(_StubPredictor(), None, streams=2, max_wait_s=0.03)

    def work(i):
        try:
            for _ in range(3 if i == 0 else 12):
                batcher.submit("scene", f"s{i}")
                if i == 0:
                    time.sleep(0.4)
        finally:
            batcher.leave()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    batcher.close()
    assert sum(batcher.batches["scene"]) == 15
    assert batcher.reasons["scene"]["max_wait"] >= 5           # stream 1 did not wait for stream 0
    assert max(batcher.waits["scene"]) < 0.03 + 0.15, batcher.waits["scene"]


def test_max_batch_splits_a_full_queue_and_runs_it_without_waiting():
    batcher = ms.MicroBatcher(_StubPredictor(), None, streams=5, max_wait_s=30.0, max_batch=2)
    results = [None] * 5

    def work(i):
        try:
            results[i] = batcher.submit("predict", (f"frame{i}", [], None))
        finally:
            batcher.leave()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    batcher.close()
    assert results == [[f"frame{i}"] for i in range(5)]        # each stream got its own frame's result back
    assert max(batcher.batches["predict"]) == 2 and sum(batcher.batches["predict"]) == 5
    assert batcher.reasons["predict"]["full"] >= 1 and "max_wait" not in batcher.reasons["predict"]


def test_a_stream_count_past_the_budget_is_skipped_and_named(street, monkeypatch):
    """run_sweep predicts each N's time from the last run (scaled by N); past the deadline it skips the N."""
    def fake_run(path, n, frames, *args, **kwargs):
        return {"streams": n, "frames": n * frames, "wall_s": 10.0 * n, "aggregate_fps": 2.0 * n,
                "persons_per_s": 1.0, "realtime_at_n": n == 1, "realtime_streams_estimate": 0,
                "stream_latency_p50_ms": 1.0, "stream_latency_p95_ms": 2.0, "latency_ms": {"p50": 1.0},
                "per_stream_fps": [1.0] * n, "batching": {}}

    monkeypatch.setattr(ms, "run_multistream", fake_run)
    out = ms.run_sweep(street[0], [64, 1, 4, 16], 2, None, None, deadline=time.perf_counter() + 100)
    rows = {row["streams"]: row for row in out["sweep"]}
    assert list(rows) == [1, 4, 16, 64]
    assert "aggregate_fps" in rows[1] and "aggregate_fps" in rows[4]     # 4 x 10 s predicted: fits
    assert "exceeds" in rows[16]["skipped"] and "exceeds" in rows[64]["skipped"]
    assert out["streams"] == 4 and out["realtime_streams_measured"] == 1
    assert out["decode"]["frames"] == 2 + 63                            # one decode for the largest stagger
