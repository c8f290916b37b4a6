"""Reduced-precision PyTorch backends: `torch-fp16` and `torch-compile`.

- `torch-fp16`: the towers run under autocast (float16 on CUDA) with channels-last memory; weights stay
  float32, so the model is not converted in place and the heads run in float32 (their cost is nil and
  their probabilities stay exact). On CPU it runs bfloat16 autocast (CPUs have no fast float16 matmuls);
  that is only faster on CPUs with AMX/AVX512-BF16 and says so once in the log.
- `torch-compile`: the same, with the towers wrapped in `torch.compile`; on CUDA in "reduce-overhead"
  mode, which records CUDA graphs (one per batch size seen). Compilation happens on the first call of
  each batch size, so warm it up before timing.

    >>> from fusion import Predictor, create_model                         # doctest: +SKIP
    >>> predictor = Predictor(create_model("two_stream_vitb16"), device="cuda", backend="torch-fp16")
"""

from __future__ import annotations

import logging

import torch

from emomon.kernel import InputError
from fusion.models.base import EmotionModel

log = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


class TorchFastBackend:
    name = "torch-fp16"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu", dtype: str | None = None,
                 compile: bool = False, cuda_graphs: bool | None = None, compile_mode: str | None = None):
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise InputError(f"the {self.name} backend runs on cpu or cuda, not '{self.device}'")
        if dtype is None:
            dtype = "fp16" if self.device.type == "cuda" else "bf16"
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype '{dtype}' for {self.name}: use fp16 or bf16")
        self.dtype = DTYPES[dtype]
        if self.device.type == "cpu" and self.dtype == torch.float16:
            raise InputError(f"{self.name} on CPU runs bfloat16 (dtype='bf16'): PyTorch has no fast float16 CPU path")
        if self.device.type == "cpu":
            log.warning("%s on CPU: bfloat16 autocast, faster than fp32 only on CPUs with AMX/AVX512-BF16",
                        self.name)
        self.precision = "fp16" if self.dtype == torch.float16 else "bf16"
        self.model = model.to(self.device).eval()
        self.model.to(memory_format=torch.channels_last)  # only 4-D conv weights change layout
        self.cuda_graphs = bool(cuda_graphs if cuda_graphs is not None else compile and self.device.type == "cuda")
        if self.cuda_graphs and self.device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device")
        self._body, self._scene = self.model.encode_body, self.model.encode_scene
        if compile or self.cuda_graphs:
            mode = compile_mode or ("reduce-overhead" if self.cuda_graphs else "max-autotune-no-cudagraphs")
            self._body = torch.compile(self._body, mode=mode)
            self._scene = torch.compile(self._scene, mode=mode)

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def _tower(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device.type, dtype=self.dtype):
            out = fn(self._in(x))
        # a fresh float32 tensor: CUDA-graph outputs are overwritten by the next replay
        return out.float().clone() if self.cuda_graphs else out.float()

    @torch.inference_mode()
    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        return self._tower(self._body, body)

    @torch.inference_mode()
    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        return self._tower(self._scene, scene)

    @torch.inference_mode()
    def heads(self, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, s = b.to(self.device).float(), s.to(self.device).float()
        out = self.model.forward_features(b, s)
        return self.model.probabilities(out["cat_logits"].float()), out["vad"].float()


class TorchCompileBackend(TorchFastBackend):
    """`torch-fp16` with torch.compile (and CUDA graphs on CUDA)."""

    name = "torch-compile"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu", **options):
        options.setdefault("compile", True)
        super().__init__(model, device=device, **options)
