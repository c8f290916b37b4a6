"""Weights: local files for both towers, and the clear offline error (never a silent random fallback)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fusion import WeightsUnavailableError, create_model


def test_local_weight_files_load_into_both_towers(tmp_path):
    torch.manual_seed(1)
    source = create_model("two_stream_tiny", pretrained=False)
    body_file, scene_file = tmp_path / "body.pt", tmp_path / "scene.safetensors"
    torch.save(source.body.state_dict(), body_file)
    from safetensors.torch import save_file

    save_file({f"visual.{k}": v.contiguous() for k, v in source.scene.state_dict().items()}, str(scene_file))
    torch.manual_seed(2)
    loaded = create_model("two_stream_tiny", pretrained=False, body_pretrained=str(body_file),
                          scene_pretrained=str(scene_file))
    for a, b in zip(source.body.state_dict().values(), loaded.body.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(source.scene.state_dict().values(), loaded.scene.state_dict().values()):
        assert torch.equal(a, b)


def test_real_resnet18_file_with_classifier_loads(tmp_path):
    import torchvision

    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-local.pth"
    torch.save(ref.state_dict(), path)  # an ImageNet-style file, fc included
    from fusion.models.towers import build_body_tower

    body, dim = build_body_tower("resnet18", str(path))
    assert dim == 512
    assert torch.equal(body.conv1.weight, ref.conv1.weight)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"not a checkpoint at all", "not a readable checkpoint"), (None, "not found")],
)
def test_bad_local_files_are_refused(tmp_path, content, match):
    path = tmp_path / "weights.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsUnavailableError, match=match):
        create_model("two_stream_tiny", pretrained=False, body_pretrained=str(path))


def test_wrong_architecture_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsUnavailableError, match="do not fit"):
        create_model("two_stream_tiny", pretrained=False, scene_pretrained=str(path))


def test_offline_resnet_download_error_names_file_cache_and_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from fusion.models.towers import build_body_tower

    with pytest.raises(WeightsUnavailableError) as err:
        build_body_tower("resnet18", "imagenet")
    msg = str(err.value)
    assert "resnet18-f37072fd.pth" in msg and str(tmp_path / "torch") in msg and "--body-weights" in msg
    assert "\n" not in msg


def test_offline_clip_error_through_the_cli(tmp_path, group_photo):
    """The default zero-shot model offline: exit 2, one line naming the file, the cache and the flag."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin",
           "EMOMON_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "emomon", "predict", str(group_photo), "--boxes", "0,0,100,200"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("emomon: error: cannot get CLIP ViT-B-16 'openai' weights")
    assert "open_clip_pytorch_model.bin" in last and str(tmp_path / "hf") in last and "--scene-weights" in last
    assert "Traceback" not in proc.stderr
