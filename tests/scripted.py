"""A detector that replays fixed (boxes, track ids) per frame, so tests know exactly which person is where
and can test the pipeline's reuse without YOLO."""

from __future__ import annotations

import numpy as np
import supervision as sv


class ScriptedDetector:
    def __init__(self, frames):
        self.frames, self.i, self.resets = frames, 0, 0

    def reset(self):
        self.i, self.resets = 0, self.resets + 1

    def track(self, image):
        boxes, ids = self.frames[self.i]
        self.i += 1
        return sv.Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4),
                             confidence=np.full(len(boxes), 0.9, np.float32),
                             class_id=np.zeros(len(boxes), int), tracker_id=np.array(ids, int))
