"""EMOTIC metrics: per-category average precision and mAP, VAD mean absolute error, thresholds.

Two APs are reported, because they give different numbers (rkosti/emotic issue 4):

- `ap`: scikit-learn's `average_precision_score` (step-wise area under the precision-recall curve), what
  the PyTorch reproductions and the paper's 34.52 mAP use. This is the headline number.
- `ap_interp`: the official Lua code's 11-point interpolated AP (rkosti/emotic `src/funcs.lua`,
  `precisionrecallvector`, recall step 0.1): mean over r in {0, 0.1, ..., 1} of the best precision at
  recall >= r (0 when recall r is never reached).

A category with no positive example has no AP: it is NaN in the per-category array, left out of the
mean, and named in `excluded` (never a NaN mAP).

    >>> import numpy as np
    >>> from training.metrics import average_precision
    >>> average_precision(np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.8], [0.7], [0.1]]))
    array([0.83333333])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from fusion import EMOTIC_CATEGORIES, VAD_NAMES


def _as2d(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def average_precision(labels, scores) -> np.ndarray:
    """(C,) scikit-learn AP per category; NaN where a category has no positives."""
    from sklearn.metrics import average_precision_score

    y, s = _as2d(labels) > 0.5, _as2d(scores)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        if y[:, c].any():
            out[c] = average_precision_score(y[:, c], s[:, c])
    return out


def interpolated_ap(labels, scores, recall_step: float = 0.1) -> np.ndarray:
    """(C,) the official 11-point interpolated AP per category; NaN where a category has no positives."""
    y, s = _as2d(labels) > 0.5, _as2d(scores)
    points = np.linspace(0.0, 1.0, int(round(1.0 / recall_step)) + 1)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        npos = int(y[:, c].sum())
        if npos == 0:
            continue
        order = np.argsort(-s[:, c], kind="stable")
        tp = np.cumsum(y[order, c])
        fp = np.cumsum(~y[order, c])
        rec, prec = tp / npos, tp / (tp + fp)
        out[c] = float(np.mean([prec[rec >= r - 1e-12].max() if (rec >= r - 1e-12).any() else 0.0
                                for r in points]))
    return out


def mean_ap(ap: np.ndarray) -> tuple[float, list[int]]:
    """Mean over categories that have an AP; returns (mAP, indices excluded for lack of positives)."""
    ap = np.asarray(ap, dtype=np.float64)
    excluded = [int(i) for i in np.flatnonzero(np.isnan(ap))]
    valid = ap[~np.isnan(ap)]
    return (float(valid.mean()) if valid.size else float("nan")), excluded


def vad_mae(pred, target) -> np.ndarray:
    """(3,) mean absolute error per dimension (valence, arousal, dominance) on the 1..10 scale."""
    pred, target = _as2d(pred), _as2d(target)
    if len(pred) == 0:
        return np.full(pred.shape[1], np.nan)
    return np.abs(pred - target).mean(axis=0)


def equal_pr_thresholds(labels, scores, default: float = 0.5) -> np.ndarray:
    """(C,) per-category score threshold where precision equals recall (closest point on the PR curve),
    the usual EMOTIC choice on val; `default` for a category without positives."""
    from sklearn.metrics import precision_recall_curve

    y, s = _as2d(labels) > 0.5, _as2d(scores)
    out = np.full(y.shape[1], default)
    for c in range(y.shape[1]):
        if not y[:, c].any() or y[:, c].all():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prec, rec, thr = precision_recall_curve(y[:, c], s[:, c])
        prec, rec = prec[:-1], rec[:-1]  # the last point (P=1, R=0) has no threshold
        i = int(np.argmin(np.abs(prec - rec)))
        out[c] = float(thr[i])
    return out


def threshold_scores(labels, scores, thresholds) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per category at the given thresholds (score >= threshold is positive)."""
    y, s = _as2d(labels) > 0.5, _as2d(scores)
    pred = s >= np.asarray(thresholds)[None, :]
    tp = (pred & y).sum(0).astype(np.float64)
    prec = np.divide(tp, pred.sum(0), out=np.zeros_like(tp), where=pred.sum(0) > 0)
    rec = np.divide(tp, y.sum(0), out=np.full_like(tp, np.nan), where=y.sum(0) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(tp), where=(prec + rec) > 0)
    return {"precision": prec, "recall": rec, "f1": np.where(np.isnan(rec), np.nan, f1)}


@dataclass
class EvalResult:
    """All metrics of one split for one model (see the module docstring for the two APs)."""

    ap: np.ndarray
    ap_interp: np.ndarray
    vad_mae: np.ndarray
    positives: np.ndarray
    n: int
    thresholds: np.ndarray | None = None
    precision: np.ndarray | None = None
    recall: np.ndarray | None = None
    f1: np.ndarray | None = None
    skipped: int = 0  # items that could not be read at evaluation time
    extra: dict = field(default_factory=dict)

    @property
    def map(self) -> float:
        return mean_ap(self.ap)[0]

    @property
    def map_interp(self) -> float:
        return mean_ap(self.ap_interp)[0]

    @property
    def excluded(self) -> list[str]:
        return [EMOTIC_CATEGORIES[i] for i in mean_ap(self.ap)[1]]

    @property
    def vad_mae_mean(self) -> float:
        return float(np.mean(self.vad_mae))

    def note(self) -> str:
        if not self.excluded:
            return ""
        return (f"{len(self.excluded)} categor{'y' if len(self.excluded) == 1 else 'ies'} without positives "
                f"excluded from mAP: {', '.join(self.excluded)}")

    def as_dict(self) -> dict:
        def lst(a):
            return None if a is None else [None if np.isnan(v) else float(v) for v in np.asarray(a, float)]

        return {
            "n": self.n, "skipped": self.skipped, "mAP": self.map, "mAP_interp": self.map_interp,
            "excluded": self.excluded, "note": self.note(),
            "vad_mae": dict(zip(VAD_NAMES, map(float, self.vad_mae))), "vad_mae_mean": self.vad_mae_mean,
            "per_category": {
                c: {"ap": lst(self.ap)[i], "ap_interp": lst(self.ap_interp)[i], "positives": int(self.positives[i]),
                    **({"threshold": float(self.thresholds[i]), "precision": lst(self.precision)[i],
                        "recall": lst(self.recall)[i], "f1": lst(self.f1)[i]} if self.thresholds is not None else {})}
                for i, c in enumerate(EMOTIC_CATEGORIES)},
            **self.extra,
        }

    def table(self) -> str:
        """A plain-text report: per-category AP (both kinds), positives, threshold results; then means."""
        head = f"{'category':<16} {'AP':>6} {'AP11':>6} {'pos':>5}"
        if self.thresholds is not None:
            head += f" {'thr':>6} {'P':>6} {'R':>6} {'F1':>6}"
        lines = [head, "-" * len(head)]

        def f(v):
            return "   n/a" if v is None or np.isnan(v) else f"{100 * v:6.2f}"

        for i, c in enumerate(EMOTIC_CATEGORIES):
            line = f"{c:<16} {f(self.ap[i])} {f(self.ap_interp[i])} {int(self.positives[i]):>5}"
            if self.thresholds is not None:
                line += (f" {self.thresholds[i]:6.3f} {f(self.precision[i])} {f(self.recall[i])}"
                         f" {f(self.f1[i])}")
            lines.append(line)
        lines.append("-" * len(head))
        lines.append(f"mAP (sklearn AP) {100 * self.map:.2f}   mAP (11-point interpolated) "
                     f"{100 * self.map_interp:.2f}   persons {self.n}" + (f" (+{self.skipped} unreadable, "
                                                                           "ignored)" if self.skipped else ""))
        lines.append("VAD MAE (1-10): " + ", ".join(f"{n} {v:.3f}" for n, v in zip(VAD_NAMES, self.vad_mae))
                     + f", mean {self.vad_mae_mean:.3f}")
        if self.note():
            lines.append("note: " + self.note())
        return "\n".join(lines)


def evaluate_arrays(labels, scores, vad_pred, vad_true, thresholds=None, skipped: int = 0) -> EvalResult:
    """All metrics from arrays: labels/scores (N, C), vad_pred/vad_true (N, 3)."""
    labels, scores = _as2d(labels), _as2d(scores)
    res = EvalResult(ap=average_precision(labels, scores), ap_interp=interpolated_ap(labels, scores),
                     vad_mae=vad_mae(vad_pred, vad_true), positives=(labels > 0.5).sum(0), n=len(labels),
                     skipped=skipped)
    if thresholds is not None:
        res.thresholds = np.asarray(thresholds, dtype=np.float64)
        res.precision, res.recall, res.f1 = threshold_scores(labels, scores, res.thresholds).values()
    return res
