"""The torch Dataset over `PersonRecord`s: body crop from `body_bbox`, scene = the whole image.

Both streams use the model's own preprocessing (pass `model.body_preprocess`, `model.scene_preprocess`),
so the scene fits its input during training exactly as at inference and export (`scene_fit`).

An image that cannot be decoded mid-epoch does not stop training: its item comes back with `valid = 0`
(zero pixels), the losses and metrics ignore it, and the count is logged. Keeping the item (rather than
dropping it) keeps batch shapes equal on every rank under DistributedDataParallel.

Cached embeddings (see `training.features`) replace the image stream they stand for; with both cached,
no image is read at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fusion import Preprocess, crop_persons, preprocess_images
from training.annotations import MIN_BOX, PersonRecord

log = logging.getLogger(__name__)


# Decode in the stored pixel grid, EXIF orientation ignored: EMOTIC's boxes were drawn on the stored pixels
# (the annotation tools did not rotate), and `training.annotations` checks boxes against that grid (PIL's
# unrotated size). cv2.imread alone would rotate EXIF-tagged files and every box on them would cut the
# wrong region. (Inference decodes photos upright, as cv2 does: its boxes come from the detector, not a file.)
IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_image(path: str | Path) -> np.ndarray | None:
    """HxWx3 uint8 BGR in the file's stored pixel grid (EXIF orientation ignored, as annotated), or None
    when the file is missing or undecodable. `.npy` arrays are RGB."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path)
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            if arr.ndim != 3 or arr.shape[2] < 3:
                return None
            arr = arr[..., :3]
            if arr.dtype != np.uint8:
                arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            return np.ascontiguousarray(arr[..., ::-1])
        return cv2.imread(str(path), IMREAD_FLAGS)
    except Exception:  # noqa: BLE001 - corrupt files of any kind are "unreadable", never a crash
        return None


def crop_box(image: np.ndarray, bbox) -> np.ndarray | None:
    """The body crop, with the box clamped to the decoded image (as at inference: fusion's crop_persons);
    None when nothing usable is left."""
    crops = crop_persons(image, [bbox], min_size=MIN_BOX)
    return crops.images[0] if crops.images else None


class EmoticDataset(Dataset):
    """Items: dict with `index`, `categories` (26,), `vad` (3,), `valid` (), and per stream either
    `body` (3,S,S) / `scene` (3,S',S') pixels or `body_feat` / `scene_feat` cached embeddings.

    `augment` flips body and scene horizontally at random, seeded by (seed, epoch, index) so a resumed
    run sees the same flips; call `set_epoch` before each epoch.
    """

    def __init__(self, records: list[PersonRecord], body_pre: Preprocess, scene_pre: Preprocess, *,
                 body_features: torch.Tensor | None = None, scene_features: torch.Tensor | None = None,
                 augment: bool = False, seed: int = 0):
        for name, feats in (("body", body_features), ("scene", scene_features)):
            if feats is not None and len(feats) != len(records):
                raise ValueError(f"{name} features have {len(feats)} rows for {len(records)} records")
        self.records = records
        self.body_pre, self.scene_pre = body_pre, scene_pre
        self.body_features, self.scene_features = body_features, scene_features
        self.augment, self.seed, self.epoch = augment, int(seed), 0
        self.categories = torch.from_numpy(np.stack([r.categories for r in records]).astype(np.float32)) \
            if records else torch.zeros((0, 26))
        self.vad = torch.from_numpy(np.stack([r.vad for r in records]).astype(np.float32)) \
            if records else torch.zeros((0, 3))

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.records[i]
        item = {"index": torch.tensor(i), "categories": self.categories[i], "vad": self.vad[i]}
        valid = True
        image = body = None
        if self.body_features is None or self.scene_features is None:
            image = read_image(rec.image_path)
            if image is None:
                log.warning("unreadable image %s (%s): item ignored", rec.image_path, rec.source)
                valid = False
            elif self.body_features is None:
                body = crop_box(image, rec.bbox)
                if body is None:
                    log.warning("empty body box in %s (%s): item ignored", rec.image_path, rec.source)
                    valid = False
        flip_body = flip_scene = False
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            flip_body, flip_scene = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        if self.body_features is not None:
            item["body_feat"] = self.body_features[i]
        else:
            item["body"] = self._pixels(body if valid else None, self.body_pre, flip_body)
        if self.scene_features is not None:
            item["scene_feat"] = self.scene_features[i]
        else:
            item["scene"] = self._pixels(image if valid else None, self.scene_pre, flip_scene)
        item["valid"] = torch.tensor(1.0 if valid else 0.0)
        return item

    @staticmethod
    def _pixels(image: np.ndarray | None, pre: Preprocess, flip: bool) -> torch.Tensor:
        if image is None:
            return torch.zeros((3, pre.size, pre.size), dtype=torch.float32)
        if flip:
            image = np.ascontiguousarray(image[:, ::-1])
        return preprocess_images([image], pre)[0]


class ImageOnlyDataset(Dataset):
    """Unique whole images (scene stream) or person crops (body stream) for feature extraction."""

    def __init__(self, items: list[tuple[Path, tuple | None]], pre: Preprocess, flip: bool = False):
        self.items, self.pre, self.flip = items, pre, flip  # flip: of the mirrored image or crop, as EmoticDataset

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, bbox = self.items[i]
        image = read_image(path)
        if image is not None and bbox is not None:
            image = crop_box(image, bbox)
        if image is None:
            return torch.zeros((3, self.pre.size, self.pre.size)), torch.tensor(0.0)
        if self.flip:  # flipped before preprocessing, as EmoticDataset flips
            image = np.ascontiguousarray(image[:, ::-1])
        return preprocess_images([image], self.pre)[0], torch.tensor(1.0)
