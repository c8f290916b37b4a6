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

from detector.config import DetectorConfig
from detector.export import RUNTIMES, detector_weights_for_backend, detector_weights_for_runtime, export_detector
from detector.person_detector import PersonDetector
from detector.weights import TRUST_FLAG, DetectorError, load_yolo

__all__ = ["RUNTIMES", "TRUST_FLAG", "DetectorConfig", "DetectorError", "PersonDetector",
           "detector_weights_for_backend", "detector_weights_for_runtime",
           "export_detector", "load_yolo"]
