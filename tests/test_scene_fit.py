"""How the whole frame fits the scene tower's square input (`scene_fit`: squash | letterbox | center_crop):
what the scene tensor holds under each, that the model, the Predictor, the training data and the feature
cache all use the model's fit, and that checkpoints keep it (old ones, trained on centre crops, load as such)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import TRAINED_MODEL

from fusion import (
    CheckpointError,
    Predictor,
    Preprocess,
    create_model,
    load_checkpoint,
    model_entry,
    preprocess_images,
    read_checkpoint,
    save_checkpoint,
)
from training.annotations import PersonRecord
from training.dataset import EmoticDataset
from training.features import FeatureCache

RED, BLUE, GREY = (0, 0, 255), (255, 0, 0), (128, 128, 128)  # BGR


def band_frame(h: int, w: int) -> np.ndarray:
    """A grey frame with a red band along its left edge and a blue one along its right edge (7.5% each)."""
    frame = np.full((h, w, 3), GREY, np.uint8)
    band = round(0.075 * w)
    frame[:, :band] = RED
    frame[:, w - band:] = BLUE
    return frame


def rgb01(x: torch.Tensor, pre: Preprocess) -> np.ndarray:
    """A normalised (3, S, S) tensor back to RGB in 0..1, as (S, S, 3)."""
    mean, std = torch.tensor(pre.mean).view(3, 1, 1), torch.tensor(pre.std).view(3, 1, 1)
    return (x * std + mean).permute(1, 2, 0).numpy()


def has(rgb: np.ndarray, colour_bgr) -> bool:
    """Some pixel is clearly this colour."""
    want = np.asarray(colour_bgr[::-1], np.float32) / 255
    return bool((np.abs(rgb - want).max(axis=-1) < 0.15).any())


def edges_seen(x: torch.Tensor, pre: Preprocess) -> tuple[bool, bool]:
    rgb = rgb01(x, pre)
    return has(rgb, RED), has(rgb, BLUE)


def tiny(fit: str | None = None, name: str = "two_stream_tiny"):
    torch.manual_seed(0)
    return create_model(name, pretrained=False, **({"scene_fit": fit} if fit else {})).eval()


# ---------------------------------------------------------------------- the fit, in the pixels
@pytest.mark.parametrize("hw", [(240, 320), (180, 320)], ids=["4:3", "16:9"])
@pytest.mark.parametrize(("fit", "whole"), [("squash", True), ("letterbox", True), ("center_crop", False)])
def test_scene_tensor_holds_the_frame_edges_unless_centre_cropped(hw, fit, whole):
    model = tiny(fit)
    pre = model.scene_preprocess
    assert pre.resize == fit and model.config.scene_fit == fit
    x = preprocess_images([band_frame(*hw)], pre)
    assert x.shape == (1, 3, pre.size, pre.size)
    assert edges_seen(x[0], pre) == (whole, whole)
    assert has(rgb01(x[0], pre), GREY)  # the middle is there under every fit


def test_letterbox_keeps_the_aspect_and_pads_with_zeros():
    pre = tiny("letterbox").scene_preprocess
    x = preprocess_images([band_frame(180, 320)], pre)[0]  # 16:9: content 64 x 36, 14 padding rows each side
    pad = round((pre.size - pre.size * 180 / 320) / 2)
    assert torch.allclose(x[:, :pad - 1], torch.zeros(()), atol=0.02)  # the mean colour: zero once normalised
    assert torch.allclose(x[:, -(pad - 1):], torch.zeros(()), atol=0.02)
    assert edges_seen(x[:, pad + 1:-(pad + 1)], pre) == (True, True)
    tall = preprocess_images([band_frame(320, 180)], pre)[0]  # portrait: padded left and right instead
    assert torch.allclose(tall[..., :pad - 1], torch.zeros(()), atol=0.02) and edges_seen(tall, pre) == (True, True)


def test_defaults_keep_the_whole_frame_for_two_stream_and_centre_crop_for_zero_shot():
    for name in ("two_stream_vitb16", "two_stream_vitb16_attention", "two_stream_tiny"):
        assert model_entry(name).config.scene_fit == "squash", name
    for name in ("zero_shot_vitb16", "zero_shot_tiny"):
        assert model_entry(name).config.scene_fit == "center_crop", name  # CLIP was trained on centre crops
    assert tiny().scene_preprocess.resize == "squash"
    zs = tiny(name="zero_shot_tiny")
    assert zs.scene_preprocess.resize == "center_crop" and zs.body_preprocess.resize == "squash"
    boxed = tiny("letterbox", "zero_shot_tiny").scene_preprocess  # an option for zero-shot too
    assert edges_seen(preprocess_images([band_frame(240, 320)], boxed)[0], boxed) == (True, True)


def test_unknown_fit_is_refused_and_the_old_name_still_reads():
    with pytest.raises(ValueError, match="unknown image fit 'stretch'.*squash, letterbox, center_crop"):
        create_model("two_stream_tiny", pretrained=False, scene_fit="stretch")
    old = Preprocess(64, resize="shortest_center_crop")
    assert old == Preprocess(64, resize="center_crop") and old.fit == "center_crop"
    assert old.key().startswith("shortest_center_crop-")  # feature caches made before scene_fit stay valid


# ---------------------------------------------------------------------- everyone uses the model's fit
@pytest.mark.parametrize("fit", ["letterbox", "center_crop"])
def test_predictor_feeds_the_scene_tower_the_models_fit(fit):
    predictor = Predictor(tiny(fit))
    seen = []
    encode = predictor.backend.encode_scene
    predictor.backend.encode_scene = lambda x: seen.append(x) or encode(x)
    frame = band_frame(240, 320)
    predictor.predict(frame, [[120, 20, 200, 230]])
    (x,) = seen
    torch.testing.assert_close(x, preprocess_images([frame], predictor.model.scene_preprocess))
    assert edges_seen(x[0], predictor.model.scene_preprocess) == ((fit != "center_crop"),) * 2


@pytest.mark.parametrize("fit", ["squash", "center_crop"])
def test_training_data_and_feature_cache_use_the_models_fit(tmp_path, fit):
    path = tmp_path / "frame.png"
    frame = band_frame(240, 320)
    cv2.imwrite(str(path), frame)
    rec = PersonRecord(path, (120.0, 20.0, 200.0, 230.0), np.eye(26, dtype=np.float32)[3],
                       np.array([5, 5, 5], np.float32), "frame.png", "test")
    model = tiny(fit)
    item = EmoticDataset([rec], model.body_preprocess, model.scene_preprocess)[0]
    want = preprocess_images([frame], model.scene_preprocess)[0]
    torch.testing.assert_close(item["scene"], want)
    assert edges_seen(item["scene"], model.scene_preprocess) == ((fit == "squash"),) * 2
    feats = FeatureCache(tmp_path / "fc").scene_features(model, [rec])
    with torch.no_grad():
        torch.testing.assert_close(feats, model.encode_scene(want[None]), rtol=1e-4, atol=1e-5)
    other = tiny("letterbox" if fit == "squash" else "squash")
    assert other.scene_cache_key() != model.scene_cache_key()  # another fit never reuses cached scenes


# ---------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(("name", "fit"), [("two_stream_tiny", "letterbox"), ("two_stream_tiny", "center_crop"),
                                           ("zero_shot_tiny", "squash")])
def test_checkpoint_keeps_the_fit(tmp_path, name, fit):
    path = save_checkpoint(tiny(fit, name), tmp_path / "m.pt")
    assert read_checkpoint(path)["config"]["scene_fit"] == fit
    loaded = load_checkpoint(path)
    assert loaded.config.scene_fit == fit and loaded.scene_preprocess.resize == fit


@pytest.mark.parametrize("name", ["two_stream_tiny", "zero_shot_tiny"])
def test_checkpoint_without_scene_fit_loads_as_centre_crop(tmp_path, name):
    """Saved before scene_fit existed: those models were trained on centre crops, whatever the default is now."""
    payload = read_checkpoint(save_checkpoint(tiny("squash", name), tmp_path / "new.pt"))
    del payload["config"]["scene_fit"]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.scene_fit == "center_crop" and loaded.scene_preprocess.resize == "center_crop"
    with pytest.raises(CheckpointError, match="scene_fit='center_crop'.*'squash'"):
        load_checkpoint(tmp_path / "old.pt", model=tiny("squash", name))


def test_the_committed_test_model_is_a_centre_crop_model():
    assert "scene_fit" not in read_checkpoint(TRAINED_MODEL)["config"]  # saved before scene_fit existed
    model = load_checkpoint(TRAINED_MODEL)
    assert model.config.scene_fit == "center_crop" and model.scene_preprocess.resize == "center_crop"
