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

from emomon.errors import InputError
from emomon.outputs import write_json_atomic
from training import distributed as D
from training.annotations import SplitData, load_split
from training.config import TrainConfig, resume_mismatches, save_config
from training.dataset import EmoticDataset
from training.evaluation import autocast, model_inputs, predict, score, thresholds_from
from training.features import FeatureCache
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
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_csv(path: Path, history: list[dict]) -> None:
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


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
    from fusion import create_model, save_checkpoint

    run_dir = cfg.run_dir()
    device = ctx.device
    use_amp = cfg.amp and device.type == "cuda"
    workers = _num_workers(cfg, device)
    state_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    # ---------------------------------------------------------------- resume state, config
    state = None
    if cfg.resume and state_path.is_file():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot resume: '{state_path}' is unreadable ({type(exc).__name__})") from exc
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise InputError(f"cannot resume: '{state_path}' is not an emomon training state")
        bad = resume_mismatches(state["config"], cfg)
        if bad:
            raise InputError(f"cannot resume {run_dir}: config differs in {bad} (use the same flags, or a new "
                             "--out)")
        if not best_path.is_file():
            raise InputError(f"cannot resume: '{best_path}' is missing next to '{state_path}'")
    elif cfg.resume:
        log.info("--resume: no %s yet, starting from scratch", state_path)
    elif state_path.is_file() and ctx.is_main:
        log.warning("%s holds an earlier run; it is overwritten (pass --resume to continue it)", run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")

    # ---------------------------------------------------------------- data
    splits = {s: _subset(load_split(cfg.data, s, check_images=cfg.check_images),
                         cfg.max_train if s == "train" else cfg.max_eval) for s in ("train", "val")}
    try:
        splits["test"] = _subset(load_split(cfg.data, "test", check_images=cfg.check_images), cfg.max_eval)
    except InputError as exc:
        log.warning("no test evaluation: %s", exc)
    if ctx.is_main:
        write_json_atomic(run_dir / "data.json", {"data": str(cfg.data), **{s: d.report.as_dict() for s, d in
                                                                             splits.items()},
                                                   "used": {s: len(d) for s, d in splits.items()}})

    # ---------------------------------------------------------------- model, task
    task = build_task(cfg)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, pretrained=cfg.pretrained, **{**cfg.model_options(),
                                                                   **task.model_overrides()})
    model.to(device)
    cache = FeatureCache(cfg.feature_cache, batch_size=cfg.eval_batch_size, device=device,
                         num_workers=workers, progress=cfg.progress and ctx.is_main) if cfg.feature_cache else None
    feats: dict[str, dict[str, torch.Tensor]] = {s: {} for s in splits}
    t_cache = time.perf_counter()
    if cache is not None:
        for s, d in splits.items():
            feats[s]["scene_features"] = _features(
                cache, ctx, lambda w, d=d: cache.scene_features(model, d.records, write=w))
            if cfg.cache_body:
                feats[s]["body_features"] = _features(
                    cache, ctx, lambda w, d=d: cache.body_features(model, d.records, write=w))
    cache_seconds = time.perf_counter() - t_cache

    prep_info: dict = {}
    if state is not None:
        model.load_state_dict(state["model"])
        prep_info = state.get("task_state", {})
    else:
        def train_scene():
            if "scene_features" in feats["train"]:
                return feats["train"]["scene_features"]
            return FeatureCache(None, batch_size=cfg.eval_batch_size, device=device,
                                num_workers=workers).scene_features(model, splits["train"].records)

        prep_info = task.prepare(model, train_scene, cfg.seed)

    def dataset(split: str, train_mode: bool) -> EmoticDataset:
        return EmoticDataset(splits[split].records, model.body_preprocess, model.scene_preprocess,
                             augment=train_mode and cfg.augment, seed=cfg.seed, **feats[split])

    train_ds, val_ds = dataset("train", True), dataset("val", False)
    weights = (class_balanced_weights(splits["train"].labels(), cfg.cb_beta)
               if cfg.sampler == "class_balanced" else None)
    sampler = EpochSampler(len(train_ds), weights=weights, seed=cfg.seed, rank=ctx.rank,
                           world_size=ctx.world_size)
    per_rank_batch = max(1, cfg.batch_size // ctx.world_size)
    loader = DataLoader(train_ds, batch_size=per_rank_batch, sampler=sampler, num_workers=workers,
                        drop_last=len(sampler) > per_rank_batch, pin_memory=device.type == "cuda")
    steps_per_epoch = len(loader)

    # ---------------------------------------------------------------- optimisation
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(
        cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported()) \
        if use_amp else None
    start_epoch, history, best = 0, [], {"epoch": -1, "map": -1.0}
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), dict(state["best"])
        log.info("resumed %s after epoch %d (best val mAP %.4f at epoch %d)", run_dir, start_epoch,
                 best["map"], best["epoch"])
    net = _TrainForward(model)
    if ctx.distributed:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    tb = _TensorBoard(run_dir, cfg.tensorboard and ctx.is_main)
    data_meta = {"path": str(cfg.data), "layout": splits["train"].report.layout,
                 **{f"{s}_persons": len(d) for s, d in splits.items()},
                 "skipped": {s: dict(d.report.skipped) for s, d in splits.items()}}

    def checkpoint_metadata(epoch: int, val: EvalResult) -> dict:
        return {"variant": cfg.variant, "seed": cfg.seed, "task": cfg.task, "epoch": epoch,
                "training_data": data_meta, "metrics": _metrics_meta("val", val),
                "config": cfg.to_dict(), "simplifies": cfg.simplifies, **prep_info}

    # ---------------------------------------------------------------- epochs
    from tqdm import tqdm

    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 1000 + epoch)
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        mix_gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        net.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "cat_loss": 0.0, "vad_loss": 0.0, "context_loss": 0.0, "n": 0.0}
        bar = tqdm(loader, desc=f"{cfg.variant} s{cfg.seed} epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=True if not (ctx.is_main and cfg.progress) else None)
        for batch in bar:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            if cfg.mixup_alpha > 0:
                batch = _mixup(batch, cfg.mixup_alpha, mix_gen)
            inputs = {k: batch[k] for k in ("body", "scene", "body_feat", "scene_feat") if k in batch}
            with autocast(device, use_amp):
                out = net(inputs)
            losses = task(out, batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}; lower the lr")
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            n = float(batch["valid"].sum())
            for k in sums:
                if k == "n":
                    sums[k] += n
                elif k in losses:
                    sums[k] += losses[k].item() * n
            bar.set_postfix(loss=f"{loss.item():.4f}")
        totals = dict(zip(sums, D.all_reduce_sum(ctx, list(sums.values()))))
        train_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        val_preds = predict(model, val_ds, batch_size=cfg.eval_batch_size, ctx=ctx, num_workers=workers,
                            amp=use_amp)
        val = score(val_ds, val_preds)
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],  # the heads' (towers: x scale)
               **{f"train_{k}": totals[k] / max(totals["n"], 1.0) for k in sums if k != "n"
                  and (k != "context_loss" or cfg.task == "clef_lite")},
               "val_mAP": val.map, "val_mAP_interp": val.map_interp, "val_vad_mae": val.vad_mae_mean,
               **{f"val_mae_{n}": float(v) for n, v in zip(("valence", "arousal", "dominance"), val.vad_mae)},
               "train_seconds": train_seconds, "val_seconds": time.perf_counter() - t1,
               "train_persons_per_second": totals["n"] / max(train_seconds, 1e-9)}
        history.append(row)
        improved = best["epoch"] < 0 or val.map > best["map"]  # the first epoch always gives a best.pt
        if improved:
            best = {"epoch": epoch + 1, "map": val.map}
        if ctx.is_main:
            if improved:
                save_checkpoint(model, best_path, metadata=checkpoint_metadata(epoch + 1, val))
            _atomic_torch_save({"format": STATE_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
                                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                "scaler": scaler.state_dict() if scaler is not None else {},
                                "history": history, "best": best, "config": cfg.to_dict(),
                                "task_state": prep_info}, state_path)
            _write_csv(run_dir / "metrics.csv", history)
            tb.log(row, epoch + 1)
            log.info("%s seed %d epoch %d/%d: loss %.4f, val mAP %.2f (interp %.2f), VAD MAE %.3f, %.1fs%s",
                     cfg.variant, cfg.seed, epoch + 1, cfg.epochs, row["train_loss"], 100 * val.map,
                     100 * val.map_interp, val.vad_mae_mean, train_seconds, " *best*" if improved else "")
        D.barrier(ctx)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    tb.close()

    # ---------------------------------------------------------------- best checkpoint: val thresholds, test
    payload = torch.load(best_path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["state_dict"])
    val_preds = predict(model, val_ds, batch_size=cfg.eval_batch_size, ctx=ctx, num_workers=workers,
                        amp=use_amp)
    thresholds = thresholds_from(val_ds, val_preds)
    val = score(val_ds, val_preds, thresholds)
    test = None
    if "test" in splits:
        test_ds = dataset("test", False)
        test = score(test_ds, predict(model, test_ds, batch_size=cfg.eval_batch_size, ctx=ctx,
                                      num_workers=workers, amp=use_amp), thresholds)
    seconds = time.perf_counter() - t_start
    if ctx.is_main:
        meta = {**payload["metadata"], "thresholds": thresholds.tolist()}
        meta["metrics"] = {**_metrics_meta("val", val), **(_metrics_meta("test", test) if test else {})}
        meta.pop("saved_at", None)
        save_checkpoint(model, best_path, metadata=meta)
        epochs_run = [r for r in history]
        final = {"variant": cfg.variant, "seed": cfg.seed, "model": cfg.model, "best_epoch": best["epoch"],
                 "val": val.as_dict(), "test": None if test is None else test.as_dict(),
                 "timing": {"seconds_total": seconds, "feature_cache_seconds": cache_seconds,
                            "mean_train_epoch_seconds": float(np.mean([r["train_seconds"] for r in epochs_run]))
                            if epochs_run else None,
                            "feature_cache": bool(cfg.feature_cache), "device": str(device),
                            "world_size": ctx.world_size}}
        write_json_atomic(run_dir / "final.json", final)
        log.info("%s seed %d done: best epoch %d, val mAP %.2f, test mAP %s (%.0fs)", cfg.variant, cfg.seed,
                 best["epoch"], 100 * val.map, "n/a" if test is None else f"{100 * test.map:.2f}", seconds)
    D.barrier(ctx)
    return RunResult(run_dir, best_path, best["epoch"], val, test, history, seconds)
