"""The concordance correlation coefficient (ABAW's metric for valence and arousal) and its loss.

    CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2)     (population moments)

Computed over all annotated frames of a split (NaN targets are skipped); the score is the mean of valence and
arousal CCC. Training minimises 1 - CCC per dimension.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score


def ccc(pred, target) -> float:
    """CCC of two 1-d sequences over the frames where both are finite; NaN with fewer than 2 such frames."""
    x, y = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    cov = ((x - mx) * (y - my)).mean()
    denom = x.var() + y.var() + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over dimensions of 1 - CCC; pred/target (..., M), frames with a NaN target left out per dimension."""
    pred, target = pred.reshape(-1, pred.shape[-1]), target.reshape(-1, target.shape[-1])
    losses = []
    for d in range(pred.shape[1]):
        ok = torch.isfinite(target[:, d])
        if ok.sum() < 2:
            continue
        x, y = pred[ok, d], target[ok, d]
        mx, my = x.mean(), y.mean()
        cov = ((x - mx) * (y - my)).mean()
        c = 2 * cov / (x.var(unbiased=False) + y.var(unbiased=False) + (mx - my) ** 2 + eps)
        losses.append(1 - c)
    return torch.stack(losses).mean() if losses else pred.sum() * 0


def sequence_metrics(pred_vad: np.ndarray, pred_probs: np.ndarray, va: np.ndarray | None, expr: np.ndarray | None,
                     dims: tuple[str, ...] = ("valence", "arousal")) -> dict[str, float]:
    """CCC per dimension and their mean, and expression macro-F1 / accuracy, over all annotated frames."""
    out: dict[str, float] = {}
    if va is not None:
        for d, name in enumerate(dims[:va.shape[1]]):
            out[f"ccc_{name}"] = ccc(pred_vad[:, d], va[:, d])
        out["ccc_mean"] = float(np.mean([out[f"ccc_{n}"] for n in dims[:va.shape[1]]]))
    if expr is not None and (expr >= 0).any():
        ok = expr >= 0
        guess = pred_probs[ok].argmax(1)
        out["expr_f1"] = float(f1_score(expr[ok], guess, average="macro", labels=np.unique(expr[ok]),
                                        zero_division=0))
        out["expr_acc"] = float((guess == expr[ok]).mean())
    return out
