"""The pictures a VLM gets about one person: the whole frame with the person's box drawn in red, and (when the
model takes several images) the person's crop; scaled down to a longest side and JPEG-encoded."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from emomon.kernel import InputError


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"cannot encode a {image.shape} image as JPEG for the VLM")
    return data.tobytes()


def clip_box(box, shape) -> tuple[int, int, int, int]:
    """The box in whole pixels inside the image; InputError when nothing of it is inside."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1, x2, y2 = max(0, int(x1)), max(0, int(y1)), min(w, int(round(x2))), min(h, int(round(y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise InputError(f"box {[round(float(v)) for v in box]} has no pixels inside the {w}x{h} image")
    return x1, y1, x2, y2


def question_images(frame_bgr: np.ndarray, box, crop: bool = False, max_side: int = 1024,
                    quality: int = 90) -> list[bytes]:
    """JPEG bytes: the frame with the box drawn (line width ~0.4% of the frame, at least 2 px), then the crop."""
    x1, y1, x2, y2 = clip_box(box, frame_bgr.shape)
    marked = frame_bgr.copy()
    width = max(2, round(max(frame_bgr.shape[:2]) / 250))
    cv2.rectangle(marked, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 255), width)
    images = [_jpeg(_fit(marked, max_side), quality)]
    if crop:
        images.append(_jpeg(_fit(frame_bgr[y1:y2, x1:x2], max_side), quality))
    return images


def image_digest(frame_bgr: np.ndarray) -> str:
    """Identifies the decoded pixels (part of the answer cache's key)."""
    h = hashlib.sha256(str(frame_bgr.shape).encode())
    h.update(np.ascontiguousarray(frame_bgr).data)
    return h.hexdigest()
