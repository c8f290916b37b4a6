"""Run one TensorRT engine on torch CUDA tensors (needs TensorRT and a CUDA GPU).

Named-tensor API only (`get_tensor_name`, `set_input_shape`, `set_tensor_address`, `execute_async_v3`),
on the current torch CUDA stream, with torch-allocated input and output buffers: no host copies, no
pycuda. Inputs are checked against the engine's optimization profile; a batch larger than the profile's
maximum is run in chunks, any other shape mismatch is a one-line error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from emomon.kernel import InputError
from fusion.backends.chunks import run_in_chunks
from fusion.export.tensorrt import (
    REBUILD,
    EngineFileError,
    check_compatible,
    current_gpu,
    read_engine_file,
    require_tensorrt,
)

log = logging.getLogger(__name__)


def torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int8: torch.int8,
             trt.int32: torch.int32, trt.bool: torch.bool}
    for name, td in (("bfloat16", torch.bfloat16), ("int64", torch.int64), ("uint8", torch.uint8)):
        if hasattr(trt, name):
            table[getattr(trt, name)] = td
    if dtype not in table:
        raise InputError(f"engine tensor type {dtype} is not supported by emomon's runner")
    return table[dtype]


class TensorRTRunner:
    """`runner(name=tensor, ...) -> {output name: tensor}` for one engine file."""

    def __init__(self, path: str | os.PathLike, device="cuda", graph: str | None = None, precision: str | None = None):
        trt = self.trt = require_tensorrt()
        self.path, self.device = Path(path), torch.device(device)
        header, blob = read_engine_file(self.path)
        gpu_name, capability = current_gpu(self.device)
        check_compatible(header, trt.__version__, gpu_name, capability, self.path, graph=graph, precision=precision)
        self.header = header
        with torch.cuda.device(self.device):
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(blob)
            if self.engine is None:
                raise EngineFileError(f"TensorRT could not deserialize '{self.path}' (corrupt, or built by another "
                                      f"TensorRT or for another GPU): {REBUILD}")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        # (min, opt, max) shapes of profile 0 for every input
        self.profile = {n: [tuple(s) for s in self.engine.get_tensor_profile_shape(n, 0)] for n in self.inputs}
        self.max_batch = min(p[2][0] for p in self.profile.values())

    def _check(self, feeds: dict[str, torch.Tensor]) -> int:
        if sorted(feeds) != sorted(self.inputs):
            raise InputError(f"engine '{self.path.name}' takes inputs {self.inputs}, got {sorted(feeds)}")
        batches = {t.shape[0] for t in feeds.values()}
        if len(batches) != 1:
            raise InputError(f"engine '{self.path.name}': inputs differ in batch size {sorted(batches)}")
        for name, t in feeds.items():
            lo, _, hi = self.profile[name]
            if t.dim() != len(hi) or any(not (a <= d <= b) for a, d, b in zip(lo[1:], t.shape[1:], hi[1:])):
                raise InputError(f"engine '{self.path.name}' input '{name}' has shape {tuple(t.shape)}, the "
                                 f"profile takes {lo} to {hi}: {REBUILD} for this shape")
            if t.shape[0] < lo[0]:
                raise InputError(f"engine '{self.path.name}' input '{name}': batch {t.shape[0]} is below the "
                                 f"profile minimum {lo[0]}")
        return batches.pop()

    def __call__(self, **feeds: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check(feeds)
        return run_in_chunks(self._run, feeds, self.max_batch)  # larger than the profile: in chunks

    def _run(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stream = torch.cuda.current_stream(self.device)
        keep = []  # converted inputs; freed blocks are only reused by work queued after this launch
        for name, t in feeds.items():
            t = t.to(self.device, self.dtypes[name]).contiguous()
            keep.append(t)
            if not self.context.set_input_shape(name, tuple(t.shape)):
                raise InputError(f"engine '{self.path.name}' refused shape {tuple(t.shape)} for '{name}'")
            self.context.set_tensor_address(name, t.data_ptr())
        out = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise InputError(f"engine '{self.path.name}': output '{name}' shape {shape} is unresolved")
            out[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run '{self.path.name}'")
        return out
