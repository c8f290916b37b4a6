"""Person detection and tracking on Ultralytics YOLO (default YOLO11n-pose: persons + 17 keypoints).

Results are `supervision.Detections`: `xyxy` (N, 4) float32, `confidence`, `class_id`, `tracker_id`
(from `track()`), and `data["keypoints"]` (N, 17, 3: x, y, conf) for pose models.

Example (the shared weights and clip; any Ultralytics detection model works):
    >>> import cv2
    >>> from detector import DetectorConfig, PersonDetector
    >>> det = PersonDetector(DetectorConfig(weights="../shared/weights/yolo11n-pose.pt"))  # doctest: +SKIP
    >>> video = cv2.VideoCapture("../shared/data/street_crossing.mp4")  # doctest: +SKIP
    >>> people = det.track(video.read()[1])  # doctest: +SKIP
    >>> people.tracker_id, people.data["keypoints"].shape  # doctest: +SKIP
    (array([1, 2, 3, 4, 5, 6, 7, 8, 9]), (9, 17, 3))
    >>> det.reset()  # a new source: ids restart at 1  # doctest: +SKIP
"""

import importlib

# Re-exported lazily (PEP 562): the CLI reads `DetectorConfig`'s defaults to build its flags, and a bad flag or a
# missing file should be one line in a moment, without first importing supervision, SciPy and torch.
_EXPORTS = {
    "detector.config": ("DetectorConfig",),
    "detector.export": ("RUNTIMES", "detector_weights_for_backend", "detector_weights_for_runtime", "export_detector"),
    "detector.person_detector": ("PersonDetector",),
    "detector.weights": ("TRUST_FLAG", "DetectorError", "load_yolo"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
