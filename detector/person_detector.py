"""Person detection and tracking on Ultralytics YOLO, returned as `supervision.Detections`.

Any Ultralytics detection or pose model works; only the person class is kept. Pose models add 17 COCO
keypoints per person in `detections.data["keypoints"]` (N, 17, 3: x, y, confidence). Tracking uses
Ultralytics' own ByteTrack/BoT-SORT with persistent state, reset per source with `reset()`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import supervision as sv

from detector.config import DetectorConfig
from emomon.errors import InputError

log = logging.getLogger(__name__)

FLAG = "--detector-weights PATH"


class DetectorError(InputError):
    """Detector weights that are missing, unreadable or cannot be downloaded."""


def _looks_like_path(weights: str) -> bool:
    return os.sep in weights or "/" in weights or weights.startswith(".")


def load_yolo(weights: str):
    """YOLO(weights) with one-line errors for the three ways it fails."""
    from ultralytics import YOLO

    path = Path(weights).expanduser()
    if _looks_like_path(weights) and not path.exists():
        raise DetectorError(f"detector weights '{weights}' not found; pass an existing file with {FLAG}")
    try:
        return YOLO(str(path) if path.exists() else weights)
    except FileNotFoundError as exc:
        raise DetectorError(f"detector weights '{weights}' not found ({exc}); pass a file with {FLAG}") from None
    except Exception as exc:  # noqa: BLE001 - Ultralytics raises many types for bad/unreachable files
        if path.exists():
            raise DetectorError(f"detector weights '{weights}' are not a valid Ultralytics model "
                                f"({type(exc).__name__}); pass a YOLO .pt/.onnx/.engine file with {FLAG}") from None
        from ultralytics.utils import SETTINGS

        raise DetectorError(
            f"cannot get detector weights '{weights}': not in the working folder or {SETTINGS.get('weights_dir')} "
            f"and the download failed ({type(exc).__name__}); download it on a connected machine and pass it "
            f"with {FLAG}") from None


class PersonDetector:
    """`track(frame)` for video (ids persist across calls), `detect(frame)` for single images."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.model = load_yolo(self.config.weights)
        names = getattr(self.model, "names", None) or {0: "person"}
        persons = [i for i, n in names.items() if str(n).lower() == "person"]
        self.person_class = persons[0] if persons else 0
        self.has_keypoints = getattr(self.model, "task", "") == "pose"
        self.skipped = 0
        self._half = self.config.half and str(self.config.device).startswith("cuda")

    def _kwargs(self) -> dict:
        c = self.config
        kwargs = {"classes": [self.person_class], "conf": c.conf, "iou": c.iou, "imgsz": c.imgsz,
                  "device": c.device, "max_det": c.max_det, "verbose": False}
        if self._half:  # newer Ultralytics spells fp16 `quantize=16`; older ones `half=True`
            from ultralytics.cfg import DEFAULT_CFG_DICT

            kwargs.update({"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True})
        return kwargs

    def detect(self, frame: np.ndarray) -> sv.Detections:
        return self._convert(self.model.predict(frame, **self._kwargs())[0])

    def detect_batch(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        """Several frames (e.g. several streams) in one call, without tracking."""
        if not frames:
            return []
        return [self._convert(r) for r in self.model.predict(list(frames), **self._kwargs())]

    def track(self, frame: np.ndarray) -> sv.Detections:
        result = self.model.track(frame, persist=True, tracker=self.config.tracker, **self._kwargs())[0]
        return self._convert(result)

    def reset(self) -> None:
        """Start tracking afresh (new source): ids restart and no state leaks between sources."""
        predictor = getattr(self.model, "predictor", None)
        for tracker in getattr(predictor, "trackers", None) or []:
            tracker.reset()

    def _convert(self, result) -> sv.Detections:
        dets = sv.Detections.from_ultralytics(result)
        if result.keypoints is not None and len(dets):
            dets.data["keypoints"] = result.keypoints.data.cpu().numpy().astype(np.float32)
        return self._filter(dets)

    def _filter(self, dets: sv.Detections) -> sv.Detections:
        if not len(dets):
            return dets
        wh = dets.xyxy[:, 2:] - dets.xyxy[:, :2]
        finite = np.isfinite(dets.xyxy).all(axis=1)
        keep = finite & (wh.min(axis=1) >= self.config.min_box_size)
        for i in np.flatnonzero(~keep):
            why = "non-finite box" if not finite[i] else f"{wh[i, 0]:.0f}x{wh[i, 1]:.0f}px is below the " \
                                                         f"{self.config.min_box_size}px minimum"
            log.info("skipping a person detection: %s", why)
        self.skipped += int((~keep).sum())
        return dets[keep]
