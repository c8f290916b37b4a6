"""Predicting a whole split (sharded over DDP ranks, gathered in order) and scoring it.

    >>> from fusion import load_checkpoint
    >>> from training.evaluation import evaluate_checkpoint
    >>> result = evaluate_checkpoint("runs/clean-s0/best.pt", "/data/emotic", "test")   # doctest: +SKIP
    >>> print(result.table())                                                            # doctest: +SKIP
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.dataset import EmoticDataset
from training.distributed import DistContext, autocast, gather_objects
from training.metrics import EvalResult, equal_pr_thresholds, evaluate_arrays
from training.sampling import EpochSampler

log = logging.getLogger(__name__)


def model_inputs(model, batch: dict, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(body embedding, scene embedding) for a batch, from cached features or from pixels (moved to
    `device` when given)."""
    get = (lambda k: batch[k]) if device is None else (lambda k: batch[k].to(device))
    b = get("body_feat") if "body_feat" in batch else model.encode_body(get("body"))
    s = get("scene_feat") if "scene_feat" in batch else model.encode_scene(get("scene"))
    return b, s


@torch.no_grad()
def predict(model, dataset: EmoticDataset, *, batch_size: int = 128, ctx: DistContext | None = None,
            num_workers: int = 0, amp: bool = False) -> dict[str, np.ndarray]:
    """Category probabilities and VAD for every item, in dataset order (all ranks get the full arrays)."""
    ctx = ctx or DistContext(device=next(model.parameters()).device)
    sampler = EpochSampler(len(dataset), shuffle=False, rank=ctx.rank, world_size=ctx.world_size, pad=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    was_training = model.training
    model.eval()
    parts = {"index": [], "probs": [], "vad": [], "valid": []}
    if getattr(model, "context_head", None) is not None:  # CLEF-lite: keep both terms to vary lambda later
        parts.update(fused_logits=[], context_logits=[])
    try:
        for batch in loader:
            with autocast(ctx.device, amp):
                out = model.forward_features(*model_inputs(model, batch, ctx.device))
            parts["index"].append(batch["index"].numpy())
            parts["probs"].append(model.probabilities(out["cat_logits"].float()).cpu().numpy())
            parts["vad"].append(out["vad"].float().cpu().numpy())
            parts["valid"].append(batch["valid"].numpy())
            for key in ("fused_logits", "context_logits"):
                if key in parts:
                    parts[key].append(out[key].float().cpu().numpy())
    finally:
        model.train(was_training)
    widths = {"probs": (26,), "vad": (3,), "fused_logits": (26,), "context_logits": (26,)}
    local = {k: (np.concatenate(v) if v else np.zeros((0,) + widths.get(k, ()))) for k, v in parts.items()}
    gathered = gather_objects(ctx, local)
    merged = {k: np.concatenate([g[k] for g in gathered]) for k in local}
    merged["index"] = merged["index"].astype(np.int64)  # a rank with no items contributes an empty float array
    order = np.argsort(merged["index"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def score(dataset: EmoticDataset, preds: dict[str, np.ndarray], thresholds=None) -> EvalResult:
    """Metrics over the readable items (unreadable ones are counted in `skipped`)."""
    keep = preds["valid"] > 0.5
    labels = dataset.categories.numpy()[preds["index"]][keep]
    vad_true = dataset.vad.numpy()[preds["index"]][keep]
    return evaluate_arrays(labels, preds["probs"][keep], preds["vad"][keep], vad_true, thresholds=thresholds,
                           skipped=int((~keep).sum()))


def thresholds_from(dataset: EmoticDataset, preds: dict[str, np.ndarray]) -> np.ndarray:
    keep = preds["valid"] > 0.5
    return equal_pr_thresholds(dataset.categories.numpy()[preds["index"]][keep], preds["probs"][keep])


# ------------------------------------------------------------------------------------------- CLEF-lite lambda
def with_lambda(preds: dict[str, np.ndarray], lam: float) -> dict[str, np.ndarray]:
    """CLEF-lite predictions at another lambda, from the same forward pass:
    probs = sigmoid(fused - lambda * context) (what the model computes with `config.clef_lambda = lam`)."""
    logits = torch.from_numpy(preds["fused_logits"]) - float(lam) * torch.from_numpy(preds["context_logits"])
    return {**preds, "probs": torch.sigmoid(logits).numpy()}


def choose_clef_lambda(dataset: EmoticDataset, preds: dict[str, np.ndarray],
                       grid=None) -> tuple[float, dict[float, float]]:
    """The lambda of `grid` (default CLEF_LAMBDAS) with the best mAP on `dataset` (val), the smallest on a
    tie; and every lambda's mAP."""
    from training.config import CLEF_LAMBDAS

    maps = {float(lam): score(dataset, with_lambda(preds, lam)).map for lam in (grid or CLEF_LAMBDAS)}
    best = max(maps.values())
    return next(lam for lam, m in maps.items() if m == best), maps


def clef_report(model, val_ds: EmoticDataset | None, val_preds, test_ds: EmoticDataset | None, test_preds,
                lam: float) -> dict:
    """Metrics of one CLEF-lite checkpoint at lambda = 0 (fused only), 1 (full subtraction) and `lam` (the
    checkpoint's, chosen on val), on val and test; thresholds for each lambda from val at that lambda."""
    out: dict = {"lambda": float(lam), "reference_mean": float(model.clef_reference.detach().float().mean())}
    for name, value in (("lambda_0", 0.0), ("lambda_1", 1.0), ("lambda_val", float(lam))):
        entry: dict = {"lambda": value}
        thr = None
        if val_ds is not None:
            vp = with_lambda(val_preds, value)
            thr = thresholds_from(val_ds, vp)
            entry["val"] = score(val_ds, vp, thr).as_dict()
        if test_ds is not None:
            entry["test"] = score(test_ds, with_lambda(test_preds, value), thr).as_dict()
        out[name] = entry
    return out


def evaluate_checkpoint(checkpoint, data, split: str = "test", *, batch_size: int = 64, device: str = "auto",
                        feature_cache: str | None = None, thresholds: str = "checkpoint",
                        max_persons: int = 0, num_workers: int = 0) -> EvalResult:
    """Load a checkpoint, predict one split of a data set, return its metrics.

    `thresholds`: "checkpoint" (those chosen on val at training time, when the checkpoint has them),
    "val" (recomputed on this data set's val split), or "none".
    """
    from emomon.kernel import InputError
    from fusion import load_checkpoint
    from training.annotations import load_split
    from training.distributed import pick_device
    from training.features import FeatureCache

    dev = pick_device(device)
    model = load_checkpoint(checkpoint, map_location=dev)
    cache = FeatureCache(feature_cache, batch_size=batch_size, device=dev) if feature_cache else None
    if cache is not None and not model.config.freeze_scene:
        raise InputError("--feature-cache needs a checkpoint whose scene tower was frozen")

    def dataset_for(name: str) -> EmoticDataset:
        records = load_split(data, name).records
        if max_persons:
            records = records[:max_persons]
        scene = cache.scene_features(model, records) if cache is not None else None
        return EmoticDataset(records, model.body_preprocess, model.scene_preprocess, scene_features=scene)

    ctx = DistContext(device=dev)
    ds = dataset_for(split)
    preds = predict(model, ds, batch_size=batch_size, ctx=ctx, num_workers=num_workers)
    thr = None
    if thresholds == "checkpoint":
        saved = model.source.metadata.get("thresholds")
        thr = np.asarray(saved, dtype=np.float64) if saved is not None else None
    elif thresholds == "val":
        val = ds if split == "val" else dataset_for("val")
        thr = thresholds_from(val, preds if split == "val" else predict(model, val, batch_size=batch_size,
                                                                         ctx=ctx, num_workers=num_workers))
    elif thresholds != "none":
        raise InputError(f"thresholds must be checkpoint, val or none, got '{thresholds}'")
    result = score(ds, preds, thresholds=thr)
    result.extra = {"checkpoint": str(checkpoint), "split": split, "model": model.model_name,
                    "variant": model.source.metadata.get("variant")}
    if "fused_logits" in preds:  # CLEF-lite: lambda 0, 1 and the checkpoint's, from this one forward pass
        lam = float(model.config.clef_lambda)
        result.extra["clef"] = {"lambda_checkpoint": lam, "lambda_chosen_on": model.source.metadata.get(
            "clef", {}).get("lambda_chosen_on", "n/a"), **{f"mAP_{name}": score(ds, with_lambda(preds, v)).map
                                                          for name, v in (("lambda_0", 0.0), ("lambda_1", 1.0),
                                                                          ("lambda_checkpoint", lam))}}
    return result
