"""A synthetic video set with a planted *temporal* signal, in the Aff-Wild2 / ABAW layout (`emomon
make-synthetic --video`).

Each video shows one real person (cut from a photo by the real detector) on a plain background. Two signals,
each invisible in a single frame:
- arousal sets how fast the person pulses (brightness oscillating at 0.4-3 Hz): one frame shows a brightness,
  never a speed;
- valence drifts slowly and tints the background, under per-frame colour noise about three times the size of
  the whole valence range, so one frame says little and a longer average says more.
Expressions (8 ABAW classes) follow the valence-arousal quadrant. Valence and arousal are smooth random curves in
[-1, 1]; a few frames per video are left unannotated (-5, -1), as in Aff-Wild2.

    root/videos/<name>.mp4
    root/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<name>.txt       valence,arousal + one line per frame
    root/EXPR_Classification_Challenge/{Train_Set,Validation_Set}/<name>.txt  class names + one integer per frame
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from emomon.kernel import InputError
from fusion.models.labels import ABAW_EXPRESSIONS
from training.temporal.abaw import EXPR_DIR, SPLIT_DIRS, VA_DIR

log = logging.getLogger(__name__)


@dataclass
class SyntheticVideoConfig:
    train_videos: int = 16
    val_videos: int = 6
    seconds: float = 8.0
    fps: float = 15.0
    width: int = 320
    height: int = 240
    min_hz: float = 0.4           # pulse frequency at arousal -1...
    max_hz: float = 3.0           # ...and at +1
    pulse: float = 55.0           # brightness amplitude of the pulse (0-255 levels)
    tint: float = 30.0            # background tint per unit of valence (levels)
    noise: float = 90.0           # per-frame background colour noise (std, levels): ~3x the valence range
    unannotated: int = 3          # frames at the start of every other video marked -5 / -1
    seed: int = 0


def smooth_curve(rng: np.random.Generator, n: int, fps: float, periods=(3.0, 12.0)) -> np.ndarray:
    """A smooth random curve in [-1, 1]: a few sinusoids with random periods and phases."""
    t = np.arange(n) / fps
    curve = sum(rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / rng.uniform(*periods) + rng.uniform(0, 2 * np.pi))
                for _ in range(3))
    curve = curve / (np.abs(curve).max() + 1e-6) * rng.uniform(0.6, 1.0)
    return np.clip(curve + rng.uniform(-0.3, 0.3), -1, 1)


def expression(valence: float, arousal: float) -> int:
    """The ABAW class of a valence-arousal point (a quadrant rule, with Neutral near the centre)."""
    if abs(valence) < 0.2 and abs(arousal) < 0.2:
        name = "Neutral"
    elif valence >= 0:
        name = "Happiness" if arousal >= 0 else "Neutral"
    else:
        name = "Anger" if arousal >= 0 else "Sadness"
    return ABAW_EXPRESSIONS.index(name)


def person_sprites(images: list[str], detector) -> list[np.ndarray]:
    """Person cut-outs (with a margin) from `images`, found by the real person detector."""
    sprites = []
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(f"cannot read person image '{path}'")
        for x1, y1, x2, y2 in detector.detect(image).xyxy.astype(int):
            if (y2 - y1) >= 120 and (x2 - x1) >= 40:
                m = int(0.08 * (y2 - y1))
                sprites.append(image[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m].copy())
    if not sprites:
        raise InputError(f"no person of at least 120 px height found in {', '.join(map(str, images))}")
    return sprites


def render_video(path: Path, sprite: np.ndarray, valence: np.ndarray, arousal: np.ndarray,
                 cfg: SyntheticVideoConfig, rng: np.random.Generator) -> None:
    h, w = cfg.height, cfg.width
    scale = min(0.85 * h / sprite.shape[0], 0.6 * w / sprite.shape[1])
    sp = cv2.resize(sprite, (max(8, int(sprite.shape[1] * scale)), int(sprite.shape[0] * scale)),
                    interpolation=cv2.INTER_AREA).astype(np.float32)
    sh, sw = sp.shape[:2]
    x0 = int(rng.integers(0, max(1, w - sw)))
    y0 = (h - sh) // 2
    hz = cfg.min_hz + (arousal + 1) / 2 * (cfg.max_hz - cfg.min_hz)
    phase = np.cumsum(2 * np.pi * hz / cfg.fps) + rng.uniform(0, 2 * np.pi)
    base = np.array([110.0, 110.0, 110.0])
    warm = np.array([-1.0, 0.2, 1.0])                    # BGR: positive valence tints orange, negative blue
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (w, h))
    if not writer.isOpened():
        raise InputError(f"cannot write video '{path}' (OpenCV has no mp4v encoder?)")
    try:
        for i in range(len(valence)):
            bg = base + cfg.tint * valence[i] * warm + rng.normal(0, cfg.noise, 3)
            frame = np.empty((h, w, 3), np.float32)
            frame[:] = bg
            frame[y0:y0 + sh, x0:x0 + sw] = sp + cfg.pulse * np.sin(phase[i])
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    finally:
        writer.release()


def make_synthetic_videos(out: str | Path, images: list[str], detector, config: SyntheticVideoConfig | None = None
                          ) -> dict:
    """Write the set under `out`; returns (and writes to `out/synthetic.json`) what was made."""
    cfg = config or SyntheticVideoConfig()
    out = Path(out)
    rng = np.random.default_rng(cfg.seed)
    sprites = person_sprites(images, detector)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    n = int(round(cfg.seconds * cfg.fps))
    made = {"train": [], "val": []}
    for split, count in (("train", cfg.train_videos), ("val", cfg.val_videos)):
        for d in (VA_DIR, EXPR_DIR):
            (out / d / SPLIT_DIRS[split]).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            name = f"{split}_{k:03d}"
            valence, arousal = smooth_curve(rng, n, cfg.fps, (6.0, 20.0)), smooth_curve(rng, n, cfg.fps)
            render_video(out / "videos" / f"{name}.mp4", sprites[int(rng.integers(len(sprites)))], valence,
                         arousal, cfg, rng)
            expr = [expression(v, a) for v, a in zip(valence, arousal)]
            skip = cfg.unannotated if k % 2 else 0
            va_lines = ["-5,-5" if i < skip else f"{v:.4f},{a:.4f}" for i, (v, a) in enumerate(zip(valence, arousal))]
            ex_lines = ["-1" if i < skip else str(e) for i, e in enumerate(expr)]
            (out / VA_DIR / SPLIT_DIRS[split] / f"{name}.txt").write_text("valence,arousal\n" + "\n".join(va_lines)
                                                                          + "\n")
            (out / EXPR_DIR / SPLIT_DIRS[split] / f"{name}.txt").write_text(",".join(ABAW_EXPRESSIONS) + "\n"
                                                                            + "\n".join(ex_lines) + "\n")
            made[split].append(name)
    info = {"config": asdict(cfg), "frames_per_video": n, "videos": made, "person_images": [str(p) for p in images]}
    (out / "synthetic.json").write_text(json.dumps(info, indent=1))
    log.info("wrote %d + %d synthetic videos (%d frames each) to %s", cfg.train_videos, cfg.val_videos, n, out)
    return info
