"""Person detection and tracking on Ultralytics YOLO."""
