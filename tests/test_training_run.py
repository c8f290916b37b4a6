"""End-to-end training on the synthetic set with the tiny model (CPU): every variant learns, CLEF-lite
reports lambda 0 / 1 / chosen on val from one checkpoint, cached embeddings follow the flips, --resume
reproduces an uninterrupted run and refuses another cache setting, `emomon ablate` (table and --sweep) /
`evaluate` write and print their outputs, and DDP runs with two gloo processes under torchrun."""

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
    cfg = load_config(variant, {**TINY, "data": str(synth), "epochs": 5, "feature_cache": str(feature_cache),
                                "out": str(tmp_path / variant)})
    before = untrained(cfg)
    result = train(cfg)
    after = result.test
    body_before, body_after = np.nanmean(before.ap[BODY_CATS]), np.nanmean(after.ap[BODY_CATS])
    # Margins (absolute mAP, untrained is ~0.27): every variant gains >= 0.20 (measured at 5 epochs: 0.35-0.50).
    # CLEF-lite subtracts lambda x the counterfactual context prediction with lambda chosen on val; on this
    # data the scene genuinely causes half the categories, and val picks a small lambda.
    assert after.map >= before.map + 0.20, (variant, before.map, after.map)
    assert body_after >= body_before + 0.20, (variant, body_before, body_after)
    assert after.vad_mae_mean < before.vad_mae_mean - 0.5  # VAD is learned too (untrained ~2)
    run = Path(cfg.out)
    assert {"config.yaml", "data.json", "metrics.csv", "last.pt", "best.pt", "final.json"} <= {
        p.name for p in run.iterdir()}
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    model = load_checkpoint(run / "best.pt")
    meta = model.source.metadata
    assert meta["variant"] == variant and meta["seed"] == 0 and len(meta["thresholds"]) == 26
    assert meta["metrics"]["test_mAP"] == pytest.approx(100 * after.map)  # percent, as fusion reads it
    assert meta["training_data"]["train_persons"] > 500
    assert f"reported mAP {100 * after.map:.2f}" in describe_model(model)  # what the app shows
    if variant == "ccim":  # the dictionary travels with the checkpoint
        assert model.ccim.priors.sum().item() == pytest.approx(1.0)
    final = json.loads((run / "final.json").read_text())
    assert final["objective"] == {"category_loss": cfg.category_loss, "category_reduction": "sum",
                                  "vad_loss": "huber", "vad_weight": cfg.vad_weight,
                                  **({"context_loss_weight": 1.0} if variant == "clef_lite" else {})}
    assert meta["objective"] == final["objective"] and meta["config"]["category_reduction"] == "sum"
    if variant == "clef_lite":
        check_clef_lambdas_from_one_checkpoint(run, model, final, synth)


def check_clef_lambdas_from_one_checkpoint(run, model, final, synth):
    """lambda = 0, 1 and the one chosen on val (stored in the checkpoint) all come from best.pt."""
    clef, meta = final["clef"], model.source.metadata["clef"]
    lam = clef["lambda"]
    assert clef["lambda_chosen_on"] == "val" and lam in [round(0.1 * i, 1) for i in range(11)]
    assert model.config.clef_lambda == lam == meta["lambda"]  # the checkpoint applies it when loaded
    assert clef["val_mAP_by_lambda"][f"{lam:g}"] == max(clef["val_mAP_by_lambda"].values())
    assert final["test"]["mAP"] == clef["lambda_val"]["test"]["mAP"]  # the run's reported number is lambda_val
    ds = EmoticDataset(load_split(synth, "test").records, model.body_preprocess, model.scene_preprocess)
    for name, value in (("lambda_0", 0.0), ("lambda_1", 1.0), ("lambda_val", lam)):
        model.config.clef_lambda = value
        got = score(ds, predict(model, ds)).map  # the model's own forward at that lambda
        assert got == pytest.approx(clef[name]["test"]["mAP"], abs=1e-6), name
        assert meta[f"test_mAP_{name}"] == pytest.approx(100 * got, abs=1e-4)
    model.config.clef_lambda = lam
    assert clef["lambda_0"]["test"]["mAP"] != clef["lambda_1"]["test"]["mAP"]
    from training.evaluation import evaluate_checkpoint

    ev = evaluate_checkpoint(run / "best.pt", synth, "test", device="cpu").extra["clef"]
    assert ev["lambda_checkpoint"] == lam and ev["lambda_chosen_on"] == "val"
    for name in ("lambda_0", "lambda_1"):
        assert ev[f"mAP_{name}"] == pytest.approx(clef[name]["test"]["mAP"], abs=1e-6)
    assert ev["mAP_lambda_checkpoint"] == pytest.approx(clef["lambda_val"]["test"]["mAP"], abs=1e-6)


def test_cached_embeddings_follow_the_flips_of_pixels(synth, tmp_path):
    """With the cache, an augmented item's scene (and body) embedding is that of the flipped image exactly
    where the pixel dataset flips: training with and without the cache sees the same augmentation."""
    from training.features import FeatureCache, FlippedFeatures

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, freeze_body=True).eval()
    records = load_split(synth, "train").records[:24]
    cache = FeatureCache(tmp_path / "fc")
    feats = {"scene_features": cache.scene_features(model, records), "body_features": cache.body_features(
        model, records)}
    flipped = {"scene_feat": cache.scene_features(model, records, flipped=True),
               "body_feat": cache.body_features(model, records, flipped=True)}
    pixels = EmoticDataset(records, model.body_preprocess, model.scene_preprocess, augment=True, seed=3)
    cached = FlippedFeatures(EmoticDataset(records, model.body_preprocess, model.scene_preprocess, augment=True,
                                           seed=3, **feats), flipped)
    seen = set()
    with torch.no_grad():
        for epoch in (0, 1):
            pixels.set_epoch(epoch)
            cached.set_epoch(epoch)
            for i in range(len(records)):
                p, c = pixels[i], cached[i]
                torch.testing.assert_close(c["scene_feat"], model.encode_scene(p["scene"][None])[0],
                                           rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(c["body_feat"], model.encode_body(p["body"][None])[0],
                                           rtol=1e-4, atol=1e-4)
                seen.add(bool(torch.equal(c["scene_feat"], flipped["scene_feat"][i])))
    assert seen == {True, False}  # both orientations occurred
    assert len(list((tmp_path / "fc" / "scene").rglob("*.pt"))) == 2  # flipped rows are cached separately


def test_training_from_the_cache_equals_training_from_pixels(synth, tmp_path):
    """The trainer gives cached runs the flipped-image rows: losses and val mAP match the pixel run (up to
    float rounding), so the cache changes the cost, not the experiment."""
    base = {**TINY, "data": str(synth), "epochs": 2, "max_train": 96, "max_eval": 40}
    pixels = train(load_config("clean", {**base, "out": str(tmp_path / "pixels")}))
    cached = train(load_config("clean", {**base, "out": str(tmp_path / "cached"),
                                         "feature_cache": str(tmp_path / "fc")}))
    for a, b in zip(pixels.history, cached.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_mAP"] == pytest.approx(a["val_mAP"], abs=1e-3)
    assert json.loads((tmp_path / "cached" / "final.json").read_text())["identity"]["scene_input"] == \
        "cached_embeddings"


def test_resume_with_another_cache_setting_is_refused(synth, tmp_path, capsys):
    argv = ["train", "--data", str(synth), "--out", str(tmp_path / "run"), "--model", "two_stream_tiny",
            "--no-pretrained", "--epochs", "1", "--device", "cpu", "--workers", "0", "--no-progress",
            "--set", "max_train=64", "--set", "max_eval=40", "--set", "tensorboard=false", "--set", "threads=1"]
    assert main(argv) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["identity"]["scene_input"] == "pixels" and state["identity"]["flips"] == "body+scene"
    capsys.readouterr()
    assert main(argv + ["--resume", "--feature-cache", str(tmp_path / "fc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0] and "scene_input (pixels -> cached_embeddings)" in err[0]
    assert main(argv + ["--resume"]) == 0  # the same setting resumes (nothing left to train)


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
    assert "±" in md and "Δ vs clean (paired)" in md and "Rerun: `emomon ablate" in md and "Doubt/Confusion" in md
    assert "| 1 (full subtraction) |" in md and "| chosen on val |" in md and "23,266" in md
    assert "seed only (own class-balanced order)" in md
    js = json.loads((out / "ablation.json").read_text())
    assert js["command"].startswith("emomon ablate") and len(js["commit"]) == 40 and js["machine"]["cpu_count"]
    assert js["persons_kept"]["train"]["kept"] > 500 and js["persons_kept"]["train"]["used"] == 120
    runs = {(r["variant"], r["seed"]): r for r in js["runs"]}
    row = next(r for r in js["rows"] if r["variant"] == "asl")  # paired: mean of per-seed differences
    deltas = [runs["asl", s]["mAP"] - runs["clean", s]["mAP"] for s in (0, 1)]
    assert row["delta_vs_clean"] == pytest.approx(np.mean(deltas)) and row["delta_std"] == pytest.approx(
        np.std(deltas, ddof=1))
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


def test_ablate_sweep_compares_settings_on_val_and_records_them(synth, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["ablate", "--data", str(synth), "--seeds", "1", "--epochs", "1", "--quick", "--out", str(out),
            "--no-progress", "--set", "max_train=120", "--set", "max_eval=60", "--set", "tensorboard=false",
            "--sweep", "vad_weight=0,0.5", "--sweep", "category_reduction=sum,mean"]
    assert main(argv) == 0
    assert "Validation sweep" in capsys.readouterr().out
    js = json.loads((out / "sweep.json").read_text())
    assert js["grid"] == {"vad_weight": [0, 0.5], "category_reduction": ["sum", "mean"]}
    assert len(js["rows"]) == 4 and sum(r["chosen"] for r in js["rows"]) == 1 and "--sweep" in js["command"]
    assert js["selected"]["clean"] in [r["setting"] for r in js["rows"]]
    for r in js["runs"]:  # each run trained with, and recorded, its setting
        assert r["objective"]["vad_weight"] == r["setting"]["vad_weight"]
        assert r["objective"]["category_reduction"] == r["setting"]["category_reduction"]
        assert r["split"] == "val"
    run = out / "runs" / "clean-vad_weight0_category_reductionmean-s0"
    with open(run / "metrics.csv") as fh:
        row = next(csv.DictReader(fh))
    assert float(row["train_loss"]) == pytest.approx(float(row["train_cat_loss"]), rel=1e-5)  # weight 0 applied
    md = (out / "sweep.md").read_text()
    assert "**chosen**" in md and "| clean | 0.5 | sum |" in md


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo_torchrun(synth, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "emomon",
           "train", "--data", str(synth), "--out", str(out), "--model", "two_stream_tiny", "--no-pretrained",
           "--epochs", "2", "--device", "cpu", "--workers", "0", "--no-progress", "--feature-cache",
           str(tmp_path / "fc"), "--set", "max_train=64", "--set", "max_eval=31", "--set", "tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "final.json").read_text())
    assert final["timing"]["world_size"] == 2
    # metrics gathered across ranks: all 31 val/test persons scored once (not 15/16 per rank, no padding to 32)
    assert final["val"]["n"] == 31 and final["test"]["n"] == 31
    assert load_checkpoint(out / "best.pt").source.metadata["variant"] == "clean"
    with open(out / "metrics.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
