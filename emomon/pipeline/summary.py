"""Per-track summary over a whole run: dominant emotion, mean VAD, first/last seen.

Never holds a non-finite number: persons with NaN/inf scores (a broken model) are not counted into the
means, and `to_dict` writes any non-finite float as null, so the summary is always valid JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from emomon.kernel import finite_json
from emomon.pipeline.vlm_summary import VlmTrackStats
from fusion import EMOTIC_CATEGORIES, VAD_NAMES, PersonResult
from fusion.models.labels import EMOTIC, LabelSpace
from fusion.results import finite as _num  # rounded, or None where NaN/inf

log = logging.getLogger(__name__)


@dataclass
class TrackStats:
    track_id: int
    first_frame: int
    first_time: float
    last_frame: int = 0
    last_time: float = 0.0
    frames: int = 0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIC_CATEGORIES)))
    vad_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(VAD_NAMES)))
    top1_counts: dict[str, int] = field(default_factory=dict)
    labels: LabelSpace = EMOTIC  # the label space of the track's results
    vlm: VlmTrackStats | None = None  # the track's VLM answers (`--vlm`), when it got any

    def __post_init__(self):
        if self.labels is not EMOTIC:
            self.prob_sum = np.zeros(len(self.labels.categories))
            self.vad_sum = np.zeros(len(self.labels.dimensions))

    def to_dict(self, top_k: int = 3) -> dict:
        mean = self.prob_sum / max(self.frames, 1)
        order = np.argsort(-mean, kind="stable")[:top_k]
        return {
            "track_id": self.track_id,
            "first_frame": self.first_frame, "first_time": _num(self.first_time, 3),
            "last_frame": self.last_frame, "last_time": _num(self.last_time, 3),
            "frames": self.frames,
            "dominant_emotion": self.labels.categories[int(order[0])],
            "mean_top": [[self.labels.categories[i], _num(mean[i], 4)] for i in order],
            "top1_counts": dict(sorted(self.top1_counts.items(), key=lambda kv: -kv[1])),
            "mean_vad": {n: _num(v, 3) for n, v in zip(self.labels.dimension_names,
                                                        self.vad_sum / max(self.frames, 1))},
            "mean_emotions": {n: _num(p, 5) for n, p in zip(self.labels.categories, mean)},
            **({"vlm": self.vlm.to_dict()} if self.vlm is not None else {}),
        }


class RunSummary:
    """Accumulates the per-person results of every processed frame, keyed by track id."""

    def __init__(self):
        self.tracks: dict[int, TrackStats] = {}
        self.frames = 0
        self.persons = 0
        self.untracked = 0
        self.nonfinite = 0  # persons left out because their scores were NaN/inf

    def add(self, frame: int, time: float, persons: list[PersonResult]) -> None:
        self.frames += 1
        for p in persons:
            if not p.is_finite:  # the predictor drops these already; one would poison the track's means
                self.nonfinite += 1
                log.debug("summary: frame %d, track %s has non-finite scores; not counted", frame, p.track_id)
                continue
            self.persons += 1
            tid = p.track_id
            if tid is None:
                self.untracked += 1
                continue
            t = self.tracks.get(tid)
            if t is None:
                t = self.tracks[tid] = TrackStats(tid, frame, time, labels=p.labels)
            t.last_frame, t.last_time = frame, time
            t.frames += 1
            t.prob_sum += np.asarray(p.probs, dtype=np.float64)
            t.vad_sum += np.asarray(p.vad, dtype=np.float64)
            top1 = p.top1
            t.top1_counts[top1] = t.top1_counts.get(top1, 0) + 1
            if p.vlm is not None:
                t.vlm = t.vlm or VlmTrackStats()
                t.vlm.add(p.vlm)

    def track_dicts(self) -> list[dict]:
        return [t.to_dict() for t in sorted(self.tracks.values(), key=lambda t: (-t.frames, t.track_id))]

    def to_dict(self, **info) -> dict:
        return finite_json({**info, "frames": self.frames, "person_detections": self.persons,
                            "untracked_detections": self.untracked, "tracks": self.track_dicts()})

    def end_part(self, **info) -> dict:
        """`--rotate`: the per-track summary of the part that just ended (its own file), then forget its tracks,
        so a run of weeks holds one part's tracks, not every track it ever saw. A track seen in two parts is in
        both, with each part's own frames. The run's totals (frames, detections) go on counting."""
        data = finite_json({**info, "tracks": self.track_dicts()})
        self.tracks = {}
        return data
