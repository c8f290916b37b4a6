"""Shared fixtures: paths to the real assets in ../shared (tests skip with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

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


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Each test run gets its own emomon cache, so cache behaviour is tested, not inherited."""
    monkeypatch.setenv("EMOMON_CACHE", str(tmp_path_factory.getbasetemp() / "emomon-cache"))
