"""Faces hidden in the frames people see (`--anonymize blur|pixelate|box`), never in what the model sees.

Each detected person's head box comes from the pose keypoints (nose, eyes, ears; COCO order), padded and
floored by the body's size (shoulders, box), and follows its track smoothly: an EMA of the box, always
widened to cover the newest estimate, so smoothing never lags behind a moving face. A person without visible
head keypoints (seen from behind, a detector without pose) keeps the track's last head box for a while, else
gets the upper part of their box hidden. Persons the detector does not find are not hidden.

The anonymiser returns a new frame and leaves its input untouched: the pipeline computes emotions on the
original frame first, and the runner anonymises a copy before the overlay is drawn on it.

Example:
    >>> import numpy as np, supervision as sv
    >>> frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    >>> dets = sv.Detections(xyxy=np.array([[200.0, 60, 300, 350]]), tracker_id=np.array([1]))
    >>> out = FaceAnonymizer("pixelate")(frame, dets)
    >>> bool((out[60:120, 200:300] != frame[60:120, 200:300]).any()), bool((out[200:] == frame[200:]).all())
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from emomon.pipeline.config import ANONYMIZE_MODES

NOSE, EYES, EARS, SHOULDERS = (0,), (1, 2), (3, 4), (5, 6)  # COCO keypoint indices
BOX_FILL = (48, 48, 48)  # BGR of `box` mode: a solid dark grey


@dataclass
class AnonymizeConfig:
    """Head-box geometry and hiding strength; the defaults hide a head with room to spare."""

    min_conf: float = 0.3        # head keypoints this sure count (lower than drawing's 0.5: hiding errs wide)
    pad: float = 0.25            # padding around the estimated head, per side, as a fraction of its width
    height_ratio: float = 1.3    # head box height / width (chin and hair)
    smooth: float = 0.5          # EMA weight of the newest head box in a track
    hold_frames: int = 12        # a track's last head box stands in this long when its head keypoints vanish
    blocks: int = 6              # pixelate: blocks across a head; blur: detail kept across a head (about)


def head_boxes(detections: sv.Detections, config: AnonymizeConfig | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per detection, the head box from its keypoints (xyxy, float) and whether keypoints gave it; rows
    without visible head keypoints get the upper part of their person box."""
    cfg = config or AnonymizeConfig()
    boxes = np.asarray(detections.xyxy, np.float64).reshape(-1, 4)
    kps = detections.data.get("keypoints") if detections.data else None
    out = np.zeros((len(boxes), 4))
    from_kp = np.zeros(len(boxes), bool)
    for i, box in enumerate(boxes):
        kp = np.asarray(kps[i], np.float64) if kps is not None and i < len(kps) and kps[i] is not None else None
        head = _head_from_keypoints(kp, box, cfg) if kp is not None and kp.ndim == 2 and len(kp) >= 5 else None
        from_kp[i] = head is not None
        out[i] = head if head is not None else upper_region(box)
    return out, from_kp


def upper_region(box) -> np.ndarray:
    """Where a head is when no keypoint says: the box's top, as tall as the box is wide, within 30-60% of
    its height (a standing person's head is in the top third; a close-up's fills more of the box)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    return np.array([x1, y1, x2, y1 + float(np.clip(w, 0.3 * h, 0.6 * h))])


def _visible(kp: np.ndarray, idx: tuple[int, ...], min_conf: float) -> np.ndarray:
    pts = kp[list(idx)]
    ok = np.isfinite(pts[:, :2]).all(axis=1) & (np.abs(pts[:, :2]).sum(axis=1) > 0)  # (0, 0): not predicted
    if pts.shape[1] > 2:
        ok &= np.nan_to_num(pts[:, 2]) >= min_conf
    return pts[ok, :2]


def _head_from_keypoints(kp: np.ndarray, box, cfg: AnonymizeConfig) -> np.ndarray | None:
    face = _visible(kp, NOSE + EYES, cfg.min_conf)
    ears = _visible(kp, EARS, cfg.min_conf)
    pts = np.concatenate([face, ears])
    if not len(pts):
        return None
    span = float(np.ptp(pts, axis=0).max()) if len(pts) > 1 else 0.0
    # Ear to ear spans about a head's width; eyes and nose only about 0.4 of it.
    width = span * (1.1 if len(ears) else 2.5)
    shoulders = _visible(kp, SHOULDERS, cfg.min_conf)
    if len(shoulders) == 2:  # shoulders are 2-2.5 heads wide: a floor when the face is turned or small
        width = max(width, 0.5 * float(np.linalg.norm(shoulders[0] - shoulders[1])))
    x1, y1, x2, y2 = (float(v) for v in box)
    width = max(width, 0.25 * (x2 - x1), 0.08 * (y2 - y1), 4.0)
    cx, cy = pts.mean(axis=0)
    half_w = 0.5 * width * (1 + 2 * cfg.pad)
    half_h = half_w * cfg.height_ratio
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


@dataclass
class _Track:
    box: np.ndarray              # the smoothed head box
    rel: np.ndarray | None       # the last head box from keypoints, relative to the person box (0-1 units)
    kp_seen: int | None          # the frame number of those keypoints
    seen: int                    # the frame number the track was last in


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


class FaceAnonymizer:
    """`anonymizer(frame, detections)` -> a copy of `frame` with every detected person's head hidden.

    Keeps per-track state (smoothing); `reset()` between sources. Mode `none` returns the frame itself.
    """

    def __init__(self, mode: str = "blur", config: AnonymizeConfig | None = None):
        if mode not in ANONYMIZE_MODES:
            raise ValueError(f"anonymize must be one of {', '.join(ANONYMIZE_MODES)}, not '{mode}'")
        self.mode, self.config = mode, config or AnonymizeConfig()
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._n = 0

    def regions(self, detections: sv.Detections) -> np.ndarray:
        """The head boxes to hide in this frame (one per detection, xyxy float); advances the track state."""
        raw, from_kp = head_boxes(detections, self.config)
        ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(raw)
        boxes = np.asarray(detections.xyxy, np.float64).reshape(-1, 4)
        out = raw.copy()
        for i, tid in enumerate(ids):
            if tid is None or int(tid) < 0:
                continue
            old = self._tracks.get(int(tid))
            origin = np.tile(boxes[i, :2], 2)
            size = np.maximum(np.tile(boxes[i, 2:] - boxes[i, :2], 2), 1.0)
            rel, kp_seen = None, None
            if from_kp[i]:
                rel, kp_seen = (raw[i] - origin) / size, self._n
            elif old is not None and old.rel is not None and self._n - old.kp_seen <= self.config.hold_frames:
                raw[i] = origin + old.rel * size  # the head seen last, moved with the body
                rel, kp_seen = old.rel, old.kp_seen
            a = self.config.smooth
            smoothed = raw[i] if old is None else a * raw[i] + (1 - a) * old.box
            out[i] = _union(smoothed, raw[i])  # never behind the newest estimate
            self._tracks[int(tid)] = _Track(smoothed, rel, kp_seen, self._n)
        self._n += 1
        for tid in [t for t, track in self._tracks.items() if self._n - track.seen > 3 * self.config.hold_frames]:
            del self._tracks[tid]
        return out

    def __call__(self, frame: np.ndarray, detections: sv.Detections) -> np.ndarray:
        if self.mode == "none":
            return frame
        out = frame.copy()
        h, w = out.shape[:2]
        for x1, y1, x2, y2 in self.regions(detections):
            x1, y1 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.floor(y1), 0, h))
            x2, y2 = int(np.clip(np.ceil(x2), 0, w)), int(np.clip(np.ceil(y2), 0, h))
            if x2 > x1 and y2 > y1:
                self._hide(out[y1:y2, x1:x2])
        return out

    def _hide(self, roi: np.ndarray) -> None:
        """Hide `roi` in place, from its own pixels only (nothing outside it leaks in or out)."""
        h, w = roi.shape[:2]
        if self.mode == "box":
            roi[:] = BOX_FILL
            return
        blocks = self.config.blocks
        small = (max(1, min(w, blocks)), max(1, min(h, round(blocks * h / w))))
        tiny = cv2.resize(roi, small, interpolation=cv2.INTER_AREA)
        if self.mode == "pixelate":
            roi[:] = cv2.resize(tiny, (w, h), interpolation=cv2.INTER_NEAREST)
            return
        # blur: the head averaged down to a few cells (no detail survives that), spread smoothly back over it
        up = cv2.resize(tiny, (w, h), interpolation=cv2.INTER_LINEAR)
        k = max(3, (2 * min(w, h) // blocks) | 1)  # two cells wide: no trace of the cells is left
        roi[:] = cv2.GaussianBlur(up, (k, k), 0, borderType=cv2.BORDER_REPLICATE)
