"""One-file checkpoints of a trained emotion model: weights + model name + config + category list +
metadata (training data, metrics), loadable with `torch.load(weights_only=True)` and version-checked."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from pathlib import Path

import torch

from emomon.kernel import InputError, atomic_write, first_line
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


LEGACY_SCENE_FIT = "center_crop"  # the scene fit of checkpoints whose config has no scene_fit

# Config fields that say which architecture a registered name stands for (the towers and their input size).
# A checkpoint may change anything else (fusion kind, hidden size, CCIM, ...), but not these: "two_stream_vitb16"
# with a tiny CNN body is another model under a real-size name.
ARCHITECTURE_FIELDS = ("body_arch", "body_size", "scene_arch", "clip_arch")


def _shape(t) -> str:
    return "x".join(str(n) for n in t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def _listed(kind: str, items: list[str], n: int = 3) -> str:
    """'2 tensors missing (a, b)': the count and the first `n` names."""
    more = f", +{len(items) - n} more" if len(items) > n else ""
    return f"{len(items)} tensor{'s' if len(items) != 1 else ''} {kind} ({', '.join(items[:n])}{more})"


def check_architecture(path, name: str, config: dict) -> None:
    """The checkpoint's config names the same towers as the registered model `name`, else CheckpointError."""
    registered = model_entry(name).config
    wrong = [f"{f}={config[f]!r} (model '{name}' has {getattr(registered, f)!r})"
             for f in ARCHITECTURE_FIELDS if f in config and hasattr(registered, f)
             and config[f] != getattr(registered, f)]
    if wrong:
        raise CheckpointError(f"checkpoint '{path}' says model '{name}' but holds another architecture: "
                              f"{'; '.join(wrong)}")


def check_state_dict(path, name: str, model: EmotionModel, state_dict) -> None:
    """Every tensor of `state_dict` has the name and shape `model` expects (checked before loading, so a
    mismatch is one line naming the tensors, not torch's RuntimeError with one line per tensor)."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"checkpoint '{path}' has no weights (state_dict is {type(state_dict).__name__})")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {_shape(state_dict[k])} vs {_shape(v)}" for k, v in expected.items()
              if k in state_dict and (not isinstance(state_dict[k], torch.Tensor) or state_dict[k].shape != v.shape)]
    problems = [_listed(kind, items) for kind, items in (("with another shape", shapes), ("missing", missing),
                                                          ("unexpected", unexpected)) if items]
    if problems:
        raise CheckpointError(f"checkpoint '{path}' does not match model '{name}' (weights of another model?): "
                              f"{'; '.join(problems)}")


def load_checkpoint(path: str | os.PathLike, map_location="cpu", expected_model: str | None = None,
                    model: EmotionModel | None = None) -> EmotionModel:
    """Rebuild the model from its saved config (no downloads: the towers come from the file).

    `expected_model` or an existing `model` to load into makes a checkpoint of another model an error, and so
    does a checkpoint whose config or tensors do not fit the model its name registers (checked tensor by
    tensor before anything is loaded).
    """
    payload = read_checkpoint(path)
    name = payload["model_name"]
    want = expected_model or (model.model_name if model is not None else None)
    if want and name != want:
        raise CheckpointError(f"checkpoint '{path}' is for model '{name}', not '{want}'")
    if not isinstance(payload.get("config"), dict):
        raise CheckpointError(f"checkpoint '{path}' has no model config")
    check_architecture(path, name, payload["config"])
    if "scene_fit" not in payload["config"] and hasattr(model_entry(name).config, "scene_fit"):
        payload["config"]["scene_fit"] = LEGACY_SCENE_FIT  # saved before scene_fit existed: centre crops
    if model is not None and getattr(model.config, "scene_fit", None) != payload["config"].get("scene_fit"):
        raise CheckpointError(f"checkpoint '{path}' was trained with scene_fit={payload['config'].get('scene_fit')!r}"
                              f", the model to load into uses {getattr(model.config, 'scene_fit', None)!r}")
    if model is None:
        entry = model_entry(name)
        config = dict(payload["config"])
        for field in entry.pretrained_fields:
            config[field] = None  # weights come from the checkpoint
        extra = {"compute_text": False} if "clip_pretrained" in entry.pretrained_fields else {}
        try:
            model = create_model(name, pretrained=False, **config, **extra)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint '{path}' has a config this emomon cannot build: "
                                  f"{first_line(exc)}") from exc
    check_state_dict(path, name, model, payload.get("state_dict"))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:  # checked above; anything left is still the file's fault, in one line
        raise CheckpointError(f"checkpoint '{path}' does not load into model '{name}': {first_line(exc)}") from exc
    if config_fields := {k: v for k, v in payload["config"].items() if hasattr(model.config, k)}:
        model.config = dataclasses.replace(model.config, **config_fields)  # report the original weights
    model.source = ModelSource("checkpoint", name, checkpoint=str(path), metadata=payload.get("metadata") or {},
                               towers=tower_weights(model))
    log.info("loaded checkpoint %s (model %s)", path, name)
    return model.to(map_location).eval()
