"""Per-person emotion overlays: box, track id, top-k emotions with bars, a VAD indicator, the skeleton.

Boxes use supervision's BoxAnnotator, skeletons its COCO edge list; the skeleton lines and the emotion panel
are drawn with OpenCV. All sizes scale with the frame's short side, so panels stay readable from 640x360 to
1080p and beyond. Each panel goes above, below or inside its box, wherever it covers no face and no other
panel (or the least of them).

Example:
    >>> import numpy as np, supervision as sv
    >>> from emomon.pipeline import EmotionOverlay, OverlayConfig
    >>> from fusion import PersonResult
    >>> frame = np.zeros((360, 640, 3), np.uint8)
    >>> dets = sv.Detections(xyxy=np.array([[200.0, 100, 300, 350]]), tracker_id=np.array([7]))
    >>> person = PersonResult(0, dets.xyxy[0], np.linspace(0, 1, 26), np.array([7.5, 4.0, 6.0]), track_id=7)
    >>> out = EmotionOverlay(OverlayConfig(top_k=3)).annotate(frame, dets, [person])
    >>> out.shape, bool(out.any()), bool(frame.any())
    ((360, 640, 3), True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv
from supervision.key_points.skeletons import SKELETONS_BY_VERTEX_COUNT

from emomon.pipeline.results import EMOTION
from fusion import VAD_NAMES, PersonResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_BG = (28, 28, 28)
TEXT = (245, 245, 245)
TRACK_BG = (85, 85, 85)
VAD = (("V", "valence"), ("A", "arousal"), ("D", "dominance"))
VAD_FILL = {"V+": (90, 210, 70), "V-": (70, 70, 235), "A": (60, 170, 255), "D": (230, 170, 80)}  # BGR


@dataclass
class OverlayConfig:
    """What to draw; sizes come from the frame, not from here."""

    top_k: int = 3
    show_keypoints: bool = True
    show_vad: bool = True
    keypoint_min_conf: float = 0.5  # joints the pose model is less sure of are not drawn
    panel_alpha: float = 0.75       # panel background opacity: the scene stays faintly visible


@dataclass
class _Style:
    """Pixel sizes for one frame size (s = 1 at 360p, 2 at 1080p)."""

    s: float

    def __post_init__(self):
        s = self.s
        self.font, self.thick = 0.4 * s, max(1, round(s * 0.9))
        self.title_font, self.title_thick = 0.46 * s, max(1, round(s * 1.2))
        self.line, self.pad = round(14 * s), round(4 * s)
        self.small_font = 0.36 * s
        self.bar_w, self.bar_h, self.vad_cell = round(42 * s), max(3, round(6 * s)), round(44 * s)
        self.box, self.joint = max(1, round(1.5 * s)), max(2, round(2.2 * s))

    @classmethod
    def for_frame(cls, shape) -> _Style:
        return cls(float(np.clip(0.5 + min(shape[:2]) / 720.0, 0.8, 4.0)))


class EmotionOverlay:
    """`annotate(frame, detections)` -> a new BGR frame with every person's overlay drawn."""

    def __init__(self, config: OverlayConfig | None = None):
        self.config = config or OverlayConfig()
        self.palette = sv.ColorPalette.DEFAULT

    def annotate(self, frame: np.ndarray, detections: sv.Detections,
                 persons: Sequence[PersonResult | None] | None = None) -> np.ndarray:
        """Draw on a copy of `frame`; `persons[i]` (or None) belongs to detection i. By default the persons
        are the detections' own emotion column (`FrameResult.detections`)."""
        out = frame.copy()
        n = len(detections)
        if n == 0:
            return out
        st = _Style.for_frame(out.shape)
        if persons is None:
            column = detections.data.get(EMOTION) if detections.data else None
            persons = [] if column is None else list(column)
        persons = list(persons) + [None] * max(0, n - len(persons))
        # NaN/inf never reach the drawing code (OpenCV needs integers): a person whose scores are not finite
        # (a broken model) gets no panel. Boxes are finite already: supervision's Detections refuse NaN/inf.
        persons = [p if p is not None and p.is_finite else None for p in persons[:n]]
        ids = [_track_id(detections, persons, i) for i in range(n)]
        colors = np.array([tid if tid is not None else i for i, tid in enumerate(ids)])
        boxes = sv.BoxAnnotator(color=self.palette, thickness=st.box)
        boxes.annotate(out, detections, custom_color_lookup=colors)
        if self.config.show_keypoints:
            for i in range(n):
                kp = _keypoints(detections, persons[i], i)
                if kp is not None:
                    self._skeleton(out, kp, self.palette.by_idx(int(colors[i])), st)
        faces, panels = [_head(box) for box in detections.xyxy], []  # what a new panel should not cover
        order = np.argsort(detections.xyxy[:, 1])  # top-most first: they have the least room above
        for i in order:
            if persons[i] is not None:
                self._panel(out, detections.xyxy[i], ids[i], persons[i], self.palette.by_idx(int(colors[i])),
                            st, faces, panels)
        return out

    def _skeleton(self, image, kp: np.ndarray, color: sv.Color, st: _Style) -> None:
        """Edges and joints the pose model is sure of, drawn with OpenCV in one call per kind (supervision's
        key-point annotators test every point with np.allclose: ~5 ms a person, more than all else here)."""
        edges = SKELETONS_BY_VERTEX_COUNT.get(len(kp))
        xy = np.nan_to_num(kp[:, :2], nan=0.0, posinf=0.0, neginf=0.0)
        ok = np.isfinite(kp[:, :2]).all(axis=1) & (np.abs(xy).sum(axis=1) > 0)  # (0, 0): not predicted
        if kp.shape[1] > 2:
            ok &= kp[:, 2] >= self.config.keypoint_min_conf
        pts = np.round(np.clip(xy, -1e5, 1e5)).astype(np.int32)
        bgr = color.as_bgr()
        lines = [pts[[a - 1, b - 1]] for a, b in edges or () if ok[a - 1] and ok[b - 1]]  # edges are 1-based
        if lines:
            cv2.polylines(image, lines, False, bgr, st.box, cv2.LINE_AA)
        for x, y in pts[ok]:
            cv2.circle(image, (int(x), int(y)), st.joint, bgr, -1, cv2.LINE_AA)

    def _panel(self, image, box, tid, person: PersonResult, color: sv.Color, st: _Style, faces: list,
               panels: list) -> None:
        """Title row '#id' with the VAD mini bars beside it, then one row per top emotion: name, bar, %."""
        rows = person.top(self.config.top_k)
        vad = dict(zip(VAD_NAMES, map(float, person.vad))) if self.config.show_vad else None
        title = f"#{tid}" if tid is not None else "person"
        name_w = max([cv2.getTextSize(nm, FONT, st.font, st.thick)[0][0] for nm, _ in rows] + [0])
        pct_w = cv2.getTextSize("100%", FONT, st.font, st.thick)[0][0]
        title_w = cv2.getTextSize(title, FONT, st.title_font, st.title_thick)[0][0]
        vad_w = 3 * st.vad_cell if vad is not None else 0
        rows_w = name_w + st.bar_w + pct_w + 2 * st.pad if rows else 0
        pw = max(title_w + 2 * st.pad + vad_w, rows_w) + 2 * st.pad
        ph = 2 * st.pad + st.line * (1 + len(rows))
        px, py = _place(image.shape, box, pw, ph, faces, panels)
        panels.append((px, py, px + pw, py + ph))
        roi = image[py:py + ph, px:px + pw]
        alpha = self.config.panel_alpha
        cv2.addWeighted(np.full_like(roi, PANEL_BG), alpha, roi, 1 - alpha, 0, dst=roi)
        cv2.rectangle(image, (px, py), (px + pw - 1, py + ph - 1), color.as_bgr(), max(1, st.box // 2))
        base = st.line - round(4 * st.s)  # text baseline within a row
        x, y = px + st.pad, py + st.pad
        cv2.putText(image, title, (x, y + base), FONT, st.title_font, _readable(color), st.title_thick,
                    cv2.LINE_AA)
        if vad is not None:
            self._vad(image, vad, px + pw - st.pad - vad_w, y + base, st)
        for name, prob in rows:
            y += st.line
            p = _unit(prob)
            cv2.putText(image, name, (x, y + base), FONT, st.font, TEXT, st.thick, cv2.LINE_AA)
            bx = x + name_w + st.pad
            self._bar(image, bx, y + base - st.bar_h - round(st.s), st.bar_w, st, p, color.as_bgr())
            cv2.putText(image, f"{p:.0%}", (bx + st.bar_w + st.pad, y + base), FONT, st.font, TEXT, st.thick,
                        cv2.LINE_AA)

    def _bar(self, image, x: int, top: int, width: int, st: _Style, value: float, fill, mid: bool = False
             ) -> None:
        """A horizontal bar filled to `value` (0..1); with `mid`, filled from the neutral centre instead."""
        cv2.rectangle(image, (x, top), (x + width, top + st.bar_h), TRACK_BG, -1)
        start = x + width // 2 if mid else x
        end = x + round(width * _unit(value, 0.5 if mid else 0.0))
        cv2.rectangle(image, (min(start, end), top), (max(start, end), top + st.bar_h), fill, -1)
        if mid:
            cv2.line(image, (start, top - round(st.s)), (start, top + st.bar_h + round(st.s)), TEXT,
                     max(1, st.thick // 2))

    def _vad(self, image, vad: dict, x: int, baseline: int, st: _Style) -> None:
        """Three mini bars on the 1..10 scale, filled from neutral (5.5) towards the value, so low and high
        read at a glance; valence is red below neutral and green above."""
        label_w = cv2.getTextSize("D", FONT, st.small_font, st.thick)[0][0] + round(2 * st.s)
        for k, (short, name) in enumerate(VAD):
            value = _unit((float(vad.get(name, 5.5)) - 1.0) / 9.0, 0.5)  # NaN: drawn as neutral
            cx = x + k * st.vad_cell
            cv2.putText(image, short, (cx, baseline), FONT, st.small_font, TEXT, st.thick, cv2.LINE_AA)
            fill = VAD_FILL[short] if short != "V" else (VAD_FILL["V+"] if value >= 0.5 else VAD_FILL["V-"])
            width = st.vad_cell - label_w - st.pad
            top = baseline - st.bar_h - round(st.s)
            self._bar(image, cx + label_w, top, width, st, value, fill, mid=True)


def _unit(value, nan: float = 0.0) -> float:
    """`value` clipped to 0..1, with `nan` for NaN (a bar cannot be NaN pixels long)."""
    value = float(value)
    return nan if np.isnan(value) else min(1.0, max(0.0, value))


def _readable(color: sv.Color) -> tuple[int, int, int]:
    """The track colour lifted towards white where it is too dark to read on the dark panel."""
    b, g, r = color.as_bgr()
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    k = float(np.clip((150 - luma) / 150, 0, 0.7))
    return tuple(round(c + (255 - c) * k) for c in (b, g, r))


def _track_id(detections: sv.Detections, persons: list, i: int) -> int | None:
    if detections.tracker_id is not None and i < len(detections.tracker_id):
        tid = detections.tracker_id[i]
        if tid is not None and int(tid) >= 0:
            return int(tid)
    tid = persons[i].track_id if persons[i] is not None else None
    return None if tid is None else int(tid)


def _keypoints(detections: sv.Detections, person: PersonResult | None, i: int) -> np.ndarray | None:
    """The person's keypoints, else the detector's (so boxes without emotions still get a skeleton)."""
    kp = person.keypoints if person is not None else None
    if kp is None:
        data = detections.data.get("keypoints") if detections.data else None
        kp = data[i] if data is not None and i < len(data) else None
    kp = None if kp is None else np.asarray(kp, np.float32)
    return kp if kp is not None and kp.ndim == 2 and kp.shape[0] > 0 and kp.shape[1] >= 2 else None


def _head(box) -> tuple[float, float, float, float]:
    """Where a person's face most likely is: the top fifth of the box, without its sides."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 + 0.2 * (x2 - x1), y1, x2 - 0.2 * (x2 - x1), y1 + 0.2 * (y2 - y1)


def _place(shape, box, pw: int, ph: int, faces: list, panels: list) -> tuple[int, int]:
    """Top-left corner for a panel: above the box, else below, else inside it (bottom first); aligned left,
    right or centred on the box, or shifted half a panel aside. The first spot in the frame that covers no
    face and no earlier panel wins, else the one covering least (a covered panel counts 3x: text is lost)."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    cx = (x1 + x2 - pw) / 2
    xs = [int(np.clip(x, 0, max(0, w - pw))) for x in (x1, x2 - pw, cx, cx - pw / 2, cx + pw / 2)]
    ys = [round(y) for y in (y1 - ph, y2, y2 - ph, y1) if 0 <= y <= h - ph]
    ys = ys or [int(np.clip(y1, 0, max(0, h - ph)))]  # taller than the frame: as high as it goes
    spots = np.array([(x, y) for y in ys for x in xs], np.float64)
    cost = np.zeros(len(spots))
    for rects, weight in ((faces, 1.0), (panels, 3.0)):
        if rects:
            r = np.asarray(rects, np.float64)[None]  # (1, R, 4) against (S, 1) spots
            sx, sy = spots[:, None, 0], spots[:, None, 1]
            iw = np.clip(np.minimum(sx + pw, r[..., 2]) - np.maximum(sx, r[..., 0]), 0, None)
            ih = np.clip(np.minimum(sy + ph, r[..., 3]) - np.maximum(sy, r[..., 1]), 0, None)
            cost += weight * (iw * ih).sum(axis=1)
    best = int(np.argmin(cost))  # argmin keeps the first of equal costs: the preferred spot
    return int(spots[best, 0]), int(spots[best, 1])
