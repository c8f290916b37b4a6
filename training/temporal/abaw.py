"""Readers for the Aff-Wild2 / ABAW layout (valence-arousal and expression annotations), and for the synthetic
video set written in the same layout.

    root/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt      first line `valence,arousal`, then one
                                                                            line per frame, two floats in [-1, 1];
                                                                            -5 marks an unannotated frame
    root/EXPR_Classification_Challenge/{Train_Set,Validation_Set}/<video>.txt first line the class names, then one
                                                                            integer per frame (0-7), -1 unannotated
    videos anywhere under root, named <video>.<ext> (Aff-Wild2's `<video>_left` / `_right` annotations name
    the two subjects of `<video>`)

Unannotated frames become NaN (valence-arousal) or -1 (expressions) and are skipped by loss and metric. An
annotation may have a few lines more or fewer than the decoded video: frames are aligned by index and the
mismatch is reported (`VideoItem.mismatch` after extraction, and in the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomon.kernel import VIDEO_SUFFIXES, InputError
from fusion.models.labels import ABAW_EXPRESSIONS

log = logging.getLogger(__name__)

VA_DIR = "VA_Estimation_Challenge"
EXPR_DIR = "EXPR_Classification_Challenge"
SPLIT_DIRS = {"train": "Train_Set", "val": "Validation_Set"}
UNANNOTATED_VA = -5.0
UNANNOTATED_EXPR = -1


@dataclass
class VideoItem:
    name: str                     # the annotation's stem (e.g. "video10_1_left")
    video: Path
    va: np.ndarray | None         # (N, 2) float32, NaN where unannotated
    expr: np.ndarray | None       # (N,) int64, -1 where unannotated
    side: str | None = None       # "left" / "right" for the two subjects of one video, else None

    @property
    def frames(self) -> int:
        return max(len(a) for a in (self.va, self.expr) if a is not None)


def read_va_file(path: str | Path) -> np.ndarray:
    """(N, 2) valence, arousal per frame; NaN where the file says -5 (either value)."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    if not lines or lines[0].replace(" ", "").lower() != "valence,arousal":
        raise InputError(f"'{path}' is not a VA annotation file (first line must be 'valence,arousal')")
    rows = []
    for i, line in enumerate(lines[1:], 2):
        if not line:
            continue
        try:
            v, a = (float(x) for x in line.split(","))
        except ValueError:
            raise InputError(f"'{path}' line {i}: expected two numbers 'valence,arousal', got '{line}'") from None
        if v <= UNANNOTATED_VA + 0.5 or a <= UNANNOTATED_VA + 0.5:
            v = a = float("nan")
        elif not (-1.0 <= v <= 1.0 and -1.0 <= a <= 1.0):
            raise InputError(f"'{path}' line {i}: valence and arousal must be in [-1, 1] (or -5), got '{line}'")
        rows.append((v, a))
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)


def read_expr_file(path: str | Path) -> np.ndarray:
    """(N,) class index per frame (ABAW order), -1 where unannotated."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    if not lines or "," not in lines[0]:
        raise InputError(f"'{path}' is not an expression annotation file (first line: the class names)")
    out = []
    for i, line in enumerate(lines[1:], 2):
        if not line:
            continue
        try:
            k = int(line)
        except ValueError:
            raise InputError(f"'{path}' line {i}: expected a class index, got '{line}'") from None
        if not (k == UNANNOTATED_EXPR or 0 <= k < len(ABAW_EXPRESSIONS)):
            raise InputError(f"'{path}' line {i}: class {k} is outside 0-{len(ABAW_EXPRESSIONS) - 1} (or -1)")
        out.append(k)
    return np.asarray(out, dtype=np.int64)


def _video_index(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(root.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()}


def has_split(root: str | Path, split: str) -> bool:
    return any((Path(root) / d / SPLIT_DIRS[split]).is_dir() for d in (VA_DIR, EXPR_DIR))


def find_videos(root: str | Path, split: str) -> list[VideoItem]:
    """The annotated videos of one split ("train" or "val"): VA and/or expression annotations + the video."""
    root = Path(root)
    if split not in SPLIT_DIRS:
        raise InputError(f"unknown split '{split}': use {', '.join(SPLIT_DIRS)}")
    va_dir, expr_dir = root / VA_DIR / SPLIT_DIRS[split], root / EXPR_DIR / SPLIT_DIRS[split]
    names = sorted({p.stem for d in (va_dir, expr_dir) if d.is_dir() for p in d.glob("*.txt")})
    if not names:
        raise InputError(f"no annotations in '{va_dir}' or '{expr_dir}' (the Aff-Wild2 / ABAW layout; "
                         "emomon make-synthetic --video writes a small example)")
    videos = _video_index(root)
    items, missing = [], []
    for name in names:
        side = next((s for s in ("left", "right") if name.endswith("_" + s)), None)
        video = videos.get(name) or (videos.get(name.rsplit("_", 1)[0]) if side else None)
        if video is None:
            missing.append(name)
            continue
        va = read_va_file(va_dir / f"{name}.txt") if (va_dir / f"{name}.txt").is_file() else None
        expr = read_expr_file(expr_dir / f"{name}.txt") if (expr_dir / f"{name}.txt").is_file() else None
        items.append(VideoItem(name, video, va, expr, side))
    if missing:
        log.warning("%s: %d annotated video(s) without a video file under %s, skipped (e.g. %s)", split,
                    len(missing), root, ", ".join(missing[:3]))
    if not items:
        raise InputError(f"no video files under '{root}' for the {split} annotations (looked for <name>"
                         f"{'/'.join(sorted(VIDEO_SUFFIXES))})")
    return items


def aligned(labels: np.ndarray | None, frames: np.ndarray, fill) -> np.ndarray | None:
    """`labels` at the given frame indices (aligned by index); frames past the annotation's end get `fill`."""
    if labels is None:
        return None
    out = np.full((len(frames),) + labels.shape[1:], fill, dtype=labels.dtype)
    inside = frames < len(labels)
    out[inside] = labels[frames[inside]]
    return out
