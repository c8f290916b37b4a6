"""Per-track feature history: the recent per-frame features of each tracked person, for temporal models.

One entry per frame a track is reported in (a person whose emotions were reused from an earlier frame
contributes that frame's feature again, so reuse does not thin the sequence). Bounded to `window` entries per
track; kept through short gaps (the tracker may lose a person for a few frames and find them again) and
dropped once a track has been unseen for more than `max_age` frames, i.e. when the tracker has ended it.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TrackHistory:
    def __init__(self, window: int, max_age: int = 30):
        if window < 1:
            raise ValueError(f"history window must be >= 1, not {window}")
        self.window, self.max_age = window, max_age
        self._tracks: dict[int, deque] = {}       # id -> deque of (frame number, time, feature)
        self._last_seen: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._tracks

    def reset(self) -> None:
        self._tracks.clear()
        self._last_seen.clear()

    def add(self, track_id: int, frame: int, time_s: float, feature: np.ndarray) -> None:
        entries = self._tracks.get(track_id)
        if entries is None:
            entries = self._tracks[track_id] = deque(maxlen=self.window)
        if entries and entries[-1][0] == frame:   # one entry per frame: a second add replaces the first
            entries.pop()
        entries.append((frame, float(time_s), np.asarray(feature, dtype=np.float32)))
        self._last_seen[track_id] = frame

    def features(self, track_id: int) -> np.ndarray:
        """(L, D), oldest first, L <= window."""
        return np.stack([f for _, _, f in self._tracks[track_id]])

    def times(self, track_id: int) -> list[float]:
        return [t for _, t, _ in self._tracks[track_id]]

    def forget_stale(self, frame: int) -> list[int]:
        """Drop tracks unseen for more than `max_age` frames; returns their ids."""
        gone = [t for t, seen in self._last_seen.items() if frame - seen > self.max_age]
        for t in gone:
            del self._tracks[t], self._last_seen[t]
        return gone


def left_padded(sequences: list[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences (L_i <= window, D) -> (B, window, D) windows left-padded with zeros and their (B, window) mask."""
    dim = sequences[0].shape[1]
    out = np.zeros((len(sequences), window, dim), np.float32)
    valid = np.zeros((len(sequences), window), bool)
    for i, seq in enumerate(sequences):
        seq = seq[-window:]
        out[i, window - len(seq):] = seq
        valid[i, window - len(seq):] = True
    return out, valid
