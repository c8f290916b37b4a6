"""Emotions over time: a causal temporal head over a track's per-frame features (TCN + Transformer, after the
ABAW CLIP + sequential-learning entry), its checkpoints, and track-level zero-shot pooling (EmoCLIP).

    >>> from fusion.temporal import create_temporal_model, list_temporal_models
    >>> list_temporal_models()
    ['per_frame', 'tcn', 'tcn_transformer', 'transformer']
    >>> head = create_temporal_model("tcn_transformer", input_dim=32, window=16)
    >>> head.labels.name, head.config.receptive_field
    ('abaw', 16)
"""

from fusion.temporal.checkpoint import load_temporal, save_temporal
from fusion.temporal.config import KINDS, TemporalConfig
from fusion.temporal.model import TemporalModel
from fusion.temporal.track_pool import TrackPool


def list_temporal_models() -> list[str]:
    return sorted(KINDS)


def create_temporal_model(kind: str = "tcn_transformer", input_dim: int = 512, **overrides) -> TemporalModel:
    """A temporal head by kind (the factory entry for `--temporal-model` training); overrides are config fields."""
    return TemporalModel(TemporalConfig(kind=kind, input_dim=input_dim, **overrides))


__all__ = ["KINDS", "TemporalConfig", "TemporalModel", "TrackPool", "create_temporal_model", "list_temporal_models",
           "load_temporal", "save_temporal"]
