"""Per-person emotions for frames and boxes: crop, preprocess, one batched call per stage.

    predictor = Predictor(create_model("two_stream_tiny", pretrained=False))
    people = predictor.predict(frame_bgr, [[10, 20, 200, 400]])
    people[0].top(3)  # [("Peace", 0.61), ...]
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from fusion.backends import InferenceBackend, create_backend
from fusion.models.base import EmotionModel
from fusion.models.preprocess import crop_persons, preprocess_images
from fusion.results import PersonResult

log = logging.getLogger(__name__)


class Predictor:
    """Runs an emotion model on frames and person boxes through an inference backend."""

    def __init__(self, model: EmotionModel | InferenceBackend, device: str = "cpu", backend: str = "torch",
                 crop_pad: float = 0.0, min_box_size: int = 4, **backend_options):
        if isinstance(model, EmotionModel):
            model = create_backend(backend, model, device=device, **backend_options)
        self.backend: InferenceBackend = model
        self.model = self.backend.model
        self.crop_pad, self.min_box_size = crop_pad, min_box_size
        self.nonfinite = 0  # persons dropped because the model gave NaN/inf for them, over the predictor's life
        self.keep_features = False  # attach each person's fused feature (`PersonResult.feature`): temporal models

    def encode_scene(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Scene embeddings (F, D) of whole frames; reuse them across persons and (if wanted) frames."""
        return self.backend.encode_scene(preprocess_images(list(frames), self.model.scene_preprocess))

    def predict(self, frame: np.ndarray, boxes=None, scene_embedding: torch.Tensor | None = None
                ) -> list[PersonResult | None]:
        """One frame. `boxes` (N, 4) xyxy; None means the whole frame is one person. The result is aligned
        with `boxes`: None where a box was degenerate or the model's output for the person was not finite
        (NaN/inf: broken weights); the reason is logged."""
        scenes = None if scene_embedding is None else [scene_embedding]
        return self.predict_many([frame], [boxes], scenes)[0]

    def predict_many(self, frames: list[np.ndarray], boxes_per_frame: list, scene_embeddings=None
                     ) -> list[list[PersonResult | None]]:
        """Several frames at once (e.g. several streams): one body batch and one scene batch in all."""
        crops_per_frame, body_images, frame_of_person = [], [], []
        for f, (frame, boxes) in enumerate(zip(frames, boxes_per_frame)):
            if boxes is None:
                boxes = [[0, 0, frame.shape[1], frame.shape[0]]]
            crops = crop_persons(frame, boxes, pad=self.crop_pad, min_size=self.min_box_size)
            crops_per_frame.append((len(boxes), crops))
            body_images += crops.images
            frame_of_person += [f] * len(crops.images)
        results = [[None] * n for n, _ in crops_per_frame]
        if not body_images:
            return results
        if scene_embeddings is None:
            needed = sorted(set(frame_of_person))  # frames without persons cost nothing
            emb = self.encode_scene([frames[f] for f in needed])
            scene = torch.zeros((len(frames), emb.shape[1]), dtype=emb.dtype, device=emb.device)
            scene[needed] = emb
        else:
            scene = torch.cat([s.reshape(1, -1) for s in scene_embeddings]).to(self.backend.device)
        b = self.backend.encode_body(preprocess_images(body_images, self.model.body_preprocess))
        s = scene.index_select(0, torch.as_tensor(frame_of_person, device=scene.device))
        probs, vad = self.backend.heads(b, s)
        probs, vad = probs.float().cpu().numpy(), vad.float().cpu().numpy()
        features = self._features(b, s) if self.keep_features else [None] * len(probs)
        finite = np.isfinite(probs).all(axis=1) & np.isfinite(vad).all(axis=1)
        p = 0
        for f, (_, crops) in enumerate(crops_per_frame):
            for j, idx in enumerate(crops.indices):
                if finite[p]:
                    results[f][idx] = PersonResult(idx, crops.boxes[j], probs[p], vad[p], labels=self.model.labels,
                                                   feature=features[p])
                else:
                    self._drop_nonfinite(idx, crops.boxes[j])
                p += 1
        return results

    @torch.no_grad()
    def _features(self, b: torch.Tensor, s: torch.Tensor) -> np.ndarray:
        """The model's fused per-person feature (`fuse(b, s)`, what its head reads), from the backend's
        embeddings: a small torch call beside the backend's heads, so every backend can feed a temporal model."""
        model = self.model
        param = next(model.parameters(), None)
        dev, dtype = (param.device, param.dtype) if param is not None else (b.device, torch.float32)
        return model.fuse(b.to(dev, dtype), s.to(dev, dtype)).float().cpu().numpy()

    def _drop_nonfinite(self, idx: int, box) -> None:
        """A warning the first time (a broken model would otherwise flood the log once per person), then debug."""
        self.nonfinite += 1
        level = logging.WARNING if self.nonfinite == 1 else logging.DEBUG
        log.log(level, "skipping person %d (box %s): the emotion model gave non-finite scores (NaN/inf; broken "
                "weights?)%s", idx, [round(float(v)) for v in box],
                "; later cases are logged at debug level" if self.nonfinite == 1 else "")
