"""A fault matrix through the installed `emomon` command: bad input of every kind the CLI takes ends in exit
code 2 and exactly one line on stderr that says what is wrong, with no traceback and nothing on stdout.

These are cases beyond the ones the hardening tests were written for (tests/test_bad_inputs.py,
tests/test_faults.py); each fails before any model is loaded or after a cheap check, so the matrix is fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import emomon_runs
from conftest import ROOT, TRAINED_MODEL

SHARED = ROOT.parent / "shared"
VIDEO = str(SHARED / "data" / "street_crossing.mp4")
PHOTO = str(SHARED / "data" / "group_photo.jpg")
YOLO = str(SHARED / "weights" / "yolo11n-pose.pt")
MODEL = str(TRAINED_MODEL)


def cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments, a piece of the one stderr line)."""
    (tmp / "empty_dir").mkdir()
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "text.pt").write_text("not a checkpoint")
    (tmp / "a_file").write_text("x")
    (tmp / "garbage.json").write_text("{not json")
    (tmp / "bad.yaml").write_text("tracker_type: [unclosed")
    run = ["run", "--emotion-model", MODEL, "--detector-weights", YOLO]
    return {
        "missing video": (["run", "--source", str(tmp / "nope.mp4"), "--jsonl", str(tmp / "o.jsonl")], "nope.mp4"),
        "folder without images": ([*run, "--source", str(tmp / "empty_dir"), "--jsonl", str(tmp / "o.jsonl")],
                                  "empty_dir"),
        "unknown url scheme": ([*run, "--source", "ftp://example.invalid/x.mp4", "--jsonl", str(tmp / "o.jsonl")],
                               "ftp://"),
        "stride 0": ([*run, "--source", VIDEO, "--vid-stride", "0", "--jsonl", str(tmp / "o.jsonl")],
                     "--vid-stride"),
        "max frames 0": ([*run, "--source", VIDEO, "--max-frames", "0"], "--max-frames"),
        "unknown emotion model": (["run", "--source", VIDEO, "--emotion-model", "no_such_model",
                                   "--detector-weights", YOLO, "--jsonl", str(tmp / "o.jsonl")], "no_such_model"),
        "text file as checkpoint": (["predict", PHOTO, "--emotion-model", str(tmp / "text.pt"), "--boxes",
                                     "10,10,100,200"], "text.pt"),
        "jsonl under a file": ([*run, "--source", VIDEO, "--jsonl", str(tmp / "a_file" / "o.jsonl")], "a_file"),
        "same file twice": ([*run, "--source", VIDEO, "--jsonl", str(tmp / "same"), "--csv", str(tmp / "same")],
                            "same"),
        "unknown backend": ([*run, "--source", VIDEO, "--backend", "nope", "--jsonl", str(tmp / "o.jsonl")],
                            "unknown backend 'nope'"),
        "unreadable tracker yaml": ([*run, "--source", VIDEO, "--tracker", str(tmp / "bad.yaml"), "--jsonl",
                                     str(tmp / "o.jsonl")], "bad.yaml"),
        "predict on a folder": (["predict", str(tmp / "empty_dir"), "--emotion-model", MODEL], "empty_dir"),
        "predict on an empty file": (["predict", str(tmp / "empty.jpg"), "--emotion-model", MODEL], "empty.jpg"),
        "box with three numbers": (["predict", PHOTO, "--emotion-model", MODEL, "--boxes", "1,2,3"], "1,2,3"),
        "app port out of range": (["app", "--port", "70000", "--emotion-model", MODEL], "--port"),
        "bench check on garbage": (["bench", "--check", str(tmp / "garbage.json")], "garbage.json"),
        "export calibration missing": (["export", "--emotion-model", MODEL, "--precision", "int8", "--calibration",
                                        str(tmp / "no_frames"), "--out", str(tmp / "exp")], "no_frames"),
        "train data missing": (["train", "--data", str(tmp / "no_data"), "--model", "two_stream_tiny",
                                "--no-pretrained", "--out", str(tmp / "run")], "no_data"),
        "evaluate checkpoint missing": (["evaluate", "--checkpoint", str(tmp / "none.pt"), "--data",
                                         str(tmp / "empty_dir")], "none.pt"),
        "synthetic into a non-empty folder": (["make-synthetic", "--out", str(tmp)], str(tmp.name)),
    }


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return cases(tmp_path_factory.mktemp("faults"))


CASE_NAMES = ["missing video", "folder without images", "unknown url scheme", "stride 0", "max frames 0",
              "unknown emotion model", "text file as checkpoint", "jsonl under a file", "same file twice",
              "unknown backend", "unreadable tracker yaml", "predict on a folder", "predict on an empty file",
              "box with three numbers", "app port out of range", "bench check on garbage",
              "export calibration missing", "train data missing", "evaluate checkpoint missing",
              "synthetic into a non-empty folder"]


@pytest.fixture(scope="module")
def matrix_runs(matrix):
    """Every case's `emomon` process, two at a time: name -> CompletedProcess."""
    if not Path(VIDEO).is_file():
        pytest.skip(f"{VIDEO} is absent (the ../shared assets are not here)")
    return dict(zip(CASE_NAMES, emomon_runs([matrix[name][0] for name in CASE_NAMES], cwd=ROOT)))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_is_one_line_and_exit_2(matrix, matrix_runs, name):
    _, says = matrix[name]
    proc = matrix_runs[name]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith(("INFO ", "WARNING ", "DEBUG "))]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    assert len(errors) == 1 and says in errors[0], lines
    assert proc.stdout == "", proc.stdout


def test_the_matrix_covers_every_case(matrix):
    assert sorted(matrix) == sorted(CASE_NAMES)
