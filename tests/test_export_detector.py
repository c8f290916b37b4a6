"""The detector's accelerated path: Ultralytics' own ONNX export of YOLO11n-pose, offline, and the
exported file finding the same persons through `YOLO(path)`."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from detector import detector_weights_for_backend, export_detector
from emomon.kernel import InputError


@pytest.fixture(scope="module")
def onnx_detector(tmp_path_factory):
    from conftest import shared_file

    weights = shared_file("weights/yolo11n-pose.pt")
    out = tmp_path_factory.mktemp("detector")
    return weights, export_detector(weights, "onnx", out_dir=out, imgsz=640)


def _persons(weights, image):
    from ultralytics import YOLO

    result = YOLO(str(weights), task="pose").predict(str(image), classes=[0], verbose=False)[0]
    return result.boxes.xyxy.cpu().numpy(), result.keypoints.data.cpu().numpy()


def test_detector_onnx_export_finds_the_same_persons(onnx_detector, group_photo):
    weights, path = onnx_detector
    assert path.suffix == ".onnx" and path.stat().st_size > 5e6
    assert not (path.parent / weights.name).exists()  # the working copy of the weights is gone
    ref_boxes, ref_kpts = _persons(weights, group_photo)
    boxes, kpts = _persons(path, group_photo)
    assert len(boxes) == len(ref_boxes) >= 4
    order = [int(np.argmin(np.abs(ref_boxes - b).sum(1))) for b in boxes]
    assert np.abs(ref_boxes[order] - boxes).max() < 4.0  # pixels
    assert kpts.shape[1:] == (17, 3)


def test_second_export_is_the_cached_file(onnx_detector, monkeypatch):
    weights, path = onnx_detector
    monkeypatch.setattr("ultralytics.YOLO", lambda *a, **k: pytest.fail("exported again"))
    assert export_detector(weights, "onnx", out_dir=path.parent, imgsz=640) == path


def test_backend_picks_detector_weights(onnx_detector, monkeypatch):
    weights, _ = onnx_detector
    assert detector_weights_for_backend(weights, "torch") == str(weights)
    assert detector_weights_for_backend("yolo11n-pose.pt", "onnxruntime") == "yolo11n-pose.pt"  # not local
    assert detector_weights_for_backend("x.onnx", "onnxruntime") == "x.onnx"  # already exported
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(InputError, match=r"pip install 'emomon\[trt\]'"):
        detector_weights_for_backend(weights, "tensorrt")


def test_detector_export_bad_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        export_detector(tmp_path / "missing.pt")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"x")
    with pytest.raises(InputError, match=r"only \.pt files export"):
        export_detector(bogus)
    with pytest.raises(InputError, match="unknown detector export format"):
        export_detector(bogus, "coreml")


def test_exports_starting_together_take_turns_and_both_get_the_file(tmp_path, yolo_weights):
    """Ray workers on a fresh machine export the detector at the same moment into one cache folder: one exports,
    the other waits and takes its file (they used to copy the weights over each other and one read a torn copy)."""
    import threading

    from detector import PersonDetector
    from detector.config import DetectorConfig

    results, errors = [], []

    def export():
        try:
            results.append(export_detector(yolo_weights, "onnx", out_dir=tmp_path / "cache"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert len(PersonDetector(DetectorConfig(weights=str(results[0]))).detect(np.zeros((64, 64, 3), np.uint8))) == 0
