"""The zero-shot CLIP head with random weights: shapes, ranges, prompt text, text-embedding cache."""

from __future__ import annotations

import numpy as np
import torch

from fusion import EMOTIC_CATEGORIES, Predictor, ZeroShotCLIP, create_model
from fusion.models.categories import CATEGORY_DESCRIPTIONS
from fusion.models.zero_shot import _MEMORY_CACHE, category_prompts


def test_every_category_has_a_description_and_prompt_ensemble():
    assert set(CATEGORY_DESCRIPTIONS) == set(EMOTIC_CATEGORIES)
    prompts = category_prompts()
    assert len(prompts) == 26 and all(len(p) >= 3 for p in prompts)
    assert "doubt/confusion" in prompts[EMOTIC_CATEGORIES.index("Doubt/Confusion")][2]


def test_outputs_in_range_with_random_weights():
    torch.manual_seed(0)
    model = create_model("zero_shot_tiny", pretrained=False)
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    people = Predictor(model).predict(frame, [[0, 0, 80, 120], [60, 10, 150, 115]])
    for person in people:
        assert person.probs.shape == (26,) and person.vad.shape == (3,)
        assert person.probs.min() >= 0 and person.probs.max() <= 1
        assert abs(person.probs.sum() - 1) < 1e-4  # a distribution over categories
        assert person.vad.min() >= 1 and person.vad.max() <= 10
    assert torch.allclose(model.class_text.norm(dim=1), torch.ones(26), atol=1e-5)


def test_text_embeddings_cached_in_memory_and_on_disk(tmp_path):
    torch.manual_seed(5)
    weights = tmp_path / "clip.pt"
    from fusion.models.towers import build_clip

    torch.save(build_clip("emomon-tiny-vit", None, quick_gelu=False).state_dict(), weights)  # a whole CLIP
    _MEMORY_CACHE.clear()
    calls = ZeroShotCLIP.text_encoder_calls
    first = create_model("zero_shot_tiny", clip_pretrained=str(weights), cache_dir=tmp_path / "c")
    assert ZeroShotCLIP.text_encoder_calls == calls + 1
    second = create_model("zero_shot_tiny", clip_pretrained=str(weights), cache_dir=tmp_path / "c")
    assert ZeroShotCLIP.text_encoder_calls == calls + 1, "memory cache hit"
    _MEMORY_CACHE.clear()
    third = create_model("zero_shot_tiny", clip_pretrained=str(weights), cache_dir=tmp_path / "c")
    assert ZeroShotCLIP.text_encoder_calls == calls + 1, "disk cache hit"
    assert list((tmp_path / "c").glob("*.pt"))
    assert torch.equal(first.class_text, second.class_text) and torch.equal(first.class_text, third.class_text)
    torch.manual_seed(6)
    other = create_model("zero_shot_tiny", pretrained=False, cache_dir=tmp_path / "c")
    assert ZeroShotCLIP.text_encoder_calls == calls + 2, "other weights, other key"
    assert not torch.equal(other.class_text, first.class_text)


def test_image_tower_only_file_is_refused_for_zero_shot(tmp_path):
    from fusion import WeightsUnavailableError
    from fusion.models.towers import build_clip

    path = tmp_path / "visual.pt"
    torch.save(build_clip("emomon-tiny-vit", None, quick_gelu=False).visual.state_dict(), path)
    import pytest

    with pytest.raises(WeightsUnavailableError, match="no text tower"):
        create_model("zero_shot_tiny", clip_pretrained=str(path))
