"""Pretrained weights for the towers: a known tag (downloaded and cached the normal way), a local file,
or None (random init). Local files win. A failed download never falls back to random weights: it raises
`WeightsUnavailableError` naming the file, the cache location and the flag that takes a local file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from emomon.kernel import InputError, first_line
from fusion.models.openclip import open_clip_module

log = logging.getLogger(__name__)

RANDOM_TAGS = (None, "", "none", "random")
BODY_TAGS = {"imagenet": "IMAGENET1K_V1", "imagenet1k_v1": "IMAGENET1K_V1"}


class WeightsUnavailableError(InputError):
    """Pretrained weights could not be found or downloaded."""


def is_random(tag) -> bool:
    return tag is False or (isinstance(tag, str) and tag.lower() in RANDOM_TAGS[1:]) or tag is None


def describe(tag) -> str:
    return "random init" if is_random(tag) else str(tag)


def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a .safetensors/.pt/.pth/.bin file (or a TorchScript archive)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{what} weights file '{path}' not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True)
            except RuntimeError as exc:
                if "TorchScript" not in str(exc) and "constants.pkl" not in str(exc):
                    raise
                sd = torch.jit.load(str(path), map_location="cpu").state_dict()  # OpenAI's CLIP archives
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear line
        raise WeightsUnavailableError(f"{what} weights file '{path}' is not a readable checkpoint "
                                      f"({first_line(exc, 120)})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsUnavailableError(f"{what} weights file '{path}' holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_into(module: torch.nn.Module, sd: dict[str, torch.Tensor], what: str, source: str) -> None:
    """Strict load with a readable error instead of PyTorch's multi-page one."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    bad_shapes = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    if missing or unexpected or bad_shapes:
        raise WeightsUnavailableError(
            f"{what} weights '{source}' do not fit this architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
            f"{len(bad_shapes)} of another shape (e.g. {bad_shapes[:2]})")
    module.load_state_dict(sd)


def torchvision_weights(arch: str, tag: str, flag: str):
    """Download (or read from torch's cache) a torchvision ImageNet state dict."""
    import torchvision

    enum_name = BODY_TAGS.get(tag.lower())
    if enum_name is None:
        raise WeightsUnavailableError(
            f"unknown {arch} weights '{tag}': use one of {sorted(BODY_TAGS)}, a local file, or none")
    weights = torchvision.models.get_model_weights(arch)[enum_name]
    filename = weights.url.rsplit("/", 1)[-1]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise WeightsUnavailableError(
            f"cannot get {arch} ImageNet weights: '{filename}' is not in {cache} and the download failed "
            f"({type(exc).__name__}); download {weights.url} on a connected machine and pass it with "
            f"{flag} PATH") from exc


def open_clip_cache_hint(arch: str, tag: str) -> tuple[str, str]:
    """(file description, cache dir) for an open_clip pretrained tag, for error messages."""
    open_clip = open_clip_module()

    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    hub = cfg.get("hf_hub", "").rstrip("/")
    name = f"open_clip_pytorch_model.bin from the Hugging Face repo '{hub}'" if hub else cfg.get("url", tag)
    hf_home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    return name, hf_home


def fingerprint(module: torch.nn.Module) -> str:
    """A short hash of a module's weights (strided samples of every tensor): tells two random inits or
    two fine-tuned towers apart in cache keys, in milliseconds even for ViT-B/16."""
    import hashlib

    h = hashlib.sha1()
    for name, t in module.state_dict().items():
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // 256)
        h.update(name.encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]
