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
from dataclasses import dataclass

import numpy as np

from emomon.kernel import InputError
from emomon.pipeline import EmotionPipeline, FrameResult, build_detector, build_predictor
from emomon.pipeline.temporal_stage import build_temporal_stage
from emomon.webapp.config import AppConfig, Settings

log = logging.getLogger(__name__)

@dataclass
class ModelInfo:
    spec: str
    description: str            # the model's `source.describe()` line
    kind: str                   # "zero-shot", "checkpoint", "random" or "pretrained" (`model.source.kind`)
    predictor: object = None


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
        super().__init__(detector, info.predictor, settings.pipeline_config(engine.config),
                         temporal=engine.temporal_stage(settings.model, info.predictor))
        self.vlm = engine.vlm_stage(self.labels)  # `--vlm`: the session's own slow path over the shared VLM

    def configure(self, settings: Settings) -> None:
        """Apply changed settings between frames; tracks and caches survive unless smoothing's kind changes."""
        new = settings.pipeline_config(self.engine.config)
        if new.smoothing.mode != self.config.smoothing.mode:
            self.smoother.reset()
        self.config = new
        self.smoother.config = new.smoothing
        self.detector.conf = settings.conf

    def process(self, index: int, time_s: float, image: np.ndarray, detections=None) -> FrameResult:
        with self.engine.lock:
            return super().process(index, time_s, image, detections)

    def detect(self, image: np.ndarray):
        with self.engine.lock:  # a video job detects ahead in a worker thread (emomon.pipeline.overlap)
            return super().detect(image)

    def close(self) -> None:
        """Free this session's tracker in the shared detector (and stop its VLM workers)."""
        self.detector.reset()
        if self.vlm is not None:
            self.vlm.close(close_model=False)


class AppEngine:
    """Loads the models (once per process) and hands out per-session pipelines."""

    def __init__(self, config: AppConfig, detector=None):
        self.config = config
        self.lock = threading.RLock()
        self._load_lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}
        self._keys = itertools.count(1)
        self.detector = detector or build_detector(config.monitor.detector, config.monitor.model.backend)
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
        if spec.startswith("vlm:"):  # fusion.vlm.spec's prefix: seconds per person, never on the frame loop
            raise InputError(f"a VLM cannot be the app's frame model: keep a frame model and add --vlm {spec}")
        with self._load_lock:
            if spec not in self._models:
                t = time.perf_counter()
                predictor = build_predictor(self.config.monitor.model, spec)
                source = predictor.model.source
                self._models[spec] = ModelInfo(spec, source.describe(), source.kind, predictor)
                log.info("emotion model %s loaded in %.1f s: %s", spec, time.perf_counter() - t,
                         self._models[spec].description)
        return self._models[spec]

    def temporal_stage(self, spec: str, predictor):
        """A session's own temporal stage (`--temporal-model`/`--labels`, for the start model only), or None."""
        m = self.config.monitor
        if spec != self.config.emotion_model:
            return None
        return build_temporal_stage(m.model.temporal_model, m.model.labels, m.model.label_window, predictor,
                                    m.pipeline.smoothing.max_age, m.model.device)

    def vlm_stage(self, labels):
        """A session's VLM slow path (`--vlm`) over the one shared VLM (its concurrency limit holds for all
        sessions together), or None."""
        cfg = self.config.monitor.vlm
        if not cfg.spec:
            return None
        from emomon.pipeline.vlm_stage import VlmStage
        from fusion.vlm import VlmConfig, load_vlm

        with self._load_lock:
            if getattr(self, "_vlm", None) is None:
                self._vlm = load_vlm(cfg.spec, cfg.client or VlmConfig(), labels, cache_dir=cfg.cache,
                                     device=self.config.monitor.model.device)
        return VlmStage(self._vlm, cfg.every_s, queue_size=cfg.queue,
                        max_age=self.config.monitor.pipeline.smoothing.max_age)

    def pipeline(self, settings: Settings, prefix: str = "s") -> SessionPipeline:
        """A fresh pipeline with its own tracker key; `close()` it when done."""
        return SessionPipeline(self, settings, f"{prefix}{next(self._keys)}")

    def detector_text(self) -> str:
        d = self.detector
        weights = getattr(getattr(d, "config", None), "weights", "?")
        return f"{weights} on {self.config.monitor.detector.device}"
