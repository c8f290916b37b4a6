"""Training configuration: one flat dataclass; argparse defaults < variant YAML < command-line flags.

Each experiment variant is a small YAML in `training/configs/` holding only what differs from the
defaults (and a `simplifies:` text). Flags given on the command line override the YAML; `--set KEY=VALUE`
reaches any other field. The resolved config is saved as `config.yaml` in every run directory.

    >>> from training.config import load_config
    >>> cfg = load_config("clean", overrides={"epochs": 3})
    >>> cfg.variant, cfg.epochs
    ('clean', 3)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from emomon.kernel import InputError, atomic_write

CONFIG_DIR = Path(__file__).parent / "configs"
VARIANTS = ("clean", "ccim", "clef_lite", "asl", "cb_sampling")


@dataclass
class TrainConfig:
    # what is trained
    variant: str = "clean"
    simplifies: str = ""  # what the variant leaves out relative to the original method (docs, tables)
    task: str = "clean"  # clean | ccim | clef_lite (training/tasks.py)
    data: str | None = None
    out: str | None = None  # run directory; default runs/<variant>-s<seed>
    # model (fusion.create_model name and TwoStreamConfig overrides; None keeps the model's own default)
    model: str = "two_stream_vitb16"
    pretrained: bool = True
    fusion: str | None = None  # concat | attention
    dropout: float | None = None
    freeze_scene: bool = True  # the paper's setting: CLIP scene tower frozen
    freeze_body: bool = False
    model_overrides: dict = field(default_factory=dict)
    # losses
    category_loss: str = "bce"  # bce | asl
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    category_reduction: str = "sum"  # sum | mean over the 26 categories (sum: Tandon-A/emotic, the ASL paper)
    vad_loss: str = "huber"  # huber | l1
    huber_delta: float = 1.0
    vad_weight: float = 0.5  # loss = category + vad_weight * VAD; sum + 0.5: chosen by the val sweep (training/results)
    # variant knobs
    sampler: str = "uniform"  # uniform | class_balanced
    cb_beta: float = 0.999
    ccim_prototypes: int = 32
    clef_lambda: float | None = None  # None: chosen on val from CLEF_LAMBDAS after every epoch; a number fixes it
    context_loss_weight: float = 1.0
    # optimisation
    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 128
    lr: float = 3e-4
    backbone_lr_scale: float = 0.1  # trainable towers learn at lr * this
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    mixup_alpha: float = 0.0  # > 0 enables mixup with Beta(alpha, alpha)
    augment: bool = True  # random horizontal flips of body and scene (cached embeddings: of the flipped image)
    amp: bool = True  # mixed precision, on CUDA only (cached embeddings are computed in the same precision)
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = -1  # -1: 0 on CPU, min(8, cores - 1) on CUDA
    threads: int = 0  # > 0: torch intra-op threads for this run (1 avoids thrashing on a busy shared CPU)
    feature_cache: str | None = None  # directory; caches frozen-tower embeddings
    cache_body: bool = False  # also cache body embeddings (freezes the body tower)
    max_train: int = 0  # > 0: use a fixed random subset of this many training persons (smoke runs)
    max_eval: int = 0  # > 0: same for val and test
    check_images: bool = True  # read every image header once when loading (counts unreadable files)
    resume: bool = False
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True

    def model_options(self) -> dict:
        opts = {"freeze_scene": self.freeze_scene, "freeze_body": self.freeze_body or self.cache_body}
        if self.fusion is not None:
            opts["fusion"] = self.fusion
        if self.dropout is not None:
            opts["dropout"] = self.dropout
        return {**opts, **self.model_overrides}

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / f"{self.variant}-s{self.seed}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        choices = {"task": ("clean", "ccim", "clef_lite"), "category_loss": ("bce", "asl"),
                   "category_reduction": ("sum", "mean"), "vad_loss": ("huber", "l1"),
                   "sampler": ("uniform", "class_balanced")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got '{getattr(self, name)}'")
        if self.fusion not in (None, "concat", "attention"):
            raise InputError(f"fusion must be concat or attention, got '{self.fusion}'")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.cb_beta < 1 or self.mixup_alpha < 0 or self.warmup_epochs < 0:
            raise InputError("need lr > 0, 0 <= cb_beta < 1, mixup_alpha >= 0, warmup_epochs >= 0")
        if self.vad_weight < 0:
            raise InputError(f"vad_weight must be >= 0, got {self.vad_weight}")
        if self.feature_cache and not self.freeze_scene:
            raise InputError("--feature-cache needs the scene tower frozen (freeze_scene: true): a trained "
                             "tower's embeddings change every step")
        if self.cache_body and not self.feature_cache:
            raise InputError("cache_body needs --feature-cache DIR")
        if not self.data:
            raise InputError("no data: pass --data PATH (an EMOTIC directory; emomon make-synthetic writes one)")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# fields that may change between a run and its --resume without changing the result. `feature_cache` and
# `device` are paths/places only: whether embeddings come from a cache and in which precision the run
# computes are part of the run's identity (`run_identity`), checked beside the config.
RESUME_FREE = {"out", "resume", "num_workers", "threads", "progress", "tensorboard", "device", "data", "feature_cache",
               "check_images", "simplifies", "eval_batch_size"}
# lambda values the clef_lite variant chooses from on val (clef_lambda: null)
CLEF_LAMBDAS = tuple(round(0.1 * i, 1) for i in range(11))
IDENTITY_VERSION = 2  # 2: cached embeddings follow the flips (flipped-image rows) and the run's precision


def _coerce(name: str, value):
    f = _FIELDS[name]
    kind = str(f.type)
    if value is None:
        if "None" in kind:
            return None
        raise InputError(f"config field '{name}' cannot be empty")
    try:
        if kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("str"):
            return str(value)
        if kind.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError):
        raise InputError(f"config field '{name}' expects {kind}, got {value!r}") from None
    return value


def config_path(name_or_path: str | os.PathLike) -> Path:
    """A variant name (clean, ccim, ...) or a YAML path -> the YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise InputError(f"config '{p}' not found")
        return p
    cand = CONFIG_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise InputError(f"unknown variant '{name_or_path}': use one of {', '.join(VARIANTS)} or a YAML path")
    return cand


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read config '{path}' ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise InputError(f"config '{path}' must be a mapping of field: value")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InputError(f"config '{path}' has unknown field(s) {unknown}")
    return data


def parse_set(items: list[str] | None) -> dict:
    """`--set key=value` pairs (values parsed as YAML: numbers, booleans, lists, dicts)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in _FIELDS:
            raise InputError(f"--set: unknown config field '{key}'")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def load_config(config: str | os.PathLike | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the YAML (variant name or path), then `overrides` (None values are ignored)."""
    values = read_yaml(config_path(config)) if config is not None else {}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise InputError(f"unknown config field(s) {unknown}")
    return TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text("# resolved training config (defaults < variant YAML < flags)\n"
                       + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def resume_mismatches(saved: dict, cfg: TrainConfig) -> list[str]:
    """Fields whose change would make a resumed run differ from an uninterrupted one."""
    now = cfg.to_dict()
    return [k for k in now if k not in RESUME_FREE and k in saved and saved[k] != now[k]]


def precision_name(amp: bool, device_type: str, bf16_supported: bool | None = None) -> str:
    """The precision a run trains and embeds in: bf16 (or fp16) autocast on CUDA with amp, else fp32."""
    if not (amp and device_type == "cuda"):
        return "fp32"
    if bf16_supported is None:
        import torch

        bf16_supported = torch.cuda.is_bf16_supported()
    return "bf16" if bf16_supported else "fp16"


def run_identity(cfg: TrainConfig, precision: str) -> dict:
    """What a run computed beyond its config fields: where each stream's embedding came from, which flips
    it saw, its precision. A resumed or reused run must have the same (`identity_mismatches`)."""
    return {"identity_version": IDENTITY_VERSION,
            "scene_input": "cached_embeddings" if cfg.feature_cache else "pixels",
            "body_input": "cached_embeddings" if cfg.cache_body else "pixels",
            "flips": "body+scene" if cfg.augment else "none",
            "precision": precision}


def identity_mismatches(saved: dict | None, now: dict) -> list[str]:
    """'key (saved -> now)' for every identity entry that differs; a run without a recorded identity
    (older emomon: cached scenes were never flipped) differs as a whole."""
    if not saved:
        return ["run identity (not recorded: written by an older emomon)"]
    return [f"{k} ({saved.get(k)} -> {v})" for k, v in now.items() if saved.get(k) != v]
