"""End-to-end training on the synthetic set with the tiny model (CPU): every variant learns, --resume
reproduces an uninterrupted run, `emomon ablate` / `evaluate` write and print their outputs, and DDP
runs with two gloo processes under torchrun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emomon.cli import main
from fusion import create_model, describe_model, load_checkpoint
from training import EmoticDataset, load_config, load_split, train
from training.evaluation import predict, score
from training.synthetic import category_driver, make_synthetic
from training.tasks import build_task

TINY = {"model": "two_stream_tiny", "pretrained": False, "lr": 3e-3, "backbone_lr_scale": 1.0, "batch_size": 32,
        "warmup_epochs": 0.5, "ccim_prototypes": 8, "num_workers": 0, "progress": False, "device": "cpu",
        "tensorboard": False, "threads": 1}
BODY_CATS = [c for c in range(26) if category_driver(c)[0] == "body"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "emotic"
    make_synthetic(root, persons=800, seed=0)  # ~550 train / 125 val / 125 test persons
    return root


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


def untrained(cfg):
    """The same model (same seed, same options) before any training, scored on test."""
    task = build_task(cfg)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, pretrained=False, **cfg.model_options(), **task.model_overrides())
    ds = EmoticDataset(load_split(cfg.data, "test").records, model.body_preprocess, model.scene_preprocess)
    return score(ds, predict(model, ds))


@pytest.mark.parametrize("variant", ["clean", "ccim", "clef_lite", "asl", "cb_sampling"])
def test_each_variant_learns_the_planted_relation(variant, synth, feature_cache, tmp_path):
    cfg = load_config(variant, {**TINY, "data": str(synth), "epochs": 8, "feature_cache": str(feature_cache),
                                "out": str(tmp_path / variant)})
    before = untrained(cfg)
    result = train(cfg)
    after = result.test
    body_before, body_after = np.nanmean(before.ap[BODY_CATS]), np.nanmean(after.ap[BODY_CATS])
    # Margins (absolute mAP, untrained is ~0.27): every variant gains >= 0.10 overall; all but CLEF-lite
    # gain >= 0.20 (measured: 0.32-0.38). CLEF-lite subtracts the context-only logits at inference, and on
    # this data the scene genuinely causes half the categories, so those fall back towards chance
    # (measured +0.12 overall); the body-driven categories must still be learned (>= +0.20).
    assert after.map >= before.map + (0.10 if variant == "clef_lite" else 0.20), (variant, before.map, after.map)
    assert body_after >= body_before + 0.20, (variant, body_before, body_after)
    assert after.vad_mae_mean < before.vad_mae_mean - 0.5  # VAD is learned too (untrained ~2)
    run = Path(cfg.out)
    assert {"config.yaml", "data.json", "metrics.csv", "last.pt", "best.pt", "final.json"} <= {
        p.name for p in run.iterdir()}
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    model = load_checkpoint(run / "best.pt")
    meta = model.source.metadata
    assert meta["variant"] == variant and meta["seed"] == 0 and len(meta["thresholds"]) == 26
    assert meta["metrics"]["test_mAP"] == pytest.approx(100 * after.map)  # percent, as fusion reads it
    assert meta["training_data"]["train_persons"] > 500
    assert f"reported mAP {100 * after.map:.2f}" in describe_model(model)  # what the app shows
    if variant == "ccim":  # the dictionary travels with the checkpoint
        assert model.ccim.priors.sum().item() == pytest.approx(1.0)


def _comparable(history):
    return [{k: v for k, v in row.items() if "seconds" not in k and "per_second" not in k} for row in history]


def test_resume_after_interruption_matches_uninterrupted_run(synth, tmp_path):
    # pixels (no cache), flips and mixup on: every source of randomness must be reproduced
    base = {**TINY, "data": str(synth), "epochs": 3, "max_train": 160, "max_eval": 60, "mixup_alpha": 0.4}
    full = train(load_config("ccim", {**base, "out": str(tmp_path / "full")}))

    def kill_after_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_config("ccim", {**base, "out": str(tmp_path / "cut")}), on_epoch_end=kill_after_two)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 2
    argv = ["train", "--config", "ccim", "--data", str(synth), "--out", str(tmp_path / "cut"), "--resume",
            "--model", "two_stream_tiny", "--no-pretrained", "--epochs", "3", "--device", "cpu", "--workers", "0",
            "--lr", "0.003", "--batch-size", "32", "--no-progress"]
    argv += [f"--set={k}={v}" for k, v in (("backbone_lr_scale", 1.0), ("warmup_epochs", 0.5), ("ccim_prototypes", 8),
                                            ("max_train", 160), ("max_eval", 60), ("mixup_alpha", 0.4),
                                            ("tensorboard", False), ("threads", 1))]
    assert main(argv) == 0
    resumed = json.loads((tmp_path / "cut" / "final.json").read_text())
    state_full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    state_cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert _comparable(state_cut["history"]) == _comparable(full.history)
    for k, v in state_full["model"].items():
        assert torch.equal(v, state_cut["model"][k]), k
    assert resumed["test"]["mAP"] == full.test.map
    # a resume with a changed setting is refused (it could not reach the same result)
    assert main(argv[:argv.index("--epochs") + 1] + ["4"] + argv[argv.index("--epochs") + 2:]) == 2


def test_ablate_writes_table_csv_png_and_reuses_finished_runs(synth, tmp_path, capsys):
    out = tmp_path / "abl"
    argv = ["ablate", "--data", str(synth), "--seeds", "2", "--epochs", "1", "--quick", "--out", str(out),
            "--no-progress", "--set", "max_train=120", "--set", "max_eval=60", "--set", "tensorboard=false"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| clef_lite |" in printed and "ablation.png" in printed
    md = (out / "ablation.md").read_text()
    for v in ("clean", "ccim", "clef_lite", "asl", "cb_sampling"):
        assert f"| {v} |" in md and f"**{v}**" in md  # table row and its "simplifies" line
    assert "±" in md and "Δ vs clean" in md and "Rerun: `emomon ablate" in md and "Doubt/Confusion" in md
    with open(out / "ablation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["variant"] for r in rows] == ["clean", "ccim", "clef_lite", "asl", "cb_sampling"]
    assert all(r["seeds"] == "2" and float(r["mAP_std"]) >= 0 for r in rows)
    assert float(rows[0]["delta_vs_clean"]) == 0 and "ap_Yearning" in rows[0] and "mae_valence_mean" in rows[0]
    with open(out / "ablation_runs.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 10
    png = (out / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # a second call reuses the finished runs instead of training again
    stamp = (out / "runs" / "asl-s1" / "final.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "runs" / "asl-s1" / "final.json").stat().st_mtime_ns == stamp


def test_evaluate_cli_reproduces_the_runs_test_metrics(synth, tmp_path, capsys):
    run = tmp_path / "run"
    asl_yaml = Path(__file__).parents[1] / "training" / "configs" / "asl.yaml"
    assert main(["train", "--config", str(asl_yaml), "--data", str(synth), "--out", str(run),
                 "--model", "two_stream_tiny", "--no-pretrained", "--epochs", "2", "--device", "cpu",
                 "--no-progress", "--set", "max_train=160", "--set", "tensorboard=false",
                 "--set", "threads=1"]) == 0
    assert "mAP (sklearn AP)" in capsys.readouterr().out
    js = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(synth), "--split", "test",
                 "--json", str(js), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "AP11" in printed and "VAD MAE" in printed and "thr" in printed
    final = json.loads((run / "final.json").read_text())
    got = json.loads(js.read_text())
    assert got["mAP"] == pytest.approx(final["test"]["mAP"], abs=1e-9)
    assert got["vad_mae"] == pytest.approx(final["test"]["vad_mae"], abs=1e-6)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(synth)]) == 2


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo_torchrun(synth, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "emomon",
           "train", "--data", str(synth), "--out", str(out), "--model", "two_stream_tiny", "--no-pretrained",
           "--epochs", "2", "--device", "cpu", "--workers", "0", "--no-progress", "--feature-cache",
           str(tmp_path / "fc"), "--set", "max_train=160", "--set", "max_eval=61", "--set", "tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "final.json").read_text())
    assert final["timing"]["world_size"] == 2
    # metrics gathered across ranks: all 61 val/test persons scored once (not 30/31 per rank, no padding)
    assert final["val"]["n"] == 61 and final["test"]["n"] == 61
    assert load_checkpoint(out / "best.pt").source.metadata["variant"] == "clean"
    with open(out / "metrics.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
