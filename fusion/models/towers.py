"""The two towers: a torchvision CNN on the person crop and an open_clip image tower on the whole frame.

Both accept a pretrained tag, a local file or None. The scene tower is the image half of an open_clip
model built by name (any open_clip model, plus our tiny test config registered from clip_configs/).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

import fusion.models.weights as W
from fusion.models.openclip import open_clip_module

log = logging.getLogger(__name__)

_CONFIG_DIR = Path(__file__).parent / "clip_configs"


class _QuietRandomInit(logging.Filter):
    """open_clip logs its build steps (and a warning on every random init) on the root logger; we log
    our own, clearer lines, so drop those."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "No pretrained weights loaded" in record.getMessage():
            return False
        return not (record.levelno < logging.WARNING and "open_clip" in record.pathname)


logging.getLogger().addFilter(_QuietRandomInit())
_registered = False


def register_clip_configs() -> None:
    """Make our JSON model configs (e.g. the tiny test ViT) known to open_clip, once."""
    global _registered
    if not _registered:
        open_clip = open_clip_module()

        open_clip.add_model_config(_CONFIG_DIR)
        _registered = True


class TinyCNN(nn.Module):
    """A few strided convolutions: the tiny test model's body tower (builds in milliseconds)."""

    def __init__(self, out_dim: int = 32):
        super().__init__()
        chans = [3, 16, 32, out_dim]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build_body_tower(arch: str, pretrained, flag: str = "--body-weights") -> tuple[nn.Module, int]:
    """Returns (module mapping (N,3,S,S) -> (N,D), D)."""
    if arch == "tiny_cnn":
        net, dim = TinyCNN(32), 32
    else:
        import torchvision

        try:
            net = torchvision.models.get_model(arch, weights=None)
        except ValueError as exc:
            raise W.InputError(f"unknown body architecture '{arch}'") from exc
        dim = net.fc.in_features
        net.fc = nn.Identity()  # the 512-d pooled feature is the body embedding
    if W.is_random(pretrained):
        return net, dim
    pretrained = str(pretrained)
    if Path(pretrained).expanduser().is_file() or "/" in pretrained or pretrained.endswith((".pt", ".pth")):
        sd = W.read_state_dict(Path(pretrained).expanduser(), f"body ({arch})")
        source = pretrained
    elif arch == "tiny_cnn":
        raise W.WeightsUnavailableError(f"tiny_cnn has no pretrained tag '{pretrained}': give a file or none")
    else:
        sd, source = W.torchvision_weights(arch, pretrained, flag), f"{arch} {pretrained}"
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}  # classifier head is not used
    W.load_into(net, sd, f"body ({arch})", source)
    log.info("body tower %s: loaded %s", arch, source)
    return net, dim


def build_clip(arch: str, pretrained, quick_gelu: bool, flag: str = "--scene-weights",
               need_text: bool = False) -> nn.Module:
    """A whole open_clip model with the requested weights; a local file may hold only the image tower
    (with or without the `visual.` prefix) unless `need_text`."""
    open_clip = open_clip_module()

    register_clip_configs()
    if arch not in open_clip.list_models():
        raise W.InputError(f"unknown open_clip architecture '{arch}'")
    if W.is_random(pretrained):
        return open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu)
    pretrained = str(pretrained)
    path = Path(pretrained).expanduser()
    if path.is_file() or "/" in pretrained or path.suffix in (".pt", ".pth", ".bin", ".safetensors"):
        model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu)
        sd = W.read_state_dict(path, f"CLIP {arch}")
        visual = {k.removeprefix("visual."): v for k, v in sd.items() if k.startswith("visual.")}
        has_text = any(not k.startswith("visual.") for k in sd) and bool(visual)
        if need_text:
            if not has_text:
                raise W.WeightsUnavailableError(f"CLIP weights '{pretrained}' hold no text tower, which the "
                                                "zero-shot head needs: give a whole CLIP checkpoint")
            W.load_into(model, sd, f"CLIP {arch}", pretrained)
        else:
            W.load_into(model.visual, visual or sd, f"CLIP {arch} image tower", pretrained)
        log.info("CLIP %s: loaded %s", arch, pretrained)
        return model
    if pretrained not in open_clip.list_pretrained_tags_by_model(arch):
        raise W.WeightsUnavailableError(
            f"unknown CLIP weights '{pretrained}' for {arch}: use one of "
            f"{open_clip.list_pretrained_tags_by_model(arch)[:6]}, a local file, or none")
    try:
        model = open_clip.create_model(arch, pretrained=pretrained, force_quick_gelu=quick_gelu,
                                       require_pretrained=True)
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        name, cache = W.open_clip_cache_hint(arch, pretrained)
        raise W.WeightsUnavailableError(
            f"cannot get CLIP {arch} '{pretrained}' weights: {name} is not in the cache {cache} and the "
            f"download failed ({type(exc).__name__}); download it on a connected machine and pass it with "
            f"{flag} PATH") from exc
    log.info("CLIP %s: loaded pretrained '%s'", arch, pretrained)
    return model


def clip_preprocess_size(arch: str) -> int:
    open_clip = open_clip_module()

    register_clip_configs()
    size = open_clip.get_model_config(arch)["vision_cfg"]["image_size"]
    return int(size if isinstance(size, int) else size[0])
