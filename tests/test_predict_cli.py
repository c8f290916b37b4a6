"""`emomon predict` end to end through the console entry point."""

from __future__ import annotations

import json
import subprocess
import sys

from fusion import EMOTIC_CATEGORIES


def emomon(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "emomon", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_predict_random_real_size_model_prints_json(group_photo, yolo_weights):
    proc = emomon("predict", str(group_photo), "--emotion-model", "random", "--json",
                  "--detector-weights", str(yolo_weights))
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM WEIGHTS" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["persons"], "at least one person"
    for person in out["persons"]:
        assert list(person["emotions"]) == list(EMOTIC_CATEGORIES)
        assert all(1 <= v <= 10 for v in person["vad"].values())
    again = emomon("predict", str(group_photo), "--emotion-model", "random", "--json",
                   "--detector-weights", str(yolo_weights))
    assert json.loads(again.stdout)["persons"] == out["persons"], "seeded: identical output"


def test_predict_with_boxes_and_tiny_model(group_photo):
    proc = emomon("predict", str(group_photo), "--emotion-model", "random:two_stream_tiny",
                  "--boxes", "10,10,200,500", "400,20,600,540")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("#") == 2


def test_missing_and_unreadable_images_exit_2(tmp_path):
    proc = emomon("predict", str(tmp_path / "nope.jpg"), "--emotion-model", "random:two_stream_tiny")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("emomon: error: cannot read image")
    text = tmp_path / "photo.jpg"
    text.write_text("not an image")
    proc = emomon("predict", str(text), "--emotion-model", "random:two_stream_tiny")
    assert proc.returncode == 2 and "not a decodable image" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_emotion_model_exits_2(group_photo):
    proc = emomon("predict", str(group_photo), "--emotion-model", "no-such-model")
    assert proc.returncode == 2 and "unknown emotion model" in proc.stderr


def test_predict_backend_onnxruntime_matches_torch(group_photo, yolo_weights, trained_model_path, tmp_path,
                                                  monkeypatch):
    """`--backend` reaches predict: onnxruntime gives the same persons and probabilities as torch."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMOMON_CACHE", str(cache))  # the subprocess's ONNX cache: shows which backend ran

    def predict(backend):
        proc = emomon("predict", str(group_photo), "--emotion-model", str(trained_model_path), "--json",
                      "--detector-weights", str(yolo_weights), "--backend", backend, "--precision", "fp32")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["persons"]

    torch_persons = predict("torch")  # fp32 both: `auto` would give torch bf16 towers on a CPU with native bf16
    assert not (cache / "onnx").exists(), "torch exports nothing"
    onnx_persons = predict("onnxruntime")
    assert sorted(p.name for p in cache.glob("onnx/*/*.onnx")) == ["body.onnx", "heads.onnx", "scene.onnx"], \
        "the onnxruntime backend exported the model and ran it"
    assert len(torch_persons) >= 2, "the group photo has several persons"
    assert [p["box"] for p in onnx_persons] == [p["box"] for p in torch_persons]
    assert [p["score"] for p in onnx_persons] == [p["score"] for p in torch_persons]
    for ours, ref in zip(onnx_persons, torch_persons):
        assert list(ours["emotions"]) == list(EMOTIC_CATEGORIES)
        for name in EMOTIC_CATEGORIES:
            assert abs(ours["emotions"][name] - ref["emotions"][name]) <= 1e-4, (ours["person"], name)
        for name, value in ref["vad"].items():
            assert abs(ours["vad"][name] - value) <= 1e-3, (ours["person"], name)
    # The trained model's outputs depend on the person: equal outputs would not test the backend at all.
    assert len({tuple(p["emotions"].values()) for p in torch_persons}) == len(torch_persons)


def test_predict_unknown_backend_exits_2(group_photo, trained_model_path):
    proc = emomon("predict", str(group_photo), "--emotion-model", str(trained_model_path),
                  "--boxes", "10,10,200,500", "--backend", "no-such-backend")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [proc.stderr.strip().splitlines()[-1]], proc.stderr
    assert errors[0].startswith("emomon: error: unknown backend 'no-such-backend'"), proc.stderr
