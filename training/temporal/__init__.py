"""Emotions over time: per-track feature sequences from videos (cached), the Aff-Wild2 / ABAW readers, CCC,
training and the temporal ablation, and the synthetic video set with a planted temporal signal.

    abaw            Aff-Wild2 / ABAW VA and expression annotation readers, video lookup, alignment
    extract         videos -> per-track feature sequences through the real detector, tracker and frame model
    metrics         CCC, the 1 - CCC loss, expression macro-F1
    trainer         train / evaluate a temporal head on sequences
    ablation        per-frame / per-frame + EMA / TCN / Transformer / TCN + Transformer over seeds
    synthetic_video `emomon make-synthetic --video`
"""

import importlib

_EXPORTS = {
    "VideoItem": "abaw", "find_videos": "abaw", "read_expr_file": "abaw", "read_va_file": "abaw",
    "ExtractConfig": "config", "TrainTemporalConfig": "config",
    "Extractor": "extract", "Sequence": "extract",
    "ccc": "metrics", "ccc_loss": "metrics", "sequence_metrics": "metrics",
    "evaluate": "trainer", "predict": "trainer", "train_temporal": "trainer",
    "run_ablation": "ablation", "make_synthetic_videos": "synthetic_video",
}
__all__ = sorted([*_EXPORTS, "load_sequences"])


def __getattr__(name: str):  # lazy (PEP 562): the CLI reads the configs without loading torch
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"training.temporal.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'training.temporal' has no attribute {name!r}")


def load_sequences(root, split: str, extractor) -> list:
    """Every annotated video of `split` under `root` as a feature sequence (videos without a person left out)."""
    from training.temporal.abaw import find_videos

    return [s for s in (extractor.sequence(item) for item in find_videos(root, split)) if s is not None]
