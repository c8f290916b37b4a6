"""Shared fixtures: paths to the real assets in ../shared (tests skip with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The tiny two-stream model trained on the synthetic set (tests/assets/make_test_model.py): its outputs depend
# on the input, unlike random weights, so tests about outputs (reuse, parity, batching, order) use it.
TRAINED_MODEL = ROOT / "tests" / "assets" / "trained_tiny.pt"

# Never reach for the network from tests: hub libraries fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (the ../shared assets are not here)")
    return path


@pytest.fixture
def group_photo() -> Path:
    return shared_file("data/group_photo.jpg")


@pytest.fixture
def street_video() -> Path:
    return shared_file("data/street_crossing.mp4")


@pytest.fixture
def yolo_weights() -> Path:
    return shared_file("weights/yolo11n-pose.pt")


@pytest.fixture
def trained_model_path() -> Path:
    return TRAINED_MODEL


@pytest.fixture
def trained_model():
    """A fresh copy of the trained test model (a backend may convert the weights it is given)."""
    from fusion import load_checkpoint

    return load_checkpoint(TRAINED_MODEL).eval()


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Each test run gets its own emomon cache, so cache behaviour is tested, not inherited."""
    monkeypatch.setenv("EMOMON_CACHE", str(tmp_path_factory.getbasetemp() / "emomon-cache"))
