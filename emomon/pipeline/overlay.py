"""Per-person emotion overlays: a box and body skeleton in the track's colour and a label that never overlaps
another label.

Two label kinds: a compact one-line **tag** ("#4 Fatigue 74%") and a **panel** (top-k emotions with bars and
the V/A/D values). `style="auto"` draws panels for up to `panels_up_to` persons and tags above that, so a
crowded frame stays readable; the full top-k and V/A/D of everyone are in the app's tables and in the panel
of a selected person (`highlight`). Labels are placed one person at a time, nearest (largest box) first,
at the first spot around the box that lies in the frame, overlaps no label drawn before and covers the
fewest faces; a person whose tag fits nowhere gets a bare "#id" tag, else no label (the box stays). What
was drawn where is kept in `labels` after each call (for tests and for the app's selection).

The skeleton leaves out the face (COCO keypoints 0-4: nose, eyes, ears), so lines never cross a face.
Each track keeps one colour from a palette of well-separated colours for as long as this overlay lives,
and a new track takes the colour least used by the persons in view. Sizes scale with the frame's short side.

Example:
    >>> import numpy as np, supervision as sv
    >>> from emomon.pipeline import EmotionOverlay, OverlayConfig
    >>> from fusion import PersonResult
    >>> frame = np.zeros((360, 640, 3), np.uint8)
    >>> dets = sv.Detections(xyxy=np.array([[200.0, 100, 300, 350]]), tracker_id=np.array([7]))
    >>> person = PersonResult(0, dets.xyxy[0], np.linspace(0, 1, 26), np.array([7.5, 4.0, 6.0]), track_id=7)
    >>> overlay = EmotionOverlay(OverlayConfig(top_k=3, style="tags"))
    >>> out = overlay.annotate(frame, dets, [person])
    >>> out.shape, bool(out.any()), bool(frame.any()), overlay.labels[0].text
    ((360, 640, 3), True, False, '#7 Yearning 100%')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from emomon.pipeline.results import EMOTION
from fusion import EMOTIC, PersonResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_BG = (28, 28, 28)
TEXT = (245, 245, 245)
DARK_TEXT = (20, 20, 20)
TRACK_BG = (85, 85, 85)
VAD_FILL = {"V+": (90, 210, 70), "V-": (70, 70, 235), "A": (60, 170, 255), "D": (230, 170, 80)}  # BGR
# Twelve colours far apart in hue and lightness (Kelly / Tableau-like), as BGR: neighbours stay distinct.
PALETTE = ((40, 160, 255), (255, 140, 30), (60, 200, 60), (60, 60, 230), (220, 100, 190), (0, 215, 255),
           (200, 200, 0), (150, 80, 140), (120, 230, 190), (30, 90, 170), (255, 200, 150), (160, 160, 160))
FACE_KEYPOINTS = 5  # COCO keypoints 0-4 (nose, eyes, ears) are the face: never drawn
STYLES = ("auto", "tags", "panels")


@dataclass
class OverlayConfig:
    """What to draw; sizes come from the frame, not from here."""

    top_k: int = 3                  # rows of a panel
    style: str = "auto"             # "auto" | "tags" | "panels" (see the module docstring)
    panels_up_to: int = 3           # auto: panels for up to this many persons in a frame, tags above
    highlight: int | None = None    # this track id gets its full panel and a thicker box (a selection)
    show_keypoints: bool = True
    show_vad: bool = True
    keypoint_min_conf: float = 0.5  # joints the pose model is less sure of are not drawn
    panel_alpha: float = 0.8        # panel background opacity: the scene stays faintly visible

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"overlay style must be one of {', '.join(STYLES)}, not {self.style!r}")


@dataclass(frozen=True)
class Label:
    """One drawn label: which detection, its kind ("panel", "tag" or "id"), text and rectangle (x1, y1, x2,
    y2; x2 and y2 exclusive)."""

    index: int
    track_id: int | None
    kind: str
    text: str
    rect: tuple[int, int, int, int]


@dataclass
class _Style:
    """Pixel sizes for one frame size (s = 1 at 360p, 3 at 1080p)."""

    s: float

    def __post_init__(self):
        s = self.s
        self.font, self.thick = 0.4 * s, max(1, round(s * 0.9))
        self.title_font, self.title_thick = 0.46 * s, max(1, round(s * 1.2))
        self.tag_font, self.tag_thick = 0.45 * s, max(1, round(s * 0.9))
        self.line, self.pad = round(14 * s), round(4 * s)
        self.small_font = 0.36 * s
        self.bar_w, self.bar_h, self.vad_cell = round(42 * s), max(3, round(6 * s)), round(64 * s)
        self.box, self.joint = max(1, round(1.5 * s)), max(2, round(2.2 * s))

    @classmethod
    def for_frame(cls, shape) -> _Style:
        return cls(float(np.clip(min(shape[:2]) / 360.0, 1.0, 4.0)))


class EmotionOverlay:
    """`annotate(frame, detections)` -> a new BGR frame with every person's overlay drawn; `labels` then
    holds the labels drawn. Keep one overlay per video or stream: track colours live in it."""

    def __init__(self, config: OverlayConfig | None = None):
        self.config = config or OverlayConfig()
        self.labels: list[Label] = []
        self._colors: dict[int, int] = {}  # track id -> palette index, for as long as this overlay lives

    def annotate(self, frame: np.ndarray, detections: sv.Detections,
                 persons: Sequence[PersonResult | None] | None = None) -> np.ndarray:
        """Draw on a copy of `frame`; `persons[i]` (or None) belongs to detection i. By default the persons
        are the detections' own emotion column (`FrameResult.detections`)."""
        out = frame.copy()
        self.labels = []
        n = len(detections)
        if n == 0:
            return out
        st = _Style.for_frame(out.shape)
        if persons is None:
            column = detections.data.get(EMOTION) if detections.data else None
            persons = [] if column is None else list(column)
        persons = list(persons) + [None] * max(0, n - len(persons))
        # NaN/inf never reach the drawing code (OpenCV needs integers): a person whose scores are not finite
        # (a broken model) gets no label. Boxes are finite already: supervision's Detections refuse NaN/inf.
        persons = [p if p is not None and p.is_finite else None for p in persons[:n]]
        ids = [_track_id(detections, persons, i) for i in range(n)]
        colors = self.colors(ids)
        boxes = np.round(np.clip(detections.xyxy, -1e5, 1e5)).astype(int)
        highlight = self.config.highlight
        for i in range(n):
            thick = st.box * 2 if highlight is not None and ids[i] == highlight else st.box
            cv2.rectangle(out, tuple(boxes[i, :2]), tuple(boxes[i, 2:]), colors[i], thick)
        if self.config.show_keypoints:
            for i in range(n):
                kp = _keypoints(detections, persons[i], i)
                if kp is not None:
                    self._skeleton(out, kp, colors[i], st)
        labelled = [i for i in range(n) if persons[i] is not None]
        panels = self.config.style == "panels" or (self.config.style == "auto"
                                                   and len(labelled) <= self.config.panels_up_to)
        faces = [_head(box) for box in detections.xyxy]
        area = (detections.xyxy[:, 2] - detections.xyxy[:, 0]) * (detections.xyxy[:, 3] - detections.xyxy[:, 1])
        order = sorted(labelled, key=lambda i: (ids[i] != highlight or highlight is None, -float(area[i])))
        taken: list[tuple[int, int, int, int]] = []
        for i in order:
            full = panels or (highlight is not None and ids[i] == highlight)
            label = self._label(out, i, detections.xyxy[i], ids[i], persons[i], colors[i], st, faces, taken, full)
            if label is not None:
                taken.append(label.rect)
                self.labels.append(label)
        return out

    def colors(self, ids: Sequence[int | None]) -> list[tuple[int, int, int]]:
        """A BGR colour per detection: each track keeps its colour; a new one takes the least used in view."""
        in_view = Counter(self._colors[t] for t in ids if t is not None and t in self._colors)
        out = []
        for i, tid in enumerate(ids):
            if tid is None:
                out.append(PALETTE[i % len(PALETTE)])
                continue
            if tid not in self._colors:
                # least used in view, then least used overall, then the lowest index: stable and spread out
                overall = Counter(self._colors.values())
                self._colors[tid] = min(range(len(PALETTE)), key=lambda c: (in_view[c], overall[c], c))
                in_view[self._colors[tid]] += 1
            out.append(PALETTE[self._colors[tid]])
        return out

    def _label(self, image, i: int, box, tid, person: PersonResult, color, st: _Style, faces: list,
               taken: list, full: bool) -> Label | None:
        """The first label of panel -> tag -> bare id that fits without overlapping `taken`; drawn."""
        name = f"#{tid}" if tid is not None else "person"
        if full:
            pw, ph = self._panel_size(person, name, st)
            spot = _place(image.shape, box, pw, ph, faces, taken)
            if spot is not None:
                rect = (spot[0], spot[1], spot[0] + pw, spot[1] + ph)
                self._panel(image, rect, name, person, color, st)
                return Label(i, tid, "panel", name, rect)
        (top, prob), = person.top(1)
        for kind, text in (("tag", f"{name} {top} {_unit(prob):.0%}"), ("id", name)):
            (tw, th), base = cv2.getTextSize(text, FONT, st.tag_font, st.tag_thick)
            pw, ph = tw + 2 * st.pad, th + base + 2 * st.pad
            spot = _place(image.shape, box, pw, ph, faces, taken)
            if spot is not None:
                x, y = spot
                cv2.rectangle(image, (x, y), (x + pw - 1, y + ph - 1), color, -1)
                cv2.putText(image, text, (x + st.pad, y + st.pad + th), FONT, st.tag_font, _ink(color),
                            st.tag_thick, cv2.LINE_AA)
                return Label(i, tid, kind, text, (x, y, x + pw, y + ph))
        return None

    def _skeleton(self, image, kp: np.ndarray, color, st: _Style) -> None:
        """Body edges and joints the pose model is sure of, without the face, drawn with OpenCV in one call
        per kind (supervision's key-point annotators cost ~5 ms a person)."""
        xy = np.nan_to_num(kp[:, :2], nan=0.0, posinf=0.0, neginf=0.0)
        ok = np.isfinite(kp[:, :2]).all(axis=1) & (np.abs(xy).sum(axis=1) > 0)  # (0, 0): not predicted
        if kp.shape[1] > 2:
            ok &= kp[:, 2] >= self.config.keypoint_min_conf
        if len(kp) == 17:
            ok[:FACE_KEYPOINTS] = False
            edges = _BODY_EDGES
        else:
            edges = ()
        pts = np.round(np.clip(xy, -1e5, 1e5)).astype(np.int32)
        lines = [pts[[a, b]] for a, b in edges if ok[a] and ok[b]]
        if lines:
            cv2.polylines(image, lines, False, color, st.box, cv2.LINE_AA)
        for x, y in pts[ok]:
            cv2.circle(image, (int(x), int(y)), st.joint, color, -1, cv2.LINE_AA)

    def _panel_size(self, person: PersonResult, title: str, st: _Style) -> tuple[int, int]:
        rows = person.top(self.config.top_k)
        name_w = max([cv2.getTextSize(nm, FONT, st.font, st.thick)[0][0] for nm, _ in rows] + [0])
        pct_w = cv2.getTextSize("100%", FONT, st.font, st.thick)[0][0]
        title_w = cv2.getTextSize(title, FONT, st.title_font, st.title_thick)[0][0]
        rows_w = name_w + st.bar_w + pct_w + 2 * st.pad if rows else 0
        n_dims = len(_dimensions(person)) if self.config.show_vad else 0
        pw = max(title_w, rows_w, n_dims * st.vad_cell) + 2 * st.pad
        ph = 2 * st.pad + st.line * (1 + len(rows) + bool(n_dims))
        return pw, ph

    def _panel(self, image, rect, title: str, person: PersonResult, color, st: _Style) -> None:
        """Title row '#id', one row per top emotion (name, bar, %), then V/A/D with their values (1-10)."""
        px, py, x2, y2 = rect
        roi = image[py:y2, px:x2]
        alpha = self.config.panel_alpha
        cv2.addWeighted(np.full_like(roi, PANEL_BG), alpha, roi, 1 - alpha, 0, dst=roi)
        cv2.rectangle(image, (px, py), (x2 - 1, y2 - 1), color, max(1, st.box // 2))
        rows = person.top(self.config.top_k)
        name_w = max([cv2.getTextSize(nm, FONT, st.font, st.thick)[0][0] for nm, _ in rows] + [0])
        base = st.line - round(4 * st.s)  # text baseline within a row
        x, y = px + st.pad, py + st.pad
        cv2.putText(image, title, (x, y + base), FONT, st.title_font, _readable(color), st.title_thick,
                    cv2.LINE_AA)
        for name, prob in rows:
            y += st.line
            p = _unit(prob)
            cv2.putText(image, name, (x, y + base), FONT, st.font, TEXT, st.thick, cv2.LINE_AA)
            bx = x + name_w + st.pad
            self._bar(image, bx, y + base - st.bar_h - round(st.s), st.bar_w, st, p, color)
            cv2.putText(image, f"{p:.0%}", (bx + st.bar_w + st.pad, y + base), FONT, st.font, TEXT, st.thick,
                        cv2.LINE_AA)
        dims = _dimensions(person)
        if self.config.show_vad and dims:
            y += st.line
            self._vad(image, dict(zip([d.name for d in dims], map(float, person.vad))), x, y + base, st, dims)

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

    def _vad(self, image, vad: dict, x: int, baseline: int, st: _Style, dims: Sequence | None = None) -> None:
        """Each continuous dimension (EMOTIC: V, A, D on 1..10) as its initial, a mini bar filled from the
        range's neutral middle towards the value (valence red below neutral, green above) and the value."""
        label_w = cv2.getTextSize("D", FONT, st.small_font, st.thick)[0][0] + round(2 * st.s)
        num_w = cv2.getTextSize("10.0", FONT, st.small_font, st.thick)[0][0]
        for k, dim in enumerate(dims or _EMOTIC_VAD):
            short = dim.name[:1].upper()
            raw = float(vad.get(dim.name, dim.neutral))
            value = _unit(dim.unit(raw), 0.5)  # NaN: drawn as neutral
            cx = x + k * st.vad_cell
            cv2.putText(image, short, (cx, baseline), FONT, st.small_font, TEXT, st.thick, cv2.LINE_AA)
            fill = (VAD_FILL.get(short, VAD_FILL["A"]) if short != "V" else
                    (VAD_FILL["V+"] if value >= 0.5 else VAD_FILL["V-"]))
            width = max(4, st.vad_cell - label_w - num_w - 2 * st.pad)
            top = baseline - st.bar_h - round(st.s)
            self._bar(image, cx + label_w, top, width, st, value, fill, mid=True)
            text = f"{raw:.1f}" if np.isfinite(raw) else "-"
            cv2.putText(image, text, (cx + label_w + width + round(2 * st.s), baseline), FONT, st.small_font,
                        TEXT, st.thick, cv2.LINE_AA)


_BODY_EDGES = tuple((a - 1, b - 1) for a, b in (
    (6, 7), (6, 8), (8, 10), (7, 9), (9, 11), (6, 12), (7, 13), (12, 13), (12, 14), (14, 16), (13, 15),
    (15, 17)))  # COCO's body edges (1-based in the literature); the face edges are left out


_EMOTIC_VAD = EMOTIC.dimensions  # fusion's label-space dimensions (name, range)


def _dimensions(person: PersonResult) -> Sequence:
    """The person's continuous dimensions with their ranges (its label space's; EMOTIC's V/A/D on 1..10)."""
    space = getattr(person, "labels", None)
    dims = getattr(space, "dimensions", None)
    return _EMOTIC_VAD if dims is None else tuple(dims)


def _unit(value, nan: float = 0.0) -> float:
    """`value` clipped to 0..1, with `nan` for NaN (a bar cannot be NaN pixels long)."""
    value = float(value)
    return nan if np.isnan(value) else min(1.0, max(0.0, value))


def _luma(bgr) -> float:
    b, g, r = bgr
    return 0.299 * r + 0.587 * g + 0.114 * b


def _ink(bgr) -> tuple[int, int, int]:
    """Text colour on a filled tag: dark on light colours, white on dark ones."""
    return DARK_TEXT if _luma(bgr) > 140 else TEXT


def _readable(bgr) -> tuple[int, int, int]:
    """The track colour lifted towards white where it is too dark to read on the dark panel."""
    k = float(np.clip((150 - _luma(bgr)) / 150, 0, 0.7))
    return tuple(round(c + (255 - c) * k) for c in bgr)


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


def _place(shape, box, pw: int, ph: int, faces: list, taken: list) -> tuple[int, int] | None:
    """Top-left corner for a pw x ph label: above the box, else below it, else inside it (bottom, then just
    under the face); aligned left, right or centred on the box, or shifted half a label aside. Spots outside
    the frame or overlapping a label in `taken` are out; of the rest, the one covering the least face area
    wins (the first in that order on a tie). None when no spot is free."""
    h, w = shape[:2]
    if pw > w or ph > h:
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    cx = (x1 + x2 - pw) / 2
    xs = list(dict.fromkeys(int(np.clip(x, 0, w - pw)) for x in (x1, x2 - pw, cx, cx - pw / 2, cx + pw / 2)))
    chest = y1 + 0.22 * (y2 - y1)
    ys = list(dict.fromkeys(int(np.clip(y, 0, h - ph)) for y in (y1 - ph, y2, y2 - ph, chest)))
    spots = np.array([(x, y) for y in ys for x in xs], np.float64)
    free = ~_overlaps(spots, pw, ph, taken).any(axis=1) if taken else np.ones(len(spots), bool)
    if not free.any():
        return None
    spots = spots[free]
    cost = _overlap_area(spots, pw, ph, faces).sum(axis=1) if faces else np.zeros(len(spots))
    best = int(np.argmin(cost))  # argmin keeps the first of equal costs: the preferred spot
    return int(spots[best, 0]), int(spots[best, 1])


def _overlap_area(spots: np.ndarray, pw: int, ph: int, rects: list) -> np.ndarray:
    """(S, R) overlap areas between labels at `spots` and `rects`."""
    r = np.asarray(rects, np.float64)[None]  # (1, R, 4) against (S, 1) spots
    sx, sy = spots[:, None, 0], spots[:, None, 1]
    iw = np.clip(np.minimum(sx + pw, r[..., 2]) - np.maximum(sx, r[..., 0]), 0, None)
    ih = np.clip(np.minimum(sy + ph, r[..., 3]) - np.maximum(sy, r[..., 1]), 0, None)
    return iw * ih


def _overlaps(spots: np.ndarray, pw: int, ph: int, rects: list) -> np.ndarray:
    return _overlap_area(spots, pw, ph, rects) > 0
