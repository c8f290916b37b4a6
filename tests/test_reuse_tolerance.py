"""Work reuse stays within its stated tolerance of the every-frame run, on the real street clip with the real
detector and the trained test model (whose outputs depend on the input, so staleness shows)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TRAINED_MODEL

from detector import DetectorConfig
from emomon.pipeline import EmotionModelConfig, MonitorConfig, PipelineConfig, ReuseConfig, build_pipeline
from stream import open_source

FRAMES = 40
# Measured with the defaults (scene every 4 frames, persons every 2) on these 40 frames: max 0.143, p99 0.070,
# mean 0.017, VAD max 0.22, same top emotion for 100% of persons. The bounds leave headroom, no more.
MEAN_TOLERANCE, P99_TOLERANCE, MAX_TOLERANCE, VAD_TOLERANCE, TOP1_AGREEMENT = 0.03, 0.1, 0.2, 0.35, 0.95


def run(video, weights, reuse: ReuseConfig):
    config = MonitorConfig(DetectorConfig(weights=str(weights)), EmotionModelConfig(str(TRAINED_MODEL)),
                           PipelineConfig(reuse=reuse))
    pipeline = build_pipeline(config)
    persons = {}
    with open_source(str(video), max_frames=FRAMES) as source:
        for frame in source:
            result = pipeline.process(frame.index, frame.time, frame.image)
            persons.update({(frame.index, p.track_id): p for p in result.persons if p.track_id is not None})
    return persons, dict(pipeline.counts)


@pytest.mark.slow
def test_reuse_defaults_match_every_frame(street_video, yolo_weights):
    every, every_counts = run(street_video, yolo_weights, ReuseConfig.every_frame())
    reused, counts = run(street_video, yolo_weights, ReuseConfig())
    assert every_counts.get("persons_reused", 0) == 0 and every_counts["scene_computed"] == FRAMES
    assert counts["scene_reused"] >= FRAMES // 4, counts
    assert counts["persons_reused"] >= 0.4 * (counts["persons_reused"] + counts["persons_computed"]), counts
    keys = sorted(every.keys() & reused.keys())
    assert len(keys) >= 0.95 * len(every) and len(keys) > 300, "the same persons are tracked either way"
    probs = np.array([np.abs(every[k].probs - reused[k].probs).max() for k in keys])
    vad = np.array([np.abs(every[k].vad - reused[k].vad).max() for k in keys])
    top1 = np.mean([every[k].top1 == reused[k].top1 for k in keys])
    stats = {"mean": probs.mean(), "p99": np.percentile(probs, 99), "max": probs.max(), "vad": vad.max(),
             "top1": top1}
    assert stats["mean"] <= MEAN_TOLERANCE and stats["p99"] <= P99_TOLERANCE, stats
    assert stats["max"] <= MAX_TOLERANCE and stats["vad"] <= VAD_TOLERANCE, stats
    assert top1 >= TOP1_AGREEMENT, stats
