"""`emomon bench`: the CI run (`--quick --device cpu` on the real-size model with random weights and a few
frames of the street clip) writes a valid report, Markdown and plots, with a timing for every stage, the two
speed-ups over the naive baseline (exact and with work reuse) and how far work reuse moves the outputs; bad
input exits 2 with one line. No speed is asserted (the CPU is shared); the arithmetic behind each figure is."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from benchmarks.e2e import STAGES
from benchmarks.schema import SCHEMA_VERSION, check, validate
from emomon.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
FRAMES, NAIVE_FRAMES = 6, 3   # the naive run is ~5 s a frame with the real-size model on 2 cores
RUNS = ("every_frame", "reuse", "naive")


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    """`emomon bench --quick` run by the GPU check on the CPU (`benchmarks.gpu_check`: the gpu/tensorrt tests
    and the preprocessing comparison, then this bench with the flags after --): one run serves both."""
    from benchmarks import gpu_check
    from tests.conftest import shared_file

    video = shared_file("data/street_crossing.mp4")
    weights = shared_file("weights/yolo11n-pose.pt")
    out = tmp_path_factory.mktemp("bench")
    code = gpu_check.main(["--device", "cpu", "--budget-s", "900", "--emotion-model", "random", "--out", str(out),
                           "--source", str(video), "--detector-weights", str(weights), "--",
                           "--quick", "--frames", str(FRAMES), "--naive-frames", str(NAIVE_FRAMES),
                           "--naive-min-frames", str(NAIVE_FRAMES), "--stream-frames", "4"])
    assert code == 0
    return out, json.loads((out / "bench.json").read_text())


@pytest.mark.slow
def test_quick_bench_writes_valid_json_markdown_and_plots(quick_bench, capsys):
    out, report = quick_bench
    assert validate(report) == []
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["config"]["quick"] and report["config"]["device"] == "cpu"
    assert report["model"]["name"] == "two_stream_vitb16"          # the real-size model, random weights
    assert report["model"]["parameters"]["total"] > 90_000_000   # ResNet-18 + ViT-B/16 image tower
    for name in ("throughput.png", "stages.png"):
        assert (out / name).read_bytes()[:8] == PNG
    markdown = (out / "bench.md").read_text()
    assert "speed-up, exact: every frame / naive" in markdown and "| scene |" in markdown
    assert "speed-up with work reuse" in markdown and "outputs, reuse vs every frame" in markdown
    env = report["environment"]
    assert env["cpu_count"] >= 1 and env["versions"]["torch"] and env["torch_threads"] >= 1 and env["cpu"]
    assert len(env["git"]["commit"]) == 40 and isinstance(env["git"]["dirty"], bool)


@pytest.mark.slow
def test_every_stage_has_a_timing_in_every_run(quick_bench):
    _, report = quick_bench
    pipe = report["pipeline"]
    for run in RUNS:
        stages = pipe[run]["stages"]
        assert list(stages) == list(STAGES)
        for stage in STAGES:
            timing = stages[stage]["per_frame_ms"]
            assert timing is not None and timing["n"] == pipe[run]["frames"], (run, stage)
            assert timing["p50"] <= timing["p95"] <= timing["p99"]
        assert pipe[run]["persons"] > 0 and pipe[run]["frame_ms"]["n"] == pipe[run]["frames"]
    for run in ("every_frame", "reuse"):
        assert pipe[run]["frames"] == FRAMES
        for stage in ("detect_track", "body", "annotate", "encode"):   # work that happens on every frame
            assert pipe[run]["stages"][stage]["total_s"] > 0, (run, stage)
        assert pipe[run]["stages"]["decode"]["overlapped"]
    every, reuse = pipe["every_frame"]["counts"], pipe["reuse"]["counts"]
    assert every["scene_computed"] == FRAMES and every.get("scene_reused", 0) == 0   # reuse off: every frame
    assert every.get("persons_reused", 0) == 0 and every["persons_computed"] == pipe["every_frame"]["persons"]
    assert 1 <= reuse["scene_computed"] < FRAMES and reuse["persons_reused"] > 0


@pytest.mark.slow
def test_speedups_are_ratios_of_the_two_runs_over_the_same_frames(quick_bench):
    _, report = quick_bench
    pipe = report["pipeline"]
    naive = pipe["naive"]
    assert naive["frames"] == NAIVE_FRAMES and naive["min_frames"] == NAIVE_FRAMES   # the floor held
    for name, run in (("exact", "every_frame"), ("with_reuse", "reuse")):
        s = pipe["speedup"][name]
        k = s["frames"]
        assert (s["run"], s["baseline"]) == (run, "naive")
        assert k == naive["frames"] < pipe[run]["frames"]          # all the naive frames, and only those
        run_fps = k / pipe[run]["frame_done_s"][k - 1]             # recomputed from the per-frame completion times
        naive_fps = k / naive["frame_done_s"][k - 1]
        assert s["run_fps"] == pytest.approx(run_fps, rel=1e-9)
        assert s["baseline_fps"] == pytest.approx(naive_fps, rel=1e-9)
        assert s["speedup"] == pytest.approx(run_fps / naive_fps, rel=1e-9)
        assert s["run_frame_ms"]["n"] == s["baseline_frame_ms"]["n"] == k
    summary = report["summary"]
    assert summary["speedup_exact"] == pipe["speedup"]["exact"]["speedup"]
    assert summary["speedup_with_reuse"] == pipe["speedup"]["with_reuse"]["speedup"]
    assert summary["speedup_exact_frames"] == summary["speedup_with_reuse_frames"] == NAIVE_FRAMES
    gain = pipe["reuse_over_every_frame"]
    assert gain["frames"] == FRAMES
    assert gain["speedup"] == pytest.approx(pipe["every_frame"]["frame_done_s"][-1] / pipe["reuse"]["frame_done_s"][-1],
                                            rel=1e-9)                # same frames: the ratio of the times they took
    dev = pipe["reuse_deviation"]
    assert dev["frames"] == FRAMES and 0 < dev["matched"] <= min(dev["reference_persons"], dev["candidate_persons"])
    assert dev["reference_persons"] == pipe["every_frame"]["persons"]


@pytest.mark.slow
def test_fractions_of_peak_are_within_0_and_1_against_a_recorded_peak(quick_bench):
    _, report = quick_bench
    flops = report["flops"]
    assert flops["scene_per_frame"] == pytest.approx(35.1e9, rel=0.02)   # CLIP ViT-B/16 at 224
    assert flops["body_per_person"] == pytest.approx(3.64e9, rel=0.02)   # ResNet-18 at 224
    assert flops["detector_per_frame"] > 1e9
    peak = report["peak"]
    assert peak["basis"] == "measured" and peak["nominal"] is None and "CPU" in peak["nominal_note"]
    assert "bursts" in peak["measured"]["method"] and peak["measured"]["details"]["fp32"]["bursts"] >= 5
    assert peak["flops_per_s"]["fp32"] >= peak["measured"]["flops_per_s"]["fp32"] > 0   # raised, never lowered
    figures = [report["pipeline"][run] for run in RUNS]
    for entry in report["model_benchmarks"]["backends"].values():
        figures += [p for points in (entry.get("streams") or {}).values() for p in points if "images_per_s" in p]
    for entry in report["model_benchmarks"]["detector"].values():
        figures += [p for p in entry["points"] if "images_per_s" in p]
    assert len(figures) >= 3 + 3 + 1
    for fig in figures:
        assert 0 < fig["fraction_of_peak"] <= 1, fig
        assert fig["achieved_flops_per_s"] <= peak["flops_per_s"]["fp32"]
    for raised in peak["raised"]:                          # a peak raised to a figure names the figure
        assert raised["to"] == peak["flops_per_s"][raised["key"]] and raised["by"]
    run = report["pipeline"]["every_frame"]
    assert run["fraction_of_peak"] == pytest.approx(run["achieved_flops_per_s"] / peak["flops_per_s"]["fp32"])
    assert report["summary"]["every_frame_fraction_of_peak"] == run["fraction_of_peak"]


@pytest.mark.slow
def test_model_benchmarks_cover_the_quick_batch_sizes(quick_bench):
    _, report = quick_bench
    torch_entry = report["model_benchmarks"]["backends"]["torch"]
    assert torch_entry["status"] == "ok"
    sizes = [p["batch_size"] for p in torch_entry["streams"]["body"]]
    assert sizes == [1, 4, 8]
    first = torch_entry["streams"]["body"][0]
    assert first["images_per_s"] > 0 and first["peak_memory_mb"] is None    # no GPU memory on CPU
    for name, entry in report["model_benchmarks"]["backends"].items():     # others: skipped with a reason
        assert entry["status"] == "ok" or entry["reason"], name


@pytest.mark.slow
def test_multistream_batches_the_detector_across_streams(quick_bench):
    _, report = quick_bench
    ms = report["multistream"]
    assert ms["streams"] == 2 and ms["frames"] == 2 * report["config"]["stream_frames"]
    assert ms["aggregate_fps"] > 0 and ms["realtime_streams_estimate"] >= 0
    assert ms["source_fps"] == pytest.approx(24, rel=0.1)
    assert ms["batched_detector"] is True                  # YOLO has track_batch: one detector for all streams
    track = ms["batching"]["track"]
    assert track["calls"] * track["mean_requests"] == pytest.approx(ms["frames"])   # every frame went through it
    assert track["max_requests"] == ms["streams"]           # and at least one call served both streams
    assert track["calls"] < ms["frames"]


@pytest.mark.slow
def test_the_gpu_check_ran_every_stage_within_its_budget(quick_bench):
    """The check's own report: the gpu/tensorrt tests ran (skipped here, each with its reason), the two
    preprocessing paths were timed, the bench wrote its files, TensorRT is reported missing, not failed."""
    out, bench = quick_bench
    check = json.loads((out / "gpu_check.json").read_text())
    tests = check["stages"]["tests"]
    assert {"tests/test_backends.py", "tests/test_bench_cli.py"} <= set(tests["files"])
    assert tests["exit_code"] == 0 and tests["failed"] == 0 and tests["ok"] and (out / "tests.xml").is_file()
    skipped = [t for t in tests["tests"] if t["outcome"] == "skipped"]
    assert len(skipped) == tests["skipped"] >= 5 and all("CUDA" in t["detail"] for t in skipped)
    pre = check["stages"]["preprocess"]
    assert set(pre["ms_per_frame"]) == {"cpu", "device"} and (out / "preprocess.json").is_file()
    stage = check["stages"]["bench"]
    assert stage["files"] == {"json": "bench.json", "markdown": "bench.md", "throughput_png": "throughput.png",
                              "stages_png": "stages.png"}
    assert stage["headline"]["every_frame_fps"] == bench["summary"]["every_frame_fps"] > 0
    assert "--budget-s" in stage["argv"] and bench["config"]["budget_s"] <= 900
    assert check["within_budget"] and check["exit_code"] == 0 and check["device"] == "cpu"
    markdown = (out / "gpu_check.md").read_text()
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:      # as here: said so, not failed
        assert not check["tensorrt"]["available"] and "not installable here" in markdown
        assert check["tensorrt"]["status"].startswith("not installable here")
    ms = bench["multistream"]
    assert [row["streams"] for row in ms["sweep"]] == [2] and ms["decode"]["decoder"].startswith("OpenCV")
    assert ms["decode"]["frames"] == 4 + 1      # one decode for both streams, the second 1 frame in


@pytest.mark.slow
@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.__setitem__("schema_version", SCHEMA_VERSION + 1), "schema_version"),
    (lambda r: r["pipeline"]["every_frame"]["stages"].pop("encode"), "stages.encode: missing"),
    (lambda r: r["pipeline"]["naive"]["stages"]["scene"].__setitem__("per_frame_ms", None), "naive.stages.scene"),
    (lambda r: r["pipeline"]["reuse"].__setitem__("fps", math.nan), "reuse.fps"),
    (lambda r: r["pipeline"].__setitem__("speedup", None), "speedup"),
    (lambda r: r.__setitem__("multistream", None), "multistream"),
    (lambda r: r["environment"].pop("tensorrt"), "environment.tensorrt"),
    (lambda r: r["environment"]["git"].pop("dirty"), "environment.git.dirty"),
    (lambda r: r["pipeline"]["speedup"]["exact"].__setitem__("speedup", 2 * r["pipeline"]["speedup"]["exact"]
                                                             ["speedup"]), "exact: speedup"),
    (lambda r: r["pipeline"]["speedup"]["with_reuse"].__setitem__("run_fps", r["pipeline"]["reuse"]["fps"]),
     "with_reuse: run_fps"),
    (lambda r: r["pipeline"]["speedup"]["exact"].__setitem__("frames", FRAMES), "exact: frames"),
    (lambda r: r["pipeline"]["every_frame"].__setitem__("fraction_of_peak", 1.2), "fraction_of_peak: 1.2"),
    (lambda r: r["pipeline"]["reuse_deviation"].__setitem__("matched", 10**6), "reuse_deviation.matched"),
])
def test_schema_validation_catches_broken_reports(quick_bench, mutate, message):
    _, report = quick_bench
    broken = copy.deepcopy(report)
    mutate(broken)
    errors = validate(broken)
    assert any(message in e for e in errors), errors
    with pytest.raises(ValueError, match="invalid benchmark report"):
        check(broken)


@pytest.mark.slow
def test_check_validates_a_written_report(quick_bench, tmp_path, capsys):
    out, report = quick_bench
    assert main(["bench", "--check", str(out / "bench.json")]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**report, "schema": "other"}))
    assert main(["bench", "--check", str(bad)]) == 2
    assert "does not match the benchmark schema" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "no CUDA device"),
    (["--skip", "models,bogus"], "unknown part"),
    (["--source", "/no/such/clip.mp4"], "no such video file"),
    (["--frames", "0"], "--frames must be >= 1"),
    (["--backends", "torch,onnxruntime:fp16"], "must look like key=value"),
    (["--pipeline-backend", "warp-drive"], "not a registered backend"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys):
    if args[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--quick", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bad_batch_sizes_are_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--batch-sizes", "1,0"])
    assert exc.value.code == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_quick_bench_on_gpu_records_memory_and_nominal_peak(tmp_path):
    from tests.conftest import shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    assert main(["bench", "--quick", "--device", "cuda", "--source", str(video), "--detector-weights", str(weights),
                 "--emotion-model", "random:two_stream_tiny", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert validate(report) == []
    assert report["environment"]["gpu"]
    point = report["model_benchmarks"]["backends"]["torch"]["streams"]["scene"][0]
    assert point["peak_memory_mb"] > 0
    assert "yolo-fp16" in report["model_benchmarks"]["detector"]
    peak = report["peak"]
    assert peak["measured"]["flops_per_s"]["fp16"] > 0                 # measured beside the datasheet figure
    if peak["basis"] == "nominal":
        assert peak["nominal"]["matched"] and peak["flops_per_s"]["fp16"] >= peak["nominal"]["flops_per_s"]["fp16"]
    for run in ("every_frame", "reuse", "naive"):
        assert 0 < report["pipeline"][run]["fraction_of_peak"] <= 1


def test_skipped_parts_are_null_and_named_with_the_reason(tmp_path):
    """The Python API with the tiny model: parts left out stay valid (null + listed in `skipped`)."""
    from benchmarks import BenchConfig, run_bench, write_outputs
    from tests.conftest import shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    config = BenchConfig(quick=True, source=str(video), detector_weights=str(weights), frames=4,
                         emotion_model="random:two_stream_tiny", skip=["models", "detector", "naive", "multistream"],
                         out=str(tmp_path))
    report = run_bench(config)
    assert validate(report) == []
    assert report["pipeline"]["naive"] is None and report["pipeline"]["speedup"] is None
    assert report["pipeline"]["naive_deviation"] is None
    assert report["multistream"] is None and report["model_benchmarks"] == {"backends": {}, "detector": {}}
    assert set(report["skipped"]) == {"models", "detector", "naive", "multistream"}
    assert report["pipeline"]["every_frame"]["frames"] == report["pipeline"]["reuse"]["frames"] == 4
    assert "auto: no backend benchmarked" in report["pipeline"]["reuse"]["backend_choice"]
    paths = write_outputs(report, tmp_path)
    assert "speed-up, exact" not in paths["markdown"].read_text()
    assert paths["throughput_png"].read_bytes()[:8] == PNG


def test_exact_run_matches_the_naive_outputs_and_reuse_moves_them(tmp_path, trained_model_path):
    """With the trained test model (outputs depend on the input): the every-frame pipeline computes what the
    naive loop computes (so its speed-up is exact), and the reuse run's deviation from it is measured, not 0."""
    from benchmarks import BenchConfig, run_bench
    from tests.conftest import shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    config = BenchConfig(quick=True, source=str(video), detector_weights=str(weights), frames=8, naive_frames=5,
                         naive_min_frames=5, emotion_model=str(trained_model_path),
                         skip=["models", "detector", "multistream"], out=str(tmp_path))
    report = run_bench(config)
    assert validate(report) == []
    pipe = report["pipeline"]
    exact = pipe["naive_deviation"]
    assert exact["frames"] == 5 and exact["matched"] == exact["reference_persons"] == exact["candidate_persons"] > 0
    assert exact["prob_max_abs"] < 1e-5 and exact["vad_max_abs"] < 1e-4 and exact["top1_agreement"] == 1.0
    reuse = pipe["reuse_deviation"]
    assert reuse["frames"] == 8 and reuse["matched"] == reuse["reference_persons"] > exact["matched"]
    assert 0 < reuse["prob_mean_abs"] <= reuse["prob_max_abs"] < 1      # reused results differ, a little
    assert 0 < reuse["vad_mean_abs"] <= reuse["vad_max_abs"]
    assert 0 <= reuse["top1_agreement"] <= 1
