"""Command-line flags shared by several commands, defined once, with defaults read from the dataclasses
(`DetectorConfig`, `EmotionModelConfig`, `ReuseConfig`, `SmoothingConfig`, `PipelineConfig`), and the
functions that turn parsed flags back into those configs. Only cheap modules are imported here, so
`emomon --help` does not load torch."""

from __future__ import annotations

import argparse

from detector.config import DetectorConfig
from emomon.kernel import InputError
from emomon.pipeline.config import (
    ANONYMIZE_MODES,
    EmotionModelConfig,
    MonitorConfig,
    PipelineConfig,
    PrivacyConfig,
    ReuseConfig,
)
from emomon.pipeline.smoothing import SmoothingConfig

_DET, _MODEL, _REUSE, _SMOOTH, _PIPE = (DetectorConfig(), EmotionModelConfig(), ReuseConfig(), SmoothingConfig(),
                                        PipelineConfig())
BACKENDS_HELP = ("emotion model backend: torch, torch-compile, onnxruntime, tensorrt (tensorrt also runs the "
                 "detector as a TensorRT engine); torch-fp16 is the old name of --backend torch --precision bf16 "
                 "on a CPU, fp16 on CUDA")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")  # fusion.backends.PRECISIONS, written out (no torch import)
PREPROCESS_MODES = ("auto", "cpu", "device")  # fusion.models.device_preprocess.PREPROCESS_MODES, likewise
PRECISION_HELP = ("number format of the emotion model and the detector: auto picks bf16 on a CPU with native "
                  "bfloat16 (AVX-512 BF16 or AMX), fp16 on CUDA, fp32 elsewhere; int8 needs --backend onnxruntime "
                  f"or tensorrt (default: {_MODEL.precision})")
DETECTOR_RUNTIMES = ("auto", "torch", "openvino", "onnxruntime", "tensorrt")  # detector.RUNTIMES, written out
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
    if backend:  # the commands that compute emotions (run, predict, app)
        p.add_argument("--backend", default=_MODEL.backend, help=BACKENDS_HELP)
        p.add_argument("--precision", choices=PRECISIONS, default=_MODEL.precision, help=PRECISION_HELP)
        add_preprocess_argument(p)
        add_temporal_arguments(p)


def add_preprocess_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preprocess", choices=PREPROCESS_MODES, default=_MODEL.preprocess,
                   help="where person crops and the scene image are resized and normalised: cpu (OpenCV), device "
                        "(each frame uploaded once, all crops in one roi_align call on the model's device), auto "
                        f"(device on CUDA, cpu elsewhere, where OpenCV measured faster; default: {_MODEL.preprocess})")


def add_temporal_arguments(p: argparse.ArgumentParser) -> None:
    """Emotions over time (`emomon train-temporal`) and user-defined zero-shot labels."""
    p.add_argument("--temporal-model", default=_MODEL.temporal_model, metavar="PATH",
                   help="a temporal head (emomon train-temporal) over each track's recent frame features; its "
                        "label space replaces the frame model's, and it replaces --smoothing")
    p.add_argument("--labels", default=_MODEL.labels, metavar="FILE",
                   help="a YAML file of your own zero-shot labels (name + description, or components for a "
                        "compound); needs the zero-shot model")
    p.add_argument("--label-window", type=integer(1), default=_MODEL.label_window, metavar="N",
                   help="with --labels in video: average a track's last N frame embeddings before comparing "
                        f"with the label texts (1 = per frame; default {_MODEL.label_window})")


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
    g.add_argument("--detector-runtime", choices=DETECTOR_RUNTIMES, default=_DET.runtime,
                   help="what runs the detector: auto (OpenVINO in bf16 on a CPU with native bfloat16, exported once "
                        "into the cache; else the .pt model in torch), torch, openvino, onnxruntime, tensorrt")


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


def add_privacy_arguments(p: argparse.ArgumentParser, anonymize: str = PrivacyConfig.anonymize) -> None:
    """What the outputs keep of people; `anonymize` is the command's own default (the app hides faces)."""
    g = p.add_argument_group("privacy")
    g.add_argument("--anonymize", choices=ANONYMIZE_MODES, default=anonymize,
                   help="hide faces (from the pose keypoints, else the top of the person box) in the annotated "
                        "video, window and app images; the emotion model still sees the original pixels "
                        f"(default: {anonymize})")
    g.add_argument("--no-keypoints", dest="keypoints", action="store_false", default=PrivacyConfig.keypoints,
                   help="leave the body keypoints (pose geometry) out of the JSONL (the CSV has none)")


def add_top_k_argument(p) -> None:
    p.add_argument("--top-k", type=integer(1, CATEGORIES), default=_PIPE.top_k,
                   help=f"emotions shown per person (1 to {CATEGORIES})")


def model_config(args) -> EmotionModelConfig:
    return EmotionModelConfig(emotion_model=args.emotion_model, device=args.device, seed=args.seed,
                              scene_weights=args.scene_weights, body_weights=args.body_weights,
                              backend=getattr(args, "backend", _MODEL.backend),
                              precision=getattr(args, "precision", _MODEL.precision),
                              preprocess=getattr(args, "preprocess", _MODEL.preprocess),
                              temporal_model=getattr(args, "temporal_model", None),
                              labels=getattr(args, "labels", None),
                              label_window=getattr(args, "label_window", _MODEL.label_window))


def detector_config(args) -> DetectorConfig:
    """The detector flags a command has (predict and bench have only some); the rest keep their defaults."""
    names = ("conf", "iou", "imgsz", "half", "tracker", "min_box_size", "precision")
    values = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if getattr(args, "detector_runtime", None):
        values["runtime"] = args.detector_runtime
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
    privacy = PrivacyConfig(getattr(args, "anonymize", PrivacyConfig.anonymize),
                            getattr(args, "keypoints", PrivacyConfig.keypoints))
    return PipelineConfig(reuse=reuse, smoothing=smoothing, top_k=args.top_k, privacy=privacy)


def monitor_config(args) -> MonitorConfig:
    return MonitorConfig(detector=detector_config(args), model=model_config(args), pipeline=pipeline_config(args))


# -- live sources and long runs (`emomon run`) -------------------------------------------------------------------
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """argparse `type`: a duration of at least 1 s: `90` or `90s`, `15m`, `1h`, `1.5h`, `1d`."""
    value = text.strip().lower()
    scale = _DURATION_UNITS.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration (e.g. 90s, 15m, 1h, 1d)") from None
    if not 1 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be at least 1 s, not {text}")
    return seconds


def positive(text: str) -> float:
    """argparse `type`: a finite number above 0."""
    value = _parse_number(float, text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """Reconnecting to a camera that drops, and rolling the outputs over on a long run."""
    from stream.config import SourceConfig

    src = SourceConfig()
    g = p.add_argument_group("live sources and long runs")
    g.add_argument("--reconnect-attempts", type=integer(0), default=src.reconnect_attempts, metavar="N",
                   help="tries to get a dropped network stream or webcam back before the run ends with an error "
                        "(0 = never; default: forever). Files never reconnect")
    g.add_argument("--reconnect-max-wait", type=positive, default=src.reconnect_max_backoff_s, metavar="S",
                   help=f"longest wait between two tries, in seconds; waits start at {src.reconnect_backoff_s:g} s and "
                        f"double up to it, minus up to {round(src.reconnect_jitter * 100)}%% jitter "
                        f"(default {src.reconnect_max_backoff_s:g})")
    g.add_argument("--rotate", type=duration, default=None, metavar="DURATION",
                   help="start new JSONL, CSV and video files every DURATION (90s, 15m, 1h, 1d), named with their "
                        "start time; the summary is rewritten at each rotation")


def source_config(args):
    """The frame source's settings from the flags (a command without the live flags gets the defaults)."""
    from stream.config import SourceConfig

    src = SourceConfig()
    return SourceConfig(reconnect_attempts=getattr(args, "reconnect_attempts", src.reconnect_attempts),
                        reconnect_max_backoff_s=getattr(args, "reconnect_max_wait", src.reconnect_max_backoff_s))
