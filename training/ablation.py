"""The ablation study: every variant x several seeds, one table.

    emomon ablate --data /path/to/emotic --seeds 3                  # the paper's setting (ViT-B/16)
    emomon ablate --data /tmp/synth --seeds 3 --quick               # tiny model, a few epochs, minutes on CPU

Writes into `--out`:

- `ablation.md`    the table (test mAP mean +- std over seeds, delta vs clean, 11-point interpolated mAP,
                   VAD MAE), per-category AP, what each variant simplifies, and the command to rerun it
- `ablation.csv`   one row per variant (means, stds, per-category AP means)
- `ablation_runs.csv` one row per run (variant, seed, metrics, best epoch, seconds)
- `ablation.png`   bar chart of mAP with std error bars
- `runs/<variant>-s<seed>/`  each run's directory (a finished run is reused, an interrupted one resumed)
- `feature_cache/` the shared frozen-tower embeddings (unless --no-feature-cache)
"""

from __future__ import annotations

import csv
import json
import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from emomon.kernel import InputError
from fusion import EMOTIC_CATEGORIES, VAD_NAMES
from training.config import VARIANTS, TrainConfig, load_config, resume_mismatches

log = logging.getLogger(__name__)

# --quick: the tiny model with random towers, a few epochs at a higher learning rate, one thread (the tiny
# model gains little from a second one, and on a shared CPU two threads thrash: measured 10x slower).
QUICK = {"model": "two_stream_tiny", "pretrained": False, "epochs": 8, "lr": 3e-3, "backbone_lr_scale": 1.0,
         "batch_size": 32, "warmup_epochs": 0.5, "ccim_prototypes": 8, "num_workers": 0, "threads": 1}
PAPER_CLEAN_MAP = 34.52  # EMOTIC test mAP of the clean two-stream model in the reference paper


@dataclass
class AblationResult:
    out: Path
    runs: list[dict] = field(default_factory=list)  # one per variant x seed
    rows: list[dict] = field(default_factory=list)  # one per variant
    seconds: float = 0.0


def _finished(cfg: TrainConfig) -> dict | None:
    """final.json of a run directory that already finished with the same config, else None."""
    run_dir = cfg.run_dir()
    final, saved = run_dir / "final.json", run_dir / "config.yaml"
    if not (final.is_file() and saved.is_file()):
        return None
    try:
        old = yaml.safe_load(saved.read_text()) or {}
        if resume_mismatches(old, cfg) or old.get("data") != cfg.data:  # a resume may move the data; reuse not
            return None
        return json.loads(final.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def run_ablation(data: str, *, seeds: int = 3, variants: tuple[str, ...] = VARIANTS, model: str | None = None,
                 epochs: int | None = None, out: str = "runs/ablation", quick: bool = False,
                 feature_cache: str | None | bool = True, overrides: dict | None = None,
                 command: str | None = None) -> AblationResult:
    """Train every variant with seeds 0..seeds-1 and write the table (see the module docstring).

    `feature_cache`: True = `<out>/feature_cache`, a path, or False/None for none.
    """
    if seeds < 1:
        raise InputError("--seeds must be at least 1")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {unknown}: choose from {', '.join(VARIANTS)}")
    from training.trainer import train

    t0 = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = str(out_dir / "feature_cache") if feature_cache is True else (feature_cache or None)
    base = {**(QUICK if quick else {}), **(overrides or {})}
    if model:
        base["model"] = model
    if epochs:
        base["epochs"] = epochs
    result = AblationResult(out_dir)
    for variant in variants:
        for seed in range(seeds):
            cfg = load_config(variant, {**base, "data": str(data), "seed": seed, "feature_cache": cache,
                                        "out": str(out_dir / "runs" / f"{variant}-s{seed}")})
            final = _finished(cfg)
            if final is not None:
                log.info("%s seed %d: reusing the finished run in %s", variant, seed, cfg.run_dir())
            else:
                cfg.resume = (cfg.run_dir() / "last.pt").is_file()
                train(cfg)
                final = json.loads((cfg.run_dir() / "final.json").read_text())
            split = "test" if final.get("test") else "val"
            m = final[split]
            result.runs.append({
                "variant": variant, "seed": seed, "split": split, "mAP": m["mAP"], "mAP_interp": m["mAP_interp"],
                "vad_mae": m["vad_mae_mean"], **{f"mae_{n}": m["vad_mae"][n] for n in VAD_NAMES},
                "excluded": m["excluded"], "best_epoch": final["best_epoch"],
                "seconds": final["timing"]["seconds_total"],
                "train_epoch_seconds": final["timing"]["mean_train_epoch_seconds"],
                "ap": {c: m["per_category"][c]["ap"] for c in EMOTIC_CATEGORIES},
                "simplifies": cfg.simplifies, "model": cfg.model, "epochs": cfg.epochs})
    result.rows = summarise(result.runs)
    result.seconds = time.perf_counter() - t0
    write_outputs(result, data=str(data), command=command or f"emomon ablate --data {shlex.quote(str(data))} "
                  f"--seeds {seeds}" + (" --quick" if quick else ""))
    return result


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        row = {"variant": v, "seeds": len(rs), "split": rs[0]["split"]}
        for key in ("mAP", "mAP_interp", "vad_mae", *[f"mae_{n}" for n in VAD_NAMES]):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([r[key] for r in rs])
        for c in EMOTIC_CATEGORIES:
            row[f"ap_{c}"] = _mean_std([r["ap"][c] for r in rs])[0]
        row["excluded"] = sorted({c for r in rs for c in r["excluded"]})
        row["simplifies"] = rs[0]["simplifies"]
        rows.append(row)
    clean = next((r for r in rows if r["variant"] == "clean"), None)
    for r in rows:
        r["delta_vs_clean"] = (r["mAP_mean"] - clean["mAP_mean"]) if clean else float("nan")
    return rows


def _pct(v: float) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{100 * v:.2f}"


def write_outputs(result: AblationResult, *, data: str, command: str) -> None:
    out, rows, runs = result.out, result.rows, result.runs
    scalar_cols = ["variant", "seeds", "split", "mAP_mean", "mAP_std", "delta_vs_clean", "mAP_interp_mean",
                   "mAP_interp_std", "vad_mae_mean", "vad_mae_std",
                   *[f"mae_{n}_{s}" for n in VAD_NAMES for s in ("mean", "std")]]
    with open(out / "ablation.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(scalar_cols + [f"ap_{c}" for c in EMOTIC_CATEGORIES] + ["excluded"])
        for r in rows:
            w.writerow([r[c] if isinstance(r[c], (str, int)) else f"{r[c]:.6f}" for c in scalar_cols]
                       + [f"{r[f'ap_{c}']:.6f}" for c in EMOTIC_CATEGORIES] + [";".join(r["excluded"])])
    with open(out / "ablation_runs.csv", "w", newline="") as fh:
        cols = ["variant", "seed", "split", "mAP", "mAP_interp", "vad_mae", *[f"mae_{n}" for n in VAD_NAMES],
                "best_epoch", "seconds", "train_epoch_seconds"]
        w = csv.writer(fh)
        w.writerow(cols + [f"ap_{c}" for c in EMOTIC_CATEGORIES])
        for r in runs:
            w.writerow([r[c] if isinstance(r[c], (str, int)) else f"{r[c]:.6f}" for c in cols]
                       + ["" if r["ap"][c] is None else f"{r['ap'][c]:.6f}" for c in EMOTIC_CATEGORIES])
    _bar_chart(rows, out / "ablation.png")
    (out / "ablation.md").write_text(_markdown(result, data, command))
    log.info("ablation table written to %s (%.0fs)", out / "ablation.md", result.seconds)


def _bar_chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    means = [100 * r["mAP_mean"] for r in rows]
    stds = [100 * r["mAP_std"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    bars = ax.bar(names, means, yerr=stds, capsize=5, color=["#4c72b0" if n == "clean" else "#8c8c8c"
                                                            for n in names])
    for b, m, s in zip(bars, means, stds):
        ax.text(b.get_x() + b.get_width() / 2, m + s + 0.5, f"{m:.1f}", ha="center", va="bottom", fontsize=8)
    if "clean" in names:
        ax.axhline(means[names.index("clean")], color="#4c72b0", lw=0.8, ls="--")
    ax.set_ylabel(f"{rows[0]['split']} mAP (%)")
    ax.set_title(f"Ablation: mean ± std over {rows[0]['seeds']} seed(s)")
    ax.set_ylim(0, max(m + s for m, s in zip(means, stds)) * 1.15 + 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _markdown(result: AblationResult, data: str, command: str) -> str:
    rows, runs = result.rows, result.runs
    split = rows[0]["split"]
    lines = [
        "# EMOTIC ablation",
        "",
        f"Data: `{data}`; model `{runs[0]['model']}`, {runs[0]['epochs']} epochs, seeds "
        f"{sorted({r['seed'] for r in runs})}; metrics on the **{split}** split of the best-val-mAP checkpoint "
        f"of each run. Total time {result.seconds / 60:.1f} min.",
        "",
        f"Rerun: `{command}`",
        "",
        "mAP = mean over categories of scikit-learn `average_precision_score` (what the paper's "
        f"{PAPER_CLEAN_MAP} clean mAP on real EMOTIC uses); AP11 = the official Lua code's 11-point interpolated "
        "AP. VAD MAE on the 1-10 scale, mean of valence, arousal, dominance. ± is the sample std over seeds.",
        "",
        "| variant | mAP (%) | Δ vs clean | AP11 mAP (%) | VAD MAE | seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        delta = "—" if r["variant"] == "clean" else f"{100 * r['delta_vs_clean']:+.2f}"
        lines.append(f"| {r['variant']} | {_pct(r['mAP_mean'])} ± {_pct(r['mAP_std'])} | {delta} | "
                     f"{_pct(r['mAP_interp_mean'])} ± {_pct(r['mAP_interp_std'])} | "
                     f"{r['vad_mae_mean']:.3f} ± {r['vad_mae_std']:.3f} | {r['seeds']} |")
    excluded = sorted({c for r in rows for c in r["excluded"]})
    if excluded:
        lines += ["", f"Note: categories without positives in {split} were left out of mAP: "
                      f"{', '.join(excluded)}."]
    lines += ["", "## Per-category AP (%, mean over seeds)", "",
              "| category | " + " | ".join(r["variant"] for r in rows) + " |",
              "| --- | " + " | ".join("---" for _ in rows) + " |"]
    for c in EMOTIC_CATEGORIES:
        lines.append(f"| {c} | " + " | ".join(_pct(r[f"ap_{c}"]) for r in rows) + " |")
    lines += ["", "## Per run", "", "| variant | seed | mAP (%) | AP11 (%) | VAD MAE | best epoch | s/epoch | s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        ep = r["train_epoch_seconds"]
        lines.append(f"| {r['variant']} | {r['seed']} | {_pct(r['mAP'])} | {_pct(r['mAP_interp'])} | "
                     f"{r['vad_mae']:.3f} | {r['best_epoch']} | {'n/a' if ep is None else f'{ep:.2f}'} | "
                     f"{r['seconds']:.0f} |")
    lines += ["", "## What each variant simplifies", ""]
    for r in rows:
        lines.append(f"- **{r['variant']}**: {r['simplifies'].strip()}")
    lines += ["", "![mAP per variant](ablation.png)", ""]
    return "\n".join(lines)
