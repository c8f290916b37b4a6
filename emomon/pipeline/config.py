"""The pipeline's settings, with their defaults in one place (CLI flags and the app read them from here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector import DetectorConfig
from emomon.pipeline.smoothing import SmoothingConfig


@dataclass
class ReuseConfig:
    """Work reuse between frames. Both `*_every` set to 1 give the every-frame run.

    Defaults chosen on street_crossing.mp4 with the trained test model (README, "work reuse"): the fastest
    setting measured whose outputs stay within the accuracy guard of the fp32 every-frame run (top-1 agreement
    >= 95%; benchmarks/results/cpu-realtime-street/). tests/test_reuse_tolerance.py holds them to it.
    """

    scene_every: int = 12       # reuse the scene embedding for up to this many frames...
    scene_change: float = 0.06  # ...unless the grey thumbnail changed more than this (mean abs, 0-1)
    refresh_every: int = 8      # recompute a tracked person every this many frames...
    refresh_iou: float = 0.7    # ...or sooner when its box moved (IoU with the last computed box below this)

    def __post_init__(self):
        if self.scene_every < 1 or self.refresh_every < 1:
            raise ValueError("scene_every and refresh_every must be >= 1 (1 = every frame)")

    @classmethod
    def every_frame(cls) -> ReuseConfig:
        return cls(scene_every=1, refresh_every=1)


ANONYMIZE_MODES = ("none", "blur", "pixelate", "box")


@dataclass
class PrivacyConfig:
    """What the outputs keep of the people in view (`--anonymize`, `--no-keypoints`). Only the frames that are
    drawn, shown or written are anonymised: the emotion model always sees the original pixels."""

    anonymize: str = "none"     # none | blur | pixelate | box: faces in the annotated video, window and app
    keypoints: bool = True      # body keypoints (pose geometry) in the JSONL records

    def __post_init__(self):
        if self.anonymize not in ANONYMIZE_MODES:
            raise ValueError(f"anonymize must be one of {', '.join(ANONYMIZE_MODES)}, not '{self.anonymize}'")


@dataclass
class PipelineConfig:
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    top_k: int = 3              # emotions per person in records and overlays
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    overlap: bool = True        # emomon run: detect the next frame while this one's emotions and outputs are done


@dataclass
class EmotionModelConfig:
    """Which emotion model to load and how to run it (the `--emotion-model` family of flags)."""

    emotion_model: str = "zero-shot"   # zero-shot | random[:NAME] | a registered name | a checkpoint file
    device: str = "cpu"                # also the detector's device
    seed: int = 0                      # for random weights: same seed, same weights
    scene_weights: str | None = None   # local CLIP weights (offline machines)
    body_weights: str | None = None    # local ResNet-18 weights (offline machines)
    backend: str = "torch"             # torch, torch-compile, onnxruntime, tensorrt (torch-fp16: old alias)
    precision: str = "auto"            # auto | fp32 | bf16 | fp16 | int8 (fusion.backends.precision resolves auto)
    preprocess: str = "auto"           # auto | cpu | device: crops and resizing on the model's device (auto: on CUDA)
    temporal_model: str | None = None  # a trained temporal head (emomon train-temporal): emotions over a track
    labels: str | None = None          # a YAML label file for the zero-shot model (fusion.models.label_file)
    label_window: int = 16             # with labels: frames of a track averaged before the comparison (1 = per frame)


@dataclass
class VlmStageConfig:
    """The VLM slow path (`--vlm`, `--vlm-every`; emomon.pipeline.vlm_stage): off unless a spec is given."""

    spec: str | None = None     # vlm:http://HOST:PORT/v1#MODEL or vlm:hf:PATH
    every_s: float = 10.0       # ask about each track at most once per this many seconds of the stream
    queue: int = 8              # questions waiting for a worker; a track that finds it full is asked later
    cache: str | None = None    # a folder of answers (keyed by image, box, model, prompt); None: no cache
    client: object | None = None  # a fusion.vlm.VlmConfig (timeouts, retries, concurrency); None: its defaults


@dataclass
class MonitorConfig:
    """Everything `build_pipeline` needs: the detector, the emotion model and the per-frame pipeline."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    model: EmotionModelConfig = field(default_factory=EmotionModelConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    vlm: VlmStageConfig = field(default_factory=VlmStageConfig)
