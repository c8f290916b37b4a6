"""The one construction path for detectors, predictors and pipelines: `emomon run`, `predict`, `app` and
`bench` all build their models here, from the configs in `emomon.pipeline.config`.

    >>> from emomon.pipeline import EmotionModelConfig, MonitorConfig, build_pipeline   # doctest: +SKIP
    >>> pipeline = build_pipeline(MonitorConfig(model=EmotionModelConfig("random:two_stream_tiny")))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging

from detector import DetectorConfig, PersonDetector, detector_weights_for_runtime
from emomon.kernel import InputError
from emomon.pipeline.config import EmotionModelConfig, MonitorConfig
from emomon.pipeline.emotion_pipeline import EmotionPipeline
from emomon.pipeline.runtimes import detector_choice, emotion_choice
from emomon.pipeline.temporal_stage import build_temporal_stage
from emomon.pipeline.vlm_stage import build_vlm_stage
from fusion import EmotionModel, Predictor, load_emotion_model
from fusion.backends import check_backend
from fusion.backends.precision import backend_options
from fusion.models.loading import check_model_spec
from fusion.vlm.spec import is_vlm_spec

log = logging.getLogger(__name__)


def build_detector(config: DetectorConfig, backend: str = "torch") -> PersonDetector:
    """The person detector in the runtime and precision `runtimes.detector_choice` picks (OpenVINO bf16 on a
    CPU with native bfloat16, a TensorRT engine with the TensorRT backend); exports are cached."""
    choice = detector_choice(config, backend)
    weights = detector_weights_for_runtime(config.weights, choice.runtime, imgsz=config.imgsz, device=config.device,
                                           trust=config.trust_weights)
    detector = PersonDetector(dataclasses.replace(config, weights=str(weights), runtime=choice.runtime,
                                                  precision=choice.precision))
    log.info("detector: %s (%s)", detector.describe(), choice.reason)
    return detector


def load_model(config: EmotionModelConfig, spec: str | None = None, device: str | None = None) -> EmotionModel:
    """The emotion model named by `spec` (default: the config's), on `device` (default: the config's)."""
    label_set = None
    if config.labels and (spec is None or spec == config.emotion_model):  # the app's extra models keep theirs
        from fusion.models.label_file import read_label_file

        label_set = read_label_file(config.labels)  # a bad file fails before the model loads
    return load_emotion_model(spec or config.emotion_model, device=device or config.device, seed=config.seed,
                              scene_weights=config.scene_weights, body_weights=config.body_weights,
                              label_set=label_set)


def build_predictor(config: EmotionModelConfig, spec: str | None = None) -> Predictor:
    """A `Predictor` for the model named by `spec` (default: the config's) on the config's backend; for a
    `vlm:...` spec the VLM itself, which predicts like one (`fusion.vlm.VlmEmotionModel`)."""
    if is_vlm_spec(spec or config.emotion_model):
        from fusion.vlm import load_vlm

        return load_vlm(spec or config.emotion_model, device=config.device)
    check_backend(config.backend)  # a typo fails before minutes of model loading
    backend, precision = emotion_choice(config.backend, config.precision, config.device)
    predictor = Predictor(load_model(config, spec), device=config.device, backend=backend, preprocess=config.preprocess,
                          **backend_options(backend, precision.precision))
    log.info("emotion model: backend %s, precision %s, preprocessing on %s", backend, precision.describe(),
             predictor.preprocess)
    return predictor


def build_pipeline(config: MonitorConfig, detector=None, predictor: Predictor | None = None) -> EmotionPipeline:
    """Detector + predictor + per-frame pipeline; pass `detector`/`predictor` to share already loaded ones."""
    check_backend(config.model.backend)
    if is_vlm_spec(config.model.emotion_model):
        raise InputError("a VLM takes seconds per person: it cannot be the frame model of a stream; keep a frame "
                         f"model and add --vlm {config.model.emotion_model} --vlm-every SECONDS")
    if predictor is None:
        check_model_spec(config.model.emotion_model)  # a typo fails before the detector loads
    detector = detector or build_detector(config.detector, config.model.backend)
    predictor = predictor or build_predictor(config.model)
    temporal = build_temporal_stage(config.model.temporal_model, config.model.labels, config.model.label_window,
                                    predictor, config.pipeline.smoothing.max_age, config.model.device)
    pipeline = EmotionPipeline(detector, predictor, config.pipeline, temporal=temporal)
    pipeline.vlm = build_vlm_stage(config.vlm, pipeline.labels, config.model.device, config.pipeline.smoothing.max_age)
    pipeline.run_info = run_info(pipeline)
    return pipeline


def run_info(pipeline: EmotionPipeline) -> dict:
    """What ran the models, for the run summary and benchmark reports."""
    backend = pipeline.predictor.backend
    describe = getattr(pipeline.detector, "describe", None)
    return {"precision": {"emotion_model": getattr(backend, "precision", "fp32"), "emotion_backend": backend.name,
                          "detector": describe() if describe else None}}
