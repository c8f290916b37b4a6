"""Reduced-precision PyTorch: `torch` with `--precision bf16|fp16`, and `torch-compile`.

- Towers in bfloat16 on a CPU: the body and scene towers run on a bfloat16 *copy* of their weights with
  channels-last memory (bf16 weights measured 71 ms against 98 ms under autocast for ViT-B/16 at batch 1 on
  an AVX-512 BF16 CPU). The heads run on the float32 model (their cost is nil and their probabilities stay
  exact). The copy costs half the model's fp32 size in memory.
- Towers in float16 on CUDA: autocast with channels-last (cuDNN picks fp16 kernels; weights stay fp32).
- `torch-compile`: the same, with the towers wrapped in `torch.compile`; on CUDA in "reduce-overhead"
  mode, which records CUDA graphs (one per batch size seen). Compilation happens on the first call of
  each batch size, so warm it up before timing.
- `torch-fp16` (registered name, kept for old commands): bf16 on a CPU, fp16 on CUDA.

    >>> from fusion import Predictor, create_model                         # doctest: +SKIP
    >>> predictor = Predictor(create_model("two_stream_vitb16"), backend="torch", precision="bf16")
"""

from __future__ import annotations

import copy
import logging

import torch

from emomon.kernel import InputError
from fusion.models.base import EmotionModel

log = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16"}


class TorchFastBackend:
    name = "torch-fp16"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu", dtype: str | None = None,
                 compile: bool = False, cuda_graphs: bool | None = None, compile_mode: str | None = None,
                 precision: str | None = None, cast_weights: bool | None = None, name: str | None = None):
        self.device = torch.device(device)
        self.name = name or self.name
        if self.device.type not in ("cpu", "cuda"):
            raise InputError(f"the {self.name} backend runs on cpu or cuda, not '{self.device}'")
        dtype = dtype or precision  # `precision` is the `--precision` spelling of the same thing
        if dtype is None:
            dtype = "fp16" if self.device.type == "cuda" else "bf16"
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype '{dtype}' for {self.name}: use fp16 or bf16")
        self.dtype = DTYPES[dtype]
        if self.device.type == "cpu" and self.dtype == torch.float16:
            raise InputError(f"{self.name} on CPU runs bfloat16 (dtype='bf16'): PyTorch has no fast float16 CPU path")
        self.precision = NAMES[self.dtype]
        # bf16 weights on a CPU (faster than autocast's per-call casts); autocast elsewhere (fp16 weights
        # would overflow in places where autocast keeps fp32)
        self.cast_weights = (self.device.type == "cpu") if cast_weights is None else bool(cast_weights)
        self.model = model.to(self.device).eval()
        self.towers = self.model
        if self.cast_weights:
            self.towers = copy.deepcopy(self.model).to(dtype=self.dtype).requires_grad_(False)
        self.towers.to(memory_format=torch.channels_last)  # only 4-D conv weights change layout
        self.cuda_graphs = bool(cuda_graphs if cuda_graphs is not None else compile and self.device.type == "cuda")
        if self.cuda_graphs and self.device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device")
        self._body, self._scene = self.towers.encode_body, self.towers.encode_scene
        if compile or self.cuda_graphs:
            mode = compile_mode or ("reduce-overhead" if self.cuda_graphs else "max-autotune-no-cudagraphs")
            self._body = torch.compile(self._body, mode=mode)
            self._scene = torch.compile(self._scene, mode=mode)
        log.info("%s: towers in %s (%s, channels-last), heads in fp32", self.name, self.precision,
                 "bf16 weights" if self.cast_weights else "autocast")

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.cast_weights:
            x = x.to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last)

    def _tower(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        if self.cast_weights:
            out = fn(self._in(x))
        else:
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
    """`torch` in reduced precision under torch.compile (and CUDA graphs on CUDA)."""

    name = "torch-compile"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cpu", **options):
        options.setdefault("compile", True)
        super().__init__(model, device=device, **options)
