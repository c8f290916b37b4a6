"""Detector settings in one dataclass, so CLI flags, the app and benchmarks map onto it one to one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DetectorConfig:
    """What `PersonDetector` loads and how it runs.

    `weights` is an Ultralytics release name (downloaded once into Ultralytics' cache) or a local file;
    exported `.onnx`/`.engine` files go through the same `YOLO(path)` call as `.pt` checkpoints.
    `.pt` checkpoints load weights-only (an allowlist of model classes, no code can run); `trust_weights`
    loads a trusted file that needs more with full unpickling (`--trust-detector-weights`).
    """

    weights: str = "yolo11n-pose.pt"
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str = "cpu"              # "cpu", "cuda", "cuda:0", ...
    half: bool = False               # fp16 inference; only honoured on CUDA
    tracker: str = "bytetrack.yaml"  # or "botsort.yaml", or a path to a tracker YAML of either kind
    min_box_size: int = 16           # persons thinner or shorter than this (pixels) are skipped
    max_det: int = 100
    trust_weights: bool = False      # full unpickling of .pt weights (can run code): trusted files only
    runtime: str = "auto"            # auto | torch | openvino | onnxruntime | tensorrt (emomon.pipeline.build picks)
    precision: str = "auto"          # `--precision`: auto | fp32 | bf16 | fp16 (resolved by emomon.pipeline.build)
