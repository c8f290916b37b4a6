"""The training loop: one variant, one seed, one run directory.

    from training import load_config, train
    result = train(load_config("clean", {"data": "/data/emotic", "seed": 1}))
    result.test.map, result.best_checkpoint

Run directory contents:

- `config.yaml`     the resolved config (defaults < variant YAML < flags)
- `data.json`       what each split read, kept and skipped
- `metrics.csv`     one row per epoch (losses, lr, val mAP both ways, VAD MAE, seconds)
- `last.pt`         full training state after the last finished epoch (atomic); `--resume` continues it
- `best.pt`         the best epoch by val mAP, a `fusion.save_checkpoint` file the pipeline and app load;
                    its metadata holds the variant, seed, data, val/test metrics and val thresholds
- `final.json`      val and test metrics of the best checkpoint
- `tb/`             TensorBoard events (when the tensorboard package is installed)

Determinism: every epoch reseeds torch from (seed, epoch), data order and flips come from (seed, epoch),
so a run killed after epoch k and resumed from `last.pt` ends bit-identical on CPU to one never stopped.
A resume (and `emomon ablate`'s reuse of a finished run) is refused when the config or the run's identity
differs: cached or computed embeddings, flips, precision (`training.config.run_identity`).

CLEF-lite: after every epoch lambda is chosen on val (config `clef_lambda: null`) from one forward pass;
the best checkpoint carries it (model config and metadata `clef`), and `final.json` reports lambda = 0,
lambda = 1 and the chosen lambda from that same checkpoint.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from emomon.kernel import InputError, atomic_write, write_json_atomic
from fusion import create_model, save_checkpoint
from training import distributed as D
from training.annotations import SplitData, load_split
from training.config import (
    CLEF_LAMBDAS,
    TrainConfig,
    identity_mismatches,
    precision_name,
    resume_mismatches,
    run_identity,
    save_config,
)
from training.dataset import EmoticDataset
from training.evaluation import (
    autocast,
    choose_clef_lambda,
    clef_report,
    model_inputs,
    predict,
    score,
    thresholds_from,
    with_lambda,
)
from training.features import FeatureCache, FlippedFeatures
from training.metrics import EvalResult
from training.sampling import EpochSampler, class_balanced_weights
from training.tasks import build_task

log = logging.getLogger(__name__)

STATE_FORMAT = "emomon-train-state"


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    val: EvalResult
    test: EvalResult | None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


class _TrainForward(nn.Module):
    """What DistributedDataParallel wraps: embeddings (cached or computed) -> the model's output dict."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.forward_features(*model_inputs(self.model, inputs))


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float):
    """Linear warmup to 1, then cosine decay to `min_ratio` (per optimiser step)."""

    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Tower parameters learn at lr * backbone_lr_scale; biases and norms get no weight decay."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        tower = name.startswith(("body.", "scene."))
        groups.setdefault((tower, p.ndim <= 1), []).append(p)
    return [{"params": ps, "lr": cfg.lr * (cfg.backbone_lr_scale if tower else 1.0),
             "weight_decay": 0.0 if no_decay else cfg.weight_decay}
            for (tower, no_decay), ps in sorted(groups.items())]


def _subset(split: SplitData, n: int) -> SplitData:
    if not n or n >= len(split.records):
        return split
    keep = np.sort(np.random.default_rng(12345).permutation(len(split.records))[:n])
    return SplitData(split.split, [split.records[i] for i in keep], split.report)


def _mixup(batch: dict, alpha: float, gen: torch.Generator) -> dict:
    """Mix each example with a shuffled partner: inputs, targets and validity with one Beta(alpha) weight."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample().item()) if alpha > 0 else 1.0
    n = len(batch["valid"])
    perm = torch.randperm(n, generator=gen)
    out = dict(batch)
    for k in ("body", "scene", "body_feat", "scene_feat", "categories", "vad"):
        if k in batch:
            out[k] = lam * batch[k] + (1 - lam) * batch[k][perm]
    out["valid"] = batch["valid"] * batch["valid"][perm]
    return out


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def _write_csv(path: Path, history: list[dict]) -> None:
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class _TensorBoard:
    def __init__(self, run_dir: Path, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard is optional; ImportError or its own errors
            log.info("TensorBoard not installed: metrics go to metrics.csv only (pip install tensorboard)")
            return
        self.writer = SummaryWriter(str(run_dir / "tb"))

    def log(self, row: dict, step: int) -> None:
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _metrics_meta(split: str, res: EvalResult) -> dict:
    """Checkpoint metadata convention (fusion.describe_model reads it): mAP in percent, as in the paper."""
    return {f"{split}_mAP": 100 * res.map, f"{split}_mAP_interp": 100 * res.map_interp,
            f"{split}_vad_mae": res.vad_mae_mean, f"{split}_vad_mae_per_dim": res.vad_mae.tolist(),
            f"{split}_excluded": res.excluded}


def _num_workers(cfg: TrainConfig, device: torch.device) -> int:
    if cfg.num_workers >= 0:
        return cfg.num_workers
    return 0 if device.type == "cpu" else max(0, min(8, (os.cpu_count() or 1) - 1))


def _features(cache: FeatureCache, ctx: D.DistContext, fn):
    """Rank 0 computes and writes; the others wait, then read the same file."""
    if not ctx.distributed:
        return fn(True)
    if ctx.is_main:
        out = fn(True)
        D.barrier(ctx)
        return out
    D.barrier(ctx)
    return fn(False)


def train(cfg: TrainConfig, *, on_epoch_end=None) -> RunResult:
    """Train one variant/seed as configured; returns the best checkpoint's val and test metrics.

    `on_epoch_end(epoch, row)` is called on every rank after each finished epoch (tests use it to
    simulate a killed run).
    """
    cfg.validate()
    t_start = time.perf_counter()
    threads = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ctx = D.setup(cfg.device)
    try:
        return _train(cfg, ctx, on_epoch_end, t_start)
    finally:
        D.cleanup(ctx)
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig, ctx: D.DistContext, on_epoch_end, t_start: float) -> RunResult:
    run = _Run(cfg, ctx, t_start)
    state = run.read_resume_state()
    run.write_config()
    run.load_data()
    run.build_model()
    run.cache_features()
    run.restore_or_prepare(state)
    run.build_loader()
    run.build_optimisation(state)
    run.wrap_for_training()
    run.fit(on_epoch_end)
    return run.finish()


def _read_state(state_path: Path) -> dict:
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot resume: '{state_path}' is unreadable ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"cannot resume: '{state_path}' is not an emomon training state")
    return state


class _Run:
    """One run of `train`, section by section; `_train` calls the methods in order, each sets what later
    ones use (the order is part of the determinism: the seeds and the feature cache come before the task)."""

    def __init__(self, cfg: TrainConfig, ctx: D.DistContext, t_start: float):
        self.cfg, self.ctx, self.t_start = cfg, ctx, t_start
        self.run_dir = cfg.run_dir()
        self.device = ctx.device
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.precision = precision_name(cfg.amp, self.device.type)
        self.identity = run_identity(cfg, self.precision)
        self.workers = _num_workers(cfg, self.device)
        self.clef_info: dict = {}  # CLEF-lite: the lambda of the last evaluation (see clef_select)
        self.state_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"

    # ---------------------------------------------------------------- resume state, config
    def read_resume_state(self) -> dict | None:
        """`last.pt` when resuming (checked against the config), else None."""
        cfg, run_dir, state_path, best_path = self.cfg, self.run_dir, self.state_path, self.best_path
        if cfg.resume and state_path.is_file():
            state = _read_state(state_path)
            bad = resume_mismatches(state["config"], cfg) + identity_mismatches(state.get("identity"), self.identity)
            if bad:
                raise InputError(f"cannot resume {run_dir}: config differs in {', '.join(bad)} (use the same "
                                 "flags and cache setting, or a new --out)")
            if not best_path.is_file():
                raise InputError(f"cannot resume: '{best_path}' is missing next to '{state_path}'")
            return state
        if cfg.resume:
            log.info("--resume: no %s yet, starting from scratch", state_path)
        elif state_path.is_file() and self.ctx.is_main:
            log.warning("%s holds an earlier run; it is overwritten (pass --resume to continue it)", run_dir)
        return None

    def write_config(self) -> None:
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")

    # ---------------------------------------------------------------- data
    def load_data(self) -> None:
        """The train/val (and, when present, test) splits, subset as configured; rank 0 writes data.json."""
        cfg = self.cfg
        splits = {s: _subset(load_split(cfg.data, s, check_images=cfg.check_images),
                             cfg.max_train if s == "train" else cfg.max_eval) for s in ("train", "val")}
        try:
            splits["test"] = _subset(load_split(cfg.data, "test", check_images=cfg.check_images), cfg.max_eval)
        except InputError as exc:
            log.warning("no test evaluation: %s", exc)
        if self.ctx.is_main:
            write_json_atomic(self.run_dir / "data.json", {"data": str(cfg.data),
                                                           **{s: d.report.as_dict() for s, d in splits.items()},
                                                           "used": {s: len(d) for s, d in splits.items()}})
        self.splits = splits

    # ---------------------------------------------------------------- model, task, cached features
    def build_model(self) -> None:
        cfg = self.cfg
        self.task = build_task(cfg)
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.model, pretrained=cfg.pretrained, **{**cfg.model_options(),
                                                                            **self.task.model_overrides()})
        self.model.to(self.device)

    def cache_features(self) -> None:
        """Frozen-tower embeddings per split (with --feature-cache), else none: the towers run per batch."""
        cfg, ctx, model = self.cfg, self.ctx, self.model
        cache = FeatureCache(cfg.feature_cache, batch_size=cfg.eval_batch_size, device=self.device,
                             num_workers=self.workers, progress=cfg.progress and ctx.is_main, amp=self.use_amp) \
            if cfg.feature_cache else None
        self.feats: dict[str, dict[str, torch.Tensor]] = {s: {} for s in self.splits}
        self.flipped: dict[str, torch.Tensor] = {}  # training rows of the flipped images (augment)
        t_cache = time.perf_counter()
        if cache is not None:
            for s, d in self.splits.items():
                self.feats[s]["scene_features"] = _features(
                    cache, ctx, lambda w, d=d: cache.scene_features(model, d.records, write=w))
                if cfg.cache_body:
                    self.feats[s]["body_features"] = _features(
                        cache, ctx, lambda w, d=d: cache.body_features(model, d.records, write=w))
            if cfg.augment:  # cached streams are flipped like pixels: the flipped image's embedding
                records = self.splits["train"].records
                self.flipped["scene_feat"] = _features(
                    cache, ctx, lambda w: cache.scene_features(model, records, write=w, flipped=True))
                if cfg.cache_body:
                    self.flipped["body_feat"] = _features(
                        cache, ctx, lambda w: cache.body_features(model, records, write=w, flipped=True))
        self.cache_seconds = time.perf_counter() - t_cache

    def restore_or_prepare(self, state: dict | None) -> None:
        """Resumed: the saved weights and task state; fresh: the task's preparation (e.g. CCIM's dictionary)."""
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.prep_info = state.get("task_state", {})
            return
        cfg, feats = self.cfg, self.feats

        def train_scene():
            if "scene_features" in feats["train"]:
                return feats["train"]["scene_features"]
            return FeatureCache(None, batch_size=cfg.eval_batch_size, device=self.device, num_workers=self.workers,
                                amp=self.use_amp).scene_features(self.model, self.splits["train"].records)

        self.prep_info = self.task.prepare(self.model, train_scene, cfg.seed)

    def dataset(self, split: str, train_mode: bool) -> EmoticDataset:
        ds = EmoticDataset(self.splits[split].records, self.model.body_preprocess, self.model.scene_preprocess,
                           augment=train_mode and self.cfg.augment, seed=self.cfg.seed, **self.feats[split])
        if train_mode and self.flipped:
            return FlippedFeatures(ds, self.flipped)
        return ds

    def build_loader(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        self.train_ds, self.val_ds = self.dataset("train", True), self.dataset("val", False)
        weights = (class_balanced_weights(self.splits["train"].labels(), cfg.cb_beta)
                   if cfg.sampler == "class_balanced" else None)
        self.sampler = EpochSampler(len(self.train_ds), weights=weights, seed=cfg.seed, rank=ctx.rank,
                                    world_size=ctx.world_size)
        per_rank_batch = max(1, cfg.batch_size // ctx.world_size)
        self.loader = DataLoader(self.train_ds, batch_size=per_rank_batch, sampler=self.sampler,
                                 num_workers=self.workers, drop_last=len(self.sampler) > per_rank_batch,
                                 pin_memory=self.device.type == "cuda")

    # ---------------------------------------------------------------- optimisation, resume
    def build_optimisation(self, state: dict | None) -> None:
        """AdamW, the warmup-cosine schedule, the AMP scaler; when resuming, their saved states and history."""
        cfg, use_amp = self.cfg, self.use_amp
        steps_per_epoch = len(self.loader)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg), lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(
            cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio))
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported()) \
            if use_amp else None
        self.start_epoch, self.history, self.best = 0, [], {"epoch": -1, "map": -1.0}
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.start_epoch, self.history, self.best = (int(state["epoch"]), list(state["history"]),
                                                         dict(state["best"]))
            log.info("resumed %s after epoch %d (best val mAP %.4f at epoch %d)", self.run_dir, self.start_epoch,
                     self.best["map"], self.best["epoch"])

    def wrap_for_training(self) -> None:
        """The (DDP-wrapped) forward, TensorBoard, and the data description every checkpoint carries."""
        cfg, ctx, device = self.cfg, self.ctx, self.device
        self.net = _TrainForward(self.model)
        if ctx.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        self.tb = _TensorBoard(self.run_dir, cfg.tensorboard and ctx.is_main)
        self.data_meta = {"path": str(cfg.data), "layout": self.splits["train"].report.layout,
                          **{f"{s}_persons": len(d) for s, d in self.splits.items()},
                          "skipped": {s: dict(d.report.skipped) for s, d in self.splits.items()}}

    def checkpoint_metadata(self, epoch: int, val: EvalResult) -> dict:
        cfg = self.cfg
        meta = {"variant": cfg.variant, "seed": cfg.seed, "task": cfg.task, "epoch": epoch,
                "training_data": self.data_meta, "metrics": _metrics_meta("val", val),
                "config": cfg.to_dict(), "simplifies": cfg.simplifies, "run_identity": self.identity,
                "objective": self.objective(), **self.prep_info}
        if self.clef_info:
            meta["clef"] = self.clef_info
        return meta

    def objective(self) -> dict:
        """The loss balance this run used (also in config.yaml): what `emomon ablate --sweep` varies."""
        cfg = self.cfg
        return {"category_loss": cfg.category_loss, "category_reduction": cfg.category_reduction,
                "vad_loss": cfg.vad_loss, "vad_weight": cfg.vad_weight,
                **({"context_loss_weight": cfg.context_loss_weight} if cfg.task == "clef_lite" else {})}

    # ---------------------------------------------------------------- CLEF-lite lambda
    def clef_select(self, preds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """CLEF-lite: choose lambda on these val predictions (or take the configured one), set it in the
        model's config (so the next checkpoint carries it) and return the predictions at that lambda."""
        self.clef_info = {}
        if "fused_logits" not in preds:
            return preds
        cfg = self.cfg
        if cfg.clef_lambda is None:
            lam, maps = choose_clef_lambda(self.val_ds, preds)
        else:
            lam = float(cfg.clef_lambda)
            maps = {v: score(self.val_ds, with_lambda(preds, v)).map for v in dict.fromkeys((0.0, 1.0, lam))}
        self.model.config.clef_lambda = lam
        self.clef_info = {"lambda": lam, "lambda_chosen_on": "val" if cfg.clef_lambda is None else "config",
                          "grid": list(CLEF_LAMBDAS) if cfg.clef_lambda is None else [lam],
                          "val_mAP_by_lambda": {f"{k:g}": v for k, v in maps.items()}}
        return with_lambda(preds, lam)

    # ---------------------------------------------------------------- epochs
    def fit(self, on_epoch_end) -> None:
        for epoch in range(self.start_epoch, self.cfg.epochs):
            totals, train_seconds = self.train_epoch(epoch)
            t1 = time.perf_counter()
            val = score(self.val_ds, self.clef_select(self.predict(self.val_ds)))
            row = self.epoch_row(epoch, totals, train_seconds, val, t1)
            self.end_epoch(epoch, row, val, train_seconds)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
        self.tb.close()

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], float]:
        """One pass over this rank's share of the data; the loss sums over all ranks, and the seconds taken."""
        from tqdm import tqdm

        cfg, ctx = self.cfg, self.ctx
        torch.manual_seed(cfg.seed * 1000 + epoch)
        self.sampler.set_epoch(epoch)
        self.train_ds.set_epoch(epoch)
        mix_gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        self.net.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "cat_loss": 0.0, "vad_loss": 0.0, "context_loss": 0.0, "reference_loss": 0.0, "n": 0.0}
        bar = tqdm(self.loader, desc=f"{cfg.variant} s{cfg.seed} epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=True if not (ctx.is_main and cfg.progress) else None)
        for batch in bar:
            batch, losses = self.train_step(batch, mix_gen, epoch)
            n = float(batch["valid"].sum())
            for k in sums:
                if k == "n":
                    sums[k] += n
                elif k in losses:
                    sums[k] += losses[k].item() * n
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}")
        totals = dict(zip(sums, D.all_reduce_sum(ctx, list(sums.values()))))
        return totals, time.perf_counter() - t0

    def train_step(self, batch: dict, mix_gen: torch.Generator, epoch: int) -> tuple[dict, dict]:
        """Forward, loss, backward, optimiser and scheduler step on one batch; returns the batch as used."""
        cfg, device = self.cfg, self.device
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if cfg.mixup_alpha > 0:
            batch = _mixup(batch, cfg.mixup_alpha, mix_gen)
        inputs = {k: batch[k] for k in ("body", "scene", "body_feat", "scene_feat") if k in batch}
        with autocast(device, self.use_amp):
            out = self.net(inputs)
        losses = self.task(out, batch)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}; lower the lr")
        scaler, optimizer = self.scaler, self.optimizer
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return batch, losses

    def predict(self, dataset: EmoticDataset) -> dict[str, np.ndarray]:
        return predict(self.model, dataset, batch_size=self.cfg.eval_batch_size, ctx=self.ctx,
                       num_workers=self.workers, amp=self.use_amp)

    def epoch_row(self, epoch: int, totals: dict, train_seconds: float, val: EvalResult, t_val: float) -> dict:
        """The metrics.csv row of one epoch (`t_val`: when validation started)."""
        cfg = self.cfg
        return {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],  # the heads' (towers: x scale)
                **{f"train_{k}": totals[k] / max(totals["n"], 1.0) for k in totals if k != "n"
                   and (k not in ("context_loss", "reference_loss") or cfg.task == "clef_lite")},
                "val_mAP": val.map, "val_mAP_interp": val.map_interp, "val_vad_mae": val.vad_mae_mean,
                **({"clef_lambda": self.clef_info["lambda"],
                    **{f"val_mAP_lambda{k}": self.clef_info["val_mAP_by_lambda"][k] for k in ("0", "1")}}
                   if self.clef_info else {}),
                **{f"val_mae_{n}": float(v) for n, v in zip(("valence", "arousal", "dominance"), val.vad_mae)},
                "train_seconds": train_seconds, "val_seconds": time.perf_counter() - t_val,
                "train_persons_per_second": totals["n"] / max(train_seconds, 1e-9)}

    def end_epoch(self, epoch: int, row: dict, val: EvalResult, train_seconds: float) -> None:
        """Select the best epoch by val mAP; rank 0 writes best.pt (when improved), last.pt, metrics.csv."""
        cfg = self.cfg
        self.history.append(row)
        improved = self.best["epoch"] < 0 or val.map > self.best["map"]  # the first epoch always gives a best.pt
        if improved:
            self.best = {"epoch": epoch + 1, "map": val.map}
        if self.ctx.is_main:
            if improved:
                save_checkpoint(self.model, self.best_path, metadata=self.checkpoint_metadata(epoch + 1, val))
            _atomic_torch_save(self.training_state(epoch + 1), self.state_path)
            _write_csv(self.run_dir / "metrics.csv", self.history)
            self.tb.log(row, epoch + 1)
            log.info("%s seed %d epoch %d/%d: loss %.4f, val mAP %.2f (interp %.2f), VAD MAE %.3f, %.1fs%s",
                     cfg.variant, cfg.seed, epoch + 1, cfg.epochs, row["train_loss"], 100 * val.map,
                     100 * val.map_interp, val.vad_mae_mean, train_seconds, " *best*" if improved else "")
        D.barrier(self.ctx)

    def training_state(self, epochs_done: int) -> dict:
        """What last.pt holds: everything `--resume` needs to continue bit-identically."""
        return {"format": STATE_FORMAT, "epoch": epochs_done, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                "history": self.history, "best": self.best, "config": self.cfg.to_dict(),
                "identity": self.identity, "task_state": self.prep_info}

    # ---------------------------------------------------------------- best checkpoint: val thresholds, test
    def finish(self) -> RunResult:
        payload = torch.load(self.best_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(payload["state_dict"])
        raw_val = self.predict(self.val_ds)
        val_preds = self.clef_select(raw_val)  # CLEF-lite: lambda chosen on val for this checkpoint
        thresholds = thresholds_from(self.val_ds, val_preds)
        val = score(self.val_ds, val_preds, thresholds)
        test = test_ds = raw_test = None
        if "test" in self.splits:
            test_ds = self.dataset("test", False)
            raw_test = self.predict(test_ds)
            test = score(test_ds, with_lambda(raw_test, self.clef_info["lambda"]) if self.clef_info else raw_test,
                         thresholds)
        if self.clef_info:  # lambda = 0, 1 and the chosen one, all from this checkpoint's forward passes
            self.clef_info["report"] = clef_report(self.model, self.val_ds, raw_val, test_ds, raw_test,
                                                   self.clef_info["lambda"])
        seconds = time.perf_counter() - self.t_start
        if self.ctx.is_main:
            self.write_results(payload["metadata"], thresholds, val, test, seconds)
        D.barrier(self.ctx)
        return RunResult(self.run_dir, self.best_path, self.best["epoch"], val, test, self.history, seconds)

    def write_results(self, metadata: dict, thresholds: np.ndarray, val: EvalResult, test: EvalResult | None,
                      seconds: float) -> None:
        """best.pt again with the val thresholds and val/test metrics, and final.json."""
        cfg, history = self.cfg, self.history
        meta = {**metadata, "thresholds": thresholds.tolist()}
        meta["metrics"] = {**_metrics_meta("val", val), **(_metrics_meta("test", test) if test else {})}
        meta.pop("saved_at", None)
        clef = None
        if self.clef_info:
            report = self.clef_info["report"]
            clef = {k: v for k, v in self.clef_info.items() if k != "report"}
            clef.update({f"{split}_mAP_{name}": 100 * report[name][split]["mAP"] for name in
                         ("lambda_0", "lambda_1", "lambda_val") for split in ("val", "test") if split in report[name]})
            clef["reference_mean"] = report["reference_mean"]
            meta["clef"] = clef
        save_checkpoint(self.model, self.best_path, metadata=meta)
        final = {"variant": cfg.variant, "seed": cfg.seed, "model": cfg.model, "best_epoch": self.best["epoch"],
                 "identity": self.identity, "objective": self.objective(),
                 "preprocess": {"body": self.model.body_preprocess.key(), "scene": self.model.scene_preprocess.key()},
                 **({"clef": {**clef, **self.clef_info["report"]}} if clef else {}),
                 "val": val.as_dict(), "test": None if test is None else test.as_dict(),
                 "timing": {"seconds_total": seconds, "feature_cache_seconds": self.cache_seconds,
                            "mean_train_epoch_seconds": float(np.mean([r["train_seconds"] for r in history]))
                            if history else None,
                            "feature_cache": bool(cfg.feature_cache), "device": str(self.device),
                            "world_size": self.ctx.world_size}}
        write_json_atomic(self.run_dir / "final.json", final)
        log.info("%s seed %d done: best epoch %d, val mAP %.2f, test mAP %s (%.0fs)", cfg.variant, cfg.seed,
                 self.best["epoch"], 100 * val.map, "n/a" if test is None else f"{100 * test.map:.2f}", seconds)
