"""Per-person emotions for frames and boxes: crop, preprocess, one batched call per stage.

    predictor = Predictor(create_model("two_stream_tiny", pretrained=False))
    people = predictor.predict(frame_bgr, [[10, 20, 200, 400]])
    people[0].top(3)  # [("Peace", 0.61), ...]
"""

from __future__ import annotations

import contextlib
import logging
import threading

import numpy as np
import torch

from fusion.backends import InferenceBackend, create_backend
from fusion.models.base import EmotionModel
from fusion.models.device_preprocess import (
    crops_on_device,
    resolve_preprocess,
    scenes_on_device,
    stack_by_shape,
    upload_frame,
)
from fusion.models.preprocess import crop_persons, preprocess_images
from fusion.results import PersonResult

log = logging.getLogger(__name__)


class Predictor:
    """Runs an emotion model on frames and person boxes through an inference backend.

    `preprocess`: `cpu` crops and resizes with OpenCV on the host (`fusion.models.preprocess`); `device` uploads
    each frame once and crops, resizes and normalises on the backend's device (`fusion.models.device_preprocess`);
    `auto`: device on CUDA, cpu elsewhere."""

    def __init__(self, model: EmotionModel | InferenceBackend, device: str = "cpu", backend: str = "torch",
                 crop_pad: float = 0.0, min_box_size: int = 4, preprocess: str = "cpu", **backend_options):
        if isinstance(model, EmotionModel):
            model = create_backend(backend, model, device=device, **backend_options)
        self.backend: InferenceBackend = model
        self.model = self.backend.model
        self.preprocess = resolve_preprocess(preprocess, self.backend.device)
        self._local = threading.local()  # per thread: frames already uploaded inside `sharing_uploads`
        self.crop_pad, self.min_box_size = crop_pad, min_box_size
        self.nonfinite = 0  # persons dropped because the model gave NaN/inf for them, over the predictor's life
        self.keep_features = False  # attach each person's fused feature (`PersonResult.feature`): temporal models

    def encode_scene(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Scene embeddings (F, D) of whole frames; reuse them across persons and (if wanted) frames."""
        return self.backend.encode_scene(self.scene_inputs(frames))

    def scene_inputs(self, frames: list[np.ndarray]) -> torch.Tensor:
        """The scene tower's input (F, 3, S, S) for whole BGR frames, prepared where `preprocess` says."""
        if self.preprocess == "cpu" or not len(frames):
            return preprocess_images(list(frames), self.model.scene_preprocess)
        uploaded = [self._upload(f) for f in frames]
        return _in_order([(idx, scenes_on_device(stacked, self.model.scene_preprocess))
                          for idx, stacked in stack_by_shape(uploaded)])

    def body_inputs(self, frames: list[np.ndarray], crops_per_frame: list) -> torch.Tensor:
        """The body tower's input (P, 3, S, S): every crop of every frame, frame by frame, in one roi_align call
        per frame size on the device (or OpenCV crops on the host)."""
        pre = self.model.body_preprocess
        if self.preprocess == "cpu":
            return preprocess_images([im for crops in crops_per_frame for im in crops.images], pre)
        with_persons = [f for f, crops in enumerate(crops_per_frame) if crops.indices]
        first = np.cumsum([0] + [len(c.indices) for c in crops_per_frame])  # first person of each frame
        uploaded = [self._upload(frames[f]) for f in with_persons]
        parts = []
        for idx, stacked in stack_by_shape(uploaded):
            fs = [with_persons[i] for i in idx]
            boxes = torch.from_numpy(np.concatenate([crops_per_frame[f].boxes for f in fs])).to(stacked.device)
            which = torch.as_tensor(np.repeat(np.arange(len(fs)), [len(crops_per_frame[f].indices) for f in fs]),
                                    device=stacked.device)
            persons = [p for f in fs for p in range(first[f], first[f + 1])]
            parts.append((persons, crops_on_device(stacked, boxes, which, pre)))
        return _in_order(parts)

    @contextlib.contextmanager
    def sharing_uploads(self):
        """Inside the block a frame (the same array object) is uploaded to the device once, however many
        calls use it (the pipeline's scene embedding, then its persons). The block must not outlive the frame's
        pixels: readers may refill an array."""
        outer = getattr(self._local, "held", None) is None
        if outer:
            self._local.held = {}
        try:
            yield self
        finally:
            if outer:
                self._local.held = None

    def _upload(self, frame: np.ndarray) -> torch.Tensor:
        held = getattr(self._local, "held", None)
        if held is not None and id(frame) in held and held[id(frame)][0] is frame:
            return held[id(frame)][1]
        tensor = upload_frame(frame, self.backend.device)
        if held is not None:
            held[id(frame)] = (frame, tensor)  # the array is kept alive, so its id cannot be reused meanwhile
        return tensor

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
        with self.sharing_uploads():  # a frame whose scene is computed here is uploaded once for both towers
            return self._predict_many(frames, boxes_per_frame, scene_embeddings)

    def _predict_many(self, frames, boxes_per_frame, scene_embeddings) -> list[list[PersonResult | None]]:
        crops_per_frame, frame_of_person = [], []
        for f, (frame, boxes) in enumerate(zip(frames, boxes_per_frame)):
            if boxes is None:
                boxes = [[0, 0, frame.shape[1], frame.shape[0]]]
            crops = crop_persons(frame, boxes, pad=self.crop_pad, min_size=self.min_box_size)
            crops_per_frame.append((len(boxes), crops))
            frame_of_person += [f] * len(crops.images)
        results = [[None] * n for n, _ in crops_per_frame]
        if not frame_of_person:
            return results
        if scene_embeddings is None:
            needed = sorted(set(frame_of_person))  # frames without persons cost nothing
            emb = self.encode_scene([frames[f] for f in needed])
            scene = torch.zeros((len(frames), emb.shape[1]), dtype=emb.dtype, device=emb.device)
            scene[needed] = emb
        else:
            scene = torch.cat([s.reshape(1, -1) for s in scene_embeddings]).to(self.backend.device)
        b = self.backend.encode_body(self.body_inputs(frames, [crops for _, crops in crops_per_frame]))
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


def _in_order(parts: list[tuple[list[int], torch.Tensor]]) -> torch.Tensor:
    """Rows computed in groups ([(positions, rows)]) back in position order, on the device."""
    if len(parts) == 1 and parts[0][0] == list(range(len(parts[0][0]))):
        return parts[0][1]
    positions = [p for idx, _ in parts for p in idx]
    rows = torch.cat([x for _, x in parts])
    inverse = torch.empty(len(positions), dtype=torch.long)
    inverse[torch.as_tensor(positions)] = torch.arange(len(positions))
    return rows.index_select(0, inverse.to(rows.device))
