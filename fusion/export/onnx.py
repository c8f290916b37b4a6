"""ONNX export of an emotion model: three graphs, each with a dynamic batch axis and named tensors.

    body   body (N, 3, S, S)                                   -> body_embedding (N, Db)
    scene  scene (F, 3, S', S')                                -> scene_embedding (F, Ds)
    heads  body_embedding (N, Db), scene_embedding (N, Ds)     -> probs (N, 26), vad (N, 3)

The heads graph bakes `model.probabilities()` in (sigmoid or softmax), so its `probs` output is final.
Every file records in its metadata_props the model name, class, config JSON, both preprocessings, the
emomon version, `emomon.weights_sha256` (exact hash of every weight and buffer) and `emomon.model_hash`
(weights + config + name: the cache key). The exporter is torch.onnx's dynamo (torch.export) exporter;
the legacy TorchScript exporter is deprecated and cannot export `nn.MultiheadAttention`'s fast path.
Names, metadata and the atomic writer are in `fusion.export.onnx_files`.

Opset 20: what the dynamo exporter emits natively in torch 2.14 (no version-conversion pass), the highest
that every TensorRT 10.x ONNX parser accepts (10.0 documents opsets 9-20; TensorRT 11 takes up to 25), and
supported by ONNX Runtime.

    >>> from fusion import create_model, export_onnx                       # doctest: +SKIP
    >>> files = export_onnx(create_model("two_stream_tiny", pretrained=False), "exports/tiny")
    >>> sorted(files)                                                       # doctest: +SKIP
    ['body', 'heads', 'scene']
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from emomon.kernel import InputError, cache_dir, quiet_loggers
from fusion.export.onnx_files import (
    GRAPHS,
    INPUTS,
    META_PREFIX,
    OUTPUTS,
    PRECISIONS,
    OnnxFileError,
    check_metadata,
    model_metadata,
    onnx_name,
    read_onnx_metadata,
    save_onnx,
    set_metadata,
)
from fusion.export.precision import convert_precision
from fusion.models.base import EmotionModel

log = logging.getLogger(__name__)

OPSET = 20


# -- the three graphs -------------------------------------------------------------------------------
class _Body(nn.Module):
    def __init__(self, model: EmotionModel):
        super().__init__()
        self.model = model

    def forward(self, body: torch.Tensor) -> torch.Tensor:
        return self.model.encode_body(body)


class _Scene(nn.Module):
    def __init__(self, model: EmotionModel):
        super().__init__()
        self.model = model

    def forward(self, scene: torch.Tensor) -> torch.Tensor:
        return self.model.encode_scene(scene)


class _Heads(nn.Module):
    def __init__(self, model: EmotionModel):
        super().__init__()
        self.model = model

    def forward(self, body_embedding: torch.Tensor, scene_embedding: torch.Tensor):
        out = self.model.forward_features(body_embedding, scene_embedding)
        return self.model.probabilities(out["cat_logits"]), out["vad"]


def graph_module(model: EmotionModel, graph: str) -> nn.Module:
    """The nn.Module that one graph exports (also what parity tests compare against)."""
    return {"body": _Body, "scene": _Scene, "heads": _Heads}[graph](model).eval()


def example_inputs(model: EmotionModel, graph: str, batch: int = 2, device=None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes for one graph."""
    device = device or next(model.parameters()).device
    if graph == "body":
        s = model.body_preprocess.size
        return (torch.randn(batch, 3, s, s, device=device),)
    if graph == "scene":
        s = model.scene_preprocess.size
        return (torch.randn(batch, 3, s, s, device=device),)
    return (torch.randn(batch, model.body_dim, device=device), torch.randn(batch, model.scene_dim, device=device))


# -- export -----------------------------------------------------------------------------------------
def _dynamic_shapes(graph: str):
    batch = torch.export.Dim("batch", min=1)
    if graph == "heads":
        return {"body_embedding": {0: batch}, "scene_embedding": {0: batch}}
    return {graph: {0: batch}}


def export_graph(model: EmotionModel, graph: str, path: str | os.PathLike, opset: int = OPSET,
                 metadata: dict[str, str] | None = None) -> Path:
    """Export one graph to `path` (written atomically), with metadata; returns the path."""

    if graph not in GRAPHS:
        raise InputError(f"unknown graph '{graph}': choose one of {', '.join(GRAPHS)}")
    path = Path(path)
    module = graph_module(model, graph)
    args = example_inputs(model, graph, batch=2)
    chatty = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")
    with warnings.catch_warnings(), torch.no_grad(), quiet_loggers(*chatty):
        warnings.simplefilter("ignore")  # the exporter's FutureWarnings/UserWarnings are not the user's concern
        program = torch.onnx.export(module, args, None, input_names=list(INPUTS[graph]),
                                    output_names=list(OUTPUTS[graph]), opset_version=opset, dynamo=True,
                                    dynamic_shapes=_dynamic_shapes(graph), external_data=False, verbose=False)
    proto = program.model_proto
    meta = dict(metadata or model_metadata(model))
    meta.update({META_PREFIX + "graph": graph, META_PREFIX + "precision": "fp32", META_PREFIX + "opset": str(opset),
                 META_PREFIX + "inputs": ",".join(INPUTS[graph]), META_PREFIX + "outputs": ",".join(OUTPUTS[graph])})
    set_metadata(proto, meta)
    proto.doc_string = f"emomon {model.model_name} {graph} graph"
    save_onnx(proto, path)
    return path


def export_onnx(model: EmotionModel, out_dir: str | os.PathLike, graphs=GRAPHS, opset: int = OPSET,
                precision: str = "fp32", calibration=None) -> dict[str, Path]:
    """Export `graphs` of `model` into `out_dir` as `<graph>.onnx` (fp32), plus `<graph>.fp16.onnx` or
    `<graph>.int8.onnx` when `precision` asks for it (see `fusion.export.precision`). Returns graph -> path
    of the requested precision."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    out_dir = Path(out_dir)
    was_training = model.training
    model.eval()
    try:
        meta = model_metadata(model)
        written = {}
        for graph in graphs:
            path = export_graph(model, graph, out_dir / onnx_name(graph), opset=opset, metadata=meta)
            log.info("exported %s graph of %s to %s", graph, model.model_name, path)
            written[graph] = path
    finally:
        model.train(was_training)
    if precision != "fp32":
        written = {g: convert_precision(p, precision, out_dir / onnx_name(g, precision), calibration=calibration)
                   for g, p in written.items()}
    return written


# -- the on-the-fly cache ----------------------------------------------------------------------------
def default_cache_dir() -> Path:
    return cache_dir("onnx")


def cache_dir_for(model: EmotionModel, cache_dir: str | os.PathLike | None = None, opset: int = OPSET) -> Path:
    meta = model_metadata(model)
    key = meta[META_PREFIX + "model_hash"][:16]
    return Path(cache_dir or default_cache_dir()) / f"{model.model_name or 'model'}-{key}-op{opset}"


def _valid(paths: dict[str, Path], precision: str) -> bool:
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        for g, p in paths.items():
            check_metadata(read_onnx_metadata(p), p, graph=g, precision=precision)
        return True
    except OnnxFileError as exc:
        log.warning("replacing a cached ONNX file (%s)", exc)
        return False


def ensure_onnx(model: EmotionModel, cache_dir: str | os.PathLike | None = None, graphs=GRAPHS,
                opset: int = OPSET, precision: str = "fp32", calibration=None) -> dict[str, Path]:
    """The model's ONNX files from the cache (keyed by model hash and opset), exported on a miss; fp16/int8
    files are converted from the cached fp32 ones when those are there.

    Files are written into a temporary sibling folder and each is renamed into place, so a concurrent
    start never reads half a file. Cached files that fail their metadata check are replaced."""
    folder = cache_dir_for(model, cache_dir, opset)
    paths = {g: folder / onnx_name(g, precision) for g in graphs}
    if _valid(paths, precision):
        return paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        fp32 = {g: folder / onnx_name(g) for g in graphs}
        if precision != "fp32" and _valid(fp32, "fp32"):
            log.info("converting the cached ONNX of %s to %s", model.model_name, precision)
            exported = {g: convert_precision(p, precision, tmp / onnx_name(g, precision), calibration=calibration)
                        for g, p in fp32.items()}
        else:
            log.info("exporting %s to ONNX (%s) into the cache %s", model.model_name, precision, folder)
            exported = export_onnx(model, tmp, graphs=graphs, opset=opset, precision=precision,
                                   calibration=calibration)
        folder.mkdir(parents=True, exist_ok=True)
        for p in tmp.iterdir():
            os.replace(p, folder / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {g: folder / p.name for g, p in exported.items()}
