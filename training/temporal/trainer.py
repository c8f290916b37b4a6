"""Train and evaluate a temporal head on cached per-track feature sequences.

Training windows end every `stride` frames of every sequence, including a sequence's first frames (left-padded
and masked, as a new track's history is at inference), and the loss covers every annotated position of a
window: 1 - CCC per continuous dimension (over the batch) plus cross-entropy for the expression where
annotated. Evaluation predicts every frame of a sequence from its own last `window` frames
(`TemporalModel.predict_sequence`, the same computation as the pipeline's streaming path).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from fusion.temporal import TemporalModel
from fusion.temporal.threads import one_thread
from training.temporal.config import TrainTemporalConfig
from training.temporal.extract import Sequence
from training.temporal.metrics import ccc_loss, sequence_metrics

log = logging.getLogger(__name__)


def make_windows(seqs: list[Sequence], window: int, stride: int):
    """(N, W, D) left-padded windows, (N, W) validity, (N, W, 2) VA (NaN: none), (N, W) expression (-1: none)."""
    xs, valid, va, expr = [], [], [], []
    for s in seqs:
        n, d = s.features.shape
        for end in range(min(stride, n) - 1, n, stride):
            lo = max(0, end - window + 1)
            pad = window - (end + 1 - lo)
            x = np.zeros((window, d), np.float32)
            x[pad:] = s.features[lo:end + 1]
            m = np.zeros(window, bool)
            m[pad:] = True
            v = np.full((window, 2), np.nan, np.float32)
            if s.va is not None:
                v[pad:] = s.va[lo:end + 1]
            e = np.full(window, -1, np.int64)
            if s.expr is not None:
                e[pad:] = s.expr[lo:end + 1]
            xs.append(x), valid.append(m), va.append(v), expr.append(e)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(valid)), torch.from_numpy(np.stack(va)),
            torch.from_numpy(np.stack(expr)))


def train_temporal(train: list[Sequence], cfg: TrainTemporalConfig) -> TemporalModel:
    with one_thread():
        return _train(train, cfg)


def _train(train: list[Sequence], cfg: TrainTemporalConfig) -> TemporalModel:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = TemporalModel(cfg.model_config(train[0].features.shape[1]))
    x, valid, va, expr = make_windows(train, cfg.window, cfg.stride)
    va = va.masked_fill(~valid.unsqueeze(-1), float("nan"))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-len(x) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.1)
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            out = model(x[idx], valid[idx])
            loss = ccc_loss(out["vad"], va[idx])
            e = expr[idx].masked_fill(~valid[idx], -1)
            if (e >= 0).any() and cfg.expr_weight > 0:
                logits = out["cat_logits"]
                loss = loss + cfg.expr_weight * F.cross_entropy(logits.reshape(-1, logits.shape[-1]), e.reshape(-1),
                                                                ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log.debug("%s seed %d epoch %d: loss %.4f", cfg.kind, cfg.seed, epoch, total / len(x))
    return model.eval()


def ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """The pipeline's EMA along axis 0 (first value as is)."""
    out = np.empty_like(values)
    acc = values[0]
    for t, v in enumerate(values):
        acc = v if t == 0 else alpha * v + (1 - alpha) * acc
        out[t] = acc
    return out


def predict(model: TemporalModel, seq: Sequence, ema_alpha: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probs (L, K), dims (L, M)) for every frame of the sequence; with `ema_alpha`, EMA-smoothed as the
    pipeline smooths a per-frame model."""
    out = model.predict_sequence(torch.from_numpy(seq.features))
    probs, vad = out["probs"].numpy(), out["vad"].numpy()
    if ema_alpha is not None:
        probs, vad = ema(probs, ema_alpha), ema(vad, ema_alpha)
    return probs, vad


def evaluate(model: TemporalModel, seqs: list[Sequence], ema_alpha: float | None = None) -> dict[str, float]:
    """Metrics over all annotated frames of `seqs`."""
    with one_thread():
        preds = [predict(model, s, ema_alpha) for s in seqs]
    probs = np.concatenate([p for p, _ in preds])
    vad = np.concatenate([v for _, v in preds])
    va = np.concatenate([s.va for s in seqs]) if all(s.va is not None for s in seqs) else None
    expr = np.concatenate([s.expr for s in seqs]) if all(s.expr is not None for s in seqs) else None
    return sequence_metrics(vad, probs, va, expr, model.labels.dimension_names)
