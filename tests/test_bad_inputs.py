"""Bad models and bad arguments through the real CLI (issue 12, items 8-12): bad input is exit 2 with one line
on stderr, a broken model's NaN never reaches an output, stdout holds nothing but the result."""

from __future__ import annotations

import csv
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_runs import emomon_runs, processes

from emomon.cli import main
from fusion import EMOTIC_CATEGORIES, Predictor, load_checkpoint, save_checkpoint


def emomon(*args, timeout=300, cwd=None):
    return subprocess.run([sys.executable, "-m", "emomon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def strict_json(text: str):
    """json.loads that fails on NaN/Infinity (Python's parser accepts them; most others do not)."""
    def refuse(constant):
        raise AssertionError(f"non-finite number {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def one_error_line(proc, start: str = "emomon") -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr (no usage, no traceback, no library chatter)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(start) and " error: " in lines[0], lines[0]
    return lines[0]


def error_lines(proc) -> list[str]:
    """The lines that say something is wrong: the last one must be emomon's own, and the only one."""
    return [ln for ln in proc.stderr.splitlines() if "error" in ln.lower() or "traceback" in ln.lower()]


@pytest.fixture(scope="module")
def nan_model_path(tmp_path_factory) -> Path:
    """The trained test model with NaN category weights: every person's probabilities are NaN."""
    from conftest import TRAINED_MODEL

    model = load_checkpoint(TRAINED_MODEL)
    with torch.no_grad():
        model.cat_head.weight.fill_(float("nan"))
    return save_checkpoint(model, tmp_path_factory.mktemp("nan") / "nan.pt")


def edited_checkpoint(src: Path, dst: Path, edit) -> Path:
    payload = torch.load(src, weights_only=True)
    edit(payload)
    torch.save(payload, dst)
    return dst


# -- item 8: checkpoints of another shape ---------------------------------------------------------------------
def test_checkpoint_with_a_wrong_tensor_shape_exits_2_naming_it(group_photo, trained_model_path, tmp_path):
    def wrong_shape(payload):
        payload["state_dict"]["scene.positional_embedding"] = torch.zeros(3, 3)

    path = edited_checkpoint(trained_model_path, tmp_path / "shape.pt", wrong_shape)
    proc = emomon("predict", group_photo, "--emotion-model", path, "--boxes", "10,10,200,500", "--json")
    line = one_error_line(proc, "emomon: error: ")
    assert "does not match model 'two_stream_tiny'" in line
    assert "1 tensor with another shape (scene.positional_embedding 3x3 vs 17x64)" in line


def test_tiny_weights_under_a_real_size_name_exit_2(group_photo, trained_model_path, tmp_path):
    def rename(payload):
        payload["model_name"] = "two_stream_vitb16"

    path = edited_checkpoint(trained_model_path, tmp_path / "renamed.pt", rename)
    proc = emomon("predict", group_photo, "--emotion-model", path, "--boxes", "10,10,200,500", "--json")
    line = one_error_line(proc, "emomon: error: ")
    assert "says model 'two_stream_vitb16' but holds another architecture" in line and "tiny_cnn" in line


# -- item 9: NaN weights ---------------------------------------------------------------------------------------
def test_predict_with_a_nan_model_leaves_the_persons_out(group_photo, nan_model_path):
    proc = emomon("predict", group_photo, "--emotion-model", nan_model_path, "--json",
                  "--boxes", "10,10,200,500", "400,20,600,540")
    assert proc.returncode == 0, proc.stderr
    out = strict_json(proc.stdout)
    assert out["persons"] == []
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("WARNING")]
    assert len(warnings) == 1 and "non-finite" in warnings[0], proc.stderr


def test_run_with_a_nan_model_writes_valid_outputs(street_video, yolo_weights, nan_model_path, tmp_path):
    out = {k: tmp_path / f"o.{k}" for k in ("mp4", "jsonl", "csv", "json")}
    proc = emomon("run", "--source", street_video, "--max-frames", 3, "--detector-weights", yolo_weights,
                  "--emotion-model", nan_model_path, "--output", out["mp4"], "--jsonl", out["jsonl"],
                  "--csv", out["csv"], "--summary", out["json"], "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert strict_json(proc.stdout)["frames"] == 3
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("WARNING")]
    assert len(warnings) == 1 and "non-finite" in warnings[0], "one warning, not one per person: " + proc.stderr
    lines = out["jsonl"].read_text().splitlines()
    assert len(lines) == 3 and all(strict_json(ln)["persons"] == [] for ln in lines)
    with open(out["csv"], newline="") as f:
        assert len(list(csv.reader(f))) == 1, "the header only"
    summary = strict_json(out["json"].read_text())
    assert summary["frames"] == 3 and summary["person_detections"] == 0 and summary["tracks"] == []
    assert out["mp4"].stat().st_size > 0, "the overlay drew the frames"


# -- item 10: unusable --boxes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("box", "says"), [
    ("200,10,100,500", "is empty"),
    ("10,500,200,400", "is empty"),
    ("5000,5000,6000,6000", "is outside the 870x553 image"),
    ("-300,10,-100,200", "is outside the 870x553 image"),
    ("868,10,900,100", "has less than 4x4 pixels inside"),
    ("nan,10,200,500", "not a finite number"),
    ("10,10,inf,500", "not a finite number"),
    ("10,10,200", "must be x1,y1,x2,y2"),
])
def test_unusable_boxes_exit_2_naming_the_box(group_photo, trained_model_path, box, says):
    proc = emomon("predict", group_photo, "--emotion-model", trained_model_path, "--boxes", "1,1,50,50", box)
    line = one_error_line(proc)
    assert says in line and f"box {box}" in line.replace("'", ""), line


def test_negative_box_coordinates_need_no_equals_sign_and_are_clipped(group_photo, trained_model_path):
    proc = emomon("predict", group_photo, "--emotion-model", trained_model_path, "--json",
                  "--boxes", "-5,10,100,200", "800,-20,900,100")
    assert proc.returncode == 0, proc.stderr
    persons = strict_json(proc.stdout)["persons"]
    assert [p["box"] for p in persons] == [[0.0, 10.0, 100.0, 200.0], [800.0, 0.0, 870.0, 100.0]]


def test_predict_min_box_matches_the_predictor():
    from emomon.commands.predict import MIN_BOX

    assert inspect.signature(Predictor).parameters["min_box_size"].default == MIN_BOX


# -- item 11: numeric flags ------------------------------------------------------------------------------------
RUN_FLAGS = [
    ("--top-k", "-3"), ("--top-k", "0"), ("--top-k", "27"), ("--top-k", "x"),
    ("--imgsz", "0"), ("--imgsz", "100"), ("--imgsz", "-640"),
    ("--conf", "0"), ("--conf", "1"), ("--conf", "nan"), ("--iou", "1.5"), ("--iou", "-0.1"),
    ("--smooth-alpha", "0"), ("--smooth-alpha", "1.01"), ("--smooth-window", "0"),
    ("--min-box-size", "0"), ("--seed", "-1"),
    ("--scene-every", "0"), ("--refresh-every", "0"), ("--scene-change", "1.5"), ("--scene-change", "-0.01"),
    ("--scene-change", "inf"),
]


@pytest.mark.parametrize(("flag", "value"), RUN_FLAGS, ids=[f"{f}={v}" for f, v in RUN_FLAGS])
def test_numeric_flags_are_validated_in_one_line(capsys, flag, value):
    with pytest.raises(SystemExit) as info:
        main(["run", "--source", "nowhere.mp4", f"{flag}={value}"])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"emomon run: error: argument {flag}: "), captured.err
    assert value in lines[0]


@pytest.mark.parametrize(("flag", "value"), [("--top-k", "1"), ("--top-k", "26"), ("--imgsz", "320"),
                                             ("--conf", "0.5"), ("--smooth-alpha", "1"), ("--scene-change", "0"),
                                             ("--scene-change", "1"), ("--seed", "0"), ("--min-box-size", "1")])
def test_numeric_flags_accept_their_bounds(flag, value):
    from emomon.cli import build_parser

    args = build_parser().parse_args(["run", "--source", "x", flag, value])
    assert getattr(args, flag[2:].replace("-", "_")) == type(getattr(args, flag[2:].replace("-", "_")))(value)


def test_top_k_bound_is_the_number_of_categories():
    from emomon.commands.options import CATEGORIES

    assert len(EMOTIC_CATEGORIES) == CATEGORIES


def test_bad_flags_through_the_console_entry_point(group_photo):
    top_k, imgsz, no_source = emomon_runs([["predict", group_photo, "--top-k", "-3"],
                                           ["run", "--source", "x.mp4", "--imgsz", "0"], ["run"]])
    one_error_line(top_k, "emomon predict: error: argument --top-k")
    one_error_line(imgsz, "emomon run: error: argument --imgsz")
    one_error_line(no_source, "emomon run: error: the following arguments are required: --source")


def test_predict_json_stdout_is_only_the_result(group_photo, yolo_weights, trained_model_path):
    proc = emomon("predict", group_photo, "--emotion-model", trained_model_path, "--json",
                  "--detector-weights", yolo_weights)
    assert proc.returncode == 0, proc.stderr
    assert strict_json(proc.stdout)["persons"], "persons detected"


def test_ultralytics_logs_go_to_stderr_errors_only_by_default():
    """Ultralytics' LOGGER prints to stdout with its own handler; emomon's set-up sends it to stderr."""
    script = ("import sys; from emomon.kernel import setup_logging; setup_logging(verbose=sys.argv[1] == '1'); "
              "from ultralytics.utils import LOGGER; LOGGER.info('ul-info'); LOGGER.warning('ul-warning'); "
              "LOGGER.error('ul-error')")
    quiet, loud = processes([[sys.executable, "-c", script, "0"], [sys.executable, "-c", script, "1"]], timeout=120)
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout
    assert quiet.stderr.strip().splitlines() == ["ERROR ultralytics: ul-error"], quiet.stderr
    assert loud.stdout == "" and "WARNING ultralytics: ul-warning" in loud.stderr and "ul-info" not in loud.stderr


# -- item 12: third-party noise on stderr ----------------------------------------------------------------------
def test_missing_camera_is_one_line_without_opencv_noise(tmp_path):
    if any(Path("/dev").glob("video*")):
        pytest.skip("this machine has a camera device (/dev/video*): source 0 would open")
    proc = emomon("run", "--source", "0", "--jsonl", tmp_path / "o.jsonl", "--max-frames", 1)
    line = one_error_line(proc, "emomon: error: ")
    assert "webcam 0" in line


def test_library_warnings_are_debug_lines():
    """A library's Python warning is a DEBUG log line (shown with -v), never a two-line dump before emomon's
    own line; a warning from elsewhere is one WARNING line."""
    script = ("import sys, warnings, sysconfig; from emomon.kernel import setup_logging; "
              "setup_logging(verbose=sys.argv[1] == '1'); "
              "lib = sysconfig.get_paths()['purelib'] + '/somelib/core.py'; "
              "warnings.warn_explicit('lib chatter', UserWarning, lib, 7); "
              "warnings.warn_explicit('deprecated thing', FutureWarning, lib, 8); "
              "warnings.warn_explicit('user-facing', UserWarning, '/work/project/app.py', 9)")
    quiet = subprocess.run([sys.executable, "-c", script, "0"], capture_output=True, text=True, timeout=120)
    assert quiet.stderr.strip().splitlines() == ["WARNING py.warnings: UserWarning: user-facing (app.py:9)"], \
        quiet.stderr
    loud = subprocess.run([sys.executable, "-c", script, "1"], capture_output=True, text=True, timeout=120)
    assert "DEBUG py.warnings: UserWarning: lib chatter (core.py:7)" in loud.stderr.splitlines(), loud.stderr
