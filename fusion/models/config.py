"""Dataclass configs for the emotion models. Every field is a plain value, so a config round-trips
through a checkpoint (`dataclasses.asdict`) and through YAML."""

from __future__ import annotations

from dataclasses import dataclass

from fusion.models.categories import NUM_CATEGORIES


@dataclass
class TwoStreamConfig:
    """The paper's two-stream model and its variants (fusion kind, CCIM-style, CLEF-lite)."""

    body_arch: str = "resnet18"          # torchvision name, or "tiny_cnn"
    body_pretrained: str | None = "imagenet"
    body_size: int = 224
    scene_arch: str = "ViT-B-16"          # open_clip model name
    scene_pretrained: str | None = "openai"
    scene_quick_gelu: bool = True         # OpenAI's CLIP weights use QuickGELU
    # How the whole frame fits the scene tower's square input: "squash" | "letterbox" | "center_crop".
    # The paper's scene encoder sees the full image; "squash" keeps all of it by stretching, as both EMOTIC
    # reference implementations do, and spends every input pixel on the image ("letterbox" keeps the aspect
    # but pads ~44% of the input for a 16:9 frame); "center_crop" (CLIP's own) cuts 12.5% off each side of a
    # 4:3 image, ~22% of a 16:9 frame. Checkpoints saved without this field were trained with centre crops
    # and load as "center_crop" (fusion.models.checkpoint).
    scene_fit: str = "squash"
    freeze_scene: bool = True
    freeze_body: bool = False
    fusion: str = "concat"                # "concat" or "attention"
    hidden_dim: int = 512
    dropout: float = 0.5
    attention_heads: int = 8
    ccim_prototypes: int = 0              # K > 0: CCIM-style backdoor adjustment over K scene prototypes
    context_branch: bool = False          # CLEF-lite: a scene-only branch, subtracted at inference
    clef_lambda: float = 1.0
    num_categories: int = NUM_CATEGORIES


@dataclass
class ZeroShotConfig:
    """Zero-shot CLIP: cosine similarity of image embeddings to text embeddings of class descriptions."""

    clip_arch: str = "ViT-B-16"
    clip_pretrained: str | None = "openai"
    quick_gelu: bool = True
    # The whole frame's fit (see TwoStreamConfig.scene_fit): centre crop here, since zero-shot uses CLIP as
    # trained, and CLIP was trained (and is evaluated) on centre crops.
    scene_fit: str = "center_crop"
    scene_weight: float = 0.25            # how much the whole frame adds to the person crop's embedding
    logit_scale: float = 100.0            # CLIP's trained temperature; used when weights are random
    num_categories: int = NUM_CATEGORIES
