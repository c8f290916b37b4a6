"""Precomputed embeddings for frozen towers, cached on disk so variants x seeds train fast.

With the scene tower frozen (the paper's setting) its CLIP embedding of each whole image never changes,
so it is computed once per image and reused by every run. The body embedding can be cached as well when
the body tower is frozen too (`cache_body`). A cache file is keyed by

- the model's `scene_cache_key()` / `body_cache_key()` (architecture, weights fingerprint, preprocessing),
- the exact list of images (and, for bodies, boxes) with their file sizes and modification times,

so changed weights, preprocessing or images never reuse stale features. Files are written atomically.

    cache = FeatureCache("/tmp/emotic-features")
    scene = cache.scene_features(model, records)      # (len(records), scene_dim), one row per person
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from emomon.kernel import atomic_write
from training.annotations import PersonRecord
from training.dataset import ImageOnlyDataset

log = logging.getLogger(__name__)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stat(path: Path) -> str:
    try:
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


@torch.no_grad()
def encode_items(encode, items: list[tuple[Path, tuple | None]], pre, *, batch_size: int = 64,
                 device: str | torch.device = "cpu", num_workers: int = 0, desc: str = "features",
                 progress: bool = False) -> torch.Tensor:
    """Run `encode` (a tower) over images or crops; unreadable ones get a zero row (and a warning)."""
    from tqdm import tqdm

    loader = DataLoader(ImageOnlyDataset(items, pre), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers)
    rows, bad = [], 0
    for pixels, ok in tqdm(loader, desc=desc, disable=not progress, leave=False):
        feats = encode(pixels.to(device)).float().cpu()
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
                 num_workers: int = 0, progress: bool = False):
        self.root = Path(root).expanduser() if root else None
        self.batch_size, self.device, self.num_workers, self.progress = batch_size, device, num_workers, progress
        self.hits = self.misses = 0
        self.seconds = 0.0

    def scene_features(self, model, records: list[PersonRecord], *, write: bool = True) -> torch.Tensor:
        keys, items, rows = _scene_items(records)
        feats = self._get("scene", model.scene_cache_key(), model.encode_scene, model.scene_preprocess,
                          keys, items, write)
        return feats[torch.as_tensor(rows, dtype=torch.long)] if rows else feats

    def body_features(self, model, records: list[PersonRecord], *, write: bool = True) -> torch.Tensor:
        keys, items, rows = _body_items(records)
        return self._get("body", model.body_cache_key(), model.encode_body, model.body_preprocess,
                         keys, items, write)

    def path_for(self, kind: str, cache_key: str, keys: list[str], items) -> Path | None:
        if self.root is None:
            return None
        content = _sha("\n".join(f"{k}|{_stat(Path(p))}" for k, (p, _) in zip(keys, items)))
        return self.root / kind / _sha(cache_key)[:16] / f"{content[:24]}.pt"

    def _get(self, kind, cache_key, encode, pre, keys, items, write: bool) -> torch.Tensor:
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
                                 num_workers=self.num_workers, desc=f"{kind} features", progress=self.progress)
        finally:
            if owner is not None:
                owner.train(mode)
        self.seconds += time.perf_counter() - t0
        log.info("%s features: computed %d rows in %.1fs", kind, len(keys), time.perf_counter() - t0)
        if path is not None:
            with atomic_write(path) as tmp:
                torch.save({"cache_key": cache_key, "keys": keys, "features": feats}, tmp)
        return feats
