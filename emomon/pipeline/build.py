"""The one construction path for detectors, predictors and pipelines: `emomon run`, `predict`, `app` and
`bench` all build their models here, from the configs in `emomon.pipeline.config`.

    >>> from emomon.pipeline import EmotionModelConfig, MonitorConfig, build_pipeline   # doctest: +SKIP
    >>> pipeline = build_pipeline(MonitorConfig(model=EmotionModelConfig("random:two_stream_tiny")))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

from detector import DetectorConfig, PersonDetector, detector_weights_for_backend
from emomon.pipeline.config import EmotionModelConfig, MonitorConfig
from emomon.pipeline.emotion_pipeline import EmotionPipeline
from fusion import EmotionModel, Predictor, load_emotion_model
from fusion.backends import check_backend


def build_detector(config: DetectorConfig, backend: str = "torch") -> PersonDetector:
    """The person detector; with the TensorRT backend it runs as Ultralytics' own engine export (cached)."""
    if backend == "tensorrt":
        weights = detector_weights_for_backend(config.weights, "tensorrt", imgsz=config.imgsz, device=config.device,
                                               trust=config.trust_weights)
        config = dataclasses.replace(config, weights=str(weights))
    return PersonDetector(config)


def load_model(config: EmotionModelConfig, spec: str | None = None, device: str | None = None) -> EmotionModel:
    """The emotion model named by `spec` (default: the config's), on `device` (default: the config's)."""
    return load_emotion_model(spec or config.emotion_model, device=device or config.device, seed=config.seed,
                              scene_weights=config.scene_weights, body_weights=config.body_weights)


def build_predictor(config: EmotionModelConfig, spec: str | None = None) -> Predictor:
    """A `Predictor` for the model named by `spec` (default: the config's) on the config's backend."""
    check_backend(config.backend)  # a typo fails before minutes of model loading
    return Predictor(load_model(config, spec), device=config.device, backend=config.backend)


def build_pipeline(config: MonitorConfig, detector=None, predictor: Predictor | None = None) -> EmotionPipeline:
    """Detector + predictor + per-frame pipeline; pass `detector`/`predictor` to share already loaded ones."""
    check_backend(config.model.backend)
    detector = detector or build_detector(config.detector, config.model.backend)
    predictor = predictor or build_predictor(config.model)
    return EmotionPipeline(detector, predictor, config.pipeline)
