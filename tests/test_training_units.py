"""Unit tests of the training package's maths: AP/mAP, thresholds, losses (sum/mean over categories, VAD
weight), samplers, CCIM dictionary and backdoor sum, CLEF-lite (fused training, counterfactual reference,
lambda from one forward pass), configs, run identity. Fast (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from emomon.kernel import InputError
from training.config import (
    VARIANTS,
    identity_mismatches,
    load_config,
    parse_set,
    read_yaml,
    resume_mismatches,
    run_identity,
)
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


def test_asl_sums_or_averages_over_categories():
    torch.manual_seed(0)
    logits, y = torch.randn(3, 26), (torch.rand(3, 26) < 0.3).float()
    torch.testing.assert_close(AsymmetricLoss(reduction="sum")(logits, y), 26 * AsymmetricLoss(reduction="mean")(
        logits, y))
    torch.testing.assert_close(BCELoss("sum")(logits, y), 26 * BCELoss("mean")(logits, y))
    with pytest.raises(ValueError):
        BCELoss("max")


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
    assert losses["loss"].item() == pytest.approx(26 * np.log(2))  # default: summed over the 26 categories


@pytest.mark.parametrize("category_loss", ["bce", "asl"])
def test_category_reduction_and_vad_weight_are_applied(category_loss):
    torch.manual_seed(0)
    logits, y = torch.randn(4, 26), (torch.rand(4, 26) < 0.2).float()
    out = {"cat_logits": logits, "vad": torch.full((4, 3), 5.0)}
    batch = {"categories": y, "vad": torch.full((4, 3), 6.5), "valid": torch.ones(4)}
    huber = 1.5 - 0.5  # |error| 1.5 > delta 1: linear zone
    per_logit = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
                 if category_loss == "bce" else AsymmetricLoss(reduction="mean")(logits, y)[:, None].expand(4, 26))
    for reduction in ("sum", "mean"):
        for w in (0.0, 0.05, 0.5):
            cfg = load_config("asl" if category_loss == "asl" else "clean",
                              {"data": "x", "category_reduction": reduction, "vad_weight": w})
            assert (cfg.category_reduction, cfg.vad_weight) == (reduction, w)
            losses = build_task(cfg)(out, batch)
            cat = per_logit.sum(1).mean() if reduction == "sum" else per_logit.mean(1).mean()
            torch.testing.assert_close(losses["cat_loss"], cat, rtol=1e-5, atol=1e-6)
            assert losses["vad_loss"].item() == pytest.approx(huber)
            assert losses["loss"].item() == pytest.approx(cat.item() + w * huber, rel=1e-5)
    # summing gives every logit the gradient of its own term; averaging divides it by 26
    grads = {}
    for reduction in ("sum", "mean"):
        x = logits.clone().requires_grad_(True)
        task = build_task(load_config("clean", {"data": "x", "category_reduction": reduction}))
        task({"cat_logits": x, "vad": out["vad"]}, batch)["cat_loss"].backward()
        grads[reduction] = x.grad
    torch.testing.assert_close(grads["sum"], 26 * grads["mean"])
    with pytest.raises(InputError, match="category_reduction"):
        load_config("clean", {"data": "x", "category_reduction": "max"}).validate()


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


def _backdoor_direct(ccim, z):
    """sum_z P(Y|X,z) P(z) in CCIM's feature form, written out term by term: for each person n and
    prototype k, a_nk = exp(s_nk) / sum_j exp(s_nj) with s_nk = q(z_n).key(p_k) / sqrt(d), then
    out_n = z_n + sum_k a_nk * P(p_k) * value(p_k)."""
    q, keys, values = ccim.query(z), ccim.key(ccim.prototypes), ccim.value(ccim.prototypes)
    d = z.shape[1]
    out = []
    for n in range(z.shape[0]):
        s = [float(q[n] @ keys[k]) / np.sqrt(d) for k in range(len(keys))]
        e = np.exp(np.array(s) - max(s))
        a = e / e.sum()
        g = sum(float(a[k]) * float(ccim.priors[k]) * values[k] for k in range(len(keys)))
        out.append(z[n] + g)
    return torch.stack(out)


def test_ccim_backdoor_adjustment_is_the_prior_weighted_sum():
    from fusion import create_model

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, ccim_prototypes=3).eval()
    ccim = model.ccim
    z = torch.randn(4, ccim.query.in_features)
    with torch.no_grad():
        torch.testing.assert_close(ccim(z), z)  # empty dictionary: adds nothing
        protos, priors = 3 * torch.randn(3, model.scene_dim), torch.tensor([2.0, 1.0, 1.0])
        model.set_confounder_dictionary(protos, priors)
        torch.testing.assert_close(ccim.priors, torch.tensor([0.5, 0.25, 0.25]))
        torch.testing.assert_close(ccim(z), _backdoor_direct(ccim, z), rtol=1e-5, atol=1e-5)
        # the prior multiplies each term and is not renormalised away: softmax(s) * P sums to < 1 here,
        # so it differs from softmax(s + log P) (a posterior P(z|x), not the backdoor's P(z))
        w = ccim.attention(z)
        assert (w.sum(1) < 1 - 1e-3).all()
        log_bias = torch.softmax(ccim.query(z) @ ccim.key(protos).T / np.sqrt(z.shape[1]) + ccim.priors.log(), 1)
        assert not torch.allclose(ccim(z), z + log_bias @ ccim.value(protos), atol=1e-3)
        # a prototype with prior 0 never contributes; one with prior 1 is added with its attention weight
        model.set_confounder_dictionary(protos, torch.tensor([1.0, 0.0, 0.0]))
        assert (ccim.attention(z)[:, 1:] == 0).all()
        torch.testing.assert_close(ccim(z), _backdoor_direct(ccim, z), rtol=1e-5, atol=1e-5)
        # with one prototype the attention is 1 and the sum is that prototype's value
        one = create_model("two_stream_tiny", pretrained=False, ccim_prototypes=1).ccim
        one.set_dictionary(protos[:1], torch.ones(1))
        torch.testing.assert_close(one(z), z + one.value(protos[:1]).expand_as(z))


def test_clef_lite_trains_the_fused_score_and_subtracts_the_counterfactual_at_inference():
    from fusion import create_model

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, context_branch=True, clef_lambda=0.7)
    with torch.no_grad():
        model.clef_reference.copy_(torch.linspace(-1, 1, 26))
    b, s = torch.randn(5, model.body_dim), torch.randn(5, model.scene_dim)
    model.eval()
    out = model.forward_features(b, s)
    main = model.cat_head(model.fuse(b, s))
    torch.testing.assert_close(out["main_logits"], main)
    torch.testing.assert_close(out["scene_logits"], model.context_head(s))  # scene only
    torch.testing.assert_close(out["fused_logits"], main + model.context_head(s))
    torch.testing.assert_close(out["context_logits"], model.clef_reference + model.context_head(s))
    torch.testing.assert_close(out["cat_logits"], out["fused_logits"] - 0.7 * out["context_logits"])
    model.train()
    torch.manual_seed(1)
    out_t = model.forward_features(b, s)
    assert torch.equal(out_t["cat_logits"], out_t["fused_logits"])  # training optimises the fused score
    # the task: category loss on the fused score + the context branch's own loss + the reference's loss
    task = build_task(load_config("clef_lite", {"data": "x"}))
    assert task.clef_lambda is None and task.vad_weight == 0.5  # lambda chosen on val; the default balance
    batch = {"categories": (torch.rand(5, 26) < 0.3).float(), "vad": torch.full((5, 3), 5.0),
             "valid": torch.ones(5)}
    losses = task(out_t, batch)
    assert losses["loss"].item() == pytest.approx((losses["cat_loss"] + task.vad_weight * losses["vad_loss"]
                                                   + losses["context_loss"] + losses["reference_loss"]).item())
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(losses["cat_loss"], bce(out_t["fused_logits"], batch["categories"],
                                                       reduction="none").sum(1).mean())
    # the main branch gets the fused score's gradient; the reference loss moves only the reference
    model.zero_grad()
    losses["reference_loss"].backward(retain_graph=True)
    assert model.clef_reference.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for n, p in model.named_parameters()
               if n != "clef_reference")
    model.zero_grad()
    losses["cat_loss"].backward()
    assert model.cat_head.weight.grad.abs().sum() > 0 and model.context_head[0].weight.grad.abs().sum() > 0


def test_clef_lambda_is_chosen_on_val_from_one_forward_pass():
    from training.evaluation import choose_clef_lambda, score, with_lambda

    rng = np.random.default_rng(0)
    n = 200
    labels = (rng.random((n, 26)) < 0.3).astype(np.float32)
    person = labels * 2 + rng.normal(0, 1, (n, 26))  # what the person shows
    bias = rng.normal(0, 2, (n, 26))  # a context bias unrelated to the labels
    preds = {"index": np.arange(n), "valid": np.ones(n), "vad": np.full((n, 3), 5.0),
             "fused_logits": (person + bias).astype(np.float32), "context_logits": bias.astype(np.float32)}
    preds["probs"] = with_lambda(preds, 0.0)["probs"]

    class DS:
        categories = torch.from_numpy(labels)
        vad = torch.full((n, 3), 5.0)

    lam, maps = choose_clef_lambda(DS, preds)
    assert lam == 1.0 and maps[1.0] > maps[0.0] and len(maps) == 11  # removing the bias helps here
    np.testing.assert_allclose(with_lambda(preds, 1.0)["probs"], 1 / (1 + np.exp(-person)), rtol=1e-5)
    assert score(DS, with_lambda(preds, 1.0)).map == maps[1.0]
    preds["context_logits"] = -preds["context_logits"]  # now subtracting doubles the bias: lambda 0 wins
    assert choose_clef_lambda(DS, preds)[0] == 0.0


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
    assert resume_mismatches(saved, load_config("clean", {"data": "a", "epochs": 3, "vad_weight": 0.05})) == [
        "vad_weight"]
    assert resume_mismatches(saved, load_config("clean", {"data": "a", "epochs": 3,
                                                          "category_reduction": "mean"})) == ["category_reduction"]


def test_run_identity_holds_cache_flips_and_precision():
    from training.config import precision_name

    cached = load_config("clean", {"data": "a", "feature_cache": "/c1"})
    ident = run_identity(cached, "fp32")
    assert ident["scene_input"] == "cached_embeddings" and ident["flips"] == "body+scene"
    # the cache's path may move; whether a cache is used, the flips and the precision may not
    assert identity_mismatches(ident, run_identity(load_config("clean", {"data": "a", "feature_cache": "/c2"}),
                                                   "fp32")) == []
    assert identity_mismatches(ident, run_identity(load_config("clean", {"data": "a"}), "fp32")) == [
        "scene_input (cached_embeddings -> pixels)"]
    assert identity_mismatches(ident, run_identity(cached, "bf16")) == ["precision (fp32 -> bf16)"]
    assert identity_mismatches(None, ident)  # an older run without an identity is never taken as equal
    assert precision_name(True, "cpu") == "fp32" and precision_name(False, "cuda", True) == "fp32"
    assert precision_name(True, "cuda", True) == "bf16" and precision_name(True, "cuda", False) == "fp16"


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
    import json

    from training.ablation import _finished, _identity
    from training.config import save_config

    cfg = load_config("asl", {"data": "/data/a", "out": str(tmp_path / "run"), "epochs": 2, "device": "cpu"})
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert _finished(cfg) is None  # no final.json yet: not finished
    done = {"test": None, "identity": _identity(cfg)}
    (tmp_path / "run" / "final.json").write_text(json.dumps(done))
    assert _finished(cfg) == done
    # the same config run with the scene feature cache (or without a recorded identity) is another run
    assert _finished(load_config("asl", {"data": "/data/a", "out": str(tmp_path / "run"), "epochs": 2,
                                         "device": "cpu", "feature_cache": str(tmp_path / "fc")})) is None
    (tmp_path / "run" / "final.json").write_text('{"test": null}')
    assert _finished(cfg) is None
    (tmp_path / "run" / "final.json").write_text(json.dumps(done))
    same = {"out": str(tmp_path / "run"), "device": "cpu"}
    assert _finished(load_config("asl", {**same, "data": "/data/a", "num_workers": 3,
                                         "epochs": 2})) is not None  # runtime-only fields do not matter
    assert _finished(load_config("asl", {**same, "data": "/data/b", "epochs": 2})) is None
    assert _finished(load_config("asl", {**same, "data": "/data/a", "epochs": 3})) is None
    assert _finished(load_config("asl", {**same, "data": "/data/a", "epochs": 2, "vad_weight": 0.05})) is None
