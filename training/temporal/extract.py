"""Per-track feature sequences from videos, through the real detector, tracker and frame model, cached.

Each video runs through the same `EmotionPipeline` as `emomon run` (same reuse settings), with a recorder in
the temporal slot that keeps every tracked person's fused feature per frame. The annotated subject is the
longest track; other tracks that never overlap it in time are joined to it (the tracker may give the same
person a new id after a long occlusion; Aff-Wild2 annotates one subject per file). For `<video>_left` /
`_right` annotations the subject is the left / right one of the two longest tracks. Frames where the subject
was not found have no feature and are not part of the sequence, exactly as a live track's history has no entry
for them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detector import DetectorConfig
from emomon.kernel import atomic_write, cache_dir
from emomon.pipeline import EmotionPipeline, build_detector, build_predictor
from emomon.pipeline.config import EmotionModelConfig, PipelineConfig
from stream import open_source
from training.temporal.abaw import UNANNOTATED_EXPR, VideoItem, aligned
from training.temporal.config import ExtractConfig

log = logging.getLogger(__name__)


@dataclass
class Sequence:
    """One subject's feature sequence with its labels, aligned frame by frame."""

    name: str
    frames: np.ndarray            # (L,) source frame indices
    features: np.ndarray          # (L, D)
    va: np.ndarray | None         # (L, 2), NaN unannotated
    expr: np.ndarray | None       # (L,), -1 unannotated
    video_frames: int = 0         # frames decoded from the video
    annotation_frames: int = 0    # lines of the annotation

    @property
    def mismatch(self) -> int:
        return self.annotation_frames - self.video_frames


class FeatureRecorder:
    """Sits in the pipeline's temporal slot: records (track, frame, feature, box centre), changes nothing."""

    def __init__(self, labels):
        self.labels = labels
        self.tracks: dict[int, list[tuple[int, np.ndarray, float]]] = {}

    def reset(self) -> None:
        self.tracks.clear()

    fresh_features = True  # as with a temporal model in `emomon run`: every person recomputed every frame

    def forget_stale(self, frame: int) -> None:
        pass

    def apply(self, frame, time_s, ids, raw):
        for i, person in raw.items():
            if ids[i] is not None and person.feature is not None:
                cx = float(person.box[0] + person.box[2]) / 2
                self.tracks.setdefault(ids[i], []).append((frame, person.feature, cx))
        return raw


def pick_subject(tracks: dict[int, list], side: str | None) -> list:
    """The annotated subject's (frame, feature, cx) entries (see the module docstring)."""
    if not tracks:
        return []
    order = sorted(tracks, key=lambda t: (-len(tracks[t]), t))
    if side is not None and len(order) >= 2:
        two = sorted(order[:2], key=lambda t: np.mean([cx for _, _, cx in tracks[t]]))
        order = [two[0] if side == "left" else two[1]] + [t for t in order if t not in two]
    chosen = list(tracks[order[0]])
    taken = {f for f, _, _ in chosen}
    for t in order[1:] if side is None else []:  # two subjects: no joining, a second track may be the other one
        frames = {f for f, _, _ in tracks[t]}
        if not frames & taken:
            chosen += tracks[t]
            taken |= frames
    return sorted(chosen, key=lambda e: e[0])


def _key(item: VideoItem, cfg: ExtractConfig, model_id: str) -> str:
    st = item.video.stat()
    det = Path(cfg.detector_weights)
    det_id = f"{det.resolve()}:{det.stat().st_size}" if det.is_file() else cfg.detector_weights
    blob = json.dumps([str(item.video.resolve()), st.st_size, st.st_mtime_ns, item.side, model_id, det_id,
                       cfg.imgsz, asdict(cfg.reuse), "persons every frame"], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


class Extractor:
    """Loads the detector and frame model once; `sequence(item)` per video (from the cache when it can)."""

    def __init__(self, cfg: ExtractConfig, cache: str | os.PathLike | None = None):
        self.cfg = cfg
        self.cache = Path(cache) if cache else cache_dir("temporal_features")
        model_cfg = EmotionModelConfig(emotion_model=cfg.frame_model, device=cfg.device)
        self.predictor = build_predictor(model_cfg)
        model = self.predictor.model
        backend = self.predictor.backend  # the runtime and precision change the features (bf16 towers, ...)
        self.model_id = (f"{model.source.describe()}|{model.body_cache_key()}|{model.scene_cache_key()}|"
                         f"{type(backend).__name__}|{getattr(backend, 'precision', 'fp32')}")
        self._detector = None

    @property
    def frame_model(self) -> dict:
        m = self.predictor.model
        backend = self.predictor.backend
        return {"name": m.model_name, "spec": self.cfg.frame_model, "description": m.source.describe(),
                "backend": type(backend).__name__, "precision": getattr(backend, "precision", "fp32")}

    def _pipeline(self) -> tuple[EmotionPipeline, FeatureRecorder]:
        if self._detector is None:
            self._detector = build_detector(DetectorConfig(weights=self.cfg.detector_weights, imgsz=self.cfg.imgsz,
                                                           device=self.cfg.device))
        recorder = FeatureRecorder(self.predictor.model.labels)
        pipeline = EmotionPipeline(self._detector, self.predictor, PipelineConfig(reuse=self.cfg.reuse),
                                   temporal=recorder)
        return pipeline, recorder

    def raw(self, item: VideoItem) -> dict:
        path = self.cache / f"{item.name}-{_key(item, self.cfg, self.model_id)}.npz"
        if path.is_file():
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        pipeline, recorder = self._pipeline()
        pipeline.reset()
        n = 0
        with open_source(str(item.video)) as source:
            for frame in source:
                pipeline.process(frame.index, frame.time, frame.image)
                n += 1
        subject = pick_subject(recorder.tracks, item.side)
        dim = len(subject[0][1]) if subject else 0
        out = {"frames": np.asarray([f for f, _, _ in subject], np.int64),
               "features": np.asarray([x for _, x, _ in subject], np.float32).reshape(len(subject), dim),
               "video_frames": np.asarray(n)}
        with atomic_write(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **out)
        return out

    def sequence(self, item: VideoItem) -> Sequence | None:
        data = self.raw(item)
        frames, n = data["frames"], int(data["video_frames"])
        ann = item.frames
        if ann != n:
            log.info("%s: annotation has %d frames, the video %d (%+d): aligned by index", item.name, ann, n, ann - n)
        if not len(frames):
            log.warning("%s: no person tracked in %s; skipped", item.name, item.video)
            return None
        return Sequence(item.name, frames, data["features"], aligned(item.va, frames, np.nan),
                        aligned(item.expr, frames, UNANNOTATED_EXPR), n, ann)
