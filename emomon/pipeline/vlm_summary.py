"""A track's VLM answers over a run, for the run summary (`tracks[].vlm`): how often each category was named,
the mean of the answered continuous dimensions, and the latest rationale with the frame it was asked about."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fusion.results import finite as _num


@dataclass
class VlmTrackStats:
    answers: int = 0
    categories: Counter = field(default_factory=Counter)
    dim_sums: dict = field(default_factory=dict)    # name -> [sum, count]
    last: dict | None = None

    def add(self, answer) -> None:
        self.answers += 1
        self.categories.update(answer.categories)
        for name, value in answer.dimensions.items():
            total = self.dim_sums.setdefault(name, [0.0, 0])
            total[0] += value
            total[1] += 1
        self.last = {"frame": answer.frame, "time": _num(answer.time, 3), "categories": list(answer.categories),
                     "rationale": answer.rationale}

    def to_dict(self) -> dict:
        return {"answers": self.answers, "categories": dict(self.categories.most_common()),
                "mean_vad": {n: _num(s / c, 3) for n, (s, c) in self.dim_sums.items() if c},
                "last": self.last}
