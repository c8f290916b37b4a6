"""`emomon predict` end to end through the console entry point."""

from __future__ import annotations

import json
import os

import pytest
from cli_runs import emomon_runs
from conftest import TRAINED_MODEL, shared_file

from fusion import EMOTIC_CATEGORIES


@pytest.fixture(scope="module")
def runs():
    """The single runs of the tests below, two at a time (each mostly waits on its own start-up): name ->
    CompletedProcess."""
    photo, weights = shared_file("data/group_photo.jpg"), shared_file("weights/yolo11n-pose.pt")
    named = {
        "real size": ["predict", photo, "--emotion-model", "random", "--json", "--detector-weights", weights],
        "boxes": ["predict", photo, "--emotion-model", "random:two_stream_tiny", "--boxes", "10,10,200,500",
                  "400,20,600,540"],
        "unknown model": ["predict", photo, "--emotion-model", "no-such-model"],
        "unknown backend": ["predict", photo, "--emotion-model", TRAINED_MODEL, "--boxes", "10,10,200,500",
                            "--backend", "no-such-backend"],
    }
    return dict(zip(named, emomon_runs(list(named.values()))))


def test_predict_random_real_size_model_prints_json(runs):
    proc = runs["real size"]
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM WEIGHTS" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["persons"], "at least one person"
    for person in out["persons"]:
        assert list(person["emotions"]) == list(EMOTIC_CATEGORIES)
        assert all(1 <= v <= 10 for v in person["vad"].values())


def test_random_weights_are_seeded(group_photo, capsys):
    """`--emotion-model random[:NAME]` draws its weights from `--seed`: two runs in one process (where the global
    RNG has moved on between them) print the same persons; another seed, other outputs. The tiny model: the
    seeding is the same code for every size, and the real-size model's run is the test above."""
    from emomon.cli import main

    def persons(*extra):
        assert main(["predict", str(group_photo), "--emotion-model", "random:two_stream_tiny", "--json",
                     "--boxes", "10,10,200,500", "400,20,600,540", *extra]) == 0
        return json.loads(capsys.readouterr().out)["persons"]

    first = persons()
    assert len(first) == 2 and persons() == first, "seeded: identical output"
    assert persons("--seed", "1") != first, "the seed chooses the weights"


def test_predict_with_boxes_and_tiny_model(runs):
    proc = runs["boxes"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("#") == 2


def test_missing_and_unreadable_images_exit_2(tmp_path):
    text = tmp_path / "photo.jpg"
    text.write_text("not an image")
    missing, unreadable = emomon_runs([["predict", tmp_path / "nope.jpg", "--emotion-model", "random:two_stream_tiny"],
                                       ["predict", text, "--emotion-model", "random:two_stream_tiny"]])
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("emomon: error: cannot read image")
    assert unreadable.returncode == 2 and "not a decodable image" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


def test_unknown_emotion_model_exits_2(runs):
    proc = runs["unknown model"]
    assert proc.returncode == 2 and "unknown emotion model" in proc.stderr


def test_predict_backend_onnxruntime_matches_torch(group_photo, yolo_weights, trained_model_path, tmp_path):
    """`--backend` reaches predict: onnxruntime gives the same persons and probabilities as torch."""
    # Both runs side by side, each with its own emomon cache: the ONNX files in it show which backend ran.
    # fp32 both: `auto` would give torch bf16 towers on a CPU with native bf16.
    runs = [(["predict", group_photo, "--emotion-model", trained_model_path, "--json", "--detector-weights",
              yolo_weights, "--backend", backend, "--precision", "fp32"],
             {**os.environ, "EMOMON_CACHE": str(tmp_path / backend)}) for backend in ("torch", "onnxruntime")]
    procs = emomon_runs(runs)
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    torch_persons, onnx_persons = (json.loads(proc.stdout)["persons"] for proc in procs)
    assert not (tmp_path / "torch" / "onnx").exists(), "torch exports nothing"
    assert sorted(p.name for p in (tmp_path / "onnxruntime").glob("onnx/*/*.onnx")) == [
        "body.onnx", "heads.onnx", "scene.onnx"], "the onnxruntime backend exported the model and ran it"
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


def test_predict_unknown_backend_exits_2(runs):
    proc = runs["unknown backend"]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [proc.stderr.strip().splitlines()[-1]], proc.stderr
    assert errors[0].startswith("emomon: error: unknown backend 'no-such-backend'"), proc.stderr
