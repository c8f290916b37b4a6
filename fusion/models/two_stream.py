"""The paper's two-stream model: ResNet-18 on the person crop + CLIP image tower on the whole frame."""

from __future__ import annotations

import torch
from torch import nn

from fusion.models.base import EmotionModel
from fusion.models.config import TwoStreamConfig
from fusion.models.layers import AttentionFusion, BackdoorAdjustment, ConcatFusion, VADHead
from fusion.models.preprocess import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, Preprocess
from fusion.models.towers import build_body_tower, build_clip, clip_preprocess_size
from fusion.models.weights import describe, fingerprint


class TwoStreamModel(EmotionModel):
    def __init__(self, config: TwoStreamConfig, model_name: str = ""):
        super().__init__()
        self.config, self.model_name = config, model_name
        self.body, self.body_dim = build_body_tower(config.body_arch, config.body_pretrained)
        clip = build_clip(config.scene_arch, config.scene_pretrained, config.scene_quick_gelu)
        self.scene = clip.visual  # only the image tower is kept
        self.scene_dim = int(clip.visual.output_dim)
        del clip
        self.body_preprocess = Preprocess(config.body_size, IMAGENET_MEAN, IMAGENET_STD, "squash")
        self.scene_preprocess = Preprocess(clip_preprocess_size(config.scene_arch), CLIP_MEAN, CLIP_STD,
                                           config.scene_fit)
        if config.fusion == "concat":
            self.fusion = ConcatFusion(self.body_dim, self.scene_dim, config.hidden_dim, config.dropout)
        elif config.fusion == "attention":
            self.fusion = AttentionFusion(self.body_dim, self.scene_dim, config.hidden_dim, config.dropout,
                                          config.attention_heads)
        else:
            raise ValueError(f"unknown fusion '{config.fusion}': use 'concat' or 'attention'")
        self.ccim = (BackdoorAdjustment(config.hidden_dim, self.scene_dim, config.ccim_prototypes)
                     if config.ccim_prototypes > 0 else None)
        self.cat_head = nn.Linear(config.hidden_dim, config.num_categories)
        self.vad_head = VADHead(config.hidden_dim)
        self.context_head = (nn.Sequential(nn.Linear(self.scene_dim, config.hidden_dim), nn.ReLU(inplace=True),
                                           nn.Dropout(config.dropout),
                                           nn.Linear(config.hidden_dim, config.num_categories))
                             if config.context_branch else None)
        # CLEF-lite's counterfactual reference: the main branch's logits with the person removed (learned)
        self.clef_reference = (nn.Parameter(torch.zeros(config.num_categories)) if config.context_branch
                               else None)
        self.set_scene_trainable(not config.freeze_scene)
        if config.freeze_body:
            self.body.requires_grad_(False)

    def set_scene_trainable(self, trainable: bool) -> None:
        self.scene.requires_grad_(trainable)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_scene:  # a frozen tower stays in eval mode (no dropout noise in features)
            self.scene.eval()
        if self.config.freeze_body:
            self.body.eval()
        return self

    def encode_body(self, body: torch.Tensor) -> torch.Tensor:
        return self.body(body)

    def encode_scene(self, scene: torch.Tensor) -> torch.Tensor:
        if self.config.freeze_scene:
            with torch.no_grad():
                return self.scene(scene)
        return self.scene(scene)

    def fuse(self, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        z = self.fusion(b, s)
        return self.ccim(z) if self.ccim is not None else z

    def head(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"cat_logits": self.cat_head(z), "vad": self.vad_head(z)}

    def forward_features(self, b: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(self.fuse(b, s))
        if self.context_head is not None:
            # CLEF-lite (counterfactual inference as in CLEF / CF-VQA, SUM fusion of logits):
            #   main_logits    = the two-stream head (person + scene)
            #   scene_logits   = the context-only branch (scene embedding only)
            #   fused_logits   = main + scene: the factual prediction, what training optimises
            #   context_logits = reference + scene: the counterfactual prediction with the person replaced
            #                    by the learned reference (the natural direct effect of the context)
            #   cat_logits     = fused while training; fused - lambda * context at evaluation (TE - lambda NDE)
            scene = self.context_head(s)
            main = out["cat_logits"]
            fused = main + scene
            counterfactual = self.clef_reference.to(scene.dtype) + scene
            out.update(main_logits=main, scene_logits=scene, fused_logits=fused, context_logits=counterfactual)
            out["cat_logits"] = fused if self.training else fused - self.config.clef_lambda * counterfactual
        return out

    def set_confounder_dictionary(self, prototypes: torch.Tensor, priors: torch.Tensor) -> None:
        if self.ccim is None:
            raise ValueError("this model has no CCIM adjustment (ccim_prototypes=0)")
        self.ccim.set_dictionary(prototypes, priors)

    def scene_cache_key(self) -> str:
        c = self.config
        return (f"{c.scene_arch}-{describe(c.scene_pretrained)}-qg{int(c.scene_quick_gelu)}-"
                f"{self.scene_preprocess.key()}-{fingerprint(self.scene)}")

    def body_cache_key(self) -> str:
        c = self.config
        return f"{c.body_arch}-{describe(c.body_pretrained)}-{self.body_preprocess.key()}-{fingerprint(self.body)}"
