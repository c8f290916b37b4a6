"""The `onnxruntime` backend: the three exported graphs run by ONNX Runtime sessions.

CPU provider by default; `device="cuda"` uses the CUDA provider (needs `onnxruntime-gpu`) with I/O bound
to torch CUDA tensors, so nothing crosses to the host. Sessions are built from `onnx_dir` (files written
by `emomon export`, checked against the model's hash) or, when none is given, from the ONNX cache, where
the model is exported on the fly the first time (keyed by the hash of its weights and config).

    >>> from fusion import Predictor, create_model                              # doctest: +SKIP
    >>> predictor = Predictor(create_model("two_stream_tiny", pretrained=False), backend="onnxruntime")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from emomon.kernel import InputError, first_line
from fusion.export.onnx import ensure_onnx
from fusion.export.onnx_files import (
    GRAPHS,
    INPUTS,
    OUTPUTS,
    OnnxFileError,
    check_metadata,
    onnx_name,
    read_onnx_metadata,
)
from fusion.models.base import EmotionModel

log = logging.getLogger(__name__)


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu", onnx_dir: str | None = None,
                 cache_dir: str | None = None, precision: str = "fp32", threads: int | None = None,
                 providers: list | None = None):
        import onnxruntime as ort

        self.device = torch.device(device)
        self.model = model.eval()  # stays where it is: only its preprocessing and sizes are used
        self.precision = precision
        available = ort.get_available_providers()
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise InputError("this onnxruntime has no CUDA provider: pip install onnxruntime-gpu, "
                                 "or run the onnxruntime backend with --device cpu")
            default = [("CUDAExecutionProvider", {"device_id": self.device.index or 0}), "CPUExecutionProvider"]
        elif self.device.type == "cpu":
            if precision == "fp16":  # ORT's CPU provider crashes the process on our fp16 graphs (seen here)
                raise InputError("fp16 ONNX graphs are for GPUs: use --device cuda, or precision fp32/int8 on cpu")
            default = ["CPUExecutionProvider"]
        else:
            raise InputError(f"the onnxruntime backend runs on cpu or cuda, not '{self.device}'")
        self.providers = providers or default
        self.options = ort.SessionOptions()
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.options.intra_op_num_threads = threads or 0  # 0: one per physical core
        self.options.log_severity_level = 3
        self.files = self._files(onnx_dir, cache_dir)
        self.sessions = {g: self._session(p) for g, p in self.files.items()}
        self.out_dims = {"body": (model.body_dim,), "scene": (model.scene_dim,),
                         "heads": (model.config.num_categories, 3)}

    def _files(self, onnx_dir, cache_dir) -> dict[str, Path]:
        if onnx_dir is None:
            return ensure_onnx(self.model, cache_dir=cache_dir, precision=self.precision)
        files = {g: Path(onnx_dir) / onnx_name(g, self.precision) for g in GRAPHS}
        for g, p in files.items():
            check_metadata(read_onnx_metadata(p), p, model=self.model, graph=g, precision=self.precision)
        return files

    def _session(self, path: Path):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(os.fspath(path), sess_options=self.options, providers=self.providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types for bad files
            raise OnnxFileError(f"ONNX Runtime cannot load '{path}' ({first_line(exc)}); "
                                f"re-export it with `emomon export`") from None

    def _check(self, graph: str, inputs: tuple[torch.Tensor, ...]) -> None:
        for name, t, spec in zip(INPUTS[graph], inputs, self.sessions[graph].get_inputs()):
            want = [d if isinstance(d, int) else None for d in spec.shape]
            got = list(t.shape)
            if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
                shown = ["N" if w is None else w for w in want]
                raise InputError(f"{graph} input '{name}' has shape {tuple(got)}, the ONNX graph takes {shown}")
        if len({t.shape[0] for t in inputs}) > 1:
            raise InputError(f"{graph} inputs differ in batch size: {[t.shape[0] for t in inputs]}")

    def _run(self, graph: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        self._check(graph, inputs)
        n = inputs[0].shape[0]
        if n == 0:
            return [torch.zeros((0, d), device=self.device) for d in self.out_dims[graph]]
        session = self.sessions[graph]
        if self.device.type == "cuda":
            return self._run_cuda(session, graph, inputs)
        feeds = {name: t.detach().to("cpu", torch.float32).contiguous().numpy()
                 for name, t in zip(INPUTS[graph], inputs)}
        return [torch.from_numpy(o) for o in session.run(list(OUTPUTS[graph]), feeds)]

    def _run_cuda(self, session, graph: str, inputs) -> list[torch.Tensor]:
        index = self.device.index or 0
        binding = session.io_binding()
        inputs = [t.detach().to(self.device, torch.float32).contiguous() for t in inputs]
        for name, t in zip(INPUTS[graph], inputs):
            binding.bind_input(name, "cuda", index, np.float32, tuple(t.shape), t.data_ptr())
        outs = [torch.empty((inputs[0].shape[0], d), device=self.device) for d in self.out_dims[graph]]
        for name, t in zip(OUTPUTS[graph], outs):
            binding.bind_output(name, "cuda", index, np.float32, tuple(t.shape), t.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # ORT runs on its own stream
        session.run_with_iobinding(binding)
        return outs

    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        return self._run("body", body)[0]

    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        return self._run("scene", scene)[0]

    def heads(self, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs, vad = self._run("heads", b, s)
        return probs, vad
