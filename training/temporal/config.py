"""Settings of temporal training and feature extraction, with their defaults in one place (the
`train-temporal` / `ablate-temporal` flags read them). Cheap to import: no torch here."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.config import DetectorConfig
from emomon.pipeline.config import ReuseConfig
from emomon.pipeline.smoothing import SmoothingConfig


@dataclass
class TrainTemporalConfig:
    kind: str = "tcn_transformer"
    window: int = 32
    hidden: int = 64
    tcn_levels: int = 3
    transformer_layers: int = 1
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    stride: int = 4              # a training window ends every `stride` frames
    expr_weight: float = 0.5     # weight of the expression cross-entropy beside 1 - CCC
    seed: int = 0
    ema_alpha: float = SmoothingConfig().alpha   # the per-frame + EMA baseline uses the pipeline's EMA

    def model_config(self, input_dim: int):
        from fusion.temporal import TemporalConfig

        return TemporalConfig(kind=self.kind, input_dim=input_dim, window=self.window, hidden=self.hidden,
                              tcn_levels=self.tcn_levels, transformer_layers=self.transformer_layers,
                              dropout=self.dropout)


@dataclass
class ExtractConfig:
    frame_model: str = "zero-shot"        # --emotion-model of the frame model whose features are kept
    detector_weights: str = DetectorConfig().weights
    imgsz: int = DetectorConfig().imgsz
    device: str = "cpu"
    # as `emomon run --temporal-model`: the scene reuse of the defaults, persons recomputed every frame (the
    # pipeline enforces refresh_every=1 with a temporal head; --every-frame turns the scene reuse off too)
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
