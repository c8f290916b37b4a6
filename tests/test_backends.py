"""Backends behind the one interface: registry, onnxruntime parity through the Predictor (random inputs
and real crops), bad inputs, torch-fp16; GPU and TensorRT parity under their marks (skipped without).

Parity on real crops uses the trained test model (conftest.TRAINED_MODEL): its persons differ from each
other by more than every tolerance here (tests/test_test_model.py), so swapped persons or reordered chunks
fail these tests; random weights would give almost the same output for everyone."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import torch
from conftest import TRAINED_MODEL

from emomon.kernel import InputError
from fusion import InferenceBackend, Predictor, create_backend, create_model, list_backends, load_checkpoint
from fusion.export import OnnxFileError, export_onnx

# Persons in ../shared/data/group_photo.jpg (870x553) as YOLO11n-pose finds them, plus a sliver and the frame.
GROUP_BOXES = [[750, 37, 866, 378], [175, 51, 316, 445], [628, 83, 745, 455], [413, 76, 610, 550],
               [61, 55, 172, 368], [408, 32, 502, 202], [0, 0, 30, 553], [0, 0, 870, 553]]
HAS_CUDA = torch.cuda.is_available()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")


def _tiny(name="two_stream_tiny"):
    torch.manual_seed(0)
    return create_model(name, pretrained=False).eval()


def _trained():
    return load_checkpoint(TRAINED_MODEL).eval()


def _max_diff(a, b) -> tuple[float, float]:
    return (max(float(np.abs(x.probs - y.probs).max()) for x, y in zip(a, b)),
            max(float(np.abs(x.vad - y.vad).max()) for x, y in zip(a, b)))


def test_every_backend_is_registered():
    assert {"torch", "torch-fp16", "torch-compile", "onnxruntime", "tensorrt"} <= set(list_backends())
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        create_backend("nope", _tiny())


@pytest.mark.parametrize("name", ["trained", "zero_shot_tiny"])
def test_onnxruntime_matches_torch_on_real_crops(name, group_photo):
    model = _trained() if name == "trained" else _tiny(name)
    frame = cv2.imread(str(group_photo))
    onnx = Predictor(model, backend="onnxruntime")
    assert isinstance(onnx.backend, InferenceBackend) and onnx.backend.precision == "fp32"
    ref = Predictor(model, backend="torch").predict(frame, GROUP_BOXES)
    got = onnx.predict(frame, GROUP_BOXES)
    assert [p.index for p in got] == [p.index for p in ref]
    dp, dv = _max_diff(ref, got)
    assert dp <= 1e-4 and dv <= 1e-3


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_onnxruntime_backend_random_inputs_any_batch(batch):
    model = _tiny()
    ort_backend, torch_backend = create_backend("onnxruntime", model), create_backend("torch", model)
    torch.manual_seed(batch)
    body = torch.randn(batch, 3, 64, 64)
    scene = torch.randn(max(1, batch // 4), 3, 64, 64)
    b, s = ort_backend.encode_body(body), ort_backend.encode_scene(scene)
    assert torch.allclose(b, torch_backend.encode_body(body), atol=1e-4)
    assert torch.allclose(s, torch_backend.encode_scene(scene), atol=1e-4)
    s = s[torch.arange(batch) % s.shape[0]]
    (p1, v1), (p2, v2) = ort_backend.heads(b, s), torch_backend.heads(b, s)
    assert p1.shape == (batch, 26) and v1.shape == (batch, 3)
    assert (p1 - p2).abs().max() <= 1e-4 and (v1 - v2).abs().max() <= 1e-3


def test_onnxruntime_backend_edge_cases():
    backend = create_backend("onnxruntime", _tiny())
    assert backend.encode_body(torch.zeros(0, 3, 64, 64)).shape == (0, 32)
    probs, vad = backend.heads(torch.zeros(0, 32), torch.zeros(0, 64))
    assert probs.shape == (0, 26) and vad.shape == (0, 3)
    with pytest.raises(InputError, match=r"body input 'body' has shape \(2, 3, 32, 32\)"):
        backend.encode_body(torch.zeros(2, 3, 32, 32))
    with pytest.raises(InputError, match="differ in batch size"):
        backend.heads(torch.zeros(2, 32), torch.zeros(3, 64))
    with pytest.raises(InputError, match="runs on cpu or cuda"):
        create_backend("onnxruntime", _tiny(), device="meta")


def test_onnxruntime_backend_from_exported_folder(tmp_path):
    model = _tiny()
    export_onnx(model, tmp_path)
    backend = create_backend("onnxruntime", model, onnx_dir=str(tmp_path))
    assert {p.parent for p in backend.files.values()} == {tmp_path}
    with torch.no_grad():
        model.cat_head.bias.add_(0.5)  # now the files belong to other weights
    with pytest.raises(OnnxFileError, match="exported from another model or other weights"):
        create_backend("onnxruntime", model, onnx_dir=str(tmp_path))
    (tmp_path / "scene.onnx").write_bytes(b"garbage")
    with pytest.raises(OnnxFileError, match="not a readable ONNX file"):
        create_backend("onnxruntime", _tiny(), onnx_dir=str(tmp_path))


def test_onnxruntime_cuda_without_provider_is_one_line():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(InputError, match="pip install onnxruntime-gpu"):
        create_backend("onnxruntime", _tiny(), device="cuda")


def test_torch_fp16_on_cpu_runs_bfloat16(group_photo):
    frame = cv2.imread(str(group_photo))
    ref = Predictor(_trained(), backend="torch").predict(frame, GROUP_BOXES)
    fast = Predictor(_trained(), backend="torch-fp16")
    assert fast.backend.precision == "bf16"
    dp, dv = _max_diff(ref, fast.predict(frame, GROUP_BOXES))
    assert dp <= 1e-2 and dv <= 5e-2  # measured 0.003 and 0.017 on this CPU
    with pytest.raises(InputError, match="bfloat16"):
        create_backend("torch-fp16", _tiny(), dtype="fp16")
    with pytest.raises(InputError, match="CUDA graphs need a CUDA device"):
        create_backend("torch-fp16", _tiny(), cuda_graphs=True)


# -- GPU: run when a machine with CUDA is lent ------------------------------------------------------------
@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("name, options", [("torch-fp16", {}), ("torch-compile", {}),
                                           ("torch-fp16", {"compile": True, "cuda_graphs": False})])
@pytest.mark.parametrize("model_name", ["trained", "zero_shot_tiny"])
def test_gpu_fast_paths_match_fp32(group_photo, name, options, model_name):
    frame = cv2.imread(str(group_photo))
    model = _trained if model_name == "trained" else lambda: _tiny(model_name)
    ref = Predictor(model(), device="cuda", backend="torch").predict(frame, GROUP_BOXES)
    fast = Predictor(model(), device="cuda", backend=name, **options)
    assert fast.backend.precision == "fp16"
    for _ in range(3):  # compiled paths: the first calls compile / record graphs
        got = fast.predict(frame, GROUP_BOXES)
    dp, _ = _max_diff(ref, got)
    assert dp <= 1e-2


@pytest.mark.gpu
@gpu
def test_gpu_onnxruntime_cuda_provider_matches_torch(group_photo):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without the CUDA provider (pip install onnxruntime-gpu)")
    frame = cv2.imread(str(group_photo))
    ref = Predictor(_trained(), device="cuda", backend="torch").predict(frame, GROUP_BOXES)
    got = Predictor(_trained(), device="cuda", backend="onnxruntime").predict(frame, GROUP_BOXES)
    assert _max_diff(ref, got)[0] <= 1e-3


# -- TensorRT: run when TensorRT is importable on a CUDA machine --------------------------------------------
tensorrt = pytest.mark.skipif(not (HAS_TRT and HAS_CUDA), reason="needs TensorRT and a CUDA device")


@pytest.mark.tensorrt
@tensorrt
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_tensorrt_matches_onnxruntime(precision, group_photo):
    frame = cv2.imread(str(group_photo))
    ref = Predictor(_trained(), backend="onnxruntime").predict(frame, GROUP_BOXES)
    trt = Predictor(_trained(), device="cuda", backend="tensorrt", precision=precision, max_batch=3, opt_batch=2)
    got = trt.predict(frame, GROUP_BOXES)  # 8 persons > max_batch 3: runs in chunks of 3, 3, 2
    assert [p.index for p in got] == [p.index for p in ref]
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b.probs, a.probs, rtol=5e-3, atol=5e-3)


@pytest.mark.tensorrt
@tensorrt
def test_tensorrt_second_start_hits_the_engine_cache(monkeypatch):
    create_backend("tensorrt", _tiny(), device="cuda", precision="fp16")
    monkeypatch.setattr("fusion.export.tensorrt_build.build_engine", lambda *a, **k: pytest.fail("built again"))
    backend = create_backend("tensorrt", _tiny(), device="cuda", precision="fp16")
    assert backend.encode_body(torch.randn(3, 3, 64, 64, device="cuda")).shape == (3, 32)
    with pytest.raises(InputError, match="the profile takes"):
        backend.encode_body(torch.randn(3, 3, 32, 32, device="cuda"))


@pytest.mark.tensorrt
@tensorrt
def test_tensorrt_refuses_engine_from_another_tensorrt(tmp_path):
    import json

    from fusion.export.tensorrt import REQUIRED, read_engine_file, require_tensorrt, write_engine_file

    backend = create_backend("tensorrt", _tiny(), device="cuda", precision="fp16")
    header, blob = read_engine_file(backend.runners["body"].path)
    write_engine_file(tmp_path / "body.fp16.engine", {**header, "tensorrt_version": "9.9.9"}, blob)
    from fusion.backends.tensorrt_runner import TensorRTRunner

    with pytest.raises(InputError, match="TensorRT 9.9.9 and this is TensorRT"):
        TensorRTRunner(tmp_path / "body.fp16.engine", "cuda")
    # The header is plain JSON with every required key, and the planted file differs only in its version ...
    assert json.loads(json.dumps(header)) == header and set(REQUIRED) <= set(header)
    planted, planted_blob = read_engine_file(tmp_path / "body.fp16.engine")
    assert planted == {**header, "tensorrt_version": "9.9.9"} and planted_blob == blob
    # ... while the real engine names this TensorRT and loads: the version alone is what was refused.
    assert header["tensorrt_version"] == require_tensorrt().__version__
    assert TensorRTRunner(backend.runners["body"].path, "cuda").header == header
