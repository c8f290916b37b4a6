"""Training objectives as small task objects (after open_clip's TrainingTask), losses injected.

A task turns the model's output dict and a batch into named losses (`loss` is what is optimised), says
which model options it needs (`model_overrides`), and may `prepare` the model before training (CCIM's
confounder dictionary). The variants differ only in these objects and in the sampler:

| variant     | task              | category loss | sampler         |
| ----------- | ----------------- | ------------- | --------------- |
| clean       | `EmotionTask`     | BCE           | uniform         |
| ccim        | `CcimTask`        | BCE           | uniform         |
| clef_lite   | `ClefLiteTask`    | BCE           | uniform         |
| asl         | `EmotionTask`     | ASL           | uniform         |
| cb_sampling | `EmotionTask`     | BCE           | class-balanced  |

    >>> from training.losses import BCELoss, HuberVADLoss
    >>> task = EmotionTask(BCELoss("sum"), HuberVADLoss(), vad_weight=0.5)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from emomon.kernel import InputError
from training.losses import build_category_loss, build_vad_loss

log = logging.getLogger(__name__)


def weighted_mean(per_example: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    weight = weight.to(per_example.dtype)
    return (per_example * weight).sum() / weight.sum().clamp_min(1.0)


class EmotionTask:
    """Categories + VAD: loss = category_loss + vad_weight * vad_loss (the clean objective)."""

    name = "clean"

    def __init__(self, category_loss: nn.Module, vad_loss: nn.Module, vad_weight: float = 0.5):
        self.category_loss, self.vad_loss, self.vad_weight = category_loss, vad_loss, float(vad_weight)

    def model_overrides(self) -> dict:
        return {}

    def prepare(self, model, scene_features: Callable[[], torch.Tensor], seed: int) -> dict:
        """Hook run once before training (not on resume: the state comes from the checkpoint)."""
        return {}

    def __call__(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = batch["valid"]
        cat = weighted_mean(self.category_loss(out["cat_logits"], batch["categories"]), w)
        vad = weighted_mean(self.vad_loss(out["vad"], batch["vad"]), w)
        return {"loss": cat + self.vad_weight * vad, "cat_loss": cat, "vad_loss": vad}


class ClefLiteTask(EmotionTask):
    """CLEF-lite, trained as CLEF / counterfactual VQA train: the category loss is on the factual fused
    score `fused = main + scene` (so the main branch learns what the context-only branch does not
    explain), the context-only branch also gets its own loss, and the counterfactual reference `c` (the
    main branch's output with the person removed) is learned by matching the counterfactual prediction
    `c + scene` to the factual one with gradients to `c` only (CF-VQA's KL term, binary per category).

    At evaluation the model outputs `fused - lambda * (c + scene)` (TE - lambda NDE); lambda is chosen on
    val by the trainer (config `clef_lambda: null`) or fixed.
    """

    name = "clef_lite"

    def __init__(self, category_loss, vad_loss, vad_weight=0.5, *, clef_lambda: float | None = None,
                 context_weight: float = 1.0):
        super().__init__(category_loss, vad_loss, vad_weight)
        self.clef_lambda = None if clef_lambda is None else float(clef_lambda)
        self.context_weight = float(context_weight)

    def model_overrides(self) -> dict:
        # the model's lambda is only used at evaluation; a val-chosen one is set before every checkpoint
        return {"context_branch": True, "clef_lambda": 1.0 if self.clef_lambda is None else self.clef_lambda}

    def __call__(self, out, batch):
        losses = super().__call__(out, batch)  # on out["cat_logits"] = the fused score while training
        w = batch["valid"]
        scene = out["scene_logits"]
        ctx = weighted_mean(self.category_loss(scene, batch["categories"]), w)
        # counterfactual prediction with gradients to the reference only: c + scene, scene detached
        counterfactual = out["context_logits"] - scene + scene.detach()
        target = torch.sigmoid(out["fused_logits"].detach().float())
        ref = weighted_mean(nn.functional.binary_cross_entropy_with_logits(
            counterfactual.float(), target, reduction="none").mean(1), w)
        losses["context_loss"], losses["reference_loss"] = ctx, ref
        losses["loss"] = losses["loss"] + self.context_weight * ctx + ref
        return losses


def build_confounder_dictionary(features, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CCIM's confounder dictionary: k-means centres of training scene features (K, D) and their priors
    P(z) = cluster frequency (K,), summing to 1."""
    from sklearn.cluster import KMeans

    x = np.asarray(features.detach().cpu().numpy() if torch.is_tensor(features) else features, np.float64)
    if x.ndim != 2 or len(x) < k:
        raise InputError(f"CCIM needs at least {k} training scene features to build {k} prototypes, got "
                         f"{len(x)}; lower ccim_prototypes")
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    priors = np.bincount(km.labels_, minlength=k).astype(np.float64) / len(x)
    return (torch.as_tensor(km.cluster_centers_, dtype=torch.float32),
            torch.as_tensor(priors, dtype=torch.float32))


class CcimTask(EmotionTask):
    """CCIM-style: before training, k-means over the training set's scene features gives K prototypes
    and priors; the model's backdoor-adjustment layer attends over them (fusion's `ccim_prototypes`)."""

    name = "ccim"

    def __init__(self, category_loss, vad_loss, vad_weight=0.5, *, prototypes: int = 32):
        super().__init__(category_loss, vad_loss, vad_weight)
        if prototypes < 1:
            raise InputError("the ccim variant needs ccim_prototypes >= 1")
        self.prototypes = int(prototypes)

    def model_overrides(self) -> dict:
        return {"ccim_prototypes": self.prototypes}

    def prepare(self, model, scene_features, seed):
        feats = scene_features()
        protos, priors = build_confounder_dictionary(feats, self.prototypes, seed)
        model.set_confounder_dictionary(protos, priors)
        log.info("CCIM dictionary: %d prototypes from %d training scene features (largest prior %.3f)",
                 self.prototypes, len(feats), float(priors.max()))
        return {"ccim_priors": [round(float(p), 5) for p in priors]}


TASKS = {"clean": EmotionTask, "clef_lite": ClefLiteTask, "ccim": CcimTask}


def build_task(cfg) -> EmotionTask:
    """The task object a config asks for (`cfg.task`), with its injected losses."""
    if cfg.task not in TASKS:
        raise InputError(f"unknown task '{cfg.task}': use one of {', '.join(TASKS)}")
    cat = build_category_loss(cfg.category_loss, gamma_neg=cfg.asl_gamma_neg, gamma_pos=cfg.asl_gamma_pos,
                              clip=cfg.asl_clip, reduction=cfg.category_reduction)
    vad = build_vad_loss(cfg.vad_loss, delta=cfg.huber_delta)
    if cfg.task == "clef_lite":
        return ClefLiteTask(cat, vad, cfg.vad_weight, clef_lambda=cfg.clef_lambda,
                            context_weight=cfg.context_loss_weight)
    if cfg.task == "ccim":
        return CcimTask(cat, vad, cfg.vad_weight, prototypes=cfg.ccim_prototypes)
    return EmotionTask(cat, vad, cfg.vad_weight)
