"""Per-track temporal smoothing, so labels do not flicker from frame to frame.

Keyed by tracker id (persons without an id are passed through). Exponential moving average by default;
a sliding-window mean as the alternative. Tracks unseen for `max_age` frames are forgotten.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class SmoothingConfig:
    mode: str = "ema"        # "ema", "window" or "none"
    alpha: float = 0.4       # EMA weight of the newest frame (1.0 = no smoothing)
    window: int = 8          # frames in the window mean
    max_age: int = 30        # frames a track may be unseen before its state is dropped

    def __post_init__(self):
        if self.mode not in ("ema", "window", "none"):
            raise ValueError(f"smoothing mode must be ema, window or none, not '{self.mode}'")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"smoothing alpha must be in (0, 1], not {self.alpha}")
        if self.window < 1:
            raise ValueError(f"smoothing window must be >= 1, not {self.window}")


class TrackSmoother:
    def __init__(self, config: SmoothingConfig | None = None):
        self.config = config or SmoothingConfig()
        self._state: dict[int, object] = {}
        self._last_seen: dict[int, int] = {}

    def reset(self) -> None:
        self._state.clear()
        self._last_seen.clear()

    def update(self, track_id: int | None, frame: int, probs: np.ndarray, vad: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Feed one person's raw scores; returns the smoothed (probs, vad)."""
        cfg = self.config
        if track_id is None or cfg.mode == "none":
            return probs, vad
        self._last_seen[track_id] = frame
        x = np.concatenate([probs, vad]).astype(np.float64)
        if cfg.mode == "ema":
            prev = self._state.get(track_id)
            smoothed = x if prev is None else cfg.alpha * x + (1 - cfg.alpha) * prev
            self._state[track_id] = smoothed
        else:
            window = self._state.setdefault(track_id, deque(maxlen=cfg.window))
            window.append(x)
            smoothed = np.mean(window, axis=0)
        n = len(probs)
        return smoothed[:n].astype(np.float32), smoothed[n:].astype(np.float32)

    def forget_stale(self, frame: int) -> None:
        for tid in [t for t, seen in self._last_seen.items() if frame - seen > self.config.max_age]:
            self._state.pop(tid, None)
            self._last_seen.pop(tid, None)
