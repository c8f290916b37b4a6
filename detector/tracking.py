"""Ultralytics' ByteTrack / BoT-SORT driven directly on our filtered detections, one tracker per source.

Same classes and YAML settings as `model.track(persist=True)`, but the state lives in plain tracker objects
we own: `reset` is explicit, `detect()` calls cannot disturb it, and several sources can share one model.
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from detector.weights import DetectorError
from emomon.kernel import first_line

HINT = "use bytetrack.yaml, botsort.yaml or a path to a tracker YAML of either kind"


def tracker_settings(tracker: str, device: str):
    """The tracker YAML as Ultralytics' namespace, checked now so a bad name fails before the first frame."""
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    try:
        settings = IterableSimpleNamespace(**YAML.load(check_yaml(tracker)))
    except Exception as exc:  # noqa: BLE001 - missing file, bad YAML
        raise DetectorError(f"tracker config '{tracker}' cannot be read ({first_line(exc)}); {HINT}"
                            ) from None
    kind = getattr(settings, "tracker_type", None)
    if kind not in TRACKER_MAP or hasattr(TRACKER_MAP[kind], "setup_predictor"):  # needs predictor internals
        raise DetectorError(f"tracker config '{tracker}' has tracker_type '{kind}', which is not supported; "
                            f"{HINT}")
    settings.device = device  # where an external ReID model would run
    return settings


def new_tracker(settings):
    """A fresh tracker: empty state, ids from 1."""
    from ultralytics.trackers.track import TRACKER_MAP

    return TRACKER_MAP[settings.tracker_type](args=settings)


def assign_ids(tracker, detections: sv.Detections, frame: np.ndarray) -> sv.Detections:
    """Feed one frame's detections to `tracker`; return the tracked ones, with `tracker_id`, in input order.

    Boxes, scores and keypoints stay the detector's own for this frame (not the Kalman estimate), so crops
    and skeletons match the image; detections the tracker has not confirmed yet are left out.
    """
    from ultralytics.engine.results import Boxes

    columns = [detections.xyxy, detections.confidence[:, None], detections.class_id[:, None]]
    tracks = tracker.update(Boxes(np.hstack(columns).astype(np.float32), frame.shape[:2]), frame)
    if len(tracks) == 0:
        out = detections[np.zeros(len(detections), bool)]
        out.tracker_id = np.empty(0, int)
        return out
    idx, ids = tracks[:, -1].astype(int), tracks[:, 4].astype(int)
    order = np.argsort(idx)
    out = detections[idx[order]]
    out.tracker_id = ids[order]
    return out
