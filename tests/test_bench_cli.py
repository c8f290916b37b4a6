"""`emomon bench`: the CI run (`--quick --device cpu` on the real-size model with random weights and a few
seconds of the street clip) writes a valid report, Markdown and plots, with a timing for every stage and the
optimized/naive ratio; bad input exits 2 with one line. No speed is asserted (the CPU is shared)."""

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


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    from tests.conftest import shared_file

    video = shared_file("data/street_crossing.mp4")
    weights = shared_file("weights/yolo11n-pose.pt")
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "--quick", "--device", "cpu", "--source", str(video), "--detector-weights", str(weights),
                 "--out", str(out)])
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
    assert "speed-up optimized / naive" in markdown and "| scene |" in markdown
    env = report["environment"]
    assert env["cpu_count"] >= 1 and env["versions"]["torch"] and env["torch_threads"] >= 1


@pytest.mark.slow
def test_every_stage_has_a_timing_in_both_runs(quick_bench):
    _, report = quick_bench
    pipe = report["pipeline"]
    for run in ("optimized", "naive"):
        stages = pipe[run]["stages"]
        assert list(stages) == list(STAGES)
        for stage in STAGES:
            timing = stages[stage]["per_frame_ms"]
            assert timing is not None and timing["n"] == pipe[run]["frames"], (run, stage)
            assert timing["p50"] <= timing["p95"] <= timing["p99"]
        assert pipe[run]["frames"] >= 2 and pipe[run]["persons"] > 0
    for stage in ("detect_track", "body", "annotate", "encode"):   # work that happens on every frame
        assert pipe["optimized"]["stages"][stage]["total_s"] > 0, stage
    assert pipe["optimized"]["stages"]["decode"]["overlapped"]
    assert pipe["optimized"]["counts"]["scene_computed"] >= 1


@pytest.mark.slow
def test_report_has_the_ratio_flops_peak_and_multistream(quick_bench):
    _, report = quick_bench
    speed = report["pipeline"]["speedup"]
    assert speed["end_to_end"] > 0 and speed["emotion"] > 0 and speed["frames"] >= 2
    assert report["summary"]["speedup_end_to_end"] == speed["end_to_end"]
    flops = report["flops"]
    assert flops["scene_per_frame"] == pytest.approx(35.1e9, rel=0.02)   # CLIP ViT-B/16 at 224
    assert flops["body_per_person"] == pytest.approx(3.64e9, rel=0.02)   # ResNet-18 at 224
    assert flops["detector_per_frame"] > 1e9
    assert report["peak"]["basis"] == "measured" and report["peak"]["flops_per_s"]["fp32"] > 0
    assert report["pipeline"]["optimized"]["fraction_of_peak"] > 0
    ms = report["multistream"]
    assert ms["streams"] == 2 and ms["frames"] == 2 * report["config"]["stream_frames"]
    assert ms["aggregate_fps"] > 0 and ms["realtime_streams_estimate"] >= 0
    assert ms["source_fps"] == pytest.approx(24, rel=0.1)
    assert ms["batched_detector"] in (True, False)
    torch_entry = report["model_benchmarks"]["backends"]["torch"]
    assert torch_entry["status"] == "ok"
    sizes = [p["batch_size"] for p in torch_entry["streams"]["body"]]
    assert sizes == [1, 4, 8]
    first = torch_entry["streams"]["body"][0]
    assert first["images_per_s"] > 0 and first["peak_memory_mb"] is None    # no GPU memory on CPU
    for name, entry in report["model_benchmarks"]["backends"].items():     # others: skipped with a reason
        assert entry["status"] == "ok" or entry["reason"], name


@pytest.mark.slow
@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.__setitem__("schema_version", SCHEMA_VERSION + 1), "schema_version"),
    (lambda r: r["pipeline"]["optimized"]["stages"].pop("encode"), "stages.encode: missing"),
    (lambda r: r["pipeline"]["naive"]["stages"]["scene"].__setitem__("per_frame_ms", None), "naive.stages.scene"),
    (lambda r: r["pipeline"]["optimized"].__setitem__("fps", math.nan), "optimized.fps"),
    (lambda r: r["pipeline"].__setitem__("speedup", None), "speedup"),
    (lambda r: r.__setitem__("multistream", None), "multistream"),
    (lambda r: r["environment"].pop("tensorrt"), "environment.tensorrt"),
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
    assert report["multistream"] is None and report["model_benchmarks"] == {"backends": {}, "detector": {}}
    assert set(report["skipped"]) == {"models", "detector", "naive", "multistream"}
    assert report["pipeline"]["optimized"]["frames"] == 4
    assert "auto: no backend benchmarked" in report["pipeline"]["optimized"]["backend_choice"]
    paths = write_outputs(report, tmp_path)
    assert "speed-up" not in paths["markdown"].read_text()
    assert paths["throughput_png"].read_bytes()[:8] == PNG
