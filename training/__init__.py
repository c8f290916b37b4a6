"""Training and evaluation on EMOTIC: the ablation study (clean, CCIM-style, CLEF-lite, ASL, class-balanced).

    from training import load_config, train, run_ablation, make_synthetic
    make_synthetic("/tmp/emotic-synth", persons=1200)
    result = train(load_config("clean", {"data": "/tmp/emotic-synth", "model": "two_stream_tiny",
                                         "pretrained": False, "epochs": 3, "out": "/tmp/run"}))
    print(result.test.table())

Command line: `emomon train`, `emomon ablate`, `emomon evaluate`, `emomon make-synthetic`
(see training/README.md). Names are imported lazily so `emomon --help` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_split": "training.annotations", "find_annotations": "training.annotations",
    "PersonRecord": "training.annotations", "LoadReport": "training.annotations",
    "SplitData": "training.annotations",
    "EmoticDataset": "training.dataset", "read_image": "training.dataset",
    "FeatureCache": "training.features",
    "average_precision": "training.metrics", "interpolated_ap": "training.metrics", "mean_ap": "training.metrics",
    "vad_mae": "training.metrics", "equal_pr_thresholds": "training.metrics", "EvalResult": "training.metrics",
    "evaluate_arrays": "training.metrics",
    "AsymmetricLoss": "training.losses", "BCELoss": "training.losses", "HuberVADLoss": "training.losses",
    "EpochSampler": "training.sampling", "class_balanced_weights": "training.sampling",
    "EmotionTask": "training.tasks", "CcimTask": "training.tasks", "ClefLiteTask": "training.tasks",
    "build_task": "training.tasks", "build_confounder_dictionary": "training.tasks",
    "TrainConfig": "training.config", "load_config": "training.config", "VARIANTS": "training.config",
    "train": "training.trainer", "RunResult": "training.trainer",
    "evaluate_checkpoint": "training.evaluation",
    "run_ablation": "training.ablation", "run_sweep": "training.ablation",
    "make_synthetic": "training.synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'training' has no attribute '{name}'")


def __dir__():
    return __all__
