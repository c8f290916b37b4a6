"""Precomputed embeddings for frozen towers, cached on disk so variants x seeds train fast.

With the scene tower frozen (the paper's setting) its CLIP embedding of each whole image never changes,
so it is computed once per image and reused by every run. The body embedding can be cached as well when
the body tower is frozen too (`cache_body`). A cache file is keyed by

- the model's `scene_cache_key()` / `body_cache_key()` (architecture, weights fingerprint, preprocessing),
- the exact list of images (and, for bodies, boxes) with their file sizes and modification times,

- the orientation (`flipped=True`: the embedding of the horizontally flipped image or crop) and the
  precision the embeddings were computed in (fp32, or bf16/fp16 autocast on CUDA, as the run trains),

so changed weights, preprocessing or images never reuse stale features. Files are written atomically.

Training with cached embeddings sees the same augmentation as training from pixels: `FlippedFeatures`
takes the flipped-image row wherever `EmoticDataset` draws a flip (same draws, same seed), and the cache
is computed in the run's precision, so a cached and an uncached run differ only by floating-point
rounding (batch composition), not by what they learn from.

    cache = FeatureCache("/tmp/emotic-features")
    scene = cache.scene_features(model, records)      # (len(records), scene_dim), one row per person
    flipped = cache.scene_features(model, records, flipped=True)
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from emomon.kernel import atomic_write
from training.annotations import PersonRecord
from training.dataset import EmoticDataset, ImageOnlyDataset
from training.distributed import autocast

log = logging.getLogger(__name__)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stat(path: Path) -> str:
    try:
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


def flip_draws(seed: int, epoch: int, index: int) -> tuple[bool, bool]:
    """(flip body, flip scene) of item `index` in `epoch`: the draws `EmoticDataset.__getitem__` makes."""
    rng = np.random.default_rng([seed, epoch, index])
    return bool(rng.random() < 0.5), bool(rng.random() < 0.5)


class FlippedFeatures(Dataset):
    """Wraps an augmenting `EmoticDataset` whose streams are cached: where the dataset draws a flip of a
    cached stream, the item gets that stream's flipped-image embedding (`flipped["scene_feat"]`,
    `flipped["body_feat"]`, one row per record), so flips do not depend on caching."""

    def __init__(self, base: EmoticDataset, flipped: dict[str, torch.Tensor]):
        for key, feats in flipped.items():
            if len(feats) != len(base):
                raise ValueError(f"{key}: {len(feats)} flipped rows for {len(base)} records")
        self.base, self.flipped = base, flipped

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __getattr__(self, name):  # categories, vad, records, ... of the wrapped dataset
        if name in ("base", "flipped"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.base[i]
        if self.base.augment:
            flip_body, flip_scene = flip_draws(self.base.seed, self.base.epoch, i)
            for key, flip in (("body_feat", flip_body), ("scene_feat", flip_scene)):
                if flip and key in item and key in self.flipped:
                    item[key] = self.flipped[key][i]
        return item


@torch.no_grad()
def encode_items(encode, items: list[tuple[Path, tuple | None]], pre, *, batch_size: int = 64,
                 device: str | torch.device = "cpu", num_workers: int = 0, desc: str = "features",
                 progress: bool = False, flipped: bool = False, amp: bool = False) -> torch.Tensor:
    """Run `encode` (a tower) over images or crops (flipped ones with `flipped`), under the training
    autocast when `amp` (CUDA only); unreadable ones get a zero row (and a warning)."""
    from tqdm import tqdm

    dataset = ImageOnlyDataset(items, pre, flip=flipped)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = torch.device(device)
    rows, bad = [], 0
    for pixels, ok in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with autocast(device, amp):
            feats = encode(pixels.to(device))
        feats = feats.float().cpu()
        feats[ok == 0] = 0
        bad += int((ok == 0).sum())
        rows.append(feats)
    if bad:
        log.warning("%s: %d unreadable images encoded as zeros", desc, bad)
    return torch.cat(rows) if rows else torch.zeros((0, 0))


def _scene_items(records: list[PersonRecord]) -> tuple[list[str], list[tuple[Path, None]], list[int]]:
    keys, items, rows, seen = [], [], [], {}
    for r in records:
        if r.image_key not in seen:
            seen[r.image_key] = len(keys)
            keys.append(r.image_key)
            items.append((r.image_path, None))
        rows.append(seen[r.image_key])
    return keys, items, rows


def _body_items(records: list[PersonRecord]) -> tuple[list[str], list[tuple[Path, tuple]], list[int]]:
    keys = [f"{r.image_key}@{','.join(f'{v:.1f}' for v in r.bbox)}" for r in records]
    return keys, [(r.image_path, r.bbox) for r in records], list(range(len(records)))


class FeatureCache:
    """A directory of cached tower embeddings (see the module docstring). `root=None` keeps nothing on
    disk and simply computes (used for CCIM's dictionary when no cache directory is given)."""

    def __init__(self, root: str | os.PathLike | None, *, batch_size: int = 64, device="cpu",
                 num_workers: int = 0, progress: bool = False, amp: bool = False):
        self.root = Path(root).expanduser() if root else None
        self.batch_size, self.device, self.num_workers, self.progress = batch_size, device, num_workers, progress
        self.amp = amp
        self.hits = self.misses = 0
        self.seconds = 0.0

    def _variant_key(self, cache_key: str, flipped: bool) -> str:
        """The tower's key plus orientation and precision (fp32 unflipped keeps the plain key)."""
        from training.config import precision_name

        precision = precision_name(self.amp, torch.device(self.device).type)
        return cache_key + ("-hflip" if flipped else "") + ("" if precision == "fp32" else f"-{precision}")

    def scene_features(self, model, records: list[PersonRecord], *, write: bool = True,
                       flipped: bool = False) -> torch.Tensor:
        keys, items, rows = _scene_items(records)
        feats = self._get("scene", self._variant_key(model.scene_cache_key(), flipped), model.encode_scene,
                          model.scene_preprocess, keys, items, write, flipped)
        return feats[torch.as_tensor(rows, dtype=torch.long)] if rows else feats

    def body_features(self, model, records: list[PersonRecord], *, write: bool = True,
                      flipped: bool = False) -> torch.Tensor:
        keys, items, rows = _body_items(records)
        return self._get("body", self._variant_key(model.body_cache_key(), flipped), model.encode_body,
                         model.body_preprocess, keys, items, write, flipped)

    def path_for(self, kind: str, cache_key: str, keys: list[str], items) -> Path | None:
        if self.root is None:
            return None
        content = _sha("\n".join(f"{k}|{_stat(Path(p))}" for k, (p, _) in zip(keys, items)))
        return self.root / kind / _sha(cache_key)[:16] / f"{content[:24]}.pt"

    def _get(self, kind, cache_key, encode, pre, keys, items, write: bool, flipped: bool = False) -> torch.Tensor:
        path = self.path_for(kind, cache_key, keys, items)
        if path is not None and path.is_file():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if payload.get("cache_key") == cache_key and payload.get("keys") == keys:
                    self.hits += 1
                    log.info("%s features: cache hit %s (%d rows)", kind, path, len(keys))
                    return payload["features"]
                log.warning("%s feature cache %s does not match; recomputing", kind, path)
            except Exception as exc:  # noqa: BLE001 - a corrupt cache file is recomputed, never fatal
                log.warning("%s feature cache %s unreadable (%s); recomputing", kind, path, type(exc).__name__)
        if path is not None and not write:
            raise FileNotFoundError(path)  # another rank is expected to have written it
        self.misses += 1
        t0 = time.perf_counter()
        was_training = getattr(encode, "__self__", None)
        owner = was_training if isinstance(was_training, torch.nn.Module) else None
        mode = owner.training if owner is not None else None
        if owner is not None:
            owner.eval()
        try:
            feats = encode_items(encode, items, pre, batch_size=self.batch_size, device=self.device,
                                 num_workers=self.num_workers, desc=f"{kind} features" + (" (flipped)" if flipped
                                                                                           else ""),
                                 progress=self.progress, flipped=flipped, amp=self.amp)
        finally:
            if owner is not None:
                owner.train(mode)
        self.seconds += time.perf_counter() - t0
        log.info("%s features: computed %d rows in %.1fs", kind, len(keys), time.perf_counter() - t0)
        if path is not None:
            with atomic_write(path) as tmp:
                torch.save({"cache_key": cache_key, "keys": keys, "features": feats}, tmp)
        return feats
