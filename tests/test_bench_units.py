"""Unit tests of the benchmark helpers: statistics, timing loops, FLOP counting, peaks (measured, nominal,
reconciled with achieved figures), speed-ups over the same frames, output deviations, the micro-batcher, the
timed backend and the naive baseline (per-person inference, its frame floor). Fast: tiny models and fakes only;
inputs are chosen so the expected answer is known."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import supervision as sv
import torch

import benchmarks.flops as flops_module
from benchmarks.compare import output_deviation, speedup
from benchmarks.e2e import STAGES, frame_seconds, prefix_fps, stage_report
from benchmarks.env import git_state
from benchmarks.flops import (
    count_flops,
    device_peak,
    emotion_flops,
    letterbox_shape,
    measure_matmul,
    nominal_peak,
    peak_for,
    precision_of,
    reconcile_peak,
)
from benchmarks.models import Sweep, bench_backends, parse_backend_spec
from benchmarks.multistream import MicroBatcher
from benchmarks.naive import _Stopwatch, naive_frame, run_naive
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


class FakeClock:
    """perf_counter that only moves when a (patched) synchronize says a matmul took `durations[i]` seconds."""

    def __init__(self, durations):
        self.t, self.durations = 0.0, list(durations)

    def perf_counter(self):
        return self.t

    def synchronize(self, device):
        self.t += self.durations.pop(0)


def test_measured_peak_is_the_best_burst_after_warm_up(monkeypatch):
    # warm-up: 2 calls (not timed); bursts of >= 0.05 s: 1 call in 0.1 s, 3 calls in 0.06 s, 1 call in 0.2 s
    clock = FakeClock([1.0, 1.0, 0.1, 0.02, 0.02, 0.02, 0.2])
    monkeypatch.setattr(flops_module, "synchronize", clock.synchronize)
    monkeypatch.setattr(flops_module.time, "perf_counter", clock.perf_counter)
    m = measure_matmul("cpu", size=8, warmup_s=0.0, bursts=3, burst_s=0.05)
    flop = 2.0 * 8**3
    assert m["burst_flops_per_s"] == pytest.approx([flop / 0.1, 3 * flop / 0.06, flop / 0.2])
    assert m["flops_per_s"] == pytest.approx(3 * flop / 0.06)          # the best burst, not the mean or the last
    assert m["median_flops_per_s"] == pytest.approx(flop / 0.1)
    assert m["calls"] == 5 and m["warmup_s"] == pytest.approx(2.0) and clock.durations == []


def test_measured_peak_on_the_real_cpu_is_positive_and_the_max_of_its_bursts():
    m = measure_matmul("cpu", size=64, warmup_s=0.01, bursts=4, burst_s=0.01)
    assert m["flops_per_s"] == max(m["burst_flops_per_s"]) > 0 and len(m["burst_flops_per_s"]) == 4


def _fake_matmul(rates):
    def measure(device, dtype, **kwargs):
        name = str(dtype).replace("torch.", "")
        return {"flops_per_s": rates[name], "bursts": kwargs["bursts"], "burst_s": kwargs["burst_s"],
                "warmup_s": kwargs["warmup_s"], "size": 2048, "threads": 2}
    return measure


def test_cpu_peak_is_measured_and_says_how_with_no_nominal(monkeypatch):
    monkeypatch.setattr(flops_module, "measure_matmul", _fake_matmul({"float32": 7e10, "bfloat16": 2e11}))
    peak = device_peak("cpu", None, quick=True, precisions=("bf16",))
    assert peak["basis"] == "measured" and peak["nominal"] is None and "CPU" in peak["nominal_note"]
    assert peak["flops_per_s"] == peak["measured"]["flops_per_s"] == {"fp32": 7e10, "bf16": 2e11}
    assert "best of 6 bursts" in peak["measured"]["method"] and peak["raised"] == []
    assert peak_for(peak, "bf16") == 2e11 and peak_for(peak, "fp32") == 7e10


def test_known_gpu_peak_is_nominal_with_the_measured_matmul_beside_it(monkeypatch):
    monkeypatch.setattr(flops_module, "measure_matmul", _fake_matmul({"float32": 5e13, "float16": 6e14}))
    peak = device_peak("cuda:0", "NVIDIA H100 80GB HBM3")
    assert peak["basis"] == "nominal" and peak["nominal"]["matched"] == "H100 SXM"
    assert peak["flops_per_s"]["fp32"] == pytest.approx(66.9e12)
    assert peak["flops_per_s"]["fp16"] == pytest.approx(989.4e12)
    assert peak["measured"]["flops_per_s"] == {"fp32": 5e13, "fp16": 6e14}
    assert "best of 10 bursts" in peak["measured"]["method"]


def test_reconcile_raises_a_peak_that_a_figure_beat_to_the_best_figure():
    peak = {"basis": "measured", "flops_per_s": {"fp32": 100.0, "fp16": 400.0}, "raised": []}
    figures = [("fp32", 80.0, "a"), ("fp32", 150.0, "b"), ("bf16", 300.0, "c"), ("int8", 120.0, "d"),
               ("fp32", None, "e")]
    out = reconcile_peak(peak, figures)
    assert out["flops_per_s"] == {"fp32": 150.0, "fp16": 400.0}      # fp32 raised to b; bf16 -> fp16 not beaten
    assert [(r["key"], r["from"], r["to"], r["by"]) for r in out["raised"]] == [("fp32", 100.0, 150.0, "b")]
    assert peak["flops_per_s"]["fp32"] == 100.0                       # the input is left alone
    fractions = [a / peak_for(out, p) for p, a, _ in figures if a]
    assert fractions == pytest.approx([80 / 150, 1.0, 300 / 400, 120 / 150])
    assert all(0 < f <= 1 for f in fractions)
    same = reconcile_peak(peak, [("fp32", 99.0, "a")])
    assert same["flops_per_s"] == peak["flops_per_s"] and same["raised"] == []


# -- speed-ups and output deviations -----------------------------------------------------------------------


def _run(frame_s: list[float], emotion_s: float = 0.01) -> dict:
    done = list(np.cumsum(frame_s))
    return {"frames": len(frame_s), "frame_done_s": done, "emotion_frame_s": [emotion_s] * len(frame_s)}


def test_frame_seconds_and_prefix_rate_come_from_completion_times():
    run = _run([0.1, 0.1, 0.1, 1.0, 1.0, 1.0])
    assert frame_seconds(run["frame_done_s"]) == pytest.approx([0.1, 0.1, 0.1, 1.0, 1.0, 1.0])
    assert prefix_fps(run, 3) == pytest.approx(10.0) and prefix_fps(run, 6) == pytest.approx(6 / 3.3)
    assert prefix_fps(run, 100) == pytest.approx(6 / 3.3)


def test_speedup_is_over_the_same_first_frames_not_the_whole_runs():
    fast = _run([0.1, 0.1, 0.1, 1.0, 1.0, 1.0], emotion_s=0.02)   # whole-run rate 1.8/s, first 3 frames 10/s
    slow = _run([1.0, 1.0, 2.0], emotion_s=0.5)                     # 0.75/s
    s = speedup(fast, slow, "every_frame", "naive")
    assert (s["run"], s["baseline"], s["frames"]) == ("every_frame", "naive", 3)
    assert s["run_fps"] == pytest.approx(10.0) and s["baseline_fps"] == pytest.approx(0.75)
    assert s["speedup"] == pytest.approx(10.0 / 0.75)
    assert s["median_frame_speedup"] == pytest.approx(1000.0 / 100.0)   # per-frame medians: 1 s vs 0.1 s
    assert s["run_frame_ms"]["n"] == s["baseline_frame_ms"]["n"] == 3
    assert s["baseline_frame_ms"]["p25"] == pytest.approx(1000.0)
    assert s["baseline_frame_ms"]["p75"] == pytest.approx(1500.0)
    assert s["emotion_speedup"] == pytest.approx(25.0)
    assert speedup(slow, fast, "naive", "every_frame")["speedup"] == pytest.approx(0.75 / 10.0)


def _person(top: int, value: float = 0.5, vad=(5.0, 5.0, 5.0)):
    probs = np.full(26, 0.1)
    probs[top] = value
    return probs, np.array(vad)


def test_output_deviation_matches_persons_by_frame_and_track_id():
    reference = [{1: _person(0), 2: _person(1)}, {1: _person(0), 3: _person(2)}, {1: _person(0)}]
    candidate = [{1: _person(0, 0.6), 4: _person(5)},              # id 1: one probability 0.1 higher; id 4 unmatched
                 {1: _person(3, 0.7, (5.0, 5.5, 5.0)), 3: _person(2)},   # id 1: top-1 moves, VAD +0.5; id 3 same
                 {1: _person(0, 0.0)}]                             # frame 2 is left out by frames=2
    d = output_deviation(reference, candidate, frames=2)
    assert d["frames"] == 2 and d["reference_persons"] == 4 and d["candidate_persons"] == 4
    assert d["matched"] == 3 and d["top1_agreement"] == pytest.approx(2 / 3)
    assert d["prob_max_abs"] == pytest.approx(0.6)                 # 0.7 vs 0.1 at category 3
    assert d["prob_mean_abs"] == pytest.approx((0.1 + (0.4 + 0.6)) / (3 * 26))
    assert d["prob_p99_abs"] == pytest.approx(0.4 + 0.23 * 0.2)    # 78 values, 3 non-zero: 0.99 * 77 = 76.23
    assert d["vad_max_abs"] == pytest.approx(0.5) and d["vad_mean_abs"] == pytest.approx(0.5 / 9)
    whole = output_deviation(reference, candidate)
    assert whole["frames"] == 3 and whole["matched"] == 4 and whole["prob_max_abs"] == pytest.approx(0.6)
    assert output_deviation(reference, reference)["prob_max_abs"] == 0.0
    none = output_deviation(reference, [{}, {}, {}])
    assert none["matched"] == 0 and none["prob_max_abs"] is None and none["top1_agreement"] is None


def test_git_state_records_the_full_commit_and_whether_the_tree_is_dirty():
    state = git_state()
    if state["commit"] is None:
        pytest.skip("not a git checkout")
    assert len(state["commit"]) == 40 and int(state["commit"], 16) >= 0
    assert isinstance(state["dirty"], bool) and state["dirty"] == (state["changed_count"] > 0)


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


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(8):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("max_seconds, frames, stopped_by", [(0.0, 5, "time budget"), (math.inf, 7, "frames")])
def test_naive_run_keeps_its_frame_floor_whatever_the_time_budget(tiny, small_video, tmp_path, max_seconds,
                                                                  frames, stopped_by):
    _, boxes = _frame_and_boxes()
    outputs = []
    run = run_naive(str(small_video), 7, FixedDetector(boxes), tiny, "cpu", max_seconds=max_seconds, min_frames=5,
                    work_dir=tmp_path, outputs=outputs)
    assert run["frames"] == frames and run["stopped_by"] == stopped_by and run["min_frames"] == 5
    assert len(run["frame_done_s"]) == run["frame_ms"]["n"] == len(outputs) == frames
    assert all(sorted(o) == [1, 2, 3] for o in outputs)            # every tracked person of every frame


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
