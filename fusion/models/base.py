"""The one interface every emotion model implements, with fixed extension points.

    b = model.encode_body(crops)          # (N, body_dim)   person crops
    s = model.encode_scene(frames)        # (F, scene_dim)  whole frames, once per frame
    z = model.fuse(b, s[scene_index])     # (N, fused_dim)
    out = model.head(z)                   # {"cat_logits": (N, 26), "vad": (N, 3) on 1..10}

`forward(body, scene, scene_index)` chains them; `forward_features(b, s)` starts from embeddings, so
training with cached features and accelerated backends reuse the exact same head code.
"""

from __future__ import annotations

import abc
import dataclasses

import torch
from torch import nn

from fusion.models.labels import EMOTIC, LabelSpace
from fusion.models.preprocess import Preprocess
from fusion.models.source import ModelSource


class EmotionModel(nn.Module, abc.ABC):
    model_name: str = ""
    config: object
    body_preprocess: Preprocess
    scene_preprocess: Preprocess
    body_dim: int
    scene_dim: int
    source: ModelSource  # where the weights came from: set by create_model, load_emotion_model, load_checkpoint
    labels: LabelSpace = EMOTIC  # what `head` predicts: categories and continuous dimensions (fusion.models.labels)

    @abc.abstractmethod
    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        ...

    @abc.abstractmethod
    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        ...

    @abc.abstractmethod
    def fuse(self, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        ...

    @abc.abstractmethod
    def head(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        ...

    def probabilities(self, cat_logits: torch.Tensor) -> torch.Tensor:
        """Category scores in [0, 1]; independent sigmoids unless a model says otherwise."""
        return torch.sigmoid(cat_logits)

    def forward_features(self, b: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        """Heads from per-person body and scene embeddings (s already gathered per person)."""
        return self.head(self.fuse(b, s))

    def forward(self, body: torch.Tensor, scene: torch.Tensor,
                scene_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """body (N,3,S,S), scene (F,3,S',S'), scene_index (N,) maps each person to its frame (None: F == N).

        Each frame's scene embedding is computed once, whatever the number of persons in it.
        """
        if body.shape[0] == 0:  # no persons: skip both towers (some cannot take an empty batch)
            empty = body.new_zeros((0, self.body_dim)), body.new_zeros((0, self.scene_dim))
            return self.forward_features(*empty)
        b = self.encode_body(body)
        s = self.encode_scene(scene)
        if scene_index is None:
            if s.shape[0] != b.shape[0]:
                raise ValueError(f"{b.shape[0]} persons but {s.shape[0]} frames: pass scene_index")
        else:
            s = s.index_select(0, scene_index.to(s.device, torch.long))
        return self.forward_features(b, s)

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    @abc.abstractmethod
    def scene_cache_key(self) -> str:
        """Identifies the scene embeddings this model computes (weights + preprocessing)."""
        ...

    @abc.abstractmethod
    def body_cache_key(self) -> str:
        ...
