"""A name-based model factory over small dataclass configs (after timm/open_clip).

    model = create_model("two_stream_vitb16")                       # the paper's model, pretrained towers
    model = create_model("two_stream_tiny", pretrained=False)       # tiny test model, random init
    model = create_model("two_stream_vitb16", body_pretrained="resnet18.pth", fusion="attention")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from emomon.kernel import InputError
from fusion.models.base import EmotionModel
from fusion.models.config import TwoStreamConfig, ZeroShotConfig
from fusion.models.source import ModelSource
from fusion.models.two_stream import TwoStreamModel
from fusion.models.weights import describe
from fusion.models.zero_shot import ZeroShotCLIP


@dataclass(frozen=True)
class ModelEntry:
    cls: type
    config: Any
    description: str
    pretrained_fields: tuple[str, ...]  # config fields that hold weight tags


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, cls: type, config, description: str, pretrained_fields: tuple[str, ...]):
    _REGISTRY[name] = ModelEntry(cls, config, description, pretrained_fields)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model '{name}': choose one of {', '.join(list_models())}") from None


def create_model(name: str, pretrained: bool = True, **overrides) -> EmotionModel:
    """Build a registered model. `pretrained=False` makes every tower random unless an override names
    weights explicitly (e.g. `scene_pretrained="clip.bin"`); overrides are config fields."""
    entry = model_entry(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    extra = {k: v for k, v in overrides.items() if k not in fields}
    unknown = set(extra) - {"compute_text", "cache_dir", "label_set"}
    if unknown:
        raise InputError(f"model '{name}' has no option(s) {sorted(unknown)}; options: {sorted(fields)}")
    config = dataclasses.replace(entry.config, **{k: v for k, v in overrides.items() if k in fields})
    if not pretrained:
        config = dataclasses.replace(config, **{f: overrides.get(f) for f in entry.pretrained_fields})
    model = entry.cls(config, model_name=name, **extra)
    model.source = ModelSource("zero-shot" if name.startswith("zero_shot") else "pretrained", name,
                               towers=tower_weights(model, entry))
    return model


def tower_weights(model: EmotionModel, entry: ModelEntry | None = None) -> dict[str, str]:
    """Tower -> the weights its config names ("body": "imagenet", "scene": "random init", ...)."""
    entry = entry or _REGISTRY.get(model.model_name)
    if entry is None:
        return {}
    return {f.removesuffix("_pretrained"): describe(getattr(model.config, f, None)) for f in entry.pretrained_fields}


register_model("two_stream_vitb16", TwoStreamModel, TwoStreamConfig(),
               "the paper: ResNet-18 body (ImageNet) + CLIP ViT-B/16 scene (OpenAI), concat, MLP",
               ("body_pretrained", "scene_pretrained"))
register_model("two_stream_vitb16_attention", TwoStreamModel, TwoStreamConfig(fusion="attention"),
               "as two_stream_vitb16, fused by a Transformer layer over body and scene tokens",
               ("body_pretrained", "scene_pretrained"))
register_model("two_stream_tiny", TwoStreamModel,
               TwoStreamConfig(body_arch="tiny_cnn", body_pretrained=None, body_size=64,
                               scene_arch="emomon-tiny-vit", scene_pretrained=None, scene_quick_gelu=False,
                               hidden_dim=32, dropout=0.1, attention_heads=2),
               "tiny test model (small CNN + 2-layer ViT at 64px): builds in well under a second",
               ("body_pretrained", "scene_pretrained"))
register_model("zero_shot_vitb16", ZeroShotCLIP, ZeroShotConfig(),
               "zero-shot CLIP ViT-B/16 (OpenAI) against written category descriptions; no training",
               ("clip_pretrained",))
register_model("zero_shot_tiny", ZeroShotCLIP,
               ZeroShotConfig(clip_arch="emomon-tiny-vit", clip_pretrained=None, quick_gelu=False),
               "tiny zero-shot test model", ("clip_pretrained",))
