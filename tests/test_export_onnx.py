"""ONNX export of the tiny models: named graphs with a dynamic batch, ONNX Runtime parity with torch at
batch 1, 7 and 32, metadata round trip, the export cache, fp16/int8 conversions, bad files, `emomon export`."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from emomon.cli import main
from fusion import create_model
from fusion.export import (
    INPUTS,
    OPSET,
    OUTPUTS,
    OnnxFileError,
    check_metadata,
    ensure_onnx,
    example_inputs,
    graph_module,
    read_onnx_metadata,
    weights_sha256,
)
from fusion.models.preprocess import Preprocess

MODELS = ("two_stream_tiny", "zero_shot_tiny")


def _tiny(name: str):
    torch.manual_seed(0)
    return create_model(name, pretrained=False).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both tiny models, exported once into the session's emomon cache (the backends find them there)."""
    cache = tmp_path_factory.getbasetemp() / "emomon-cache" / "onnx"
    out = {}
    for name in MODELS:
        model = _tiny(name)
        out[name] = (model, ensure_onnx(model, cache_dir=cache))
    return out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", MODELS)
def test_three_graphs_with_named_tensors_and_dynamic_batch(exported, name):
    model, files = exported[name]
    assert sorted(files) == ["body", "heads", "scene"]
    for graph, path in files.items():
        proto = onnx.load(str(path))
        assert [i.name for i in proto.graph.input] == list(INPUTS[graph])
        assert [o.name for o in proto.graph.output] == list(OUTPUTS[graph])
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
        for value in [*proto.graph.input, *proto.graph.output]:
            assert isinstance(_dims(value)[0], str), f"{graph}:{value.name} batch axis is not dynamic"
    assert _dims(onnx.load(str(files["body"])).graph.input[0])[1:] == [3, 64, 64]
    assert _dims(onnx.load(str(files["heads"])).graph.output[0])[1:] == [26]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_onnxruntime_matches_torch(exported, name, batch):
    model, files = exported[name]
    torch.manual_seed(batch)
    for graph, path in files.items():
        args = example_inputs(model, graph, batch=batch)
        with torch.no_grad():
            ref = graph_module(model, graph)(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = _session(path).run(None, {n: a.numpy() for n, a in zip(INPUTS[graph], args)})
        for out_name, g, r in zip(OUTPUTS[graph], got, ref):
            assert g.shape == tuple(r.shape)
            assert np.abs(g - r.numpy()).max() <= 1e-4, f"{graph}:{out_name} at batch {batch}"
    probs = got[0]  # heads: probabilities are baked in
    if name.startswith("zero_shot"):
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # softmax
    assert probs.min() >= 0 and probs.max() <= 1


@pytest.mark.parametrize("name", MODELS)
def test_metadata_round_trips(exported, name):
    model, files = exported[name]
    weights = weights_sha256(model)
    for graph, path in files.items():
        meta = read_onnx_metadata(path)
        assert meta["graph"] == graph and meta["precision"] == "fp32" and meta["opset"] == str(OPSET)
        assert meta["model_name"] == name and meta["model_class"] == type(model).__name__
        assert json.loads(meta["config"]) == json.loads(json.dumps(dataclasses.asdict(model.config)))
        assert meta["scene_fit"] == model.config.scene_fit == model.scene_preprocess.resize
        for side in ("body", "scene"):
            pre = json.loads(meta[f"{side}_preprocess"])
            assert Preprocess(pre["size"], tuple(pre["mean"]), tuple(pre["std"]), pre["resize"]) == \
                getattr(model, f"{side}_preprocess")
        assert meta["weights_sha256"] == weights and len(weights) == 64
        assert meta["emomon_version"] and meta["model_hash"]
        check_metadata(meta, path, model=model, graph=graph, precision="fp32")


def test_scene_fit_is_recorded_and_checked(tmp_path):
    """The fit the scene graph's inputs were made with travels in the metadata; a model with another fit (or a
    file that says another fit) is refused by name, and files written before `emomon.scene_fit` existed are
    read from their scene preprocessing."""
    torch.manual_seed(0)
    boxed = create_model("two_stream_tiny", pretrained=False, scene_fit="letterbox").eval()
    files = ensure_onnx(boxed, cache_dir=tmp_path / "onnx")
    meta = read_onnx_metadata(files["scene"])
    assert meta["scene_fit"] == "letterbox" and json.loads(meta["config"])["scene_fit"] == "letterbox"
    assert json.loads(meta["scene_preprocess"])["resize"] == "letterbox"
    check_metadata(meta, files["scene"], model=boxed, graph="scene")
    squashed = _tiny("two_stream_tiny")  # the same weights, the default fit
    with pytest.raises(OnnxFileError, match="exported for scene_fit='letterbox', the model uses 'squash'"):
        check_metadata(meta, files["scene"], model=squashed)
    with pytest.raises(OnnxFileError, match="scene_fit='center_crop'"):
        check_metadata({**meta, "scene_fit": "center_crop"}, files["scene"], model=boxed)  # hash alone would pass
    old = {k: v for k, v in meta.items() if k != "scene_fit"}
    check_metadata(old, files["scene"], model=boxed)
    old["scene_preprocess"] = json.dumps({**json.loads(meta["scene_preprocess"]), "resize": "shortest_center_crop"})
    with pytest.raises(OnnxFileError, match="exported for scene_fit='center_crop'"):
        check_metadata(old, files["scene"], model=boxed)


def test_weights_hash_sees_one_changed_weight():
    model = _tiny("two_stream_tiny")
    before = weights_sha256(model)
    with torch.no_grad():
        model.cat_head.bias[3] += 1e-3
    assert weights_sha256(model) != before


def test_cache_hit_does_not_export_again(exported, tmp_path_factory, monkeypatch):
    model, files = exported["two_stream_tiny"]
    cache = tmp_path_factory.getbasetemp() / "emomon-cache" / "onnx"
    monkeypatch.setattr("fusion.export.onnx.export_onnx", lambda *a, **k: pytest.fail("exported again"))
    assert ensure_onnx(model, cache_dir=cache) == files


def test_cache_converts_cached_fp32_to_int8_without_exporting(exported, tmp_path_factory, monkeypatch, group_photo):
    import cv2

    model, files = exported["two_stream_tiny"]
    cache = tmp_path_factory.getbasetemp() / "emomon-cache" / "onnx"
    monkeypatch.setattr("fusion.export.onnx.export_onnx", lambda *a, **k: pytest.fail("exported again"))
    got = ensure_onnx(model, cache_dir=cache, graphs=("body",), precision="int8",
                      calibration=[cv2.imread(str(group_photo))])
    assert got == {"body": files["body"].with_name("body.int8.onnx")}
    assert read_onnx_metadata(got["body"])["precision"] == "int8"
    assert ensure_onnx(model, cache_dir=cache, graphs=("body",), precision="int8") == got  # now cached


def test_cache_key_follows_the_weights(exported, tmp_path):
    model = _tiny("two_stream_tiny")
    other = _tiny("two_stream_tiny")
    with torch.no_grad():
        other.cat_head.bias.zero_()
    from fusion.export import cache_dir_for

    assert cache_dir_for(model, tmp_path) != cache_dir_for(other, tmp_path)
    assert cache_dir_for(model, tmp_path) == cache_dir_for(_tiny("two_stream_tiny"), tmp_path)


# -- refusing bad files ---------------------------------------------------------------------------------
def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_bad_onnx_files_are_refused(exported, tmp_path):
    model, files = exported["two_stream_tiny"]
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not a protobuf" * 100)
    with pytest.raises(OnnxFileError) as info:
        read_onnx_metadata(garbage)
    assert "not a readable ONNX file" in _one_line(info)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(files["scene"].read_bytes()[:5000])
    with pytest.raises(OnnxFileError):
        read_onnx_metadata(truncated)
    foreign = tmp_path / "foreign.onnx"  # a valid ONNX file that emomon did not export
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])],
                                                            "g", [x], [y])), str(foreign))
    with pytest.raises(OnnxFileError) as info:
        read_onnx_metadata(foreign)
    assert "not an emomon export" in _one_line(info)
    with pytest.raises(OnnxFileError, match="not found"):
        read_onnx_metadata(tmp_path / "missing.onnx")
    meta = read_onnx_metadata(files["body"])
    with pytest.raises(OnnxFileError, match="'body' graph, expected 'scene'"):
        check_metadata(meta, files["body"], graph="scene")
    zero_shot = exported["zero_shot_tiny"][0]
    with pytest.raises(OnnxFileError) as info:
        check_metadata(meta, files["body"], model=zero_shot)
    assert "exported from another model or other weights" in _one_line(info)


# -- reduced precision ----------------------------------------------------------------------------------
def _elem_types(proto):
    return {v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]}


def test_fp16_conversion_keeps_float32_io_and_metadata(exported, tmp_path):
    from fusion.export.precision import to_fp16

    model, files = exported["two_stream_tiny"]
    for graph in ("body", "heads"):
        path = to_fp16(files[graph], tmp_path / f"{graph}.fp16.onnx")
        proto = onnx.load(str(path))
        assert _elem_types(proto) == {onnx.TensorProto.FLOAT}
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
        meta = read_onnx_metadata(path)
        assert meta["precision"] == "fp16" and meta["converter"]
        check_metadata(meta, path, model=model, graph=graph, precision="fp16")  # same model hash


def test_int8_is_symmetric_qdq_calibrated_on_frames(exported, tmp_path, group_photo):
    import cv2

    from fusion.export.precision import to_int8

    model, files = exported["two_stream_tiny"]
    frame = cv2.imread(str(group_photo))
    path = to_int8(files["body"], tmp_path / "body.int8.onnx", frames=[frame, frame[:, ::-1].copy()])
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    zero_points = [t for t in proto.graph.initializer if "zero_point" in t.name]
    assert zero_points and all(not onnx.numpy_helper.to_array(t).any() for t in zero_points)  # symmetric
    meta = read_onnx_metadata(path)
    assert meta["precision"] == "int8" and int(meta["calibration_images"]) >= 2
    x = example_inputs(model, "body", batch=3)[0]
    got = _session(path).run(None, {"body": x.numpy()})[0]
    with torch.no_grad():
        ref = model.encode_body(x).numpy()
    cosine = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cosine.min() > 0.95


def test_int8_heads_are_fp16_but_labelled_int8(exported, tmp_path):
    from fusion.export.precision import to_int8

    path = to_int8(exported["two_stream_tiny"][1]["heads"], tmp_path / "heads.int8.onnx", frames=[])
    meta = read_onnx_metadata(path)
    assert meta["precision"] == "int8" and meta["compute_precision"] == "fp16"


# -- the command ----------------------------------------------------------------------------------------
def test_emomon_export_onnx_writes_and_prints_files(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", "--emotion-model", "random:two_stream_tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for graph in ("body", "scene", "heads"):
        assert (out / f"{graph}.onnx").is_file() and f"{graph}.onnx" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "onnx" and manifest["precision"] == "fp32" and manifest["opset"] == OPSET
    assert len(manifest["files"]) == 3 and "RANDOM" in manifest["model"]


@pytest.mark.parametrize("argv, expected", [
    (["--format", "tensorrt"], "pip install 'emomon[trt]'"),
    (["--precision", "int8", "--calibration", "/nonexistent/frames"], "no readable calibration images"),
    (["--include-detector", "--detector-weights", "/nonexistent/yolo.pt"], "detector weights"),
    (["--emotion-model", "no-such-model"], "unknown emotion model"),
])
def test_emomon_export_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # TensorRT absent, even on a machine that has it
    args = ["export", "--emotion-model", "random:two_stream_tiny", "--out", str(tmp_path / "x"), *argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("emomon: error: ") and expected in err[-1]
