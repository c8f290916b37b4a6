"""`PersonDetector`: persons from any Ultralytics detect/segment/pose model, as `supervision.Detections`.

Only the person class is kept. Pose models add 17 COCO keypoints per person in
`detections.data["keypoints"]` (N, 17, 3: x, y, confidence), present even when N is 0 so results always
have the same columns. Tiny or non-finite boxes are dropped before tracking, with a reason in the log.

`config.precision` sets the number format: an OpenVINO model is compiled with that inference precision hint
(OpenVINO would otherwise pick bf16 by itself on CPUs that have it), a .pt model on a CPU runs under bf16
autocast for bf16, and fp16 on CUDA; "auto" leaves each runtime's own default.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from detector.config import DetectorConfig
from detector.tracking import assign_ids, low_threshold, new_tracker, tracker_settings
from detector.weights import FLAG, DetectorError, load_yolo
from emomon.kernel import first_line, quiet_loggers

log = logging.getLogger(__name__)

# OpenVINO objects are never freed while the process runs. Freeing the compiled models of two detectors and then
# receiving a signal (Ctrl-C, SIGTERM) crashed the whole process with SIGSEGV (OpenVINO 2026.4, seen in the test
# suite and reproduced in a 10-line script). A process builds few detectors, so keeping them costs little.
_OPENVINO_KEEP: list = []


class PersonDetector:
    """Load the model once; `detect()` for unrelated images, `track()` for video frames (ids persist).

    Each tracking source (a key, 0 by default) has its own tracker, so several streams can share one
    model through `track_batch()`; `reset()` starts a source (or all) afresh with ids from 1.
    """

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self._tracker_settings = tracker_settings(self.config.tracker, self.config.device)  # cheap, so first
        self._trackers: dict[Hashable, object] = {}
        self.model = load_yolo(self.config.weights, trust=self.config.trust_weights)
        self.person_class = 0
        self.runtime, self.precision = _runtime_of(self.config.weights), self.config.precision
        self._warm_up()  # before anything else reads the model: exported files build their backend lazily
        self.has_keypoints = self.model.task == "pose"
        self.skipped = 0  # detections dropped as tiny or degenerate, over the detector's life
        self.threads = 0  # OpenVINO CPU threads (`set_threads`); 0: OpenVINO's own choice, every core

    def _kwargs(self, conf: float | None = None) -> dict:
        c = self.config
        kwargs = {"classes": [self.person_class], "conf": c.conf if conf is None else conf, "iou": c.iou,
                  "imgsz": c.imgsz, "device": c.device, "max_det": c.max_det, "verbose": False}
        half = c.half or (c.precision == "fp16" and self.runtime == "torch")
        if half and str(c.device).startswith("cuda"):  # newer Ultralytics spells fp16 `quantize=16`
            from ultralytics.cfg import DEFAULT_CFG_DICT

            kwargs.update({"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True})
        return kwargs

    def _warm_up(self) -> None:
        """Read the class names and run one tiny forward pass now, so a broken export or a bad device
        fails here with one line, not with a traceback at frame 1."""
        try:
            self.person_class = _person_class(self.model.names)
            from ultralytics.utils import LOGGER

            with quiet_loggers(LOGGER.name):  # exported models announce their runtime at INFO on first use
                self.model.predict(np.zeros((64, 64, 3), np.uint8), **self._kwargs())
                self._set_openvino_precision()
        except Exception as exc:  # noqa: BLE001 - onnxruntime, TensorRT and CUDA raise their own types
            raise DetectorError(f"detector weights '{self.config.weights}' failed to load or run on device "
                                f"'{self.config.device}' ({first_line(exc)}); check the device or pass "
                                f"another model with {FLAG}") from None

    def _set_openvino_precision(self) -> None:
        """Recompile an OpenVINO model with the configured precision hint (after the warm-up built it)."""
        inner = self._openvino_backend()
        if inner is None:
            return
        compiled = inner.ov_compiled_model
        hints = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
        if self.config.precision in hints and _hint(compiled) != hints[self.config.precision]:  # else: as asked
            import openvino as ov

            xml = next(Path(self.config.weights).glob("*.xml"))
            compile_model = inner.compile_model  # Ultralytics' partial(core.compile_model, device, config)
            hint = {"INFERENCE_PRECISION_HINT": hints[self.config.precision]}
            config = {**compile_model.keywords.get("config", {}), **hint}
            inner.compile_model = functools.partial(compile_model.func, *compile_model.args,
                                                    **{**compile_model.keywords, "config": config})
            core = ov.Core()
            _OPENVINO_KEEP.extend([inner.ov_compiled_model, core])  # see _OPENVINO_KEEP
            inner.ov_compiled_model = inner.compile_model(core.read_model(str(xml)))
        _OPENVINO_KEEP.append(self.model)
        hint = _hint(inner.ov_compiled_model)
        self.precision = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(hint, hint)

    def _openvino_backend(self):
        """Ultralytics' OpenVINO backend object of this detector, or None for the other runtimes."""
        inner = getattr(getattr(getattr(self.model, "predictor", None), "model", None), "backend", None)
        return inner if self.runtime == "openvino" and hasattr(inner, "ov_compiled_model") else None

    def set_threads(self, threads: int) -> None:
        """Run an OpenVINO model on `threads` CPU threads (0: OpenVINO's choice). Beside the emotion model
        (`emomon.pipeline.overlap`) half the cores measured faster than all of them on 2 cores: the two thread
        pools stop taking turns. Each count is compiled once; the other runtimes have no such setting."""
        inner = self._openvino_backend()
        if inner is None or threads == self.threads:
            return
        compiled = getattr(self, "_ov_by_threads", None)
        if compiled is None:
            compiled = self._ov_by_threads = {0: inner.ov_compiled_model}
        if threads not in compiled:
            import openvino as ov

            xml = next(Path(self.config.weights).glob("*.xml"))
            compile_model = inner.compile_model  # Ultralytics' partial(core.compile_model, device, config)
            config = {**compile_model.keywords.get("config", {}), "INFERENCE_NUM_THREADS": int(threads)}
            core = ov.Core()
            compiled[threads] = compile_model.func(core.read_model(str(xml)), *compile_model.args,
                                                   **{**compile_model.keywords, "config": config})
            _OPENVINO_KEEP.extend([compiled[threads], core])  # see _OPENVINO_KEEP
        inner.ov_compiled_model = compiled[threads]
        self.threads = threads

    def _autocast(self):
        """bf16 autocast for a .pt model on a CPU asked to run bf16; nothing otherwise."""
        if self.runtime == "torch" and self.config.precision == "bf16" and str(self.config.device) == "cpu":
            import torch

            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> str:
        """What runs the detector, for logs and summaries: e.g. 'openvino bf16'."""
        return f"{self.runtime} {self.precision}"

    def detect(self, frame: np.ndarray) -> sv.Detections:
        """Persons in one BGR frame, without tracking (`tracker_id` is None)."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray], conf: float | None = None) -> list[sv.Detections]:
        """Persons in several frames (e.g. one per stream) with one batched model call, without tracking;
        `conf` overrides the configured confidence threshold (the trackers want low-score boxes too)."""
        valid = [i for i, f in enumerate(frames) if f is not None and getattr(f, "size", 0)]
        out = [self._empty() for _ in frames]
        if len(valid) < len(frames):
            log.debug("detector: %d empty frame(s) give no persons", len(frames) - len(valid))
        if valid:
            with self._autocast():
                results = self.model.predict([frames[i] for i in valid], **self._kwargs(conf))
            for i, result in zip(valid, results):
                out[i] = self._filter(self._convert(result))
        return out

    def track(self, frame: np.ndarray, source: Hashable = 0) -> sv.Detections:
        """Persons in one video frame with persistent `tracker_id`s (per `source`)."""
        return self.track_batch([frame], [source])[0]

    def track_batch(self, frames: Sequence[np.ndarray], sources: Sequence[Hashable] | None = None
                    ) -> list[sv.Detections]:
        """One frame from each source (default: source i for frames[i]): one model call, one tracker each.

        As with Ultralytics' `model.track`, the tracker sees the low-score boxes too (down to its
        `track_low_thresh`), so a person it already follows stays tracked through a frame where the detector
        is less sure; a new person is reported only from a box scoring at least `config.conf`."""
        sources = list(range(len(frames))) if sources is None else list(sources)
        if len(sources) != len(frames):
            raise ValueError(f"track_batch got {len(frames)} frames but {len(sources)} sources")
        conf = self.config.conf
        detections = self.detect_batch(frames, low_threshold(self._tracker_settings, conf))
        out = []
        for frame, source, dets in zip(frames, sources, detections):
            if frame is None or not getattr(frame, "size", 0):
                dets.tracker_id = np.empty(0, int)
                out.append(dets)
                continue
            if source not in self._trackers:
                self._trackers[source] = new_tracker(self._tracker_settings)
            out.append(assign_ids(self._trackers[source], dets, frame, conf))
        return out

    def reset(self, source: Hashable | None = None) -> None:
        """Forget tracking state for `source` (None: every source); its ids restart at 1."""
        if source is None:
            self._trackers.clear()
        else:
            self._trackers.pop(source, None)

    def _convert(self, result) -> sv.Detections:
        dets = sv.Detections.from_ultralytics(result)
        dets.xyxy = dets.xyxy.astype(np.float32)
        if result.keypoints is not None:
            dets.data["keypoints"] = result.keypoints.data.cpu().numpy().astype(np.float32)
        return dets

    def _empty(self) -> sv.Detections:
        data = {"class_name": np.empty(0, str)}
        if self.has_keypoints:
            shape = tuple(getattr(self.model.model, "kpt_shape", None) or (17, 3))
            data["keypoints"] = np.empty((0, *shape), np.float32)
        return sv.Detections(xyxy=np.empty((0, 4), np.float32), confidence=np.empty(0, np.float32),
                             class_id=np.empty(0, int), data=data)

    def _filter(self, dets: sv.Detections) -> sv.Detections:
        """Drop boxes too small (or not finite) to crop a person from, logging why for each."""
        if not len(dets):
            return dets
        finite = np.isfinite(dets.xyxy).all(axis=1)
        wh = np.where(finite[:, None], dets.xyxy[:, 2:] - dets.xyxy[:, :2], 0)
        keep = finite & (wh.min(axis=1) >= self.config.min_box_size)
        for i in np.flatnonzero(~keep):
            why = ("non-finite box" if not finite[i] else
                   f"{wh[i, 0]:.0f}x{wh[i, 1]:.0f}px is below the {self.config.min_box_size}px minimum")
            log.debug("detector: skipped a person detection: %s", why)
        self.skipped += int((~keep).sum())
        return dets if keep.all() else dets[keep]


def _hint(compiled) -> str:
    """The precision an OpenVINO compiled model runs in: "f32", "bf16" or "f16" (its inference precision hint;
    on a CPU with native bfloat16 OpenVINO picks bf16 unless told otherwise)."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    return hint.to_string() if hasattr(hint, "to_string") else str(hint)  # an ov.Type


def _person_class(names: dict) -> int:
    """Index of the 'person' class (0 in COCO models); 0 with a warning when the model has none."""
    persons = [i for i, n in (names or {}).items() if str(n).lower() == "person"]
    if not persons:
        log.warning("detector: the model has no 'person' class; using class 0 (%s)", (names or {}).get(0))
    return persons[0] if persons else 0


def _runtime_of(weights: str) -> str:
    """The runtime Ultralytics picks for a weights path, by its suffix."""
    name = str(weights).rstrip("/")
    if name.endswith("_openvino_model") or name.endswith(".xml"):
        return "openvino"
    return {".onnx": "onnxruntime", ".engine": "tensorrt"}.get(Path(name).suffix, "torch")
