"""Ultralytics' ByteTrack / BoT-SORT driven directly on our filtered detections, one tracker per source.

Same classes and YAML settings as `model.track(persist=True)`, but the state lives in plain tracker objects
we own: `reset` is explicit, `detect()` calls cannot disturb it, and several sources can share one model.
"""

from __future__ import annotations

import copy

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
    """A fresh tracker with its own copy of the settings: empty state, ids from 1."""
    from ultralytics.trackers.track import TRACKER_MAP

    return TRACKER_MAP[settings.tracker_type](args=copy.copy(settings))


def low_threshold(settings, conf: float) -> float:
    """The detector threshold for tracking: the tracker's second-stage (low-score) threshold, never above `conf`."""
    return min(float(settings.track_low_thresh), float(conf))


def assign_ids(tracker, detections: sv.Detections, frame: np.ndarray, conf: float | None = None) -> sv.Detections:
    """Feed one frame's detections to `tracker`; return the tracked ones, with `tracker_id`, in input order.

    `conf` (the user's confidence threshold) becomes the tracker's first-stage and new-track threshold, so a
    person is reported from a box that scores at least `conf` and then followed through lower-scoring boxes,
    down to the tracker's `track_low_thresh` (ByteTrack's second association). With the default 0.25 this is
    exactly Ultralytics' `model.track`. Boxes, scores and keypoints stay the detector's own for this frame (not
    the Kalman estimate), so crops and skeletons match the image; detections the tracker has not confirmed yet
    are left out.
    """
    from ultralytics.engine.results import Boxes

    if conf is not None:
        tracker.args.track_high_thresh = tracker.args.new_track_thresh = float(conf)

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
