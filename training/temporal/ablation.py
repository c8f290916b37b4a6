"""The temporal ablation (`emomon ablate-temporal`): per-frame, per-frame + EMA, TCN, Transformer, TCN +
Transformer, each over seeds, on the same cached feature sequences; mean +- std of CCC (valence, arousal, mean)
and expression macro-F1 on the validation split, to Markdown, CSV and a plot.

"per-frame" is the same heads on one frame's feature (no context); "per-frame + EMA" is that model smoothed
by the pipeline's EMA (alpha 0.4), i.e. what `emomon run` does without a temporal model. Both come from the
same trained per-frame model per seed, so the EMA's effect is paired. Deltas against per-frame + EMA are paired
by seed.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from emomon.kernel import write_json_atomic, write_text_atomic
from fusion.temporal import save_temporal
from training.temporal.extract import Sequence
from training.temporal.trainer import TrainTemporalConfig, evaluate, train_temporal

log = logging.getLogger(__name__)

VARIANTS = ("per_frame", "per_frame_ema", "tcn", "transformer", "tcn_transformer")
BASELINE = "per_frame_ema"
METRICS = ("ccc_valence", "ccc_arousal", "ccc_mean", "expr_f1")


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def run_ablation(train: list[Sequence], val: list[Sequence], base: TrainTemporalConfig, seeds: int, out: Path,
                 info: dict, frame_model: dict) -> dict:
    out = Path(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in range(seeds):
        for kind in ("per_frame", "tcn", "transformer", "tcn_transformer"):
            cfg = dataclasses.replace(base, kind=kind, seed=seed)
            t = time.perf_counter()
            model = train_temporal(train, cfg)
            seconds = time.perf_counter() - t
            save_temporal(model, out / "models" / f"{kind}-s{seed}.pt",
                          {"frame_model": frame_model, "train": dataclasses.asdict(cfg), "data": info.get("data")})
            names = [kind] + (["per_frame_ema"] if kind == "per_frame" else [])
            for name in names:
                metrics = evaluate(model, val, cfg.ema_alpha if name == "per_frame_ema" else None)
                runs.append({"variant": name, "seed": seed, **metrics, "train_seconds": round(seconds, 2)})
                log.info("%s seed %d: CCC V %.3f A %.3f mean %.3f", name, seed, metrics.get("ccc_valence", np.nan),
                         metrics.get("ccc_arousal", np.nan), metrics.get("ccc_mean", np.nan))
    summary = summarise(runs, seeds)
    result = {**info, "train_config": dataclasses.asdict(base), "seeds": list(range(seeds)), "runs": runs,
              "summary": summary}
    write_json_atomic(out / "results.json", result)
    write_text_atomic(out / "ablation.md", markdown(result))
    write_csv(out / "ablation.csv", summary)
    plot(out / "ablation.png", summary)
    return result


def summarise(runs: list[dict], seeds: int) -> dict:
    out = {}
    base = {r["seed"]: r for r in runs if r["variant"] == BASELINE}
    for v in VARIANTS:
        rows = [r for r in runs if r["variant"] == v]
        entry = {m: _mean_std([r[m] for r in rows]) for m in METRICS if all(m in r for r in rows)}
        entry["delta_ccc_mean_vs_ema"] = _mean_std([r["ccc_mean"] - base[r["seed"]]["ccc_mean"] for r in rows])
        entry["runs"] = len(rows)
        out[v] = entry
    return out


def markdown(result: dict) -> str:
    s, fm = result["summary"], result.get("frame_model", {})
    lines = [f"# Temporal ablation ({result.get('data', {}).get('name', 'data')}, validation split)", "",
             f"Command: `{result['command']}`  ", f"Commit: `{result['commit']}`"
             + (" (uncommitted changes)" if result.get("uncommitted_changes") else "") + "  ",
             f"Machine: {result['machine']['processor']}, {result['machine']['cpu_count']} CPUs, "
             f"torch {result['machine']['torch']}  ",
             f"Frame model: {fm.get('description', '?')} ({fm.get('backend', '?')}, {fm.get('precision', '?')}); "
             "features extracted with every person recomputed every frame  ",
             f"Seeds: {', '.join(map(str, result['seeds']))}; mean ± std over seeds (CCC over all annotated "
             "validation frames).", "",
             "| variant | CCC valence | CCC arousal | CCC mean | Δ CCC mean vs per-frame + EMA | expr macro-F1 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for v in VARIANTS:
        e = s[v]
        cell = [f"{e[m][0]:.3f} ± {e[m][1]:.3f}" if m in e else "-" for m in ("ccc_valence", "ccc_arousal",
                                                                               "ccc_mean")]
        d = e["delta_ccc_mean_vs_ema"]
        f1 = f"{e['expr_f1'][0]:.3f} ± {e['expr_f1'][1]:.3f}" if "expr_f1" in e else "-"
        lines.append(f"| {v.replace('_', ' ')} | {' | '.join(cell)} | {d[0]:+.3f} ± {d[1]:.3f} | {f1} |")
    data = result.get("data", {})
    lines += ["", f"Data: {data.get('train_sequences')} train / {data.get('val_sequences')} validation sequences, "
              f"{data.get('train_frames')} / {data.get('val_frames')} frames with a feature; annotation vs video "
              f"frame-count mismatches: {data.get('mismatches') or 'none'}.", ""]
    return "\n".join(lines)


def write_csv(path: Path, summary: dict) -> None:
    cols = ["variant"] + [f"{m}_{k}" for m in METRICS for k in ("mean", "std")] + \
        ["delta_ccc_mean_vs_ema_mean", "delta_ccc_mean_vs_ema_std", "runs"]
    rows = [cols]
    for v, e in summary.items():
        row = [v]
        for m in METRICS:
            row += [round(e[m][0], 5), round(e[m][1], 5)] if m in e else ["", ""]
        rows.append(row + [round(e["delta_ccc_mean_vs_ema"][0], 5), round(e["delta_ccc_mean_vs_ema"][1], 5),
                           e["runs"]])
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def plot(path: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("ccc_valence", "ccc_arousal", "ccc_mean")
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(VARIANTS)
    x = np.arange(len(metrics))
    for i, v in enumerate(VARIANTS):
        means = [summary[v][m][0] for m in metrics]
        stds = [summary[v][m][1] for m in metrics]
        ax.bar(x + (i - (len(VARIANTS) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
               label=v.replace("_", " "))
    ax.set_xticks(x, [m.replace("ccc_", "CCC ") for m in metrics])
    ax.set_ylabel("CCC (validation)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title("Temporal ablation: mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def data_report(name: str, train: list[Sequence], val: list[Sequence]) -> dict:
    mism = {s.name: s.mismatch for s in train + val if s.mismatch}
    return {"name": name, "train_sequences": len(train), "val_sequences": len(val),
            "train_frames": int(sum(len(s.frames) for s in train)), "val_frames": int(sum(len(s.frames) for s in val)),
            "mismatches": mism}


__all__ = ["VARIANTS", "data_report", "run_ablation"]
