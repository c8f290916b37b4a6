"""Unit tests of the training package's maths: AP/mAP, thresholds, losses, samplers, CCIM dictionary,
CLEF-lite subtraction, configs. Fast (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from emomon.kernel import InputError
from training.config import VARIANTS, load_config, parse_set, read_yaml, resume_mismatches
from training.losses import AsymmetricLoss, BCELoss, HuberVADLoss
from training.metrics import (
    average_precision,
    equal_pr_thresholds,
    evaluate_arrays,
    interpolated_ap,
    mean_ap,
    threshold_scores,
    vad_mae,
)
from training.sampling import EpochSampler, class_balanced_weights, effective_number_weights
from training.tasks import build_confounder_dictionary, build_task

# ------------------------------------------------------------------------------------------------ metrics


def test_ap_matches_sklearn_on_random_inputs():
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 26)) < 0.15).astype(float)
    scores = rng.random((300, 26)) + 0.4 * labels  # some signal
    scores[:50, 3] = 0.5  # ties
    ours = average_precision(labels, scores)
    ref = [average_precision_score(labels[:, c], scores[:, c]) for c in range(26)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert mean_ap(ours)[0] == pytest.approx(np.mean(ref), abs=1e-12)


def test_ap_hand_computed_cases():
    # ranking: + - + -  -> precision at the positives 1 and 2/3, recall steps of 1/2
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])[0] == pytest.approx((1 + 2 / 3) / 2)
    # perfect ranking
    assert average_precision([0, 1, 1], [0.1, 0.8, 0.9])[0] == pytest.approx(1.0)
    # the single positive ranked last of 4 -> precision 1/4
    assert average_precision([0, 0, 0, 1], [0.9, 0.8, 0.7, 0.1])[0] == pytest.approx(0.25)
    # 11-point interpolated: recall 0.5 at precision 1, recall 1 at precision 2/3
    # -> r in {0,...,0.5}: 1 (6 points), r in {0.6,...,1}: 2/3 (5 points)
    assert interpolated_ap([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert interpolated_ap([0, 0, 0, 1], [0.9, 0.8, 0.7, 0.1])[0] == pytest.approx(0.25)


def test_category_without_positives_is_excluded_and_reported_not_nan():
    labels = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]], float)  # category 1: no positives
    scores = np.array([[0.9, 0.2, 0.1], [0.1, 0.3, 0.8], [0.8, 0.1, 0.3], [0.2, 0.9, 0.7]])
    ap = average_precision(labels, scores)
    assert np.isnan(ap[1]) and ap[0] == 1.0 and ap[2] == 1.0
    m, excluded = mean_ap(ap)
    assert m == 1.0 and excluded == [1]
    full = np.zeros((4, 26))
    full[:, :3] = labels
    res = evaluate_arrays(full, np.pad(scores, ((0, 0), (0, 23))), np.ones((4, 3)), np.ones((4, 3)))
    assert not np.isnan(res.map)
    assert len(res.excluded) == 24 and "Anger" in res.excluded  # index 1
    assert "excluded from mAP" in res.note() and "Anger" in res.table()
    assert res.as_dict()["per_category"]["Anger"]["ap"] is None


def test_vad_mae_per_dimension_and_thresholds_where_precision_equals_recall():
    np.testing.assert_allclose(vad_mae([[5, 5, 5], [1, 2, 3]], [[6, 5, 3], [1, 4, 3]]), [0.5, 1.0, 1.0])
    rng = np.random.default_rng(1)
    y = (rng.random((400, 2)) < 0.3).astype(float)
    s = rng.random((400, 2)) + 0.5 * y
    thr = equal_pr_thresholds(y, s)
    pr = threshold_scores(y, s, thr)
    # on the data the thresholds were chosen on, precision and recall meet (within one example)
    assert np.all(np.abs(pr["precision"] - pr["recall"]) < 2.5 / y.sum(0))
    # a category without positives gets the default threshold
    assert equal_pr_thresholds(np.zeros((5, 1)), np.arange(5)[:, None])[0] == 0.5


# ------------------------------------------------------------------------------------------------ losses


def test_asl_reduces_to_bce_and_down_weights_easy_negatives():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 26), (torch.rand(8, 26) < 0.2).float()
    plain = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0)(logits, y)
    torch.testing.assert_close(plain, BCELoss()(logits, y), rtol=1e-5, atol=1e-6)
    # an easy negative (p = 0.04 < clip) costs nothing; a hard one costs something
    easy, hard = torch.tensor([[-3.2]]), torch.tensor([[2.0]])
    asl = AsymmetricLoss(gamma_neg=4, gamma_pos=0, clip=0.05)
    assert asl(easy, torch.zeros(1, 1)).item() == 0.0
    assert asl(hard, torch.zeros(1, 1)).item() > 0.0
    # focusing: negatives weigh less than under BCE, positives the same (gamma_pos = 0)
    assert asl(hard, torch.zeros(1, 1)) < BCELoss()(hard, torch.zeros(1, 1))
    torch.testing.assert_close(asl(hard, torch.ones(1, 1)), BCELoss()(hard, torch.ones(1, 1)))


def test_huber_vad_loss():
    pred, tgt = torch.tensor([[5.0, 5.0, 5.0]]), torch.tensor([[5.5, 8.0, 5.0]])
    # 0.5 * 0.5^2 = 0.125 (quadratic zone), 3 - 0.5 = 2.5 (linear zone), 0
    assert HuberVADLoss(1.0)(pred, tgt).item() == pytest.approx((0.125 + 2.5 + 0) / 3)


def test_task_weights_out_unreadable_items():
    cfg = load_config("clean", {"data": "x", "vad_weight": 0.5})
    task = build_task(cfg)
    out = {"cat_logits": torch.zeros(2, 26), "vad": torch.full((2, 3), 5.0)}
    batch = {"categories": torch.zeros(2, 26), "vad": torch.tensor([[5.0] * 3, [9.0] * 3]),
             "valid": torch.tensor([1.0, 0.0])}
    losses = task(out, batch)
    assert losses["vad_loss"].item() == 0.0  # the invalid item's VAD error is ignored
    assert losses["loss"].item() == pytest.approx(np.log(2))


# ------------------------------------------------------------------------------------------------ sampling


def test_class_balanced_weights_follow_effective_number():
    w_c = effective_number_weights(np.array([100, 10, 0]), beta=0.99)
    expected = (1 - 0.99) / (1 - 0.99 ** np.array([100, 10]))
    np.testing.assert_allclose(w_c[:2], expected)
    assert w_c[2] == 0
    labels = np.array([[1, 0], [1, 0], [1, 0], [1, 1]])  # the last person has the rare category
    w = class_balanced_weights(labels, beta=0.9)
    assert w[3] > w[0] and w[0] == w[1] == w[2] and w.mean() == pytest.approx(1.0)


def test_epoch_sampler_deterministic_sharded_and_weighted():
    s = EpochSampler(10, seed=3)
    s.set_epoch(1)
    a = list(s)
    s.set_epoch(1)
    assert list(s) == a and sorted(a) == list(range(10))
    s.set_epoch(2)
    assert list(s) != a
    shards = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    for sh in shards:
        sh.set_epoch(1)
    parts = [list(sh) for sh in shards]
    assert all(len(p) == 4 for p in parts) and set(sum(parts, [])) == set(range(10))  # padded by wrapping
    ev = [list(EpochSampler(10, shuffle=False, rank=r, world_size=3, pad=False)) for r in range(3)]
    assert sorted(sum(ev, [])) == list(range(10))  # evaluation: every item exactly once
    weighted = EpochSampler(4, weights=np.array([0, 0, 0, 1.0]), seed=0)
    assert set(weighted) == {3}


# ------------------------------------------------------------------------------------------------ CCIM, CLEF


def test_ccim_dictionary_is_kmeans_centres_with_frequency_priors():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    counts = [50, 30, 20]
    x = np.concatenate([c + 0.1 * rng.standard_normal((n, 2)) for c, n in zip(centres, counts)])
    protos, priors = build_confounder_dictionary(x, 3, seed=0)
    assert priors.sum().item() == pytest.approx(1.0)
    order = [int(np.argmin(np.linalg.norm(protos.numpy() - c, axis=1))) for c in centres]
    np.testing.assert_allclose(protos.numpy()[order], centres, atol=0.05)
    np.testing.assert_allclose(priors.numpy()[order], np.array(counts) / 100, atol=1e-6)
    with pytest.raises(InputError, match="at least 4"):
        build_confounder_dictionary(x[:3], 4)


def test_ccim_backdoor_adjustment_maths():
    from fusion import create_model

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, ccim_prototypes=3).eval()
    ccim = model.ccim
    z = torch.randn(4, ccim.query.in_features)
    torch.testing.assert_close(ccim(z), z)  # empty dictionary: adds nothing
    protos, priors = torch.randn(3, model.scene_dim), torch.tensor([2.0, 1.0, 1.0])
    model.set_confounder_dictionary(protos, priors)
    torch.testing.assert_close(ccim.priors, torch.tensor([0.5, 0.25, 0.25]))
    # sum_z softmax(q.k) P(z) / norm * value(z), added to z
    scores = ccim.query(z) @ ccim.key(protos).T / np.sqrt(z.shape[1])
    w = torch.softmax(scores, 1) * ccim.priors
    w = w / w.sum(1, keepdim=True)
    torch.testing.assert_close(ccim(z), z + w @ ccim.value(protos))
    # a prototype with prior 0 never contributes
    model.set_confounder_dictionary(protos, torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(ccim(z), z + ccim.value(protos)[0].expand_as(z))


def test_clef_lite_subtracts_context_logits_at_inference_only():
    from fusion import create_model

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, context_branch=True, clef_lambda=0.7)
    b, s = torch.randn(5, model.body_dim), torch.randn(5, model.scene_dim)
    model.eval()
    out = model.forward_features(b, s)
    torch.testing.assert_close(out["cat_logits"], out["fused_logits"] - 0.7 * out["context_logits"])
    torch.testing.assert_close(out["context_logits"], model.context_head(s))  # scene only
    model.train()
    torch.manual_seed(1)
    out_t = model.forward_features(b, s)
    assert torch.equal(out_t["cat_logits"], out_t["fused_logits"])  # training optimises the fused logits
    # the task trains both branches on the same labels
    task = build_task(load_config("clef_lite", {"data": "x"}))
    batch = {"categories": torch.zeros(5, 26), "vad": torch.full((5, 3), 5.0), "valid": torch.ones(5)}
    losses = task(out_t, batch)
    assert losses["loss"].item() == pytest.approx(
        (losses["cat_loss"] + 0.5 * losses["vad_loss"] + losses["context_loss"]).item())


# ------------------------------------------------------------------------------------------------ configs


def test_every_variant_yaml_loads_and_says_what_it_simplifies():
    for v in VARIANTS:
        raw = read_yaml(f"training/configs/{v}.yaml")
        assert raw["variant"] == v and len(raw["simplifies"]) > 40
        cfg = load_config(v, {"data": "x"}).validate()
        build_task(cfg)
    assert load_config("asl").category_loss == "asl"
    assert load_config("cb_sampling").sampler == "class_balanced"
    assert load_config("ccim").task == "ccim" and load_config("clef_lite").task == "clef_lite"


def test_config_precedence_defaults_yaml_flags(tmp_path):
    y = tmp_path / "v.yaml"
    y.write_text("variant: mine\nepochs: 7\nlr: 0.01\n")
    cfg = load_config(str(y), {"epochs": 2, "lr": None, **parse_set(["mixup_alpha=0.2", "augment=false"])})
    assert (cfg.epochs, cfg.lr, cfg.mixup_alpha, cfg.augment, cfg.batch_size) == (2, 0.01, 0.2, False, 64)
    y.write_text("variant: mine\nepochz: 7\n")
    with pytest.raises(InputError, match="epochz"):
        load_config(str(y))
    with pytest.raises(InputError, match="expects"):
        load_config("clean", {"epochs": "many"})
    with pytest.raises(InputError, match="unknown variant"):
        load_config("nope")
    with pytest.raises(InputError, match="unknown config field"):
        parse_set(["nope=1"])
    with pytest.raises(InputError, match="no data"):
        load_config("clean").validate()
    saved = load_config("clean", {"data": "a", "epochs": 3}).to_dict()
    assert resume_mismatches(saved, load_config("clean", {"data": "b", "epochs": 3, "num_workers": 2})) == []
    assert resume_mismatches(saved, load_config("clean", {"data": "a", "epochs": 4})) == ["epochs"]


def test_tensorboard_logging_when_installed_and_silent_without(tmp_path, monkeypatch):
    import sys
    import types

    from training.trainer import _TensorBoard

    calls = []

    class Writer:
        def __init__(self, logdir):
            calls.append(("init", logdir))

        def add_scalar(self, key, value, step):
            calls.append((key, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append("close")

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    tb = _TensorBoard(tmp_path, True)
    tb.log({"epoch": 1, "val_mAP": 0.5, "variant": "x"}, 1)
    tb.close()
    assert calls == [("init", str(tmp_path / "tb")), ("val_mAP", 0.5, 1), "close"]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed: import fails
    assert _TensorBoard(tmp_path, True).writer is None
    assert _TensorBoard(tmp_path, False).writer is None


def test_ablation_reuses_a_finished_run_only_for_the_same_config_and_data(tmp_path):
    from training.ablation import _finished
    from training.config import save_config

    cfg = load_config("asl", {"data": "/data/a", "out": str(tmp_path / "run"), "epochs": 2})
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert _finished(cfg) is None  # no final.json yet: not finished
    (tmp_path / "run" / "final.json").write_text('{"test": null}')
    assert _finished(cfg) == {"test": None}
    assert _finished(load_config("asl", {"data": "/data/a", "out": str(tmp_path / "run"), "num_workers": 3,
                                         "epochs": 2})) is not None  # runtime-only fields do not matter
    assert _finished(load_config("asl", {"data": "/data/b", "out": str(tmp_path / "run"), "epochs": 2})) is None
    assert _finished(load_config("asl", {"data": "/data/a", "out": str(tmp_path / "run"), "epochs": 3})) is None
