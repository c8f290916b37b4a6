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
