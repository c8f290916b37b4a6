"""The GPU check's parts that its end-to-end run (the `quick_bench` fixture of tests/test_bench_cli.py) does not
show: the shell wrapper's bad input, the bench's --budget-s once it is spent, the sizing per device, and the
test files it collects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_wrapper_asks_for_cuda_with_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cuda", "--skip-tests",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "sees no CUDA device" in proc.stderr


def test_a_spent_budget_skips_every_later_part_and_names_it(tmp_path):
    from benchmarks import BenchConfig, run_bench, write_outputs
    from benchmarks.schema import validate
    from tests.conftest import shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    report = run_bench(BenchConfig(quick=True, source=str(video), detector_weights=str(weights), frames=2,
                                   emotion_model="random:two_stream_tiny", budget_s=0.01, skip=["flops"],
                                   out=str(tmp_path)))
    assert validate(report) == []
    for part in ("models", "detector", "pipeline", "multistream"):
        assert "--budget-s 0.01 s budget was spent" in report["skipped"][part], part
    assert report["pipeline"] is None and report["multistream"] is None
    assert "Skipped:" in write_outputs(report, tmp_path)["markdown"].read_text()


def test_the_sizing_follows_the_device_and_bench_flags_after_the_separator_replace_it():
    cuda, _ = gpu_check.parse_args(["--device", "cuda"])
    argv = gpu_check.bench_argv(cuda, Path("o"), 400, [])
    assert cuda.emotion_model == "random" and argv[argv.index("--stream-sweep") + 1] == "1,4,16,64"
    assert argv[argv.index("--backends") + 1].split(",")[0] == "torch:precision=fp16"
    assert argv[argv.index("--budget-s") + 1] == "400"
    cpu, extra = gpu_check.parse_args(["--device", "cpu", "--budget-s", "120", "--", "--quick", "--frames", "3"])
    assert cpu.emotion_model == "random:two_stream_tiny" and extra == ["--quick", "--frames", "3"]
    argv = gpu_check.bench_argv(cpu, Path("o"), 90, extra)
    assert argv[-3:] == ["--quick", "--frames", "3"] and "--stream-sweep" not in argv
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--budget-s", "0"])


def test_the_marked_test_files_are_the_ones_with_gpu_or_tensorrt_marks():
    files = gpu_check.marked_test_files()
    assert "tests/test_backends.py" in files and "tests/test_gpu_check.py" not in files
    for name in files:
        assert gpu_check.MARKS.search((ROOT / name).read_text())
