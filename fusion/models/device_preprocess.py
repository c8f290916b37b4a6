"""Preprocessing on the model's device: each frame uploaded once, all person crops of a frame cut and resized in
one batched `torchvision.ops.roi_align` call, normalised there; nothing comes back to the host.

The same code runs on CPU tensors (that is how its parity with `fusion.models.preprocess` is tested). It is
not bit-identical to the OpenCV path: roi_align samples bilinearly, averaging ceil(box/size) x ceil(box/size)
samples per output pixel when shrinking (close to, not equal to, OpenCV's area average) and one bilinear
sample when enlarging (OpenCV uses bicubic), and it keeps float precision where OpenCV rounds the resized
image to uint8. Boxes are the integer crops `crop_persons` cuts, so both paths see the same pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from fusion.models.preprocess import Preprocess

PREPROCESS_MODES = ("auto", "cpu", "device")  # auto: device on CUDA, cpu elsewhere (see `resolve_preprocess`)


def resolve_preprocess(mode: str, device) -> str:
    """`auto` -> `device` on CUDA, `cpu` elsewhere: on 2 CPU cores OpenCV's uint8 resize was faster than
    roi_align on float tensors (benchmarks/results/preprocess-cpu-2core/)."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing {mode!r}: use one of {', '.join(PREPROCESS_MODES)}")
    if mode != "auto":
        return mode
    return "device" if torch.device(device).type == "cuda" else "cpu"


def upload_frame(frame_bgr: np.ndarray, device) -> torch.Tensor:
    """HxWx3 uint8 BGR -> (3, H, W) float32 BGR on `device`: one host-to-device copy of the uint8 pixels
    (from pinned memory, non-blocking, on CUDA); the conversion to float happens on the device."""
    device = torch.device(device)
    host = torch.from_numpy(np.ascontiguousarray(frame_bgr))
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True).permute(2, 0, 1).float()


def _normalise(x: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """(N, 3, h, w) BGR 0..255 -> RGB, (x / 255 - mean) / std, in place of a copy."""
    mean = torch.tensor(pre.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.flip(1).div_(255.0).sub_(mean).div_(std)


def _roi_resize(frames: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Crops (batch index, x1, y1, x2, y2 in pixel-edge coordinates) of `frames` (F, 3, H, W) resized to out_hw.
    aligned=True puts pixel i's centre at i + 0.5, OpenCV's convention; sampling_ratio=0 averages
    ceil(box/out) samples per output pixel (adaptive, per box)."""
    from torchvision.ops import roi_align

    if rois.shape[0] == 0:
        return frames.new_zeros((0, frames.shape[1], *out_hw))
    return roi_align(frames, rois.to(frames.dtype), output_size=out_hw, spatial_scale=1.0, sampling_ratio=0,
                     aligned=True)


def crops_on_device(frames: torch.Tensor, boxes: torch.Tensor, frame_index: torch.Tensor,
                    pre: Preprocess) -> torch.Tensor:
    """Body inputs (N, 3, S, S) for N boxes (xyxy, integer crops) on frames (F, 3, H, W) in one call,
    squashed to the square like `resize_image(..., squash)`; `frame_index[i]` is the frame of box i."""
    rois = torch.cat([frame_index.to(boxes.dtype).view(-1, 1), boxes], dim=1)
    return _normalise(_roi_resize(frames, rois, (pre.size, pre.size)), pre)


def scenes_on_device(frames: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """Scene inputs (F, 3, S, S) of whole frames (F, 3, H, W) under the model's fit (squash, letterbox,
    center_crop), as `fusion.models.preprocess.resize_image` does it."""
    n, _, h, w = frames.shape
    s = pre.size
    index = torch.arange(n, device=frames.device, dtype=frames.dtype).view(-1, 1)

    def rois(x1, y1, x2, y2):
        return torch.cat([index, frames.new_tensor([x1, y1, x2, y2]).expand(n, 4)], dim=1)

    if pre.resize == "squash":
        return _normalise(_roi_resize(frames, rois(0, 0, w, h), (s, s)), pre)
    if pre.resize == "center_crop":
        scale = s / min(h, w)
        nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
        x0, y0 = (nw - s) // 2, (nh - s) // 2   # the crop of the resized image, in source pixels below
        sx, sy = w / nw, h / nh
        return _normalise(_roi_resize(frames, rois(x0 * sx, y0 * sy, (x0 + s) * sx, (y0 + s) * sy), (s, s)), pre)
    if pre.resize == "letterbox":
        scale = s / max(h, w)
        nw, nh = min(s, max(1, round(w * scale))), min(s, max(1, round(h * scale)))
        inner = _normalise(_roi_resize(frames, rois(0, 0, w, h), (nh, nw)), pre)
        out = inner.new_zeros((n, 3, s, s))  # the mean colour, zero after normalisation
        y0, x0 = (s - nh) // 2, (s - nw) // 2
        out[:, :, y0:y0 + nh, x0:x0 + nw] = inner
        return out
    raise ValueError(f"unknown image fit {pre.resize!r}")


def stack_by_shape(frames: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """Uploaded frames grouped by size: [(indices, stacked (k, 3, H, W))], one roi_align call per group
    (frames of one stream, or of streams of one resolution, make one group)."""
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(tuple(f.shape), []).append(i)
    return [(idx, torch.stack([frames[i] for i in idx])) for idx in groups.values()]
