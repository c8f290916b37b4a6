"""Checkpoints: round trip, refusal of other models and of non-checkpoints, version check."""

from __future__ import annotations

import pytest
import torch

from fusion import CheckpointError, create_model, load_checkpoint, read_checkpoint, save_checkpoint


def outputs(model):
    torch.manual_seed(7)
    body = torch.randn(3, 3, model.body_preprocess.size, model.body_preprocess.size)
    scene = torch.randn(2, 3, model.scene_preprocess.size, model.scene_preprocess.size)
    with torch.no_grad():
        return model.eval()(body, scene, torch.tensor([0, 1, 1]))


@pytest.mark.parametrize("overrides", [{}, {"fusion": "attention"}, {"ccim_prototypes": 3, "context_branch": True}])
def test_round_trip_gives_identical_outputs(tmp_path, overrides):
    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False, **overrides)
    if overrides.get("ccim_prototypes"):
        model.set_confounder_dictionary(torch.randn(3, model.scene_dim), torch.tensor([1.0, 2.0, 3.0]))
    path = save_checkpoint(model, tmp_path / "m.pt", {"metrics": {"val_mAP": 12.5}, "data": "synthetic"})
    payload = torch.load(path, weights_only=True)  # loadable without unpickling code
    assert payload["model_name"] == "two_stream_tiny" and len(payload["categories"]) == 26
    loaded = load_checkpoint(path)
    assert loaded.source.metadata["metrics"]["val_mAP"] == 12.5
    assert loaded.config == model.config
    a, b = outputs(model), outputs(loaded)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not list(tmp_path.glob("*.tmp")), "atomic write leaves no temp file"



def test_every_model_says_where_its_weights_came_from(tmp_path):
    from fusion import describe_model, load_emotion_model

    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False)
    assert (model.source.kind, model.source.name) == ("pretrained", "two_stream_tiny")
    assert model.source.towers == {"body": "random init", "scene": "random init"}
    assert create_model("zero_shot_tiny", pretrained=False).source.kind == "zero-shot"
    random = load_emotion_model("random:two_stream_tiny", seed=3)
    assert (random.source.kind, random.source.seed, random.source.spec) == ("random", 3, "random:two_stream_tiny")
    assert describe_model(random) == "two_stream_tiny with RANDOM weights"
    path = save_checkpoint(model, tmp_path / "m.pt", {"metrics": {"test_mAP": 30.0, "val_mAP": 12.5}})
    loaded = load_emotion_model(str(path))
    assert (loaded.source.kind, loaded.source.checkpoint) == ("checkpoint", str(path))
    assert describe_model(loaded) == f"trained checkpoint {path} (two_stream_tiny, reported mAP 30.00)"

def test_zero_shot_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("zero_shot_tiny", pretrained=False)
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "zs.pt"))
    assert torch.equal(loaded.class_text, model.class_text)
    assert torch.equal(outputs(model)["cat_logits"], outputs(loaded)["cat_logits"])


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = save_checkpoint(create_model("two_stream_tiny", pretrained=False), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="is for model 'two_stream_tiny', not 'zero_shot_tiny'"):
        load_checkpoint(path, expected_model="zero_shot_tiny")
    with pytest.raises(CheckpointError, match="not 'zero_shot_tiny'"):
        load_checkpoint(path, model=create_model("zero_shot_tiny", pretrained=False))


@pytest.mark.parametrize(
    ("writer", "match"),
    [
        (lambda p: p.write_text("hello"), "not an emomon checkpoint"),
        (lambda p: torch.save({"a": torch.zeros(1)}, p), "no 'emomon-checkpoint' header"),
        (lambda p: None, "not found"),
    ],
)
def test_non_checkpoints_are_refused(tmp_path, writer, match):
    path = tmp_path / "bad.pt"
    writer(path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_newer_version_is_refused(tmp_path):
    path = save_checkpoint(create_model("two_stream_tiny", pretrained=False), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer than this emomon reads"):
        read_checkpoint(path)


def test_wrong_tensor_shape_is_one_line_naming_the_tensors(tmp_path):
    """Checked tensor by tensor before loading: one line with the first few names and the count, not torch's
    multi-line RuntimeError."""
    torch.manual_seed(0)
    path = save_checkpoint(create_model("two_stream_tiny", pretrained=False), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["cat_head.weight"] = torch.zeros(3, 3)
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert "1 tensor with another shape (cat_head.weight 3x3 vs 26x32)" in message, message
    # Weights of a variant with other sizes: many tensors, the first three named, then the count.
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_dim"] = 48
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"tensors with another shape \(.*, \+\d+ more\)") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_and_unexpected_tensors_are_counted(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(create_model("two_stream_tiny", pretrained=False, fusion="attention"), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["fusion"] = "concat"  # attention weights under a concat config
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"does not match model 'two_stream_tiny'.*tensors? missing \(.*"
                                              r"tensors unexpected \(fusion\.") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_tiny_weights_under_a_real_size_name_are_refused(tmp_path):
    """The name says which model it is: a tiny model's config and weights saved as 'two_stream_vitb16' would
    otherwise load silently (the config rebuilds a tiny model under the real-size name)."""
    torch.manual_seed(0)
    path = save_checkpoint(create_model("two_stream_tiny", pretrained=False), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_name"] = "two_stream_vitb16"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"says model 'two_stream_vitb16' but holds another architecture: "
                                              r"body_arch='tiny_cnn' \(model 'two_stream_vitb16' has 'resnet18'\)"):
        load_checkpoint(path)
    zs = save_checkpoint(create_model("zero_shot_tiny", pretrained=False), tmp_path / "zs.pt")
    payload = torch.load(zs, weights_only=True)
    payload["model_name"] = "zero_shot_vitb16"
    torch.save(payload, zs)
    with pytest.raises(CheckpointError, match="clip_arch='emomon-tiny-vit'"):
        load_checkpoint(zs)
