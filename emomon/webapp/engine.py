"""The app's shared models and per-session pipelines.

Models load once per process and are shared by every browser session: one person detector and one
`Predictor` per emotion model (the start model at once, others allowed by `--extra-model` on first use).
What belongs to a session is small and cheap: its own tracker (the detector keeps one tracker per source
key, so a session is just a key), its smoothing state and its reuse caches (an `EmotionPipeline` each).

One lock serialises model calls, one frame at a time: on a 2-core CPU two frames in parallel are no faster
than one after the other, and frame-sized turns keep a long video job from starving a webcam session.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from detector.config import DetectorConfig
from emomon.errors import InputError
from emomon.pipeline import EmotionPipeline, FrameResult, PipelineConfig, ReuseConfig
from emomon.smoothing import SmoothingConfig

log = logging.getLogger(__name__)

# One source of truth for defaults: the page starts from what `emomon run` uses.
_DET, _REUSE, _SMOOTH = DetectorConfig(), ReuseConfig(), SmoothingConfig()


@dataclass
class AppConfig:
    """Everything `emomon app` is started with; the page's controls start from these values."""

    emotion_model: str = "zero-shot"
    extra_models: list[str] = field(default_factory=list)  # offered in the page, loaded on first use
    device: str = "cpu"
    seed: int = 0
    scene_weights: str | None = None
    body_weights: str | None = None
    backend: str = "torch"
    detector_weights: str = _DET.weights
    conf: float = _DET.conf
    iou: float = _DET.iou
    imgsz: int = _DET.imgsz
    half: bool = _DET.half
    tracker: str = _DET.tracker
    min_box_size: int = _DET.min_box_size
    smoothing: str = _SMOOTH.mode
    smooth_alpha: float = _SMOOTH.alpha
    smooth_window: int = _SMOOTH.window
    scene_every: int = _REUSE.scene_every
    scene_change: float = _REUSE.scene_change
    refresh_every: int = _REUSE.refresh_every
    top_k: int = 3
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    max_upload_mb: int = 200
    server_sources: bool = False     # let users type a server-side path or URL in the Video tab
    webcam_sessions: int = 2         # webcam streams served at once; more wait in the queue
    webcam_time_limit: int = 600     # seconds one stream may hold its slot before it is re-queued
    video_seconds: float = 30.0      # default "process the first N seconds" of a video (0 = all)

    @classmethod
    def from_args(cls, args) -> AppConfig:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in vars(args).items() if k in names and v is not None}
        if getattr(args, "every_frame", False):
            values["scene_every"] = values["refresh_every"] = 1
        return cls(**values)


@dataclass(frozen=True)
class Settings:
    """The page's per-request settings."""

    conf: float = _DET.conf
    top_k: int = 3
    smoothing: float = round(1.0 - _SMOOTH.alpha, 2)  # 0 = raw per-frame scores; towards 1 = steadier
    scene_every: int = _REUSE.scene_every
    refresh_every: int = _REUSE.refresh_every
    model: str = "zero-shot"

    def pipeline_config(self, base: AppConfig) -> PipelineConfig:
        try:
            reuse = ReuseConfig(scene_every=int(self.scene_every), scene_change=base.scene_change,
                                refresh_every=int(self.refresh_every))
            strength = float(self.smoothing)
            smoothing = (SmoothingConfig("none") if strength <= 0 else
                         SmoothingConfig("ema", alpha=max(0.05, min(1.0, 1.0 - strength))))
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad setting: {exc}") from None
        return PipelineConfig(reuse=reuse, smoothing=smoothing, top_k=max(1, min(10, int(self.top_k))))

    @classmethod
    def defaults(cls, config: AppConfig) -> Settings:
        strength = 0.0 if config.smoothing == "none" else round(1.0 - config.smooth_alpha, 2)
        return cls(conf=config.conf, top_k=config.top_k, smoothing=strength, scene_every=config.scene_every,
                   refresh_every=config.refresh_every, model=config.emotion_model)


@dataclass
class ModelInfo:
    spec: str
    description: str            # fusion.describe_model's line
    kind: str                   # "zero-shot", "checkpoint", "random" or "pretrained"
    predictor: object = None


def model_kind(model) -> str:
    if getattr(model, "checkpoint_path", None):
        return "checkpoint"
    if getattr(model, "random_weights", False):
        return "random"
    if str(getattr(model, "model_name", "")).startswith("zero_shot"):
        return "zero-shot"
    return "pretrained"


class SessionDetector:
    """One session's view of the shared detector: its own tracker (a source key) and confidence threshold."""

    def __init__(self, shared, key: str, lock: threading.RLock, conf: float | None = None):
        self.shared, self.key, self.lock = shared, key, lock
        self.conf = conf
        self._keyed = "source" in inspect.signature(shared.track).parameters
        if not self._keyed:
            log.warning("this detector keeps one tracker for all sources: sessions share track ids")

    @contextmanager
    def _settings(self):
        config = self.shared.config
        old = config.conf
        if self.conf is not None:
            config.conf = float(self.conf)
        try:
            yield
        finally:
            config.conf = old

    def track(self, frame: np.ndarray):
        with self.lock, self._settings():
            return self.shared.track(frame, source=self.key) if self._keyed else self.shared.track(frame)

    def detect(self, frame: np.ndarray):
        with self.lock, self._settings():
            return self.shared.detect(frame)

    def reset(self) -> None:
        with self.lock:
            if self._keyed:
                self.shared.reset(self.key)
            else:
                self.shared.reset()


class SessionPipeline(EmotionPipeline):
    """An `EmotionPipeline` over shared models whose per-frame work holds the engine's lock."""

    def __init__(self, engine: AppEngine, settings: Settings, key: str):
        self.engine, self.key, self.model_spec = engine, key, settings.model
        info = engine.model(settings.model)
        detector = SessionDetector(engine.detector, key, engine.lock, settings.conf)
        super().__init__(detector, info.predictor, settings.pipeline_config(engine.config))

    def configure(self, settings: Settings) -> None:
        """Apply changed settings between frames; tracks and caches survive unless smoothing's kind changes."""
        new = settings.pipeline_config(self.engine.config)
        if new.smoothing.mode != self.config.smoothing.mode:
            self.smoother.reset()
        self.config = new
        self.smoother.config = new.smoothing
        self.detector.conf = settings.conf

    def process(self, index: int, time_s: float, image: np.ndarray) -> FrameResult:
        with self.engine.lock:
            return super().process(index, time_s, image)

    def close(self) -> None:
        """Free this session's tracker in the shared detector."""
        self.detector.reset()


class AppEngine:
    """Loads the models (once per process) and hands out per-session pipelines."""

    def __init__(self, config: AppConfig, detector=None):
        self.config = config
        self.lock = threading.RLock()
        self._load_lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}
        self._keys = itertools.count(1)
        self.cancel: dict[str, threading.Event] = {}  # session hash -> "stop the running video" flag
        if detector is None:
            from detector import DetectorConfig, PersonDetector

            weights = config.detector_weights
            if config.backend == "tensorrt":  # as `emomon run`: the detector runs as Ultralytics' engine export
                from fusion.detector_export import detector_weights_for_backend

                weights = detector_weights_for_backend(weights, "tensorrt", imgsz=config.imgsz, device=config.device)
            detector = PersonDetector(DetectorConfig(
                weights=weights, conf=config.conf, iou=config.iou, imgsz=config.imgsz,
                device=config.device, half=config.half, tracker=config.tracker,
                min_box_size=config.min_box_size))
        self.detector = detector
        self.model(config.emotion_model)  # the start model loads now: a bad spec fails before serving

    @property
    def model_choices(self) -> list[str]:
        return list(dict.fromkeys([self.config.emotion_model, *self.config.extra_models]))

    def loaded(self, spec: str) -> bool:
        return spec in self._models

    def model(self, spec: str) -> ModelInfo:
        """The model for `spec`, loaded on first use; only the start model and `--extra-model`s are allowed."""
        info = self._models.get(spec)
        if info is not None:
            return info
        if spec not in self.model_choices:
            raise InputError(f"emotion model '{spec}' is not offered by this server "
                             f"(start it with --extra-model {spec})")
        with self._load_lock:
            if spec not in self._models:
                from fusion import Predictor, describe_model, load_emotion_model

                c = self.config
                t = time.perf_counter()
                model = load_emotion_model(spec, device=c.device, seed=c.seed, scene_weights=c.scene_weights,
                                           body_weights=c.body_weights)
                predictor = Predictor(model, device=c.device, backend=c.backend)
                self._models[spec] = ModelInfo(spec, describe_model(model), model_kind(model), predictor)
                log.info("emotion model %s loaded in %.1f s: %s", spec, time.perf_counter() - t,
                         self._models[spec].description)
        return self._models[spec]

    def pipeline(self, settings: Settings, prefix: str = "s") -> SessionPipeline:
        """A fresh pipeline with its own tracker key; `close()` it when done."""
        return SessionPipeline(self, settings, f"{prefix}{next(self._keys)}")

    def detector_text(self) -> str:
        d = self.detector
        weights = getattr(getattr(d, "config", None), "weights", "?")
        return f"{weights} on {self.config.device}"
