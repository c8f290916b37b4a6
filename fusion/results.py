"""`PersonResult`: the one typed result per person, from the predictor through the pipeline to every output.

The predictor fills what the model knows (`index`, the cropped `box`, `probs`, `vad`); the pipeline adds
what the detector knows (`track_id`, `score`, `keypoints`, the detection's own box) and smooths the scores.
`record()` is the only place a person becomes the JSON record of the JSONL log, the CSV and `emomon predict`.

    >>> import numpy as np
    >>> p = PersonResult(0, np.array([10, 20, 110, 220.0]), np.linspace(0, 1, 26), np.array([5.0, 6.0, 7.0]))
    >>> p.top(2)
    [('Yearning', 1.0), ('Sympathy', 0.96)]
    >>> p.record(top_k=1)["top"], p.record()["vad"]
    ([['Yearning', 1.0]], {'valence': 5.0, 'arousal': 6.0, 'dominance': 7.0})
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fusion.models.categories import EMOTIC_CATEGORIES
from fusion.models.labels import EMOTIC, LabelSpace


def top_emotions(probs: np.ndarray, k: int = 3, categories: tuple[str, ...] = EMOTIC_CATEGORIES
                 ) -> list[tuple[str, float]]:
    """The k highest-scoring categories, highest first (ties keep the official order); non-finite scores
    (NaN/inf from a broken model) are never among them."""
    probs = np.asarray(probs, dtype=np.float64)
    finite = np.isfinite(probs)
    order = np.argsort(-np.where(finite, probs, -np.inf), kind="stable")[:k]
    return [(categories[i], float(probs[i])) for i in order if finite[i]]


def finite(value, digits: int) -> float | None:
    """`value` rounded for a JSON record, or None (JSON null) where it is NaN or infinite: JSON has no NaN."""
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


@dataclass(frozen=True, eq=False)
class PersonResult:
    """Emotions of one person in the label space of the model that made them: by default EMOTIC's 26 category
    scores in [0, 1] and VAD on 1..10 (`labels` says which categories and continuous dimensions)."""

    index: int                          # position of the person's box (or detection) in the input
    box: np.ndarray                     # (4,) xyxy pixels
    probs: np.ndarray                   # (26,) in EMOTIC_CATEGORIES order (labels.categories)
    vad: np.ndarray                     # (3,) valence, arousal, dominance (labels.dimensions)
    track_id: int | None = None         # the tracker's id; None for still images and untracked persons
    score: float | None = None          # detector confidence; None when the box came from the user
    keypoints: np.ndarray | None = None  # (K, 3) x, y, confidence from a pose detector
    labels: LabelSpace = EMOTIC         # what probs and vad mean
    feature: np.ndarray | None = None   # the frame model's per-person feature, kept for temporal models (not logged)
    vlm: object | None = None           # a fusion.vlm.VlmAnswer that arrived for this person (`--vlm`): its `vlm` field

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return top_emotions(self.probs, k, self.labels.categories)

    @property
    def top1(self) -> str:
        return self.labels.categories[int(np.argmax(np.nan_to_num(self.probs, nan=-np.inf)))]

    @property
    def is_finite(self) -> bool:
        """False where the model gave NaN/inf scores (the predictor leaves such persons out)."""
        return bool(np.isfinite(self.probs).all() and np.isfinite(self.vad).all())

    def replace(self, **changes) -> PersonResult:
        return dataclasses.replace(self, **changes)

    def record(self, top_k: int = 3) -> dict:
        """The person's JSON record (rounded for logs): track, box, score, emotions, top-k, VAD, keypoints.

        Never a non-finite number (JSON has none; most parsers reject `NaN`): a NaN/inf value becomes null
        and stays out of the top-k. The predictor already leaves persons with non-finite scores out.
        """
        kp = None
        if self.keypoints is not None:
            kp = [[finite(x, 1), finite(y, 1), finite(c, 3)] for x, y, c in self.keypoints]
        return {
            "track_id": self.track_id,
            "box": [finite(v, 1) for v in self.box],
            "score": None if self.score is None else finite(self.score, 4),
            "emotions": {name: finite(p, 5) for name, p in zip(self.labels.categories, self.probs)},
            "top": [[name, round(p, 5)] for name, p in self.top(top_k)],
            "vad": {name: finite(v, 4) for name, v in zip(self.labels.dimension_names, self.vad)},
            "keypoints": kp,
            **({"vlm": self.vlm.record()} if self.vlm is not None else {}),
        }
