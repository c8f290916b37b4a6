"""Device-side preprocessing (`fusion.models.device_preprocess`, `Predictor(preprocess="device")`), run on CPU
tensors: the same code as on a GPU. Parity with the OpenCV path is within measured tolerances, not exact:
roi_align samples bilinearly (ceil(box/size)^2 samples averaged per output pixel when shrinking, one when
enlarging, where OpenCV uses area averaging and bicubic), reads the frame half a pixel beyond a crop's edge
where OpenCV repeats the crop's border, and keeps float precision where OpenCV rounds to uint8.

Measured on street frames with the YOLO boxes below (224 px body input, 10 persons a frame): body inputs mean
abs difference 0.024, median 0.011, p99 0.18 (normalised units; one uint8 level is about 0.017); scene inputs
mean 0.0054 (letterbox) to 0.0096 (center_crop); the trained test model's outputs differ by at most 0.0093 in a
category probability and 0.031 in VAD (1-10 scale). The bounds below are about twice those.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fusion import Predictor, Preprocess, crop_persons, preprocess_images
from fusion.models import device_preprocess as dp

# YOLO11n-pose's persons on frame 0 and 16 of the street clip (rounded), plus a box reaching out of the frame
BOXES = [
    [[64, 35, 156, 277], [174, 58, 252, 263], [0, 50, 58, 263], [256, 38, 334, 268], [391, 64, 452, 274],
     [311, 73, 367, 261], [362, 81, 401, 238], [434, 75, 477, 266], [146, 79, 188, 253]],
    [[46, 33, 148, 283], [165, 52, 251, 260], [258, 36, 339, 269], [394, 57, 465, 276], [1, 43, 52, 263],
     [516, 0, 650, 370], [437, 72, 476, 268], [304, 66, 363, 264], [115, 51, 160, 249], [148, 73, 189, 251]],
]


@pytest.fixture(scope="module")
def frames():
    from tests.conftest import shared_file

    cap = cv2.VideoCapture(str(shared_file("data/street_crossing.mp4")))
    out = []
    for i in range(17):
        ok, image = cap.read()
        assert ok
        if i in (0, 16):
            out.append(image)
    cap.release()
    return out


def _body_both_ways(frame, boxes, pre):
    crops = crop_persons(frame, boxes)
    cpu = preprocess_images(crops.images, pre)
    dev = dp.crops_on_device(dp.upload_frame(frame, "cpu")[None], torch.from_numpy(crops.boxes),
                             torch.zeros(len(crops.boxes)), pre)
    return cpu, dev


# (size, mean, p99): the real model's 224 enlarges the narrow crops; the tiny model's 64 shrinks all of them
# about 4x, where roi_align's averaged bilinear samples make a wider kernel than OpenCV's area average
# (measured: 224 mean 0.024, p99 0.18; 64 mean 0.046, p99 0.50; median 0.011 for both)
@pytest.mark.parametrize("size, mean, p99", [(224, 0.05, 0.4), (64, 0.1, 1.0)])
def test_body_crops_match_the_opencv_path_within_the_measured_tolerance(frames, size, mean, p99):
    pre = Preprocess(size=size)
    diffs = []
    for frame, boxes in zip(frames, BOXES):
        cpu, dev = _body_both_ways(frame, boxes, pre)
        assert dev.shape == cpu.shape == (len(boxes), 3, size, size) and dev.dtype == torch.float32
        diffs.append((cpu - dev).abs().flatten())
    d = torch.cat(diffs)
    assert d.mean() < mean and d.median() < 0.025, (d.mean(), d.median())
    assert torch.quantile(d[:: max(1, d.numel() // 1_000_000)], 0.99) < p99


@pytest.mark.parametrize("fit", ["squash", "letterbox", "center_crop"])
def test_scene_inputs_match_the_opencv_path_for_every_fit(frames, fit):
    pre = Preprocess(size=224, resize=fit)
    cpu = preprocess_images(frames, pre)
    dev = dp.scenes_on_device(torch.stack([dp.upload_frame(f, "cpu") for f in frames]), pre)
    d = (cpu - dev).abs()
    assert dev.shape == cpu.shape and d.mean() < 0.02 and d.max() < 0.4, (d.mean(), d.max())


def test_device_predictor_outputs_match_the_cpu_predictor(frames, trained_model):
    """The trained test model (outputs depend on the pixels), one call per frame: the same persons, in the
    same order, with probabilities within 0.02 and VAD within 0.06 of the OpenCV path."""
    import copy

    cpu = Predictor(copy.deepcopy(trained_model), preprocess="cpu")
    dev = Predictor(trained_model, preprocess="device")
    worst_p = worst_v = 0.0
    for frame, boxes in zip(frames, BOXES):
        a, b = cpu.predict(frame, boxes), dev.predict(frame, boxes)
        assert len(a) == len(b) == len(boxes) and all(x is not None for x in a + b)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.box, y.box)
            worst_p = max(worst_p, float(np.abs(x.probs - y.probs).max()))
            worst_v = max(worst_v, float(np.abs(x.vad - y.vad).max()))
        spread = np.ptp(np.stack([p.probs for p in b]), axis=0).max()
        assert spread > 10 * worst_p   # the persons differ far more than the two paths do
    assert 0 < worst_p < 0.02 and worst_v < 0.06, (worst_p, worst_v)


def test_many_frames_of_two_sizes_give_each_frame_its_own_persons(frames, trained_model):
    """predict_many over frames of different sizes (one roi_align call per size, results put back in order)
    equals one call per frame; a degenerate box stays None in its place."""
    small = cv2.resize(frames[1], (480, 270))
    batch = [frames[0], small, frames[1]]
    boxes = [BOXES[0], [[10, 10, 200, 260], [5, 5, 6, 6], [300, 20, 420, 265]], BOXES[1]]
    pred = Predictor(trained_model, preprocess="device")
    together = pred.predict_many(batch, boxes)
    for frame, bx, got in zip(batch, boxes, together):
        alone = pred.predict(frame, bx)
        assert [p is None for p in got] == [p is None for p in alone]
        for x, y in zip(got, alone):
            if x is not None:
                np.testing.assert_allclose(x.probs, y.probs, atol=1e-5)
                np.testing.assert_allclose(x.vad, y.vad, atol=1e-4)
    assert together[1][1] is None


def test_a_frame_is_uploaded_once_for_its_scene_and_its_persons(frames, trained_model, monkeypatch):
    import fusion.predictor as module

    uploads = []
    real = module.upload_frame
    monkeypatch.setattr(module, "upload_frame", lambda f, d: uploads.append(f.shape) or real(f, d))
    pred = Predictor(trained_model, preprocess="device")
    with pred.sharing_uploads():
        scene = pred.encode_scene([frames[0]])[0]
        pred.predict(frames[0], BOXES[0], scene_embedding=scene)
    assert len(uploads) == 1
    pred.predict(frames[1], BOXES[1])     # scene and persons computed in one call: one upload too
    assert len(uploads) == 2
    pred.predict(frames[1], BOXES[1])     # outside a block nothing is kept (a reader may refill the array)
    assert len(uploads) == 3


def test_the_pipeline_uploads_each_frame_once(frames, trained_model, monkeypatch):
    import fusion.predictor as module
    from emomon.pipeline import EmotionPipeline, PipelineConfig, ReuseConfig

    class FixedDetector:
        def track(self, image):
            import supervision as sv

            boxes = np.asarray(BOXES[0], dtype=np.float32)
            return sv.Detections(xyxy=boxes, confidence=np.ones(len(boxes)), tracker_id=np.arange(len(boxes)))

    uploads = []
    real = module.upload_frame
    monkeypatch.setattr(module, "upload_frame", lambda f, d: uploads.append(1) or real(f, d))
    pipeline = EmotionPipeline(FixedDetector(), Predictor(trained_model, preprocess="device"),
                               PipelineConfig(reuse=ReuseConfig.every_frame()))
    for i in range(3):
        result = pipeline.process(i, i / 24, frames[0].copy())
        assert len(result.persons) == len(BOXES[0])
    assert len(uploads) == 3


def test_auto_picks_the_device_on_cuda_and_opencv_on_cpu():
    assert dp.resolve_preprocess("auto", "cpu") == "cpu"
    assert dp.resolve_preprocess("auto", "cuda:0") == "device"
    assert dp.resolve_preprocess("device", "cpu") == "device"
    with pytest.raises(ValueError, match="unknown preprocessing"):
        dp.resolve_preprocess("gpu", "cpu")


def test_the_preprocess_flag_reaches_the_predictor():
    from emomon.commands.options import model_config
    from emomon.pipeline import build_predictor
    from emomon.pipeline.config import EmotionModelConfig

    assert EmotionModelConfig().preprocess == "auto"
    import argparse

    from emomon.commands.options import add_model_arguments

    p = argparse.ArgumentParser()
    add_model_arguments(p, backend=True)
    args = p.parse_args(["--emotion-model", "random:two_stream_tiny", "--preprocess", "device"])
    assert build_predictor(model_config(args)).preprocess == "device"
    default = p.parse_args(["--emotion-model", "random:two_stream_tiny"])
    assert build_predictor(model_config(default)).preprocess == "cpu"     # auto, on this CPU
    with pytest.raises(SystemExit):
        p.parse_args(["--preprocess", "gpu"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_auto_preprocesses_on_the_device_and_matches_the_cpu_run(frames, trained_model):
    """On a GPU: `auto` picks the device path; its crops equal the same code on CPU tensors (roi_align's CUDA
    and CPU kernels) and the trained model's outputs stay within the CPU-path tolerance."""
    import copy

    pre = Preprocess(size=224)
    crops = crop_persons(frames[0], BOXES[0])
    on_cpu = dp.crops_on_device(dp.upload_frame(frames[0], "cpu")[None], torch.from_numpy(crops.boxes),
                                torch.zeros(len(crops.boxes)), pre)
    frame = dp.upload_frame(frames[0], "cuda")
    on_gpu = dp.crops_on_device(frame[None], torch.from_numpy(crops.boxes).cuda(),
                                torch.zeros(len(crops.boxes), device="cuda"), pre)
    assert on_gpu.is_cuda and (on_gpu.cpu() - on_cpu).abs().max() < 1e-3
    cpu = Predictor(copy.deepcopy(trained_model), preprocess="cpu")
    gpu = Predictor(trained_model, device="cuda", preprocess="auto")
    assert gpu.preprocess == "device"
    for frame, boxes in zip(frames, BOXES):
        for x, y in zip(cpu.predict(frame, boxes), gpu.predict(frame, boxes)):
            assert np.abs(x.probs - y.probs).max() < 0.02 and np.abs(x.vad - y.vad).max() < 0.06
