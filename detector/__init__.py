"""Person detection and tracking on Ultralytics YOLO (default: YOLO11n-pose, persons + 17 keypoints).

Example:
    >>> from detector import DetectorConfig, PersonDetector          # doctest: +SKIP
    >>> det = PersonDetector(DetectorConfig(weights="yolo11n-pose.pt"))  # doctest: +SKIP
    >>> people = det.track(frame_bgr)  # supervision.Detections: xyxy, confidence, tracker_id, keypoints
"""

from detector.config import DetectorConfig
from detector.person_detector import DetectorError, PersonDetector, load_yolo

__all__ = ["DetectorConfig", "DetectorError", "PersonDetector", "load_yolo"]
