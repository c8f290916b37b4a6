"""The two-stream emotion model: body crop (ResNet-18) + whole frame (CLIP ViT-B/16) -> 26 EMOTIC
categories (multi-label) + valence/arousal/dominance; plus a zero-shot CLIP head that needs no training.

    fusion.models     the models, their configs, weights, preprocessing, factory, checkpoints, `model.source`
    fusion.export     deployment files: ONNX graphs (fp32/fp16/int8) and TensorRT engines
    fusion.backends   what runs a model: torch, torch-fp16/compile, onnxruntime, tensorrt
    fusion.predictor  frames + person boxes -> per-person emotions, through a backend
    fusion.vlm        vision-language models asked per person over HTTP or transformers (optional, slow path)

Imports read one way: models <- export <- backends <- predictor (and this package re-exports the API).

Example (random tiny model, runs anywhere):

    >>> import numpy as np
    >>> from fusion import Predictor, create_model
    >>> predictor = Predictor(create_model("two_stream_tiny", pretrained=False))
    >>> people = predictor.predict(np.zeros((240, 320, 3), np.uint8), [[10, 10, 120, 230]])
    >>> len(people[0].probs), people[0].top(1)[0][0] in EMOTIC_CATEGORIES
    (26, True)
"""

from fusion.backends import (
    PRECISIONS,
    InferenceBackend,
    Precision,
    TorchBackend,
    check_backend,
    create_backend,
    list_backends,
    register_backend,
    resolve_backend,
    resolve_precision,
)
from fusion.export import OnnxFileError, ensure_onnx, export_onnx, read_onnx_metadata, weights_sha256
from fusion.models import (
    CATEGORY_DESCRIPTIONS,
    EMOTIC_CATEGORIES,
    NUM_CATEGORIES,
    PREPROCESS_MODES,
    RANDOM_WARNING,
    VAD_MAX,
    VAD_MIN,
    VAD_NAMES,
    CheckpointError,
    Crops,
    EmotionModel,
    ModelSource,
    Preprocess,
    TwoStreamConfig,
    TwoStreamModel,
    WeightsUnavailableError,
    ZeroShotCLIP,
    ZeroShotConfig,
    create_model,
    crop_persons,
    describe_model,
    list_models,
    load_checkpoint,
    load_emotion_model,
    model_entry,
    preprocess_images,
    read_checkpoint,
    register_model,
    save_checkpoint,
)
from fusion.models.label_file import LabelFileError, LabelSet, read_label_file
from fusion.models.labels import ABAW, EMOTIC, Dimension, LabelSpace
from fusion.predictor import Predictor
from fusion.results import PersonResult, top_emotions
from fusion.temporal import (
    TemporalConfig,
    TemporalModel,
    TrackPool,
    create_temporal_model,
    load_temporal,
    save_temporal,
)
from fusion.vlm import VlmAnswer, VlmConfig, VlmEmotionModel, is_vlm_spec, load_vlm

__all__ = [
    "CATEGORY_DESCRIPTIONS", "EMOTIC_CATEGORIES", "NUM_CATEGORIES", "VAD_MAX", "VAD_MIN", "VAD_NAMES",
    "PRECISIONS", "Precision", "resolve_backend", "resolve_precision",
    "CheckpointError", "Crops", "EmotionModel", "InferenceBackend", "ModelSource", "PersonResult",
    "Predictor", "Preprocess", "RANDOM_WARNING", "TorchBackend", "TwoStreamConfig", "TwoStreamModel",
    "WeightsUnavailableError", "ZeroShotCLIP", "ZeroShotConfig", "check_backend", "create_backend", "create_model",
    "crop_persons", "describe_model", "list_backends", "list_models", "load_checkpoint",
    "load_emotion_model", "model_entry", "preprocess_images", "read_checkpoint", "register_backend",
    "register_model", "save_checkpoint", "top_emotions", "PREPROCESS_MODES",
    # label spaces, user labels, emotions over time
    "ABAW", "EMOTIC", "Dimension", "LabelFileError", "LabelSet", "LabelSpace", "read_label_file",
    "TemporalConfig", "TemporalModel", "TrackPool", "create_temporal_model", "load_temporal", "save_temporal",
    # vision-language models (an optional backend: fusion.vlm)
    "VlmAnswer", "VlmConfig", "VlmEmotionModel", "is_vlm_spec", "load_vlm",
    # accelerated inference (ONNX export)
    "OnnxFileError", "ensure_onnx", "export_onnx", "read_onnx_metadata", "weights_sha256",
]
