"""Zero-shot emotions from CLIP (after EmoCLIP): no EMOTIC training needed.

Each person is scored by cosine similarity between a CLIP image embedding (of the body crop, plus the
whole frame with a small weight) and CLIP text embeddings of written *descriptions* of the 26 categories
(a prompt ensemble averaged per category). VAD comes from prompt pairs (e.g. pleasant vs unpleasant),
mapped to 1..10. Text embeddings are computed once per weights and cached in memory and on disk.

A user label set (`--labels FILE`, `fusion.models.label_file`) replaces the 26 categories: each label's
description is embedded, and a compound label is the mean of its components' embeddings (EmoCLIP).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from emomon.kernel import InputError, atomic_write, cache_dir
from fusion.models.base import EmotionModel
from fusion.models.categories import (
    CATEGORY_DESCRIPTIONS,
    CATEGORY_TEMPLATES,
    EMOTIC_CATEGORIES,
    VAD_NAMES,
    VAD_PROMPTS,
)
from fusion.models.config import ZeroShotConfig
from fusion.models.label_file import LabelSet
from fusion.models.labels import EMOTIC, LabelSpace
from fusion.models.openclip import open_clip_module
from fusion.models.preprocess import CLIP_MEAN, CLIP_STD, Preprocess
from fusion.models.towers import build_clip, clip_preprocess_size
from fusion.models.weights import fingerprint, is_random

log = logging.getLogger(__name__)

_MEMORY_CACHE: dict[str, dict[str, torch.Tensor]] = {}


def default_cache_dir() -> Path:
    return cache_dir("text_embeddings")


# Templates for user label descriptions, which are whole phrases ("a relaxed, peaceful person at ease").
LABEL_TEMPLATES: tuple[str, ...] = ("a photo of {desc}.", "a picture of {desc}.", "{name}: {desc}.")


def label_prompts(label_set: LabelSet) -> dict[str, list[str]]:
    return {lb.name: [t.format(name=lb.name, desc=lb.description) for t in LABEL_TEMPLATES]
            for lb in label_set.described()}


def category_prompts() -> list[list[str]]:
    return [[t.format(name=name.lower(), desc=CATEGORY_DESCRIPTIONS[name]) for t in CATEGORY_TEMPLATES]
            for name in EMOTIC_CATEGORIES]


class ZeroShotCLIP(EmotionModel):
    text_encoder_calls = 0  # class-wide count of text-tower runs, so tests can see cache hits

    def __init__(self, config: ZeroShotConfig, model_name: str = "", compute_text: bool = True,
                 cache_dir: str | os.PathLike | None = None, label_set: LabelSet | None = None):
        super().__init__()
        self.config, self.model_name = config, model_name
        self.label_set = label_set
        if label_set is not None:
            self.labels = LabelSpace(f"labels:{Path(label_set.source).name}", label_set.names, EMOTIC.dimensions,
                                     multi_label=False)
        clip = build_clip(config.clip_arch, config.clip_pretrained, config.quick_gelu, flag="--scene-weights",
                          need_text=compute_text)
        self.visual = clip.visual
        self.body_dim = self.scene_dim = int(clip.visual.output_dim)
        size = clip_preprocess_size(config.clip_arch)
        self.body_preprocess = Preprocess(size, CLIP_MEAN, CLIP_STD, "squash")
        self.scene_preprocess = Preprocess(size, CLIP_MEAN, CLIP_STD, config.scene_fit)
        # Random weights have an untrained temperature; use CLIP's trained value there.
        scale = config.logit_scale if is_random(config.clip_pretrained) else float(clip.logit_scale.detach().exp())
        self.register_buffer("logit_scale", torch.tensor(min(scale, 100.0)))
        d, k = self.body_dim, len(label_set.names) if label_set is not None else config.num_categories
        self.register_buffer("class_text", torch.zeros(k, d))
        self.register_buffer("vad_text", torch.zeros(len(VAD_NAMES), 2, d))
        if compute_text:
            self._set_text(self._text_embeddings(clip, cache_dir))
        del clip  # the text tower is only needed for the embeddings above
        self.requires_grad_(False)
        self.eval()

    # -- text side, computed once -------------------------------------------------------------------
    def _cache_key(self, clip) -> str | None:
        classes = category_prompts() if self.label_set is None else [label_prompts(self.label_set),
                                                                     self.label_set.to_list()]
        prompts = json.dumps([classes, VAD_PROMPTS], sort_keys=True)
        weights_id = fingerprint(clip)  # exact weights, whether tag, local file or random
        return hashlib.sha1(f"{self.config.clip_arch}|{weights_id}|{prompts}".encode()).hexdigest()[:16]

    def _text_embeddings(self, clip, cache_dir) -> dict[str, torch.Tensor]:
        key = self._cache_key(clip)
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        path = Path(cache_dir or default_cache_dir()) / f"{self.config.clip_arch}-{key}.pt"
        if path.is_file():
            try:
                emb = torch.load(path, map_location="cpu", weights_only=True)
                _MEMORY_CACHE[key] = emb
                return emb
            except Exception as exc:  # noqa: BLE001 - a bad cache file is just recomputed
                log.warning("ignoring unreadable text-embedding cache %s (%s)", path, exc)
        emb = self._encode_prompts(clip)
        _MEMORY_CACHE[key] = emb
        try:
            with atomic_write(path) as tmp:
                torch.save(emb, tmp)
        except (OSError, InputError) as exc:  # InputError: the cache folder cannot be created
            log.warning("could not write text-embedding cache %s (%s)", path, exc)
        return emb

    @torch.no_grad()
    def _encode_prompts(self, clip) -> dict[str, torch.Tensor]:
        open_clip = open_clip_module()

        ZeroShotCLIP.text_encoder_calls += 1
        tokenizer = open_clip.get_tokenizer(self.config.clip_arch)
        clip.eval()

        def embed(texts: list[str]) -> torch.Tensor:  # prompt ensemble -> one unit vector
            e = F.normalize(clip.encode_text(tokenizer(texts)).float(), dim=-1).mean(0)
            return F.normalize(e, dim=-1)

        if self.label_set is None:
            classes = torch.stack([embed(p) for p in category_prompts()])
        else:  # described labels embedded; a compound is the (weighted) mean of its components', renormalised
            leaf = {name: embed(p) for name, p in label_prompts(self.label_set).items()}
            classes = torch.stack([F.normalize(sum(w * leaf[n] for n, w in self.label_set.weights(name).items()),
                                               dim=-1) for name in self.label_set.names])
        vad = torch.stack([torch.stack([embed(list(hi)), embed(list(lo))])
                           for hi, lo in (VAD_PROMPTS[n] for n in VAD_NAMES)])
        return {"class_text": classes, "vad_text": vad}

    def _set_text(self, emb: dict[str, torch.Tensor]) -> None:
        self.class_text.copy_(emb["class_text"])
        self.vad_text.copy_(emb["vad_text"])

    # -- the model interface ------------------------------------------------------------------------
    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(body), dim=-1)

    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(scene), dim=-1)

    def fuse(self, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return F.normalize(b + self.config.scene_weight * s, dim=-1)

    def head(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        cat_logits = self.logit_scale * z @ self.class_text.T
        pair = self.logit_scale * torch.einsum("nd,vpd->nvp", z, self.vad_text)  # (N, 3, 2)
        vad = 1.0 + 9.0 * torch.softmax(pair, dim=-1)[..., 0]
        return {"cat_logits": cat_logits, "vad": vad}

    def probabilities(self, cat_logits: torch.Tensor) -> torch.Tensor:
        """A distribution over the 26 categories (CLIP scores are relative, not independent)."""
        return torch.softmax(cat_logits, dim=-1)

    def scene_cache_key(self) -> str:
        return f"zs-{self.config.clip_arch}-{self.scene_preprocess.key()}-{fingerprint(self.visual)}"

    def body_cache_key(self) -> str:
        return f"zs-{self.config.clip_arch}-{self.body_preprocess.key()}-{fingerprint(self.visual)}"
