"""The emotion models: shapes, finiteness, gradients, scene sharing, preprocessing, variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion import (
    EMOTIC_CATEGORIES,
    Predictor,
    create_model,
    crop_persons,
    list_models,
    preprocess_images,
)

TINY = [m for m in list_models() if m.endswith("_tiny")]
REAL = [m for m in list_models() if not m.endswith("_tiny")]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name, pretrained=False) for name in list_models()}


def inputs(model, persons: int, frames: int = 2):
    body = torch.randn(persons, 3, model.body_preprocess.size, model.body_preprocess.size)
    scene = torch.randn(frames, 3, model.scene_preprocess.size, model.scene_preprocess.size)
    return body, scene, torch.arange(persons) % frames


def test_registry_has_paper_and_tiny_models():
    assert {"two_stream_vitb16", "two_stream_tiny", "zero_shot_vitb16", "zero_shot_tiny"} <= set(list_models())
    paper = create_model("two_stream_vitb16", pretrained=False)
    assert (paper.body_dim, paper.scene_dim) == (512, 512)
    assert paper.config.scene_arch == "ViT-B-16" and paper.config.body_arch == "resnet18"


def test_tiny_model_builds_fast():
    import time

    create_model("two_stream_tiny", pretrained=False)  # warm imports
    start = time.perf_counter()
    model = create_model("two_stream_tiny", pretrained=False)
    elapsed = time.perf_counter() - start
    # Small by construction (what makes it fast everywhere); the time bound has headroom for a loaded CI
    # (about 0.05 s here) and still catches a ViT-B sneaking in (several seconds).
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert elapsed < 3.0


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("persons", [0, 1, 5])
def test_forward_shapes_and_finite(models, name, persons):
    model = models[name].eval()
    body, scene, index = inputs(model, persons)
    with torch.no_grad():
        out = model(body, scene, index)
    assert out["cat_logits"].shape == (persons, 26)
    assert out["vad"].shape == (persons, 3)
    assert torch.isfinite(out["cat_logits"]).all() and torch.isfinite(out["vad"]).all()
    if persons:
        assert out["vad"].min() >= 1.0 and out["vad"].max() <= 10.0
        probs = model.probabilities(out["cat_logits"])
        assert probs.min() >= 0 and probs.max() <= 1


@pytest.mark.parametrize("name", [m for m in list_models() if m.startswith("two_stream")])
def test_gradients_flow_to_body_and_heads(models, name):
    model = models[name].train()
    body, scene, index = inputs(model, 5)
    out = model(body, scene, index)
    (out["cat_logits"].sum() + out["vad"].sum()).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("scene.") for n in trainable), "scene tower is frozen by default"
    for prefix in ("body.", "fusion.", "cat_head.", "vad_head."):
        grads = [p.grad for n, p in trainable.items() if n.startswith(prefix)]
        assert grads and all(g is not None for g in grads), prefix
        assert any(g.abs().sum() > 0 for g in grads), prefix
    model.zero_grad(set_to_none=True)
    model.eval()


def test_scene_tower_trainable_option():
    model = create_model("two_stream_tiny", pretrained=False, freeze_scene=False).train()
    body, scene, index = inputs(model, 3)
    model(body, scene, index)["cat_logits"].sum().backward()
    assert all(p.grad is not None for p in model.scene.parameters())


def test_attention_fusion_differs_from_concat():
    torch.manual_seed(0)
    concat = create_model("two_stream_tiny", pretrained=False, fusion="concat").eval()
    torch.manual_seed(0)
    att = create_model("two_stream_tiny", pretrained=False, fusion="attention").eval()
    assert type(att.fusion).__name__ == "AttentionFusion" and type(concat.fusion).__name__ == "ConcatFusion"
    # The same towers and heads in both: copy every weight outside the fusion, so only the fusion differs.
    missing, unexpected = att.load_state_dict(
        {k: v for k, v in concat.state_dict().items() if not k.startswith("fusion.")}, strict=False)
    assert missing and all(k.startswith("fusion.") for k in missing) and not unexpected
    body, scene, index = inputs(att, 4)
    with torch.no_grad():
        b, s = att.encode_body(body), att.encode_scene(scene)[index]
        assert torch.equal(b, concat.encode_body(body)) and torch.equal(s, concat.encode_scene(scene)[index])
        z_att, z_cat = att.fuse(b, s), concat.fuse(b, s)
        out_att, out_cat = att(body, scene, index), concat(body, scene, index)
    assert z_att.shape == z_cat.shape == (4, att.config.hidden_dim)
    for key in ("cat_logits", "vad"):
        assert out_att[key].shape == out_cat[key].shape == (4, 26 if key == "cat_logits" else 3)
    # Attention changes the fused features and the outputs by far more than float noise.
    assert (z_att - z_cat).abs().mean() > 0.1
    assert (out_att["cat_logits"] - out_cat["cat_logits"]).abs().max() > 1e-2

    # Each output depends on its own inputs: a new crop for person 0 changes person 0 only ...
    other_body = body.clone()
    other_body[0] = torch.randn_like(body[0])
    # ... and a new frame 1 changes the persons seen in frame 1 (index 1, 3) only, for both fusions.
    other_scene = scene.clone()
    other_scene[1] = torch.randn_like(scene[1])
    for model, out in ((att, out_att), (concat, out_cat)):
        with torch.no_grad():
            new_body = model(other_body, scene, index)["cat_logits"]
            new_scene = model(body, other_scene, index)["cat_logits"]
        body_change = (new_body - out["cat_logits"]).abs().amax(dim=1)
        scene_change = (new_scene - out["cat_logits"]).abs().amax(dim=1)
        assert body_change[0] > 1e-3 and body_change[1:].max() < 1e-5, (type(model.fusion).__name__, body_change)
        assert scene_change[[1, 3]].min() > 1e-3 and scene_change[[0, 2]].max() < 1e-5, \
            (type(model.fusion).__name__, scene_change)


def test_unknown_option_is_a_clear_error():
    from emomon.kernel import InputError

    with pytest.raises(InputError, match="no option"):
        create_model("two_stream_tiny", pretrained=False, fusoin="concat")
    with pytest.raises(InputError, match="unknown model"):
        create_model("resnet9000")


@pytest.mark.parametrize("name", ["two_stream_tiny", "zero_shot_tiny"])
def test_scene_embedding_computed_once_per_frame(models, name):
    model = models[name].eval()
    scene_tower = model.scene if hasattr(model, "scene") else model.visual
    seen = []
    hook = scene_tower.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    try:
        frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        boxes = [[10, 10, 60, 200], [70, 20, 130, 230], [140, 5, 200, 220], [210, 30, 260, 210], [0, 0, 320, 240]]
        predictor = Predictor(model)
        people = predictor.predict(frame, boxes)
        if name.startswith("two_stream"):
            assert seen == [1], "one scene pass for one frame, whatever the number of persons"
        else:  # zero-shot uses the same CLIP tower for crops: one scene pass of 1 + one body pass of 5
            assert sorted(seen) == [1, 5]
        assert len(people) == 5 and all(p is not None for p in people)
        seen.clear()
        predictor.predict_many([frame, frame[::-1].copy(), frame], [boxes[:2], [], boxes[2:]])
        # two frames have persons (the empty one costs nothing); zero-shot adds its one body pass of 5 crops
        assert sorted(seen) == ([2] if name.startswith("two_stream") else [2, 5])
    finally:
        hook.remove()


def test_predictions_match_direct_forward(models):
    """The Predictor's staged path (scene once, gathered per person) equals the model's forward."""
    model = models["two_stream_tiny"].eval()
    frame = np.random.default_rng(1).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    boxes = [[5, 5, 100, 190], [120, 10, 290, 195]]
    people = Predictor(model).predict(frame, boxes)
    body = preprocess_images(crop_persons(frame, boxes).images, model.body_preprocess)
    scene = preprocess_images([frame], model.scene_preprocess)
    with torch.no_grad():
        out = model(body, scene, torch.zeros(2, dtype=torch.long))
    np.testing.assert_allclose(np.stack([p.probs for p in people]),
                               torch.sigmoid(out["cat_logits"]).numpy(), atol=1e-5)
    np.testing.assert_allclose(np.stack([p.vad for p in people]), out["vad"].numpy(), atol=1e-4)
    d = people[0].record()
    assert list(d["emotions"]) == list(EMOTIC_CATEGORIES) and len(d["top"]) == 3
    assert set(d["vad"]) == {"valence", "arousal", "dominance"}


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ([float("nan"), 0, 10, 10], "non-finite"),
        ([500, 500, 600, 600], "smaller than"),   # entirely outside the frame
        ([10, 10, 10, 50], "smaller than"),       # zero width
        ([30, 40, 20, 90], "smaller than"),       # inverted
    ],
)
def test_degenerate_boxes_are_skipped_with_reason(box, reason, caplog):
    frame = np.zeros((100, 120, 3), np.uint8)
    with caplog.at_level("INFO"):
        crops = crop_persons(frame, [box, [0, 0, 50, 50]])
    assert crops.indices == [1]
    assert reason in crops.skipped[0]
    assert reason in caplog.text


def test_boxes_are_clamped_and_padded():
    frame = np.zeros((100, 120, 3), np.uint8)
    crops = crop_persons(frame, [[-20, -10, 60, 130]], pad=0.1)
    assert crops.boxes.tolist() == [[0, 0, 68, 100]]
    assert crops.images[0].shape == (100, 68, 3)


def test_predictor_handles_frames_without_persons(models):
    predictor = Predictor(models["two_stream_tiny"])
    assert predictor.predict(np.zeros((50, 50, 3), np.uint8), []) == []
    assert predictor.predict(np.zeros((50, 50, 3), np.uint8), [[0, 0, 1, 1]]) == [None]


def test_preprocessing_policies():
    from fusion.models.preprocess import CLIP_MEAN, Preprocess, resize_image

    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # a white centre band
    crop = resize_image(wide, Preprocess(50, resize="center_crop"))
    assert crop.shape == (50, 50, 3) and crop.mean() > 250  # the centre survives the crop
    squash = resize_image(wide, Preprocess(50, resize="squash"))
    assert squash.shape == (50, 50, 3) and 80 < squash.mean() < 100  # the whole image survives
    box = resize_image(wide, Preprocess(50, (0, 0, 0), (1, 1, 1), resize="letterbox"))  # 50x17 content, black pad
    assert box.shape == (50, 50, 3) and box[:16].max() == 0 and box[-16:].max() == 0 and box[25, 25].min() == 255
    assert box[25, :15].max() == 0 and box[25, 35:].max() == 0  # the whole width, aspect kept
    x = preprocess_images([wide], Preprocess(50, CLIP_MEAN, (1, 1, 1), "squash"))
    assert x.shape == (1, 3, 50, 50) and x.dtype == torch.float32


def test_ccim_dictionary_attention_and_effect():
    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, ccim_prototypes=4).eval()
    body, scene, index = inputs(model, 3)
    with torch.no_grad():
        before = model(body, scene, index)["cat_logits"]
        protos = torch.randn(4, model.scene_dim)
        model.set_confounder_dictionary(protos, torch.tensor([1.0, 1.0, 2.0, 0.0]))
        assert torch.allclose(model.ccim.priors, torch.tensor([0.25, 0.25, 0.5, 0.0]))
        z = model.fusion(model.encode_body(body), model.encode_scene(scene)[index])
        weights = model.ccim.attention(z)
        assert (weights.sum(1) < 1).all() and (weights[:, 3] == 0).all()  # P(z)-weighted, not renormalised
        expected = z + weights @ model.ccim.value(protos)
        assert torch.allclose(model.fuse(model.encode_body(body), model.encode_scene(scene)[index]), expected)
        after = model(body, scene, index)["cat_logits"]
    assert not torch.allclose(before, after)
    with pytest.raises(ValueError):
        model.set_confounder_dictionary(torch.zeros(3, model.scene_dim), torch.ones(3))


def test_clef_lite_subtracts_context_branch_at_inference():
    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, context_branch=True, clef_lambda=0.7)
    body, scene, index = inputs(model, 3)
    model.train()
    train_out = model(body, scene, index)
    assert torch.equal(train_out["cat_logits"], train_out["fused_logits"])
    model.eval()
    with torch.no_grad():
        out = model(body, scene, index)
    assert torch.allclose(out["cat_logits"], out["fused_logits"] - 0.7 * out["context_logits"])


def test_onnxruntime_fp16_on_cpu_is_refused_before_any_export(tmp_path):
    """ORT's CPU provider crashes the whole process on fp16 graphs: refuse with one line instead."""
    from emomon.kernel import InputError
    from fusion import create_backend

    with pytest.raises(InputError, match="fp16 ONNX graphs are for GPUs"):
        create_backend("onnxruntime", create_model("two_stream_tiny", pretrained=False), "cpu", precision="fp16",
                       cache_dir=str(tmp_path))
    assert not list(tmp_path.iterdir()), "nothing exported"
