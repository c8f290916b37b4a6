"""Per-person emotion overlays: box, track id, top-k emotions with bars, a VAD indicator, the skeleton.

Sizes scale with the frame, so labels stay readable from 640x360 to 1080p and beyond. Skeletons are drawn
with supervision's key-point annotators; the emotion panel is drawn with OpenCV.

    overlay = EmotionOverlay()
    annotated = overlay.annotate(frame_bgr, detections, persons)  # persons aligned with detections
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_BG = (32, 32, 32)
TEXT = (245, 245, 245)
VAD_LABELS = (("V", "valence"), ("A", "arousal"), ("D", "dominance"))


@dataclass
class OverlayConfig:
    top_k: int = 3
    show_keypoints: bool = True
    show_vad: bool = True
    keypoint_min_conf: float = 0.5
    panel_alpha: float = 0.72


class EmotionOverlay:
    def __init__(self, config: OverlayConfig | None = None):
        self.config = config or OverlayConfig()
        self.palette = sv.ColorPalette.DEFAULT

    def annotate(self, frame: np.ndarray, detections, persons: list[dict | None]) -> np.ndarray:
        out = frame.copy()
        h, w = out.shape[:2]
        s = float(np.clip(max(h, w) / 1100.0, 0.55, 2.5))  # 640 px -> 0.58, 1920 px -> 1.75
        ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        for i, box in enumerate(detections.xyxy):
            person = persons[i] if i < len(persons) else None
            tid = None if ids[i] is None else int(ids[i])
            color = self.palette.by_idx(tid if tid is not None else i)
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), color.as_bgr(), max(1, round(2 * s)), cv2.LINE_AA)
            if self.config.show_keypoints and person is not None and person.get("keypoints"):
                self._skeleton(out, np.asarray(person["keypoints"], np.float32), color, s)
            self._panel(out, (x1, y1, x2, y2), tid, person, color, s)
        return out

    def _skeleton(self, image, kp: np.ndarray, color: sv.Color, s: float) -> None:
        xy = kp[:, :2].copy()
        xy[kp[:, 2] < self.config.keypoint_min_conf] = np.nan  # hidden joints are not drawn
        points = sv.KeyPoints(xy=xy[None])
        sv.EdgeAnnotator(color=color, thickness=max(1, round(2 * s))).annotate(image, points)
        sv.VertexAnnotator(color=color, radius=max(2, round(3 * s))).annotate(image, points)

    def _panel(self, image, box, tid, person, color: sv.Color, s: float) -> None:
        h, w = image.shape[:2]
        fs, line = 0.42 * s, int(17 * s)
        pad, bar_w = int(5 * s), int(60 * s)
        title = f"#{tid}" if tid is not None else "person"
        rows = [] if person is None else person["top"][: self.config.top_k]
        show_vad = self.config.show_vad and person is not None
        thick = max(1, round(s))
        text_w = max([cv2.getTextSize(n, FONT, fs, thick)[0][0] for n, _ in rows]
                     + [cv2.getTextSize(title, FONT, fs * 1.1, max(1, round(1.3 * s)))[0][0]])
        pw = pad * 3 + text_w + bar_w + int(34 * s)
        ph = pad * 2 + line * (1 + len(rows)) + (line if show_vad else 0)
        x1, y1, x2, y2 = box
        px = int(np.clip(x1, 0, max(0, w - pw)))
        py = y1 - ph if y1 - ph >= 0 else (y2 if y2 + ph <= h else max(0, y1))  # above, else below, else inside
        py = int(np.clip(py, 0, max(0, h - ph)))
        roi = image[py:py + ph, px:px + pw]
        panel = np.empty_like(roi)
        panel[:] = PANEL_BG
        cv2.addWeighted(panel, self.config.panel_alpha, roi, 1 - self.config.panel_alpha, 0, dst=roi)
        cv2.rectangle(image, (px, py), (px + pw - 1, py + max(2, int(3 * s))), color.as_bgr(), -1)
        y = py + pad + line - int(4 * s)
        cv2.putText(image, title, (px + pad, y), FONT, fs * 1.1, color.as_bgr(), max(1, round(1.3 * s)), cv2.LINE_AA)
        bx = px + pad * 2 + text_w
        for name, prob in rows:
            y += line
            cv2.putText(image, name, (px + pad, y), FONT, fs, TEXT, max(1, round(s)), cv2.LINE_AA)
            top = y - int(9 * s)
            cv2.rectangle(image, (bx, top), (bx + bar_w, top + int(8 * s)), (80, 80, 80), -1)
            cv2.rectangle(image, (bx, top), (bx + int(bar_w * float(np.clip(prob, 0, 1))), top + int(8 * s)),
                          color.as_bgr(), -1)
            cv2.putText(image, f"{prob:.0%}", (bx + bar_w + pad, y), FONT, fs * 0.9, TEXT, max(1, round(s)),
                        cv2.LINE_AA)
        if show_vad:
            y += line
            self._vad(image, person["vad"], px + pad, y, pw - 2 * pad, s)

    def _vad(self, image, vad: dict, x: int, y: int, width: int, s: float) -> None:
        """Three mini bars (V, A, D) filled from the 1..10 scale; green-to-red for valence."""
        fs = 0.38 * s
        cell = width // 3
        for k, (short, name) in enumerate(VAD_LABELS):
            value = float(np.clip((vad.get(name, 5.5) - 1.0) / 9.0, 0, 1))
            cx = x + k * cell
            cv2.putText(image, short, (cx, y), FONT, fs, TEXT, max(1, round(s)), cv2.LINE_AA)
            bx, top, bw = cx + int(12 * s), y - int(8 * s), cell - int(18 * s)
            fill = (60, int(80 + 150 * value), int(230 - 150 * value)) if short == "V" else (200, 170, 90)
            cv2.rectangle(image, (bx, top), (bx + bw, top + int(7 * s)), (80, 80, 80), -1)
            cv2.rectangle(image, (bx, top), (bx + int(bw * value), top + int(7 * s)), fill, -1)
