"""Where a model's weights came from, as one typed record on every model (`model.source`).

Set in one place per kind: `create_model` ("pretrained" or "zero-shot", by the model name), then replaced by
`load_emotion_model` for random weights ("random", with the seed) and by `load_checkpoint` ("checkpoint",
with the file and its metadata). Logs, the app, the benchmarks and the evaluation read it from here.

    >>> ModelSource("random", "two_stream_tiny", seed=0).describe()
    'two_stream_tiny with RANDOM weights'
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("zero-shot", "random", "pretrained", "checkpoint")


@dataclass(frozen=True)
class ModelSource:
    kind: str                          # "zero-shot" | "random" | "pretrained" | "checkpoint"
    name: str                          # the registered model name
    spec: str = ""                     # what the user asked for (`--emotion-model`), when known
    seed: int | None = None            # random weights: the torch seed they were drawn with
    checkpoint: str | None = None      # checkpoint: the file the weights were read from
    metadata: dict = field(default_factory=dict)  # checkpoint: its metadata (training data, metrics, ...)
    towers: dict = field(default_factory=dict)    # tower -> the weights it was built with (tag, file, random)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown model source kind '{self.kind}': one of {', '.join(KINDS)}")

    @property
    def reported_map(self) -> float | None:
        """The mAP a checkpoint's training reported (test, else val; in percent), if any."""
        metrics = (self.metadata or {}).get("metrics") or {}
        m = metrics.get("test_mAP", metrics.get("val_mAP"))
        return m if isinstance(m, (int, float)) else None

    def describe(self) -> str:
        """One line for logs and the app: which model, which weights."""
        if self.kind == "checkpoint":
            m = self.reported_map
            score = f", reported mAP {m:.2f}" if m is not None else ""
            return f"trained checkpoint {self.checkpoint} ({self.name}{score})"
        if self.kind == "random":
            return f"{self.name} with RANDOM weights"
        return f"{self.name} (pretrained towers)"
