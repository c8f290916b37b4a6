"""Turn the CLI's `--emotion-model` value into a model: zero-shot CLIP, random weights, a registered
name, or a trained checkpoint file."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from emomon.kernel import InputError
from fusion.models.base import EmotionModel
from fusion.models.checkpoint import load_checkpoint
from fusion.models.factory import create_model, list_models
from fusion.models.label_file import LabelSet
from fusion.models.source import ModelSource

log = logging.getLogger(__name__)

DEFAULT_ZERO_SHOT = "zero_shot_vitb16"
DEFAULT_RANDOM = "two_stream_vitb16"
RANDOM_WARNING = ("EMOTION MODEL HAS RANDOM WEIGHTS: its emotions are meaningless (for tests and "
                  "benchmarks only)")


def describe_model(model: EmotionModel) -> str:
    """One line for logs and the app: which model, which weights (`model.source.describe()`)."""
    return model.source.describe()


def load_emotion_model(spec: str = "zero-shot", device: str = "cpu", seed: int = 0,
                       scene_weights: str | None = None, body_weights: str | None = None,
                       label_set: LabelSet | None = None) -> EmotionModel:
    """spec: "zero-shot", "random" (or "random:NAME"), a registered model name, or a checkpoint path.

    `scene_weights`/`body_weights` are local files (or tags) for the towers, for offline machines.
    `label_set` (`--labels`) replaces the zero-shot model's 26 categories; other models cannot take one.
    """
    spec = spec or "zero-shot"
    zero_shot = spec in ("zero-shot", "zeroshot", "zero_shot") or spec.removeprefix("random:").startswith("zero_shot")
    if label_set is not None and not zero_shot:
        raise InputError(f"--labels needs the zero-shot model (a text tower to embed the descriptions), "
                         f"not '{spec}'")
    extra = {"label_set": label_set} if label_set is not None else {}
    if spec in ("zero-shot", "zeroshot", "zero_shot"):
        overrides = {"clip_pretrained": scene_weights} if scene_weights else {}
        model = create_model(DEFAULT_ZERO_SHOT, pretrained=True, **overrides, **extra)
    elif spec == "random" or spec.startswith("random:"):
        name = spec.partition(":")[2] or DEFAULT_RANDOM
        torch.manual_seed(seed)  # same seed, same weights, same outputs
        model = create_model(name, pretrained=False, **extra)
        model.source = ModelSource("random", name, seed=seed, towers=model.source.towers)
        log.warning("%s [model %s, seed %d]", RANDOM_WARNING, name, seed)
    elif Path(spec).expanduser().is_file():
        model = load_checkpoint(Path(spec).expanduser())
    elif spec in list_models():
        overrides = {}
        if scene_weights:
            overrides["clip_pretrained" if spec.startswith("zero_shot") else "scene_pretrained"] = scene_weights
        if body_weights and not spec.startswith("zero_shot"):
            overrides["body_pretrained"] = body_weights
        model = create_model(spec, pretrained=True, **overrides, **extra)
    else:
        raise unknown_model(spec)
    model.source = dataclasses.replace(model.source, spec=spec)
    return model.to(device).eval()


def unknown_model(spec: str) -> InputError:
    return InputError(f"unknown emotion model '{spec}': use zero-shot, random, a model name "
                      f"({', '.join(list_models())}) or a checkpoint file (not found)")


def check_model_spec(spec: str) -> None:
    """The error `load_emotion_model` gives a spec that names no model, raised before anything loads: a typo
    in `--emotion-model` should not wait for the detector to load first."""
    spec = spec or "zero-shot"
    if spec in ("zero-shot", "zeroshot", "zero_shot", "random") or spec.startswith("random:"):
        return
    if not Path(spec).expanduser().is_file() and spec not in list_models():
        raise unknown_model(spec)
