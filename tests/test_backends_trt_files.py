"""TensorRT engine files, cache keys, version/GPU checks and the build plan: everything that needs no
TensorRT. The parts that do are in test_backends.py under the `tensorrt` mark."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from emomon.kernel import InputError
from fusion import create_backend, create_model
from fusion.export.tensorrt import (
    MAGIC,
    EngineFileError,
    EngineMismatchError,
    Profile,
    TensorRTUnavailable,
    build_plan,
    check_compatible,
    default_profiles,
    engine_cache_key,
    engine_cache_path,
    pack_engine,
    read_engine_file,
    read_engine_header,
    require_tensorrt,
    write_engine_file,
)

HEADER = {"graph": "body", "precision": "fp16", "tensorrt_version": "10.13.0.35", "gpu_name": "NVIDIA H100",
          "compute_capability": "9.0", "onnx_sha256": "ab" * 32, "profile": {"min": 1, "opt": 8, "max": 32},
          "model_name": "two_stream_tiny"}
ENGINE = bytes(range(256)) * 40


def test_header_round_trip(tmp_path):
    path = write_engine_file(tmp_path / "body.fp16.engine", HEADER, ENGINE)
    header, blob = read_engine_file(path)
    assert blob == ENGINE
    assert {k: header[k] for k in HEADER} == HEADER
    assert header["engine_size"] == len(ENGINE) and header["format_version"] == 1
    only, offset = read_engine_header(path)
    assert only == header and offset == path.stat().st_size - len(ENGINE)
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_pack_needs_required_keys():
    with pytest.raises(ValueError, match="lacks"):
        pack_engine({"graph": "body"}, ENGINE)


def _bad_files(tmp_path):
    good = pack_engine(HEADER, ENGINE)
    length = struct.unpack("<I", good[len(MAGIC):len(MAGIC) + 4])[0]

    def with_header(h):
        blob = json.dumps(h).encode()
        return MAGIC + struct.pack("<I", len(blob)) + blob + ENGINE

    return {
        "bare TensorRT plan": b"ftrt" + ENGINE,
        "empty": b"",
        "truncated engine": good[:-10],
        "truncated header": good[:len(MAGIC) + 4 + length // 2],
        "corrupt JSON": MAGIC + struct.pack("<I", 5) + b"{nope" + ENGINE,
        "missing keys": with_header({"graph": "body"}),
        "newer format": with_header({**HEADER, "format_version": 99, "engine_size": len(ENGINE)}),
        "huge header length": MAGIC + struct.pack("<I", 1 << 30) + b"{}",
    }


@pytest.mark.parametrize("case", ["bare TensorRT plan", "empty", "truncated engine", "truncated header",
                                  "corrupt JSON", "missing keys", "newer format", "huge header length"])
def test_bad_engine_files_are_refused_in_one_line(tmp_path, case):
    path = tmp_path / "x.engine"
    path.write_bytes(_bad_files(tmp_path)[case])
    with pytest.raises(EngineFileError) as info:
        read_engine_file(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "emomon export --format tensorrt" in message  # says how to fix it
    assert isinstance(info.value, InputError)  # the CLI maps it to exit 2


def test_missing_engine_file(tmp_path):
    with pytest.raises(EngineFileError, match="not found"):
        read_engine_header(tmp_path / "nope.engine")


def test_cache_key_changes_with_every_part():
    base = dict(onnx_sha256="a" * 64, trt_version="10.13.0", gpu_name="NVIDIA H100 sm9.0", precision="fp16",
                profile=Profile(1, 8, 32))
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base) and len(key) == 20
    for change in (dict(onnx_sha256="b" * 64), dict(trt_version="11.4.0"), dict(gpu_name="NVIDIA L4 sm8.9"),
                   dict(precision="int8"), dict(profile=Profile(1, 8, 64)), dict(profile=Profile(1, 4, 32))):
        assert engine_cache_key(**{**base, **change}) != key, change


def test_cache_path_uses_emomon_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOMON_CACHE", str(tmp_path))
    path = engine_cache_path(None, "two_stream_tiny-body", "fp16", "k" * 20)
    assert path == tmp_path / "tensorrt" / f"two_stream_tiny-body.fp16.{'k' * 20}.engine"


def test_version_and_gpu_mismatch_are_clear(tmp_path):
    header = {**HEADER, "engine_size": len(ENGINE), "format_version": 1}
    check_compatible(header, "10.13.0.35", "NVIDIA H100", "9.0")  # same machine: fine
    with pytest.raises(EngineMismatchError, match=r"TensorRT 10\.13\.0\.35 and this is TensorRT 11\.4\.0.*rebuild"):
        check_compatible(header, "11.4.0", "NVIDIA H100", "9.0", path="e.engine")
    with pytest.raises(EngineMismatchError, match=r"built for NVIDIA H100 \(sm 9\.0\) and this GPU is NVIDIA L4"):
        check_compatible(header, "10.13.0.35", "NVIDIA L4", "8.9")
    with pytest.raises(EngineMismatchError, match="sm 9.1"):
        check_compatible(header, "10.13.0.35", "NVIDIA H100", "9.1")
    with pytest.raises(EngineFileError, match="'body' graph, expected 'scene'"):
        check_compatible(header, "10.13.0.35", "NVIDIA H100", "9.0", graph="scene")
    with pytest.raises(EngineFileError, match="is fp16, expected int8"):
        check_compatible(header, "10.13.0.35", "NVIDIA H100", "9.0", precision="int8")



def test_default_profiles_batch_persons_and_frames():
    profiles = default_profiles(max_batch=4, opt_batch=8, max_scene_batch=2)
    assert profiles["body"] == profiles["heads"] == Profile(1, 4, 4)  # opt is capped at max
    assert profiles["scene"] == Profile(1, 1, 2)
    assert default_profiles()["body"] == Profile(1, 8, 32)

@pytest.mark.parametrize("version, precision, expected", [
    ("10.13.0.35", "fp32", ("fp32", False, False)),
    ("10.13.0.35", "fp16", ("fp32", False, True)),    # TensorRT 10: the FP16 builder flag
    ("10.13.0.35", "int8", ("int8", True, False)),    # explicit Q/DQ, strongly typed
    ("11.4.0.106", "fp32", ("fp32", True, False)),
    ("11.4.0.106", "fp16", ("fp16", True, False)),    # TensorRT 11: fp16 expressed in the graph
    ("11.4.0.106", "int8", ("int8", True, False)),
    ("12.0", "fp16", ("fp16", True, False)),
])
def test_build_plan_by_version(version, precision, expected):
    plan = build_plan(version, precision)
    assert (plan.onnx_precision, plan.strongly_typed, plan.fp16_flag) == expected
    assert plan.tf32 is False


def test_build_plan_refuses_old_tensorrt_and_bad_precision():
    with pytest.raises(InputError, match="TensorRT 8.6.1 is too old"):
        build_plan("8.6.1", "fp16")
    with pytest.raises(InputError, match="unknown precision"):
        build_plan("10.1", "fp8")


@pytest.mark.parametrize("bad", [(0, 1, 4), (2, 1, 4), (1, 8, 4)])
def test_profile_must_be_ordered(bad):
    with pytest.raises(InputError, match="bad batch profile"):
        Profile(*bad)


def test_missing_tensorrt_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(TensorRTUnavailable) as info:
        require_tensorrt()
    assert str(info.value).startswith("TensorRT is not installed: pip install 'emomon[trt]'")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"pip install 'emomon\[trt\]'"):
        create_backend("tensorrt", create_model("two_stream_tiny", pretrained=False), device="cuda")
