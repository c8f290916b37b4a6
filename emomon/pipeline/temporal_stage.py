"""The temporal stage of the per-frame pipeline: per-track feature history -> one batched temporal call.

After the frame model has given each person a result (computed or reused) with its fused feature, the stage
appends the feature to the person's track history and replaces the result with the temporal head's output for
the track's last `window` frames; all persons of a frame go through one call. A new track is predicted from
the frames it has (one on its first frame; the head is trained on windows that start at a track's birth, and
padded positions are masked, so this is not a special case of lower quality but the same computation). A
person without a track id (still images) is a one-frame sequence. The stage replaces EMA/window smoothing: the
head integrates over time itself.

Two heads share the stage: a trained `fusion.temporal.TemporalModel` (`--temporal-model PATH`), and
`fusion.temporal.TrackPool`, EmoCLIP-style track-level zero-shot over user labels (`--labels FILE`).
"""

from __future__ import annotations

import contextlib
import logging

import torch

from emomon.kernel import InputError
from emomon.pipeline.track_history import TrackHistory, left_padded
from fusion import PersonResult, Predictor
from fusion.temporal.threads import one_thread

log = logging.getLogger(__name__)


class TemporalStage:
    def __init__(self, head, max_age: int = 30, device: str = "cpu"):
        self.head, self.device = head, device
        # A trained head reads each frame's feature (a rate of change, say): persons are recomputed every frame.
        # Track-level zero-shot averages embeddings, so reused ones serve it as well as fresh ones.
        self.fresh_features = head.config.kind != "track_pool"
        self.window = int(head.config.window)
        self.history = TrackHistory(self.window, max_age)

    @property
    def labels(self):
        return self.head.labels

    def reset(self) -> None:
        self.history.reset()

    def forget_stale(self, frame: int) -> None:
        self.history.forget_stale(frame)

    def apply(self, frame: int, time_s: float, ids: list[int | None], raw: dict[int, PersonResult]
              ) -> dict[int, PersonResult]:
        """Per detection row: the frame model's result (with `feature`) -> the temporal head's result."""
        rows, sequences = [], []
        for i in sorted(raw):
            person = raw[i]
            if person.feature is None:  # a predictor that keeps no features: nothing to feed the head
                log.debug("frame %d: detection %d has no feature; left out of the temporal stage", frame, i)
                continue
            tid = ids[i]
            if tid is None:
                sequences.append(person.feature[None])
            else:
                self.history.add(tid, frame, time_s, person.feature)
                sequences.append(self.history.features(tid))
            rows.append(i)
        if not rows:
            return {}
        windows, valid = left_padded(sequences, self.window)
        with one_thread() if self.device == "cpu" else contextlib.nullcontext():
            out = self.head.step(torch.from_numpy(windows).to(self.device), torch.from_numpy(valid).to(self.device))
        probs, vad = out["probs"].float().cpu().numpy(), out["vad"].float().cpu().numpy()
        return {i: raw[i].replace(probs=probs[k], vad=vad[k], labels=self.head.labels) for k, i in enumerate(rows)}


def feature_dim(predictor: Predictor) -> int:
    """The size of the fused feature the predictor's model gives each person."""
    model = predictor.model
    param = next(model.parameters())
    with torch.no_grad():
        z = model.fuse(torch.zeros(1, model.body_dim, device=param.device, dtype=param.dtype),
                       torch.zeros(1, model.scene_dim, device=param.device, dtype=param.dtype))
    return int(z.shape[-1])


def build_temporal_stage(temporal_model: str | None, labels: str | None, label_window: int,
                         predictor: Predictor, max_age: int = 30, device: str = "cpu") -> TemporalStage | None:
    """The stage for `--temporal-model PATH`, or track-level zero-shot for `--labels FILE`, or None."""
    if temporal_model and labels:
        raise InputError("--temporal-model and --labels cannot be combined: a temporal model predicts its own "
                         "labels; --labels scores the zero-shot model's embeddings against yours")
    if temporal_model:
        from fusion.temporal import load_temporal

        head = load_temporal(temporal_model, map_location=device)
        want, have = head.config.input_dim, feature_dim(predictor)
        trained_on = head.metadata.get("frame_model", {})
        if want != have:
            raise InputError(f"temporal model '{temporal_model}' reads {want}-d features (frame model "
                             f"'{trained_on.get('name', '?')}'), but --emotion-model gives {have}-d features: pass "
                             f"the frame model it was trained with")
        if trained_on.get("name") and trained_on["name"] != predictor.model.model_name:
            log.warning("temporal model %s was trained on features of frame model '%s', not '%s': its outputs "
                        "may mean little", temporal_model, trained_on["name"], predictor.model.model_name)
        predictor.keep_features = True
        return TemporalStage(head, max_age, device)
    if labels and label_window > 1:
        from fusion.temporal import TrackPool

        predictor.keep_features = True
        return TemporalStage(TrackPool(predictor.model, label_window), max_age, device)
    return None


def describe_stage(stage: TemporalStage | None) -> str:
    if stage is None:
        return "none"
    cfg = stage.head.config
    if cfg.kind == "track_pool":
        return f"track-level zero-shot over the last {cfg.window} frames"
    return f"{cfg.kind} over the last {cfg.window} frames ({getattr(stage.head, 'path', '')})"

