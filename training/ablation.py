"""The ablation study: every variant x several seeds, one table; and validation sweeps of config fields.

    emomon ablate --data /path/to/emotic                            # the paper's setting (ViT-B/16), 5 seeds
    emomon ablate --data /tmp/synth --seeds 3 --quick               # tiny model, a few epochs, minutes on CPU
    emomon ablate --data /tmp/synth --quick --sweep vad_weight=0,0.05,0.5 --sweep category_reduction=sum,mean

Writes into `--out`:

- `ablation.md`    the table (test mAP mean +- std over seeds, seed-paired delta vs clean +- its std,
                   11-point interpolated mAP, VAD MAE), CLEF-lite at lambda 0 / 1 / chosen on val from the
                   same checkpoints, the persons each split kept, per-category AP, what each variant
                   simplifies, and the command to rerun it
- `ablation.json`  the same numbers with the command, git commit and machine
- `ablation.csv`   one row per variant (means, stds, per-category AP means)
- `ablation_runs.csv` one row per run (variant, seed, metrics, best epoch, seconds)
- `ablation.png`   bar chart of mAP with std error bars
- `runs/<variant>-s<seed>/`  each run's directory (a finished run is reused, an interrupted one resumed)
- `feature_cache/` the shared frozen-tower embeddings (unless --no-feature-cache)

Seeds pair runs: with the same seed, clean, ccim, clef_lite and asl see the same data order and the same
flips (the sampler and the flips draw from (seed, epoch) only), so the delta vs clean is taken per seed
and its mean and std reported. cb_sampling draws its own order (weighted, with replacement): its delta is
paired by seed only. `--sweep` (see `run_sweep`) writes `sweep.md`, `sweep.json` and `sweep.csv` instead,
on the val split, with the rule that picks a setting.
"""

from __future__ import annotations

import csv
import datetime
import itertools
import json
import logging
import os
import platform
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from emomon.kernel import InputError, write_json_atomic
from fusion import EMOTIC_CATEGORIES, VAD_NAMES
from training.config import (
    VARIANTS,
    TrainConfig,
    identity_mismatches,
    load_config,
    precision_name,
    resume_mismatches,
    run_identity,
)

log = logging.getLogger(__name__)

# --quick: the tiny model with random towers, a few epochs at a higher learning rate, one thread (the tiny
# model gains little from a second one, and on a shared CPU two threads thrash: measured 10x slower).
QUICK = {"model": "two_stream_tiny", "pretrained": False, "epochs": 8, "lr": 3e-3, "backbone_lr_scale": 1.0,
         "batch_size": 32, "warmup_epochs": 0.5, "ccim_prototypes": 8, "num_workers": 0, "threads": 1}
PAPER_CLEAN_MAP = 34.52  # EMOTIC test mAP of the clean two-stream model in the reference paper
# persons kept per split after dropping those without labels (Tandon-A/emotic notebook output)
PUBLISHED_PERSONS = {"train": 23266, "val": 3315, "test": 7203}
DEFAULT_SEEDS, QUICK_SEEDS = 5, 3
SWEEP_MAP_TOLERANCE = 0.01  # a sweep picks the best val VAD MAE among settings within 1 point of the best val mAP


@dataclass
class AblationResult:
    out: Path
    runs: list[dict] = field(default_factory=list)  # one per variant x seed
    rows: list[dict] = field(default_factory=list)  # one per variant
    seconds: float = 0.0
    persons: dict = field(default_factory=dict)  # split -> persons the loader kept (data.json of a run)
    provenance: dict = field(default_factory=dict)


def _identity(cfg: TrainConfig) -> dict:
    from training.distributed import pick_device

    return run_identity(cfg, precision_name(cfg.amp, pick_device(cfg.device).type))


def _finished(cfg: TrainConfig) -> dict | None:
    """final.json of a run directory that already finished with the same config and run identity (cached
    or computed embeddings, flips, precision), else None."""
    run_dir = cfg.run_dir()
    final, saved = run_dir / "final.json", run_dir / "config.yaml"
    if not (final.is_file() and saved.is_file()):
        return None
    try:
        old = yaml.safe_load(saved.read_text()) or {}
        if resume_mismatches(old, cfg) or old.get("data") != cfg.data:  # a resume may move the data; reuse not
            return None
        done = json.loads(final.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    bad = identity_mismatches(done.get("identity") if isinstance(done, dict) else None, _identity(cfg))
    if bad:
        log.info("%s: not reused, it differs in %s", run_dir, ", ".join(bad))
        return None
    return done


def provenance(command: str) -> dict:
    """What a results file needs to be reproduced: the command, the git commit, the machine."""
    import torch

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cuda = torch.cuda.is_available()
    return {"command": command, "commit": git("rev-parse", "HEAD") or "unknown",
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "torch": torch.__version__, "numpy": np.__version__,
                        "gpu": torch.cuda.get_device_name(0) if cuda else None}}


def _train_or_reuse(cfg: TrainConfig) -> dict:
    """Train the run `cfg` describes (resuming an interrupted one), or reuse it when finished; final.json."""
    from training.trainer import train

    final = _finished(cfg)
    if final is not None:
        log.info("%s seed %d: reusing the finished run in %s", cfg.variant, cfg.seed, cfg.run_dir())
        return final
    cfg.resume = (cfg.run_dir() / "last.pt").is_file()
    train(cfg)
    return json.loads((cfg.run_dir() / "final.json").read_text())


def _run_record(cfg: TrainConfig, final: dict, split: str | None = None) -> dict:
    """One run's numbers for the tables (test when the run has it, else val; or `split`)."""
    split = split or ("test" if final.get("test") else "val")
    m = final[split]
    rec = {"variant": cfg.variant, "seed": cfg.seed, "split": split, "mAP": m["mAP"], "mAP_interp": m["mAP_interp"],
           "vad_mae": m["vad_mae_mean"], **{f"mae_{n}": m["vad_mae"][n] for n in VAD_NAMES},
           "excluded": m["excluded"], "best_epoch": final["best_epoch"],
           "seconds": final["timing"]["seconds_total"],
           "train_epoch_seconds": final["timing"]["mean_train_epoch_seconds"],
           "ap": {c: m["per_category"][c]["ap"] for c in EMOTIC_CATEGORIES},
           "simplifies": cfg.simplifies, "model": cfg.model, "epochs": cfg.epochs, "sampler": cfg.sampler,
           "scene_preprocess": final.get("preprocess", {}).get("scene")}
    clef = final.get("clef")
    if clef:
        rec["clef_lambda"] = clef["lambda"]
        for name in ("lambda_0", "lambda_1", "lambda_val"):
            if split in clef[name]:
                rec[f"clef_mAP_{name}"] = clef[name][split]["mAP"]
    return rec


def _persons(run_dir: Path) -> dict:
    """Persons the loader kept per split (and read), from a run's data.json."""
    try:
        data = json.loads((run_dir / "data.json").read_text())
    except (OSError, ValueError):
        return {}
    return {s: {"kept": data[s]["kept"], "read": data[s]["persons_read"], "skipped": data[s]["skipped"],
                "used": data.get("used", {}).get(s)} for s in ("train", "val", "test") if s in data}


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _base(quick: bool, overrides: dict | None, model: str | None, epochs: int | None) -> dict:
    base = {**(QUICK if quick else {}), **(overrides or {})}
    if model:
        base["model"] = model
    if epochs:
        base["epochs"] = epochs
    return base


def _check(seeds: int, variants) -> None:
    if seeds < 1:
        raise InputError("--seeds must be at least 1")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {unknown}: choose from {', '.join(VARIANTS)}")


def _start(seeds, variants, out, quick, feature_cache, overrides, model, epochs):
    """What a study (ablation or sweep) starts from: the seeds, the clock, its folder, the feature cache and
    the base config. `feature_cache`: True = `<out>/feature_cache`, a path, or False/None for none."""
    seeds = seeds or (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    _check(seeds, variants)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = str(out_dir / "feature_cache") if feature_cache is True else (feature_cache or None)
    return seeds, time.perf_counter(), out_dir, cache, _base(quick, overrides, model, epochs)


def run_ablation(data: str, *, seeds: int | None = None, variants: tuple[str, ...] = VARIANTS,
                 model: str | None = None, epochs: int | None = None, out: str = "runs/ablation",
                 quick: bool = False, feature_cache: str | None | bool = True, overrides: dict | None = None,
                 command: str | None = None) -> AblationResult:
    """Train every variant with seeds 0..seeds-1 (default 5; 3 with `quick`) and write the table (see the
    module docstring).

    `feature_cache`: True = `<out>/feature_cache`, a path, or False/None for none.
    """
    seeds, t0, out_dir, cache, base = _start(seeds, variants, out, quick, feature_cache, overrides, model, epochs)
    command = command or (f"emomon ablate --data {shlex.quote(str(data))} --seeds {seeds}"
                          + (" --quick" if quick else ""))
    result = AblationResult(out_dir, provenance=provenance(command))
    for variant in variants:
        for seed in range(seeds):
            cfg = load_config(variant, {**base, "data": str(data), "seed": seed, "feature_cache": cache,
                                        "out": str(out_dir / "runs" / f"{variant}-s{seed}")})
            result.runs.append(_run_record(cfg, _train_or_reuse(cfg)))
            result.persons = result.persons or _persons(cfg.run_dir())
    result.rows = summarise(result.runs)
    result.seconds = time.perf_counter() - t0
    write_outputs(result, data=str(data), command=command)
    return result


def _paired(runs: list[dict], variant: str, key: str = "mAP") -> list[float]:
    """Per-seed differences variant - clean of `key`, over the seeds both have."""
    clean = {r["seed"]: r["mAP"] for r in runs if r["variant"] == "clean"}
    return [r[key] - clean[r["seed"]] for r in runs if r["variant"] == variant and r["seed"] in clean
            and r.get(key) is not None]


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
        # seed-paired delta vs clean: same data order and flips for uniform samplers (module docstring)
        row["delta_vs_clean"], row["delta_std"] = _mean_std(_paired(runs, v)) if v != "clean" else (0.0, 0.0)
        row["pairing"] = ("reference" if v == "clean" else "same data order and flips per seed"
                          if rs[0].get("sampler", "uniform") == "uniform"
                          else "seed only (own class-balanced order)")
        if any("clef_mAP_lambda_0" in r for r in rs):
            for name in ("lambda_0", "lambda_1", "lambda_val"):
                key = f"clef_mAP_{name}"
                row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([r.get(key) for r in rs])
                row[f"{key}_delta"], row[f"{key}_delta_std"] = _mean_std(_paired(runs, v, key))
            row["clef_lambdas"] = [r["clef_lambda"] for r in rs]
        rows.append(row)
    if not any(r["variant"] == "clean" for r in rows):
        for r in rows:
            r["delta_vs_clean"] = r["delta_std"] = float("nan")
    return rows


def _pct(v: float) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{100 * v:.2f}"


def write_outputs(result: AblationResult, *, data: str, command: str) -> None:
    out, rows, runs = result.out, result.rows, result.runs
    scalar_cols = ["variant", "seeds", "split", "mAP_mean", "mAP_std", "delta_vs_clean", "delta_std",
                   "mAP_interp_mean",
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
    write_json_atomic(out / "ablation.json", {
        "schema": "emomon.ablation/1", **result.provenance, "data": data, "seconds": result.seconds,
        "persons_kept": result.persons, "published_persons": PUBLISHED_PERSONS,
        "rows": [{k: v for k, v in r.items() if not k.startswith("ap_")} for r in rows],
        "runs": runs})
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


def _preprocess(runs: list[dict]) -> str:
    """The scene preprocessing key(s) the runs recorded (more than one: the table mixes code versions)."""
    keys = sorted({str(r.get("scene_preprocess")) for r in runs})
    return ", ".join(f"`{k}`" for k in keys) + (" (MIXED: runs from different code)" if len(keys) > 1 else "")


def _times(seconds: float, runs: list[dict]) -> str:
    """This command's wall time and the runs' own (a rerun reuses finished runs and takes seconds)."""
    return (f"The {len(runs)} runs took {sum(r['seconds'] for r in runs) / 60:.1f} min of training and evaluation "
            f"in all (each run's own time, as first trained); this command took {seconds / 60:.1f} min.")


def _machine(m: dict) -> str:
    return (f"{m.get('processor', '?')}, {m.get('cpu_count', '?')} CPUs, {m.get('platform', '?')}, "
            f"torch {m.get('torch', '?')}" + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"))


def _clef_section(rows: list[dict], split: str) -> list[str]:
    clef = next((r for r in rows if "clef_mAP_lambda_0_mean" in r), None)
    if clef is None:
        return []
    lams = ", ".join(f"{v:g}" for v in clef["clef_lambdas"])
    lines = ["", "## CLEF-lite: λ from the same checkpoints", "",
             "Each clef_lite checkpoint scored at λ = 0 (the fused score, nothing subtracted), λ = 1 (the whole "
             "counterfactual context prediction subtracted: TE − NDE) and the λ chosen on val (per seed: "
             f"{lams}); one forward pass each, thresholds from val at the same λ. Δ paired by seed vs clean.", "",
             f"| λ | {split} mAP (%) | Δ vs clean (paired) |", "| --- | --- | --- |"]
    for name, label in (("lambda_0", "0 (fused score)"), ("lambda_1", "1 (full subtraction)"),
                        ("lambda_val", "chosen on val")):
        k = f"clef_mAP_{name}"
        lines.append(f"| {label} | {_pct(clef[k + '_mean'])} ± {_pct(clef[k + '_std'])} | "
                     f"{100 * clef[k + '_delta']:+.2f} ± {_pct(clef[k + '_delta_std'])} |")
    return lines


def _persons_section(persons: dict) -> list[str]:
    if not persons:
        return []
    lines = ["", "## Persons kept by the loader", "",
             "From the runs' `data.json` (the loader's report; also logged as `<split>: kept N of M persons`). "
             "Published EMOTIC counts after dropping persons without labels: "
             + " / ".join(f"{PUBLISHED_PERSONS[s]:,}" for s in ("train", "val", "test")) + " (train / val / test).",
             "", "| split | read | kept | published | skipped |", "| --- | --- | --- | --- | --- |"]
    for s, p in persons.items():
        skipped = ", ".join(f"{n} {why}" for why, n in p["skipped"].items()) or "none"
        lines.append(f"| {s} | {p['read']} | {p['kept']} | {PUBLISHED_PERSONS.get(s, 0):,} | {skipped} |")
    return lines


def _markdown(result: AblationResult, data: str, command: str) -> str:
    rows, runs = result.rows, result.runs
    split = rows[0]["split"]
    prov = result.provenance
    lines = [
        "# EMOTIC ablation",
        "",
        f"Data: `{data}`; model `{runs[0]['model']}`, {runs[0]['epochs']} epochs, seeds "
        f"{sorted({r['seed'] for r in runs})}; metrics on the **{split}** split of the best-val-mAP checkpoint "
        f"of each run. Scene preprocessing: {_preprocess(runs)}. {_times(result.seconds, runs)}",
        "",
        f"Rerun: `{command}`",
        "",
        f"Commit `{prov.get('commit', 'unknown')}`"
        + (" (with uncommitted changes in the working tree)" if prov.get("uncommitted_changes") else "")
        + f"; machine: {_machine(prov.get('machine', {}))}; {prov.get('date', '')}.",
        "",
        "mAP = mean over categories of scikit-learn `average_precision_score` (what the paper's "
        f"{PAPER_CLEAN_MAP} clean mAP on real EMOTIC uses); AP11 = the official Lua code's 11-point interpolated "
        "AP. VAD MAE on the 1-10 scale, mean of valence, arousal, dominance. ± is the sample std over seeds. "
        "Δ vs clean is paired by seed: the mean ± std over seeds of (variant − clean) with the same seed; "
        "clean, ccim, clef_lite and asl share the data order and flips of a seed, cb_sampling draws its own "
        "(class-balanced, with replacement), so its pairing is by seed only.",
        "",
        "| variant | mAP (%) | Δ vs clean (paired) | AP11 mAP (%) | VAD MAE | seeds | paired on |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        delta = "—" if r["variant"] == "clean" else f"{100 * r['delta_vs_clean']:+.2f} ± {_pct(r['delta_std'])}"
        lines.append(f"| {r['variant']} | {_pct(r['mAP_mean'])} ± {_pct(r['mAP_std'])} | {delta} | "
                     f"{_pct(r['mAP_interp_mean'])} ± {_pct(r['mAP_interp_std'])} | "
                     f"{r['vad_mae_mean']:.3f} ± {r['vad_mae_std']:.3f} | {r['seeds']} | {r['pairing']} |")
    excluded = sorted({c for r in rows for c in r["excluded"]})
    if excluded:
        lines += ["", f"Note: categories without positives in {split} were left out of mAP: "
                      f"{', '.join(excluded)}."]
    lines += _clef_section(rows, split) + _persons_section(result.persons)
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


# ------------------------------------------------------------------------------------------------ sweeps
@dataclass
class SweepResult:
    out: Path
    grid: dict
    runs: list[dict] = field(default_factory=list)  # one per setting x variant x seed
    rows: list[dict] = field(default_factory=list)  # one per setting x variant
    selected: dict = field(default_factory=dict)  # variant -> the chosen setting's row
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)


def parse_sweep(items: list[str] | None) -> dict[str, list]:
    """`--sweep KEY=V1,V2,...` (repeatable) -> {key: [values]} with each value parsed and type-checked
    as a config field."""
    from training.config import parse_set

    grid: dict[str, list] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--sweep expects KEY=V1,V2,..., got '{item}'")
        key, values = item.split("=", 1)
        parsed = [parse_set([f"{key}={v.strip()}"]) for v in values.split(",") if v.strip()]
        if not parsed:
            raise InputError(f"--sweep {key}: no values")
        name = next(iter(parsed[0]))
        for p in parsed:  # type errors now, not after hours of training
            load_config(None, p)
        grid[name] = [p[name] for p in parsed]
    return grid


def _slug(setting: dict) -> str:
    return "_".join(f"{k}{v}" for k, v in setting.items()).replace("/", "-").replace(" ", "")


def run_sweep(data: str, grid: dict[str, list], *, seeds: int | None = None, variants: tuple[str, ...] = ("clean",),
              model: str | None = None, epochs: int | None = None, out: str = "runs/sweep", quick: bool = False,
              feature_cache: str | None | bool = True, overrides: dict | None = None, command: str | None = None,
              map_tolerance: float = SWEEP_MAP_TOLERANCE) -> SweepResult:
    """Train every combination of `grid` x `variants` x seeds and compare them on **val** (the split a
    setting may be chosen on). mAP is the study's metric and VAD the second output, so per variant the
    chosen setting is the one with the lowest mean val VAD MAE among those whose mean val mAP is within
    `map_tolerance` (absolute, 1 point) of the sweep's best: VAD gets as much weight as it can without
    costing mAP. Test metrics are listed for information only.
    Writes `sweep.md`, `sweep.json`, `sweep.csv` and `runs/<variant>-<setting>-s<seed>/`."""
    if not grid:
        raise InputError("a sweep needs at least one --sweep KEY=V1,V2")
    seeds, t0, out_dir, cache, base = _start(seeds, variants, out, quick, feature_cache, overrides, model, epochs)
    command = command or f"emomon ablate --data {shlex.quote(str(data))} " + " ".join(
        f"--sweep {k}={','.join(str(v) for v in vs)}" for k, vs in grid.items())
    result = SweepResult(out_dir, grid, provenance=provenance(command))
    keys = list(grid)
    settings = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    for setting in settings:
        for variant in variants:
            for seed in range(seeds):
                cfg = load_config(variant, {**base, **setting, "data": str(data), "seed": seed,
                                            "feature_cache": cache,
                                            "out": str(out_dir / "runs" / f"{variant}-{_slug(setting)}-s{seed}")})
                final = _train_or_reuse(cfg)
                rec = {**_run_record(cfg, final, "val"), "setting": setting, "objective": final.get("objective")}
                if final.get("test"):
                    rec["test_mAP"], rec["test_vad_mae"] = final["test"]["mAP"], final["test"]["vad_mae_mean"]
                rec.pop("ap")
                result.runs.append(rec)
    for variant in variants:
        rows = []
        for setting in settings:
            rs = [r for r in result.runs if r["variant"] == variant and r["setting"] == setting]
            row = {"variant": variant, "setting": setting, "seeds": len(rs)}
            for key in ("mAP", "vad_mae", "test_mAP", "test_vad_mae"):
                row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([r.get(key) for r in rs])
            rows.append(row)
        best_map = max(r["mAP_mean"] for r in rows)
        for r in rows:
            r["within_map_tolerance"] = bool(r["mAP_mean"] >= best_map - map_tolerance - 1e-12)
        chosen = min((r for r in rows if r["within_map_tolerance"]), key=lambda r: r["vad_mae_mean"])
        for r in rows:
            r["chosen"] = r is chosen
        result.rows += rows
        result.selected[variant] = chosen
    result.seconds = time.perf_counter() - t0
    _write_sweep(result, data, command, map_tolerance)
    return result


def _write_sweep(result: SweepResult, data: str, command: str, map_tolerance: float) -> None:
    out, keys = result.out, list(result.grid)
    cols = ["variant", *keys, "seeds", "mAP_mean", "mAP_std", "vad_mae_mean", "vad_mae_std", "test_mAP_mean",
            "test_mAP_std", "within_map_tolerance", "chosen"]
    with open(out / "sweep.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([c if c not in ("mAP_mean", "mAP_std", "vad_mae_mean", "vad_mae_std") else f"val_{c}"
                    for c in cols])
        for r in result.rows:
            vals = {**r, **r["setting"]}
            w.writerow([f"{vals[c]:.6f}" if isinstance(vals[c], float) else vals[c] for c in cols])
    write_json_atomic(out / "sweep.json", {
        "schema": "emomon.sweep/1", **result.provenance, "data": data, "seconds": result.seconds,
        "grid": result.grid, "rule": f"per variant, the lowest mean val VAD MAE among the settings whose mean val "
                                      f"mAP is within {100 * map_tolerance:g} point(s) of the best in the sweep",
        "selected": {v: r["setting"] for v, r in result.selected.items()}, "rows": result.rows,
        "runs": result.runs})
    prov = result.provenance
    first = result.runs[0]
    lines = ["# Validation sweep", "",
             f"Data: `{data}`; model `{first['model']}`, {first['epochs']} epochs, seeds "
             f"{sorted({r['seed'] for r in result.runs})}; metrics on the **val** split of each run's best-val-mAP "
             f"checkpoint (test beside, not used for the choice). Scene preprocessing: {_preprocess(result.runs)}. "
             f"{_times(result.seconds, result.runs)}", "",
             f"Rerun: `{command}`", "",
             f"Commit `{prov.get('commit', 'unknown')}`"
             + (" (with uncommitted changes in the working tree)" if prov.get("uncommitted_changes") else "")
             + f"; machine: {_machine(prov.get('machine', {}))}; {prov.get('date', '')}.", "",
             f"Rule: per variant, the lowest mean val VAD MAE among the settings whose mean val mAP is within "
             f"{100 * map_tolerance:g} point(s) of the best of the sweep (marked **chosen**): mAP is the study's "
             "metric, VAD gets as much weight as it can without costing mAP. ± is the sample std over seeds.", "",
             "| variant | " + " | ".join(keys) + " | val mAP (%) | val VAD MAE | test mAP (%) | within mAP tol. | |",
             "| --- | " + " | ".join("---" for _ in keys) + " | --- | --- | --- | --- | --- |"]
    for r in result.rows:
        lines.append(f"| {r['variant']} | " + " | ".join(str(r["setting"][k]) for k in keys)
                     + f" | {_pct(r['mAP_mean'])} ± {_pct(r['mAP_std'])} | {r['vad_mae_mean']:.3f} ± "
                       f"{r['vad_mae_std']:.3f} | {_pct(r['test_mAP_mean'])} ± {_pct(r['test_mAP_std'])} | "
                       f"{'yes' if r['within_map_tolerance'] else 'no'} | {'**chosen**' if r['chosen'] else ''} |")
    lines += [""]
    (out / "sweep.md").write_text("\n".join(lines))
    log.info("sweep table written to %s (%.0fs)", out / "sweep.md", result.seconds)
