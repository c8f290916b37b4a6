"""The exported ONNX files as files: graph and tensor names, the `emomon.*` metadata every file carries
(written, read back and checked against a model), and the atomic writer. Exporting lives in
`fusion.export.onnx`, precision conversion in `fusion.export.precision`; both build on this module.

Metadata (metadata_props, string values, keys prefixed `emomon.`): the model name, class, config JSON, both
preprocessings, the scene fit (`emomon.scene_fit`, checked against the model's), the emomon and torch
versions, `emomon.weights_sha256` (exact hash of every weight and buffer) and `emomon.model_hash` (weights +
config + name: the cache key), plus per file the graph, precision, opset, inputs and outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from emomon.kernel import InputError, __version__, atomic_write
from fusion.models.base import EmotionModel
from fusion.models.preprocess import Preprocess

GRAPHS = ("body", "scene", "heads")
INPUTS = {"body": ("body",), "scene": ("scene",), "heads": ("body_embedding", "scene_embedding")}
OUTPUTS = {"body": ("body_embedding",), "scene": ("scene_embedding",), "heads": ("probs", "vad")}
PRECISIONS = ("fp32", "fp16", "int8")
META_PREFIX = "emomon."


class OnnxFileError(InputError):
    """An ONNX file that is missing, unreadable, not an emomon export, or from another model."""


def onnx_name(graph: str, precision: str = "fp32") -> str:
    return f"{graph}.onnx" if precision == "fp32" else f"{graph}.{precision}.onnx"


# -- hashes and metadata ----------------------------------------------------------------------------
def weights_sha256(model: nn.Module) -> str:
    """sha256 of every weight and buffer (names, dtypes, shapes and bytes): exact, ~0.3 s for ViT-B/16."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def model_metadata(model: EmotionModel, weights: str | None = None) -> dict[str, str]:
    """The metadata every exported file carries (string values, keys prefixed `emomon.`)."""
    weights = weights or weights_sha256(model)
    config = _json(dataclasses.asdict(model.config))
    key = hashlib.sha256(f"{model.model_name}|{type(model).__name__}|{config}|{weights}".encode()).hexdigest()
    meta = {
        "model_name": model.model_name,
        "model_class": type(model).__name__,
        "config": config,
        "body_preprocess": _json(dataclasses.asdict(model.body_preprocess)),
        "scene_preprocess": _json(dataclasses.asdict(model.scene_preprocess)),
        "scene_fit": model.scene_preprocess.resize,  # how the whole frame fits the scene input (config.scene_fit)
        "body_dim": str(model.body_dim),
        "scene_dim": str(model.scene_dim),
        "emomon_version": __version__,
        "torch_version": torch.__version__,
        "weights_sha256": weights,
        "model_hash": key,
    }
    return {META_PREFIX + k: v for k, v in meta.items()}


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `emomon.*` metadata of an exported file, prefix stripped; OnnxFileError for anything else."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(f"ONNX file '{path}' not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for garbage
        raise OnnxFileError(f"'{path}' is not a readable ONNX file ({type(exc).__name__}); "
                            f"re-export it with `emomon export`") from None
    meta = {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
    if not proto.graph.node or "graph" not in meta or "model_hash" not in meta:
        raise OnnxFileError(f"'{path}' is not an emomon export (no emomon metadata); "
                            f"export the model with `emomon export`")
    return meta


def _scene_fit(scene_preprocess: str | None) -> str | None:
    """The fit a file's scene preprocessing names (files exported before `emomon.scene_fit` existed)."""
    try:
        return Preprocess(**json.loads(scene_preprocess)).resize
    except (TypeError, ValueError):
        return None


def check_metadata(meta: dict[str, str], path, model: EmotionModel | None = None, graph: str | None = None,
                   precision: str | None = None) -> None:
    """Refuse a file that is another graph, another precision or from another model/weights."""
    if graph and meta.get("graph") != graph:
        raise OnnxFileError(f"'{path}' holds the {meta.get('graph')!r} graph, expected {graph!r}")
    if precision and meta.get("precision", "fp32") != precision:
        raise OnnxFileError(f"'{path}' is {meta.get('precision')}, expected {precision}")
    if model is not None:
        # the scene fit is in the config the hash covers; checked by name too, so a mismatch says so
        fit, want_fit = meta.get("scene_fit") or _scene_fit(meta.get("scene_preprocess")), model.scene_preprocess.resize
        fits = f", exported for scene_fit={fit!r}, the model uses {want_fit!r}" if fit != want_fit else ""
        want = model_metadata(model)[META_PREFIX + "model_hash"]
        if meta.get("model_hash") != want or fits:
            raise OnnxFileError(
                f"'{path}' was exported from another model or other weights ({meta.get('model_name')}, "
                f"hash {meta.get('model_hash', '?')[:12]} vs {want[:12]} for {model.model_name}{fits}); "
                f"re-export it with `emomon export`")


# -- writing ----------------------------------------------------------------------------------------
def set_metadata(proto, meta: dict[str, str]) -> None:
    """Replace the metadata_props entries named in `meta`, keeping the others."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in meta]
    del proto.metadata_props[:]
    for k, v in [*keep, *meta.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)


def save_onnx(proto, path: str | os.PathLike) -> None:
    """Check and write atomically (temp file + rename): a crash never leaves half a graph behind."""
    import onnx

    onnx.checker.check_model(proto)
    with atomic_write(path) as tmp:
        onnx.save(proto, str(tmp))
