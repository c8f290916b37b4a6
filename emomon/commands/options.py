"""Command-line flags shared by several commands, defined once, with defaults read from the dataclasses
(`DetectorConfig`, `EmotionModelConfig`, `ReuseConfig`, `SmoothingConfig`, `PipelineConfig`), and the
functions that turn parsed flags back into those configs. Only cheap modules are imported here, so
`emomon --help` does not load torch."""

from __future__ import annotations

import argparse

from detector.config import DetectorConfig
from emomon.kernel import InputError
from emomon.pipeline.config import EmotionModelConfig, MonitorConfig, PipelineConfig, ReuseConfig
from emomon.pipeline.smoothing import SmoothingConfig

_DET, _MODEL, _REUSE, _SMOOTH, _PIPE = (DetectorConfig(), EmotionModelConfig(), ReuseConfig(), SmoothingConfig(),
                                        PipelineConfig())
BACKENDS_HELP = ("emotion model backend: torch, torch-fp16, torch-compile, onnxruntime, tensorrt "
                 "(tensorrt also runs the detector as a TensorRT engine)")
CATEGORIES = 26  # len(fusion.EMOTIC_CATEGORIES), written out: importing fusion loads torch (tests hold them equal)
STRIDE = 32  # the detector's largest stride: --imgsz must be a multiple (Ultralytics would round it with a warning)


# -- numeric flags: checked while parsing, so a bad value is one line (`argument --top-k: ...`), exit 2 ----------
def _parse_number(kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None


def integer(low: int, high: int | None = None, multiple: int = 1):
    """argparse `type`: an integer in low..high (high None: no upper bound), a multiple of `multiple`."""
    def parse(text: str) -> int:
        value = _parse_number(int, text)
        if value < low or (high is not None and value > high) or value % multiple:
            what = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
            if multiple > 1:
                what = f"a positive multiple of {multiple}" + (f" >= {low}" if low > multiple else "") + \
                    f" (e.g. {max(low, multiple * max(1, round(value / multiple)))})"
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value
    parse.__name__ = "integer"
    return parse


def fraction(low_open: bool = True, high_open: bool = True):
    """argparse `type`: a number between 0 and 1, each end included unless it is open (NaN/inf never pass)."""
    def parse(text: str) -> float:
        value = _parse_number(float, text)
        above = value > 0 if low_open else value >= 0
        below = value < 1 if high_open else value <= 1
        if not (above and below):
            ends = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
            raise argparse.ArgumentTypeError(f"must be a number in {ends}, not {text}")
        return value
    parse.__name__ = "fraction"
    return parse


def add_model_arguments(p: argparse.ArgumentParser, default: str = _MODEL.emotion_model,
                        backend: bool = False) -> None:
    """The emotion model's flags; `default` is the command's own default model (bench: random)."""
    p.add_argument("--emotion-model", default=default, metavar="zero-shot|random|NAME|PATH",
                   help="zero-shot CLIP, random weights (tests and benchmarks only), a registered model name, "
                        f"or a trained checkpoint file (default: {default})")
    p.add_argument("--scene-weights", metavar="PATH", help="local CLIP weights file (offline machines)")
    p.add_argument("--body-weights", metavar="PATH", help="local ResNet-18 weights file (offline machines)")
    p.add_argument("--device", default=_MODEL.device, help="cpu, cuda, cuda:0, ...")
    p.add_argument("--seed", type=integer(0), default=_MODEL.seed, help="seed for --emotion-model random (>= 0)")
    if backend:
        p.add_argument("--backend", default=_MODEL.backend, help=BACKENDS_HELP)


def add_detector_weights_argument(p, help_extra: str = "") -> None:
    p.add_argument("--detector-weights", default=_DET.weights, metavar="PATH",
                   help="Ultralytics weights: a name (downloaded once) or a local .pt/.onnx/.engine file" + help_extra)
    p.add_argument("--trust-detector-weights", action="store_true", default=_DET.trust_weights,
                   help=".pt detector weights load weights-only (an allowlist of model classes, so a file cannot "
                        "run code); this loads a trusted file that needs more with full unpickling")


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector")
    add_detector_weights_argument(g)
    g.add_argument("--conf", type=fraction(), default=_DET.conf, help="detection confidence threshold, in (0, 1)")
    g.add_argument("--iou", type=fraction(), default=_DET.iou, help="NMS IoU threshold, in (0, 1)")
    g.add_argument("--imgsz", type=integer(STRIDE, multiple=STRIDE), default=_DET.imgsz,
                   help=f"detector input size, a multiple of {STRIDE}")
    g.add_argument("--half", action="store_true", default=_DET.half, help="half precision detector (CUDA)")
    g.add_argument("--tracker", default=_DET.tracker, help="bytetrack.yaml or botsort.yaml")
    g.add_argument("--min-box-size", type=integer(1), default=_DET.min_box_size,
                   help="skip persons smaller than this (pixels, >= 1)")


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("smoothing and work reuse")
    g.add_argument("--smoothing", choices=["ema", "window", "none"], default=_SMOOTH.mode)
    g.add_argument("--smooth-alpha", type=fraction(high_open=False), default=_SMOOTH.alpha,
                   help="EMA weight of the newest frame, in (0, 1] (1 = no smoothing)")
    g.add_argument("--smooth-window", type=integer(1), default=_SMOOTH.window, help="frames in the window mean (>= 1)")
    g.add_argument("--scene-every", type=integer(1), default=None, metavar="K",
                   help=f"reuse the scene embedding for up to K frames (1 = every frame; default {_REUSE.scene_every})")
    g.add_argument("--scene-change", type=fraction(low_open=False, high_open=False), default=None,
                   help="frame change (mean abs grey difference, 0-1) that forces a new scene embedding "
                        f"(default {_REUSE.scene_change})")
    g.add_argument("--refresh-every", type=integer(1), default=None, metavar="M",
                   help="recompute a tracked person's emotions every M frames (1 = every frame; "
                        f"default {_REUSE.refresh_every})")
    g.add_argument("--every-frame", action="store_true", help="no reuse at all (same as K=1, M=1)")
    add_top_k_argument(g)


def add_top_k_argument(p) -> None:
    p.add_argument("--top-k", type=integer(1, CATEGORIES), default=_PIPE.top_k,
                   help=f"emotions shown per person (1 to {CATEGORIES})")


def model_config(args) -> EmotionModelConfig:
    return EmotionModelConfig(emotion_model=args.emotion_model, device=args.device, seed=args.seed,
                              scene_weights=args.scene_weights, body_weights=args.body_weights,
                              backend=getattr(args, "backend", _MODEL.backend))


def detector_config(args) -> DetectorConfig:
    """The detector flags a command has (predict and bench have only some); the rest keep their defaults."""
    names = ("conf", "iou", "imgsz", "half", "tracker", "min_box_size")
    values = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return DetectorConfig(weights=args.detector_weights, device=args.device,
                          trust_weights=getattr(args, "trust_detector_weights", False), **values)


def pipeline_config(args) -> PipelineConfig:
    """Reuse, smoothing and top-k from the flags; bad values are the user's input error."""
    try:
        reuse = ReuseConfig.every_frame() if args.every_frame else ReuseConfig()
        for name in ("scene_every", "scene_change", "refresh_every"):
            if getattr(args, name) is not None:
                setattr(reuse, name, getattr(args, name))
        if reuse.scene_every < 1 or reuse.refresh_every < 1:
            raise ValueError("--scene-every and --refresh-every must be >= 1 (1 = every frame)")
        smoothing = SmoothingConfig(args.smoothing, args.smooth_alpha, args.smooth_window)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return PipelineConfig(reuse=reuse, smoothing=smoothing, top_k=args.top_k)


def monitor_config(args) -> MonitorConfig:
    return MonitorConfig(detector=detector_config(args), model=model_config(args), pipeline=pipeline_config(args))
