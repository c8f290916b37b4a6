"""`FrameResult`: one processed frame, with each person's typed result carried beside its detection.

The detector's `supervision.Detections` holds one row per detected person; the pipeline adds the column
`data["emotion"]` (a `fusion.PersonResult`, or None where a detection got no emotions, e.g. a box too small
to crop). Everything downstream (writers, summary, overlay, web app) reads those typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from emomon.kernel import utc_iso
from fusion import PersonResult

EMOTION = "emotion"  # the per-detection column in `Detections.data`


@dataclass
class FrameResult:
    index: int                  # the source's frame number
    time: float                 # seconds from the source's start
    image: np.ndarray           # the BGR frame as read
    detections: sv.Detections   # persons found, with `data["emotion"]`
    top_k: int = 3              # emotions per person in `record()`
    utc: float | None = None    # capture time, epoch seconds (None where the source cannot say)

    def aligned(self) -> list[PersonResult | None]:
        """One entry per detection (None where a detection got no emotions), as the overlay wants."""
        column = self.detections.data.get(EMOTION) if self.detections.data else None
        return [None] * len(self.detections) if column is None else list(column)

    @property
    def persons(self) -> list[PersonResult]:
        """The persons that got emotions, in detection order."""
        return [p for p in self.aligned() if p is not None]

    def record(self, keypoints: bool = True) -> dict:
        """The frame's JSONL record; `keypoints=False` leaves the body keypoints out (`--no-keypoints`)."""
        persons = [p.record(self.top_k) for p in self.persons]
        if not keypoints:
            persons = [{k: v for k, v in p.items() if k != "keypoints"} for p in persons]
        return {"frame": self.index, "time": round(self.time, 4), "utc": utc_iso(self.utc), "persons": persons}


def attach(detections: sv.Detections, persons: list[PersonResult | None]) -> sv.Detections:
    """Store `persons` (one per detection) as the detections' emotion column."""
    column = np.empty(len(detections), dtype=object)
    column[:] = persons
    detections.data[EMOTION] = column
    return detections
