"""The `tensorrt` backend: one engine per graph (body, scene, heads), built once and cached.

Engines come from `engine_dir` (files written by `emomon export --format tensorrt`, header-checked against
this TensorRT and GPU) or from the engine cache, built on a miss from the model's ONNX export (itself
cached). Without TensorRT, creating the backend fails with one line naming `pip install 'emomon[trt]'`.

    >>> from fusion import Predictor, load_emotion_model                         # doctest: +SKIP
    >>> predictor = Predictor(load_emotion_model("zero-shot"), device="cuda", backend="tensorrt")
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from emomon.kernel import InputError
from fusion.export.onnx_files import GRAPHS, META_PREFIX, model_metadata
from fusion.export.tensorrt import default_profiles, require_tensorrt
from fusion.models.base import EmotionModel

log = logging.getLogger(__name__)


def engine_name(graph: str, precision: str) -> str:
    return f"{graph}.{precision}.engine"


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, model: EmotionModel, device: str | torch.device = "cuda", precision: str = "fp16",
                 max_batch: int = 32, opt_batch: int = 8, max_scene_batch: int = 8, engine_dir: str | None = None,
                 cache_dir: str | None = None, onnx_cache_dir: str | None = None, calibration=None,
                 rebuild: bool = False):
        require_tensorrt()  # first: without TensorRT nothing else matters
        from fusion.backends.tensorrt_runner import TensorRTRunner
        from fusion.export.tensorrt_build import ensure_engine

        if str(device) == "cpu":  # TensorRT only runs on the GPU; the CLI's default device is cpu
            log.info("the tensorrt backend runs on cuda (device 'cpu' ignored)")
            device = "cuda"
        self.device = torch.device(device)
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise InputError("the tensorrt backend needs a CUDA GPU: pass --device cuda on a machine with one")
        self.model, self.precision = model.eval(), precision
        self.profiles = default_profiles(max_batch, opt_batch, max_scene_batch)
        self.runners = {}
        for graph in GRAPHS:
            if engine_dir is not None:
                path = Path(engine_dir) / engine_name(graph, precision)
            else:
                path = ensure_engine(None, graph, precision, self.profiles[graph], device=self.device,
                                     cache_dir=cache_dir, model=model, onnx_cache_dir=onnx_cache_dir,
                                     calibration=calibration, rebuild=rebuild)
            self.runners[graph] = TensorRTRunner(path, self.device, graph=graph, precision=precision)
            if engine_dir is not None:
                self._check_model(path, self.runners[graph].header)
        self.out_dims = {"body": model.body_dim, "scene": model.scene_dim}

    def _check_model(self, path: Path, header: dict) -> None:
        want = model_metadata(self.model)[META_PREFIX + "model_hash"]
        if header.get("model_hash") != want:
            raise InputError(f"engine '{path}' was built from another model or other weights "
                             f"({header.get('model_name')}); rebuild it with `emomon export --format tensorrt`")

    def _empty(self, dim: int) -> torch.Tensor:
        return torch.zeros((0, dim), device=self.device)

    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        if body.shape[0] == 0:
            return self._empty(self.out_dims["body"])
        return self.runners["body"](body=body)["body_embedding"].float()

    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        if scene.shape[0] == 0:
            return self._empty(self.out_dims["scene"])
        return self.runners["scene"](scene=scene)["scene_embedding"].float()

    def heads(self, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if b.shape[0] == 0:
            return self._empty(self.model.config.num_categories), self._empty(3)
        out = self.runners["heads"](body_embedding=b.float(), scene_embedding=s.float())
        return out["probs"].float(), out["vad"].float()
