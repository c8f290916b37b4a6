"""One-file checkpoints of a trained emotion model: weights + model name + config + category list +
metadata (training data, metrics), loadable with `torch.load(weights_only=True)` and version-checked."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from pathlib import Path

import torch

from emomon.kernel import InputError, atomic_write
from fusion.models.base import EmotionModel
from fusion.models.categories import EMOTIC_CATEGORIES
from fusion.models.factory import create_model, model_entry, tower_weights
from fusion.models.source import ModelSource

log = logging.getLogger(__name__)

FORMAT = "emomon-checkpoint"
VERSION = 1


class CheckpointError(InputError):
    """A checkpoint that is missing, corrupt, from another model, or from a newer emomon."""


def save_checkpoint(model: EmotionModel, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half-written checkpoint."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": model.model_name,
        "config": model.config_dict(),
        "categories": list(EMOTIC_CATEGORIES),
        "metadata": {"saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(), **(metadata or {})},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear line
        raise CheckpointError(f"'{path}' is not an emomon checkpoint (cannot be read: "
                              f"{type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not an emomon checkpoint (no '{FORMAT}' header)")
    if int(payload.get("version", 0)) > VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {payload['version']}, newer than this "
                              f"emomon reads ({VERSION}); upgrade emomon")
    if list(payload.get("categories", [])) != list(EMOTIC_CATEGORIES):
        raise CheckpointError(f"checkpoint '{path}' predicts other categories than EMOTIC's 26")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location="cpu", expected_model: str | None = None,
                    model: EmotionModel | None = None) -> EmotionModel:
    """Rebuild the model from its saved config (no downloads: the towers come from the file).

    `expected_model` or an existing `model` to load into makes a checkpoint of another model an error.
    """
    payload = read_checkpoint(path)
    name = payload["model_name"]
    want = expected_model or (model.model_name if model is not None else None)
    if want and name != want:
        raise CheckpointError(f"checkpoint '{path}' is for model '{name}', not '{want}'")
    if model is None:
        entry = model_entry(name)
        config = dict(payload["config"])
        for field in entry.pretrained_fields:
            config[field] = None  # weights come from the checkpoint
        extra = {"compute_text": False} if "clip_pretrained" in entry.pretrained_fields else {}
        try:
            model = create_model(name, pretrained=False, **config, **extra)
        except TypeError as exc:
            raise CheckpointError(f"checkpoint '{path}' has a config this emomon cannot build: {exc}") from exc
    result = model.load_state_dict(payload["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"checkpoint '{path}' does not match model '{name}': "
                              f"missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    if config_fields := {k: v for k, v in payload["config"].items() if hasattr(model.config, k)}:
        model.config = dataclasses.replace(model.config, **config_fields)  # report the original weights
    model.source = ModelSource("checkpoint", name, checkpoint=str(path), metadata=payload.get("metadata") or {},
                               towers=tower_weights(model))
    log.info("loaded checkpoint %s (model %s)", path, name)
    return model.to(map_location).eval()
