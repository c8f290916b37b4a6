"""Detector `.pt` weights load weights-only: a planted pickle payload never runs, through the real CLI too;
the real YOLO11n-pose weights load without a flag; `--trust-detector-weights` loads a trusted file fully."""

from __future__ import annotations

import contextlib
import fractions
import pickle
import subprocess
import sys

import cv2
import pytest
import torch
from conftest import TRAINED_MODEL

from detector import DetectorConfig, DetectorError, PersonDetector, export_detector, load_yolo
from detector import weights as weights_module


class Payload:
    """Unpickling this writes `marker`: what a malicious checkpoint would do (with worse code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "payload-ran"


@pytest.fixture
def evil(tmp_path, marker):
    """Payload files in the forms a `.pt` can take: a torch.save zip, plain pickles (protocols 2 and 4)."""
    files = {"zip": tmp_path / "evil.pt", "pickle2": tmp_path / "evil-p2.pt", "pickle4": tmp_path / "evil-p4.pt"}
    torch.save({"model": Payload(marker)}, files["zip"])
    for protocol, key in ((2, "pickle2"), (4, "pickle4")):
        files[key].write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=protocol))
    return files


@pytest.fixture(scope="module")
def outside_allowlist(tmp_path_factory, yolo_weights_path):
    """The real weights plus one harmless value whose class is not on the allowlist (a trusted custom file)."""
    ckpt = torch.load(yolo_weights_path, map_location="cpu", weights_only=False)  # the shared file is trusted
    ckpt["note"] = fractions.Fraction(1, 3)
    path = tmp_path_factory.mktemp("custom") / "custom-pose.pt"
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def yolo_weights_path():
    from conftest import shared_file

    return shared_file("weights/yolo11n-pose.pt")


def test_the_payload_is_live(evil, marker):
    """The planted files really run code when unpickled the unsafe way (so the tests below mean something)."""
    for path in evil.values():
        with contextlib.suppress(Exception):  # a plain pickle then fails torch's magic-number check
            torch.load(path, weights_only=False)
        assert marker.exists(), path
        marker.unlink()


@pytest.mark.parametrize("kind", ["zip", "pickle2", "pickle4"])
def test_payload_is_refused_before_it_runs(evil, marker, kind):
    with pytest.raises(DetectorError) as err:
        load_yolo(str(evil[kind]))
    msg = str(err.value)
    assert not marker.exists(), "the payload ran"
    assert "\n" not in msg
    assert f"'{evil[kind]}'" in msg and "builtins.exec" in msg and "--trust-detector-weights" in msg


def test_cli_refuses_payload_in_one_line(evil, marker, group_photo):
    proc = subprocess.run([sys.executable, "-m", "emomon", "predict", str(group_photo), "--emotion-model",
                           str(TRAINED_MODEL), "--detector-weights", str(evil["zip"])],
                          capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "the payload ran"
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("emomon: error: detector weights"), proc.stderr
    assert "builtins.exec" in errors[0] and "Traceback" not in proc.stderr


def test_cli_trust_flag_keeps_real_weights_working(yolo_weights_path, group_photo):
    import json

    proc = subprocess.run([sys.executable, "-m", "emomon", "predict", str(group_photo), "--emotion-model",
                           str(TRAINED_MODEL), "--json", "--detector-weights", str(yolo_weights_path),
                           "--trust-detector-weights"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["persons"]) == 6


def test_real_weights_load_weights_only(yolo_weights_path, group_photo, monkeypatch):
    """No torch.load of the checkpoint runs with weights_only=False, loading or predicting; same 6 persons."""
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = load_yolo(str(yolo_weights_path))
    result = model.predict(cv2.imread(str(group_photo)), classes=[0], verbose=False)[0]
    assert calls and all(c is True for c in calls), calls
    assert model.task == "pose" and len(result.boxes) == 6


def test_fallback_allowlist_for_older_ultralytics(yolo_weights_path, evil, marker, monkeypatch):
    """Without Ultralytics' own safe mode, our allowlist check runs first: the same answers."""
    monkeypatch.setattr(weights_module, "_ultralytics_safe_mode", lambda tasks: False)
    assert load_yolo(str(yolo_weights_path)).task == "pose"
    for path in evil.values():
        with pytest.raises(DetectorError, match="builtins.exec"):
            load_yolo(str(path))
    assert not marker.exists()


def test_trust_loads_a_file_outside_the_allowlist(outside_allowlist, group_photo):
    with pytest.raises(DetectorError, match=r"first: fractions\.Fraction.*--trust-detector-weights"):
        load_yolo(str(outside_allowlist))
    model = load_yolo(str(outside_allowlist), trust=True)
    assert len(model.predict(cv2.imread(str(group_photo)), classes=[0], verbose=False)[0].boxes) == 6


def test_detector_config_trust_reaches_the_loader(outside_allowlist):
    assert PersonDetector(DetectorConfig(weights=str(outside_allowlist), trust_weights=True)).has_keypoints


def test_flag_maps_into_detector_config():
    import argparse

    from emomon.commands.options import add_detector_weights_argument, detector_config

    parser = argparse.ArgumentParser()
    add_detector_weights_argument(parser)
    parser.add_argument("--device", default="cpu")
    assert detector_config(parser.parse_args([])).trust_weights is False
    assert detector_config(parser.parse_args(["--trust-detector-weights"])).trust_weights is True


def test_export_refuses_payload(evil, marker, tmp_path):
    with pytest.raises(DetectorError, match="builtins.exec"):
        export_detector(evil["zip"], "onnx", out_dir=tmp_path / "out")
    assert not marker.exists()
