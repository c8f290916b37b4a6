"""The pipeline glue: joins stream, detector and fusion into per-frame results and run outputs.

- `config`: ReuseConfig, PipelineConfig, EmotionModelConfig, MonitorConfig (defaults in one place)
- `build`: the one construction path for detector, predictor and pipeline
- `emotion_pipeline`: `EmotionPipeline.process(frame)` -> `FrameResult` (detect, track, reuse, emotions, smooth)
- `results`: `FrameResult`, each person's typed `fusion.PersonResult` carried in `detections.data["emotion"]`
- `smoothing`, `summary`, `overlay`, `outputs`, `interrupts`, `runner`: per-track smoothing, the run summary,
  drawing, the writers, Ctrl-C safety and the loop that drives a source through all of them
- `outages`, `rotation`, `fragmented_mp4`: a live source's lost/restored events and their totals, output files
  on a schedule (`--rotate`), video that stays playable if the process dies
- `anonymize`, `privacy`: faces hidden in drawn frames (`FaceAnonymizer`), what a run stores (`storage_notice`)
- `vlm_stage`, `vlm_summary`: the VLM slow path (`--vlm`): background questions per track, never waited for

Example (random tiny model, the shared detector weights):

    >>> from emomon.pipeline import EmotionModelConfig, MonitorConfig, build_pipeline   # doctest: +SKIP
    >>> from detector import DetectorConfig                                            # doctest: +SKIP
    >>> cfg = MonitorConfig(DetectorConfig(weights="../shared/weights/yolo11n-pose.pt"),
    ...                     EmotionModelConfig("random:two_stream_tiny"))              # doctest: +SKIP
    >>> result = build_pipeline(cfg).process(0, 0.0, frame)                            # doctest: +SKIP
    >>> [(p.track_id, p.top1) for p in result.persons]                                 # doctest: +SKIP
"""

import importlib

# Re-exported lazily (PEP 562): the CLI reads the configs' defaults to build its flags, and `emomon --help` must
# not pay for torch (which `build` and `emotion_pipeline` import through fusion).
_EXPORTS = {
    "emomon.pipeline.anonymize": ("AnonymizeConfig", "FaceAnonymizer", "head_boxes"),
    "emomon.pipeline.build": ("build_detector", "build_pipeline", "build_predictor", "load_model"),
    "emomon.pipeline.config": ("ANONYMIZE_MODES", "EmotionModelConfig", "MonitorConfig", "PipelineConfig",
                               "PrivacyConfig", "ReuseConfig", "VlmStageConfig"),
    "emomon.pipeline.emotion_pipeline": ("EmotionPipeline", "StageTimes", "box_iou", "thumbnail"),
    "emomon.pipeline.fragmented_mp4": ("FragmentedMp4",),
    "emomon.pipeline.interrupts": ("InterruptGuard",),
    "emomon.pipeline.outputs": ("CSV_COLUMNS", "CsvWriter", "JsonlWriter", "VideoWriter"),
    "emomon.pipeline.outages": ("OutageLog",),
    "emomon.pipeline.overlay": ("EmotionOverlay", "OverlayConfig"),
    "emomon.pipeline.privacy": ("storage_notice",),
    "emomon.pipeline.results": ("EMOTION", "FrameResult", "attach"),
    "emomon.pipeline.rotation": ("Rotation",),
    "emomon.pipeline.runner": ("OutputPaths", "RunReport", "run_pipeline"),
    "emomon.pipeline.smoothing": ("SmoothingConfig", "TrackSmoother"),
    "emomon.pipeline.summary": ("RunSummary", "TrackStats"),
    "emomon.pipeline.temporal_stage": ("TemporalStage", "build_temporal_stage"),
    "emomon.pipeline.track_history": ("TrackHistory",),
    "emomon.pipeline.vlm_stage": ("VlmStage", "build_vlm_stage"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'emomon.pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
