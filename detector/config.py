"""Detector settings, one dataclass (CLI flags map onto it one to one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DetectorConfig:
    weights: str = "yolo11n-pose.pt"   # an Ultralytics name (downloaded once) or a local .pt/.onnx/.engine
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str = "cpu"
    half: bool = False                 # fp16 inference; only honoured on CUDA
    tracker: str = "bytetrack.yaml"    # or "botsort.yaml" (Ultralytics' trackers)
    min_box_size: int = 16             # persons thinner or shorter than this (pixels) are skipped
    max_det: int = 100
