"""Preprocessing that travels with the weights: crops of persons and whole-frame scene images.

Body crops are squashed to a square (the EMOTIC convention: the whole person stays visible). How the whole
frame fits the scene tower's square input is a model option (`scene_fit`, see `fusion.models.config`):
`squash` (stretch the whole image, as both EMOTIC reference implementations do), `letterbox` (shrink the
whole image into the square keeping its aspect, padded with the mean colour, i.e. zeros after
normalisation), or `center_crop` (open_clip's policy: shortest side to the input size, then a centre crop,
which cuts 12.5% off each side of a 4:3 image and ~22% of a 16:9 frame).
Resizing is done with OpenCV on uint8 arrays, area-averaged when shrinking (like an antialiased resize).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


FITS = ("squash", "letterbox", "center_crop")  # how an image fits the square input (`scene_fit` values)
_FIT_ALIASES = {"shortest_center_crop": "center_crop"}  # the name center_crop had before scene_fit existed


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input: square `size`, RGB mean/std, and the fit (`resize`: one of
    `FITS`; "shortest_center_crop", its older name, reads as "center_crop")."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "squash"

    def __post_init__(self):
        resize = _FIT_ALIASES.get(self.resize, self.resize)
        if resize not in FITS:
            raise ValueError(f"unknown image fit {self.resize!r}: use one of {', '.join(FITS)} "
                             f"(the model option scene_fit)")
        object.__setattr__(self, "resize", resize)
        # plain float tuples, so a Preprocess read back from JSON (lists) equals the one written
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @property
    def fit(self) -> str:
        return self.resize

    def key(self) -> str:
        # center_crop keeps its old name here, so feature caches computed before scene_fit stay valid
        resize = {v: k for k, v in _FIT_ALIASES.items()}.get(self.resize, self.resize)
        return f"{resize}-{self.size}-{','.join(f'{v:.4f}' for v in self.mean + self.std)}"


def resize_image(image: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Resize one HxWx3 uint8 image to pre.size x pre.size under the fit (`pre.resize`)."""
    h, w = image.shape[:2]
    s = pre.size
    if pre.resize == "squash":
        interp = cv2.INTER_AREA if (w > s or h > s) else cv2.INTER_CUBIC
        return cv2.resize(image, (s, s), interpolation=interp)
    if pre.resize == "letterbox":
        scale = s / max(h, w)
        nw, nh = min(s, max(1, round(w * scale))), min(s, max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        pad = [round(255 * v) for v in pre.mean[::-1]]  # the mean colour (BGR): zero after normalisation
        out = np.empty((s, s, 3), np.uint8)
        out[:] = np.asarray(pad, np.uint8)
        y0, x0 = (s - nh) // 2, (s - nw) // 2
        out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
        return out
    if pre.resize == "center_crop":
        scale = s / min(h, w)
        nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(image, (nw, nh), interpolation=interp)
        y0, x0 = (nh - s) // 2, (nw - s) // 2
        return resized[y0:y0 + s, x0:x0 + s]
    raise ValueError(f"unknown image fit {pre.resize!r}")


def preprocess_images(images_bgr: list[np.ndarray], pre: Preprocess) -> torch.Tensor:
    """BGR uint8 images (any sizes) -> normalised float32 tensor (N, 3, size, size), RGB."""
    if not images_bgr:
        return torch.empty((0, 3, pre.size, pre.size), dtype=torch.float32)
    batch = np.stack([resize_image(im, pre) for im in images_bgr])  # (N,S,S,3) uint8 BGR
    x = torch.from_numpy(batch[..., ::-1].copy()).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


@dataclass
class Crops:
    """Person crops cut from one frame: `images[i]` belongs to input box `indices[i]`."""

    images: list[np.ndarray]
    indices: list[int]
    boxes: np.ndarray  # (len(indices), 4) clamped boxes actually cropped
    skipped: dict[int, str] = field(default_factory=dict)  # input box index -> reason


def crop_persons(frame: np.ndarray, boxes, pad: float = 0.0, min_size: int = 4) -> Crops:
    """Cut person crops out of a frame. Boxes are xyxy pixels; `pad` widens each box by that fraction.

    Boxes are clamped to the frame. Degenerate boxes (non-finite, outside the frame, or thinner than
    `min_size` pixels after clamping) are skipped with a logged reason instead of crashing.
    """
    if frame is None or frame.ndim != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError("crop_persons needs an HxWx3 image")
    h, w = frame.shape[:2]
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    images, indices, kept, skipped = [], [], [], {}
    for i, (x1, y1, x2, y2) in enumerate(arr):
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            skipped[i] = "box has non-finite coordinates"
        else:
            if pad:
                dx, dy = (x2 - x1) * pad, (y2 - y1) * pad
                x1, y1, x2, y2 = x1 - dx, y1 - dy, x2 + dx, y2 + dy
            cx1, cy1 = int(np.floor(max(0.0, x1))), int(np.floor(max(0.0, y1)))
            cx2, cy2 = int(np.ceil(min(float(w), x2))), int(np.ceil(min(float(h), y2)))
            if cx2 - cx1 < min_size or cy2 - cy1 < min_size:
                skipped[i] = (f"box [{x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}] is empty or smaller than "
                              f"{min_size}px inside the {w}x{h} frame")
            else:
                images.append(frame[cy1:cy2, cx1:cx2])
                indices.append(i)
                kept.append((cx1, cy1, cx2, cy2))
        if i in skipped:
            log.info("skipping person %d: %s", i, skipped[i])
    return Crops(images, indices, np.asarray(kept, dtype=np.float32).reshape(-1, 4), skipped)
