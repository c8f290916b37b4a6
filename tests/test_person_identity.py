"""Each person's emotions are their own: the order of persons, chunked batches, a cached scene and the
pipeline's reuse of scenes and tracks never hand one person's outputs to another, or a stale value.

These tests use the trained test model (tests/assets/trained_tiny.pt), whose outputs differ between persons
and between scenes; each test first checks that the difference it relies on is well above its tolerance,
so a swap or a stale value cannot pass unnoticed (random weights give nearly the same output for everyone).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import TRAINED_MODEL
from scripted import ScriptedDetector

from emomon.pipeline import EmotionPipeline, PipelineConfig, ReuseConfig, SmoothingConfig
from fusion import Predictor, create_backend, load_checkpoint
from fusion.backends.chunks import run_in_chunks
from fusion.models.preprocess import crop_persons, preprocess_images

# The six persons YOLO11n-pose finds in ../shared/data/group_photo.jpg (870x553).
PERSONS = [[750, 37, 866, 378], [175, 51, 316, 445], [628, 83, 745, 455], [413, 76, 610, 550],
           [61, 55, 172, 368], [408, 32, 502, 202]]


@pytest.fixture(scope="module")
def frame(group_photo_module):
    return cv2.imread(str(group_photo_module))


@pytest.fixture(scope="module")
def group_photo_module():
    from conftest import shared_file

    return shared_file("data/group_photo.jpg")


def fresh_model():
    return load_checkpoint(TRAINED_MODEL).eval()


def gaps(probs) -> np.ndarray:
    """Largest absolute probability difference for every pair of different persons."""
    return np.array([np.abs(a - b).max() for i, a in enumerate(probs) for b in probs[i + 1:]])


# Per backend: how close the same person's outputs must be when only the batch order changes.
ORDER_TOLERANCE = {"torch": 1e-5, "onnxruntime": 1e-5, "torch-fp16": 2e-3}


@pytest.mark.parametrize("backend", sorted(ORDER_TOLERANCE))
def test_shuffled_persons_give_the_same_outputs_permuted(backend, frame):
    predictor = Predictor(fresh_model(), backend=backend)
    ref = predictor.predict(frame, PERSONS)
    tol = ORDER_TOLERANCE[backend]
    assert gaps([p.probs for p in ref]).min() > 3 * tol, "every pair of persons must differ well beyond the tolerance"
    order = np.random.default_rng(1).permutation(len(PERSONS))
    got = predictor.predict(frame, [PERSONS[i] for i in order])
    for j, i in enumerate(order):
        assert got[j].index == j
        np.testing.assert_allclose(got[j].box, ref[i].box)
        np.testing.assert_allclose(got[j].probs, ref[i].probs, atol=tol, err_msg=f"person {i} at position {j}")
        np.testing.assert_allclose(got[j].vad, ref[i].vad, atol=10 * tol)


def test_batches_larger_than_the_engine_run_in_order_chunks(frame):
    """TensorRT engines take at most `max_batch` persons; larger batches run in chunks (run_in_chunks)."""
    model = fresh_model()
    backend = create_backend("torch", model)
    crops = crop_persons(frame, PERSONS)
    b = backend.encode_body(preprocess_images(crops.images, model.body_preprocess))
    s = backend.encode_scene(preprocess_images([frame], model.scene_preprocess)).expand(len(PERSONS), -1)

    def heads(feeds):
        probs, vad = backend.heads(feeds["b"], feeds["s"])
        return {"probs": probs, "vad": vad}

    whole = heads({"b": b, "s": s})
    assert gaps(whole["probs"].numpy()).min() > 100 * 1e-5, "persons must differ well beyond the tolerance"
    for max_batch in (1, 2, 4, 5, 6, 64):
        got = run_in_chunks(heads, {"b": b, "s": s}, max_batch)
        for key in ("probs", "vad"):
            np.testing.assert_allclose(got[key].numpy(), whole[key].numpy(), atol=1e-5,
                                       err_msg=f"{key} with max_batch {max_batch}")


def test_a_cached_scene_gives_the_fresh_outputs_and_another_scene_does_not(frame):
    predictor = Predictor(fresh_model())
    fresh = predictor.predict(frame, PERSONS)
    cached = predictor.predict(frame, PERSONS, scene_embedding=predictor.encode_scene([frame])[0])
    for a, b in zip(fresh, cached):
        np.testing.assert_allclose(b.probs, a.probs, atol=1e-6)
        np.testing.assert_allclose(b.vad, a.vad, atol=1e-5)
    other = predictor.predict(frame, PERSONS, scene_embedding=predictor.encode_scene([255 - frame])[0])
    assert max(np.abs(a.probs - b.probs).max() for a, b in zip(fresh, other)) > 0.05, "the scene matters"


def run_pipeline_on(frames, images, reuse):
    predictor = Predictor(fresh_model())
    pipeline = EmotionPipeline(ScriptedDetector(frames), predictor,
                               PipelineConfig(reuse=reuse, smoothing=SmoothingConfig("none")))
    return predictor, pipeline, [pipeline.process(i, i / 10, im) for i, im in enumerate(images)]


def test_reused_emotions_stay_with_their_track_when_the_detector_reorders(frame):
    """Two tracks with different crops; the detector lists them in a different order on some frames. With
    persons refreshed every 3 frames, a reused result must be that track's own last result."""
    a, b = PERSONS[0], PERSONS[3]
    script = [([a, b], [1, 2]), ([b, a], [2, 1]), ([a, b], [1, 2]), ([b, a], [2, 1]), ([b, a], [2, 1]),
              ([a, b], [1, 2])]
    predictor, pipeline, results = run_pipeline_on(script, [frame] * len(script),
                                                   ReuseConfig(scene_every=1, refresh_every=3, refresh_iou=0.5))
    assert pipeline.counts["persons_computed"] == 4 and pipeline.counts["persons_reused"] == 8  # frames 0, 3
    own = {1: predictor.predict(frame, [a])[0], 2: predictor.predict(frame, [b])[0]}
    assert np.abs(own[1].probs - own[2].probs).max() > 0.05, "the two tracks must have different emotions"
    for n, result in enumerate(results):
        for p in result.persons:
            np.testing.assert_allclose(p.probs, own[p.track_id].probs, atol=1e-5,
                                       err_msg=f"frame {n}: track {p.track_id} got another person's emotions")
            np.testing.assert_allclose(p.box, script[n][0][script[n][1].index(p.track_id)])


def test_a_changed_frame_gets_a_fresh_scene_and_a_still_one_reuses_it(frame):
    """Scene reuse must never serve a stale scene: the inverted frame changes the thumbnail beyond the
    threshold, so its persons must get exactly the outputs of a fresh prediction on that frame."""
    inverted = 255 - frame
    images = [frame, frame, inverted, inverted, frame]
    script = [(PERSONS[:3], [1, 2, 3])] * len(images)
    predictor, pipeline, results = run_pipeline_on(script, images,
                                                   ReuseConfig(scene_every=4, scene_change=0.06, refresh_every=1))
    assert (pipeline.counts["scene_computed"], pipeline.counts["scene_reused"]) == (3, 2)
    for image, result in zip(images, results):
        expected = predictor.predict(image, PERSONS[:3])
        for p, e in zip(result.persons, expected):
            np.testing.assert_allclose(p.probs, e.probs, atol=1e-5)
    stale = predictor.predict(inverted, PERSONS[:3], scene_embedding=predictor.encode_scene([frame])[0])
    assert max(np.abs(s.probs - r.probs).max() for s, r in zip(stale, results[2].persons)) > 0.05, \
        "a stale scene would give other outputs"
