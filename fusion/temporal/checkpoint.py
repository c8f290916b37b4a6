"""One-file checkpoints of a temporal head: weights + config + label space + what features it reads
(the frame model and its feature size), loadable with `torch.load(weights_only=True)`."""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

import torch

from emomon.kernel import InputError, atomic_write, first_line
from fusion.models.checkpoint import CheckpointError
from fusion.models.labels import LabelSpace
from fusion.temporal.config import TemporalConfig
from fusion.temporal.model import TemporalModel

FORMAT = "emomon-temporal"
VERSION = 1


def save_temporal(model: TemporalModel, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(model.config),
               "labels": model.labels.to_dict(),
               "metadata": {"saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(), **(metadata or {})},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_temporal(path: str | os.PathLike, map_location="cpu") -> TemporalModel:
    """The temporal head saved at `path`; `model.metadata` holds what it was trained on."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"temporal model '{path}' not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear line
        raise CheckpointError(f"'{path}' is not a temporal model (cannot be read: {type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = "an emotion model checkpoint (--emotion-model)" if isinstance(payload, dict) and \
            payload.get("format") == "emomon-checkpoint" else "not an emomon temporal model"
        raise CheckpointError(f"'{path}' is {what}, not a temporal model (no '{FORMAT}' header)")
    if int(payload.get("version", 0)) > VERSION:
        raise CheckpointError(f"temporal model '{path}' has format version {payload['version']}, newer than this "
                              f"emomon reads ({VERSION}); upgrade emomon")
    try:
        config = TemporalConfig(**payload["config"])
        model = TemporalModel(config, LabelSpace.from_dict(payload["labels"]))
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
        raise CheckpointError(f"temporal model '{path}' cannot be built: {first_line(exc)}") from exc
    model.metadata = payload.get("metadata") or {}
    model.path = str(path)
    return model.to(map_location).eval()
