"""Unit tests of the benchmark helpers: statistics, timing loops, FLOP counting, peaks, the micro-batcher,
the timed backend and the naive baseline's per-person inference. Fast: tiny models and fakes only."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import supervision as sv
import torch

from benchmarks.e2e import STAGES, stage_report
from benchmarks.flops import count_flops, emotion_flops, letterbox_shape, nominal_peak, peak_for, precision_of
from benchmarks.models import Sweep, bench_backends, parse_backend_spec
from benchmarks.multistream import MicroBatcher
from benchmarks.naive import _Stopwatch, naive_frame
from benchmarks.stats import percentile, rate, summarize, time_loop
from benchmarks.timing import TimedBackend
from fusion import Predictor, TorchBackend, create_model

# -- statistics -------------------------------------------------------------------------------------------


def test_percentile_matches_numpy_linear_interpolation():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 0) == 1.0 and percentile(samples, 100) == 5.0
    assert percentile(samples, 95) == pytest.approx(4.8)
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(samples, 101)


def test_summarize_scales_to_ms_and_reports_spread():
    s = summarize([0.010, 0.011, 0.012, 0.050])
    assert s["n"] == 4
    assert s["p50"] == pytest.approx(11.5)
    assert s["p25"] == pytest.approx(10.75) and s["p75"] == pytest.approx(21.5)
    assert s["iqr"] == pytest.approx(10.75)
    assert s["rel_iqr"] == pytest.approx(10.75 / 11.5)
    assert s["min"] == pytest.approx(10.0) and s["max"] == pytest.approx(50.0)
    assert s["mean"] == pytest.approx(20.75)
    assert s["std"] == pytest.approx(np.std([10, 11, 12, 50], ddof=1))
    assert s["p95"] <= s["p99"] <= s["max"]


@pytest.mark.parametrize("samples, expected", [([], None), ([0.002], {"n": 1, "std": 0.0, "iqr": 0.0, "p99": 2.0})])
def test_summarize_edge_cases(samples, expected):
    s = summarize(samples)
    if expected is None:
        assert s is None
    else:
        assert {k: s[k] for k in expected} == pytest.approx(expected)


def test_summarize_rejects_non_finite_samples():
    with pytest.raises(ValueError):
        summarize([0.1, math.nan])


def test_rate_never_divides_by_zero():
    assert rate(10, 2.0) == 5.0
    assert rate(10, 0.0) == 0.0


def test_time_loop_warms_up_then_times_the_repeats():
    calls = []
    loop = time_loop(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(loop["warmup_s"]) == 2 and len(loop["samples_s"]) == 5 and len(calls) == 7
    assert all(s >= 0 for s in loop["samples_s"])


def test_time_loop_stops_at_the_time_budget_but_keeps_a_minimum():
    loop = time_loop(lambda: time.sleep(0.02), warmup=0, repeats=100, max_seconds=0.05, min_repeats=3)
    assert 3 <= len(loop["samples_s"]) <= 5


def test_stage_report_covers_every_stage_with_shares():
    samples = {stage: [0.01, 0.02] for stage in STAGES}
    calls = {"scene": ([0.01], [1]), "body": ([0.02, 0.02], [3, 5]), "heads": ([0.001, 0.001], [3, 5])}
    report = stage_report(samples, wall_s=1.0, calls=calls, overlapped=("decode",))
    assert list(report) == list(STAGES)
    assert report["body"]["share"] == pytest.approx(0.03)
    assert report["body"]["calls"] == 2 and report["body"]["mean_batch"] == 4.0
    assert report["decode"]["overlapped"] and not report["scene"]["overlapped"]
    assert report["annotate"]["per_frame_ms"]["p50"] == pytest.approx(15.0)


# -- FLOPs and peaks ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("two_stream_tiny", pretrained=False).eval()


def test_flops_of_the_tiny_model_are_counted_and_scale_with_persons(tiny):
    one, three = emotion_flops(tiny, persons=1), emotion_flops(tiny, persons=3)
    for key in ("scene", "body", "heads"):
        assert one[key] > 0, key
    assert three["scene"] == one["scene"]          # once per frame, whatever the number of persons
    assert three["body"] == 3 * one["body"]
    assert three["heads"] == 3 * one["heads"]
    assert three["total"] == three["scene"] + three["body"] + three["heads"]
    with pytest.raises(ValueError):
        emotion_flops(tiny, persons=0)


def test_attention_flops_are_counted_despite_the_fast_path():
    """nn.MultiheadAttention's inference fast path and CPU flash attention hide FLOPs from a naive count."""
    batch, tokens, dim = 2, 10, 32
    mha = torch.nn.MultiheadAttention(dim, num_heads=4, batch_first=True).eval().requires_grad_(False)
    x = torch.randn(batch, tokens, dim)
    flops = count_flops(lambda: mha(x, x, x, need_weights=False))
    projections = 2 * batch * tokens * dim * (3 * dim) + 2 * batch * tokens * dim * dim
    attention = 2 * (2 * batch * tokens * tokens * dim)  # q @ k^T and attn @ v
    assert flops == projections + attention


def test_letterbox_shape_is_what_ultralytics_feeds_the_network():
    assert letterbox_shape((360, 640), 640) == (384, 640)
    assert letterbox_shape((1080, 810), 640) == (640, 480)
    assert letterbox_shape((720, 1280), 320) == (192, 320)


@pytest.mark.parametrize("name, label", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA L40S", "L40S"), ("NVIDIA L4", "L4"),
    ("NVIDIA A10", "A10"), ("Tesla T4", "T4"), ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("Some Future GPU", None), (None, None),
])
def test_nominal_peaks_match_gpu_names(name, label):
    found = nominal_peak(name)
    assert (found[0] if found else None) == label
    if label == "H100 SXM":
        assert found[1]["fp16"] == pytest.approx(989.4e12) and found[1]["fp32"] == pytest.approx(66.9e12)


def test_peak_for_falls_back_to_fp32_and_precision_is_read_from_backends():
    peak = {"flops_per_s": {"fp32": 1.0, "fp16": 4.0}}
    assert peak_for(peak, "fp16") == 4.0 and peak_for(peak, "bf16") == 4.0 and peak_for(peak, "int8") == 1.0
    assert peak_for({"flops_per_s": {}}, "fp32") is None

    class Named:
        def __init__(self, name, precision=None):
            self.name, self.precision = name, precision

    assert precision_of(Named("torch")) == "fp32"
    assert precision_of(Named("torch-fp16")) == "fp16"
    assert precision_of(Named("tensorrt", precision="int8")) == "int8"


# -- timed backend and the naive path -----------------------------------------------------------------------


def _frame_and_boxes():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 110], [70, 5, 150, 100], [0, 0, 40, 40]], np.float32)
    return frame, boxes


def test_timed_backend_records_each_stage_per_call_and_per_frame(tiny):
    timed = TimedBackend(TorchBackend(tiny))
    frame, boxes = _frame_and_boxes()
    people = Predictor(timed).predict(frame, boxes)
    assert len(people) == 3
    assert {k: len(v) for k, v in timed.calls.items()} == {"scene": 1, "body": 1, "heads": 1}
    assert timed.batch_sizes["body"] == [3] and timed.batch_sizes["scene"] == [1]
    frame_times = timed.take_frame()
    assert set(frame_times) == {"scene", "body", "heads"} and all(v > 0 for v in frame_times.values())
    assert timed.take_frame() == {"scene": 0.0, "body": 0.0, "heads": 0.0}
    assert timed.name == "torch" and timed.model is tiny


class FixedDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def track(self, frame):
        return sv.Detections(xyxy=self.boxes.copy(), confidence=np.ones(len(self.boxes), np.float32),
                             class_id=np.zeros(len(self.boxes), int), tracker_id=np.arange(1, len(self.boxes) + 1))

    def reset(self):
        pass


def test_naive_per_person_inference_gives_the_batched_predictors_emotions(tiny):
    """The baseline is slow, not different: same model, same crops, same numbers as the batched path."""
    frame, boxes = _frame_and_boxes()
    watch = _Stopwatch("cpu")
    _, persons = naive_frame(tiny, "cpu", FixedDetector(boxes), frame, watch)
    batched = Predictor(tiny).predict(frame, boxes)
    for naive, fast in zip(persons, batched):
        assert naive.top1 == fast.top1
        np.testing.assert_allclose([p for _, p in naive.top(3)], [p for _, p in fast.top(3)], atol=1e-5)
        np.testing.assert_allclose(naive.vad, fast.vad, atol=1e-4)
    assert {"detect_track", "crop_preprocess", "scene", "body", "heads"} <= set(watch.frame)


# -- micro-batcher ------------------------------------------------------------------------------------------


class RecordingPredictor:
    def __init__(self):
        self.calls = []

    def encode_scene(self, frames):
        self.calls.append(("scene", len(frames)))
        return torch.arange(len(frames), dtype=torch.float32)[:, None].repeat(1, 4)

    def predict_many(self, frames, boxes, scenes):
        self.calls.append(("predict", len(frames)))
        return [[float(s[0])] * len(b) for b, s in zip(boxes, scenes)]


class RecordingDetector:
    def __init__(self):
        self.calls = []

    def track_batch(self, frames, sources):
        self.calls.append(list(sources))
        return [f"dets-{s}" for s in sources]


def _run_streams(batcher, n, work):
    results, threads = [None] * n, []

    def run(i):
        try:
            results[i] = work(i)
        finally:
            batcher.leave()

    for i in range(n):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join(10)
    batcher.close()
    return results


def test_microbatcher_merges_concurrent_calls_of_all_streams():
    predictor, detector = RecordingPredictor(), RecordingDetector()
    batcher = MicroBatcher(predictor, detector, streams=3, max_wait_s=5.0)

    def work(i):
        dets = batcher.submit("track", (f"frame{i}", i))
        scene = batcher.submit("scene", f"frame{i}")
        return dets, scene.shape, batcher.submit("predict", (f"frame{i}", [[0, 0, 1, 1]] * (i + 1), scene[0]))

    results = _run_streams(batcher, 3, work)
    assert sorted(detector.calls[0]) == [0, 1, 2] and len(detector.calls) == 1   # one detector call for all
    assert predictor.calls == [("scene", 3), ("predict", 3)]                      # one scene, one predict batch
    for i, (dets, shape, persons) in enumerate(results):
        assert dets == f"dets-{i}" and tuple(shape) == (1, 4) and len(persons) == i + 1
    assert batcher.batches == {"track": [3], "scene": [3], "predict": [3]}


def test_microbatcher_does_not_wait_for_a_stream_past_max_wait():
    predictor = RecordingPredictor()
    batcher = MicroBatcher(predictor, None, streams=2, max_wait_s=0.05)
    t0 = time.perf_counter()
    out = batcher.submit("scene", "frame")  # the other stream never asks
    assert time.perf_counter() - t0 < 2.0 and out.shape == (1, 4)
    batcher.leave()
    batcher.leave()
    batcher.close()


def test_microbatcher_hands_errors_to_the_waiting_streams():
    class Broken(RecordingPredictor):
        def encode_scene(self, frames):
            raise RuntimeError("device lost")

    batcher = MicroBatcher(Broken(), None, streams=1, max_wait_s=0.01)
    with pytest.raises(RuntimeError, match="device lost"):
        batcher.submit("scene", "frame")
    batcher.leave()
    batcher.close()


# -- backend specs and sweeps -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, expected", [
    ("torch", ("torch", {})),
    ("onnxruntime:precision=fp16", ("onnxruntime", {"precision": "fp16"})),
    ("tensorrt:precision=int8:max_batch=64:rebuild=false", ("tensorrt", {"precision": "int8", "max_batch": 64,
                                                                        "rebuild": False})),
    ("torch-fp16:dtype=bf16", ("torch-fp16", {"dtype": "bf16"})),
])
def test_backend_specs_parse_into_name_and_options(spec, expected):
    assert parse_backend_spec(spec) == expected


def test_a_malformed_backend_spec_is_bad_input():
    from emomon.kernel import InputError

    with pytest.raises(InputError, match="key=value"):
        parse_backend_spec("torch:fp16")


def test_backend_sweep_records_points_and_skips_the_unavailable(tiny):
    peak = {"flops_per_s": {"fp32": 1e12}}
    res = bench_backends(tiny, ["torch", "no-such-backend", "torch:no_such_option=1"], "cpu", [1, 2],
                         Sweep("cpu", warmup=1, repeats=3, max_seconds=1.0), emotion_flops(tiny), peak,
                         skipped={"tensorrt": "not requested"})
    assert res["torch"]["status"] == "ok" and res["torch"]["precision"] == "fp32"
    for stream in ("scene", "body", "heads"):
        points = res["torch"]["streams"][stream]
        assert [p["batch_size"] for p in points] == [1, 2]
        for p in points:
            assert p["iterations"] >= 3 and p["images_per_s"] > 0 and p["peak_memory_mb"] is None
            assert p["images_per_s_iqr"][0] <= p["images_per_s"] <= p["images_per_s_iqr"][1]
            assert p["fraction_of_peak"] > 0
    assert res["no-such-backend"]["status"] == "skipped" and "not registered" in res["no-such-backend"]["reason"]
    assert res["torch:no_such_option=1"]["status"] == "skipped"
    assert "no_such_option" in res["torch:no_such_option=1"]["reason"]
    assert res["tensorrt"] == {"status": "skipped", "reason": "not requested"}


def test_sweep_skips_points_that_would_blow_the_budget_and_records_failures():
    sweep = Sweep("cpu", warmup=0, repeats=3, max_seconds=0.01)

    def make_fn(bs):
        if bs == 3:
            raise RuntimeError("batch 3 is not supported")
        return lambda: time.sleep(0.002 * bs)

    points = sweep.run(make_fn, [1, 3, 4])
    assert "images_per_s" in points[0]
    assert points[1]["skipped"].startswith("failed: RuntimeError") and len(points) == 2
    slow = sweep.run(lambda bs: (lambda: time.sleep(0.01 * bs)), [1, 64])
    assert "exceeds the time budget" in slow[1]["skipped"]
