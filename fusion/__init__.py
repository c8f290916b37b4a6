"""The two-stream emotion model: body crop (ResNet-18) + whole frame (CLIP ViT-B/16) -> 26 EMOTIC
categories (multi-label) + valence/arousal/dominance; plus a zero-shot CLIP head that needs no training.

Example (random tiny model, runs anywhere):

    >>> import numpy as np
    >>> from fusion import Predictor, create_model
    >>> predictor = Predictor(create_model("two_stream_tiny", pretrained=False))
    >>> people = predictor.predict(np.zeros((240, 320, 3), np.uint8), [[10, 10, 120, 230]])
    >>> len(people[0].probs), people[0].top(1)[0][0] in EMOTIC_CATEGORIES
    (26, True)
"""

from fusion.backends import InferenceBackend, TorchBackend, create_backend, list_backends, register_backend
from fusion.base import EmotionModel
from fusion.categories import (
    CATEGORY_DESCRIPTIONS,
    EMOTIC_CATEGORIES,
    NUM_CATEGORIES,
    VAD_MAX,
    VAD_MIN,
    VAD_NAMES,
)
from fusion.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from fusion.config import TwoStreamConfig, ZeroShotConfig
from fusion.detector_export import detector_weights_for_backend, export_detector
from fusion.export import OnnxFileError, ensure_onnx, export_onnx, read_onnx_metadata, weights_sha256
from fusion.factory import create_model, list_models, model_entry, register_model
from fusion.loading import RANDOM_WARNING, describe_model, load_emotion_model
from fusion.predictor import PersonEmotion, Predictor
from fusion.preprocess import Crops, Preprocess, crop_persons, preprocess_images
from fusion.two_stream import TwoStreamModel
from fusion.weights import WeightsUnavailableError
from fusion.zero_shot import ZeroShotCLIP

ModelConfig = TwoStreamConfig  # the name the training code uses

__all__ = [
    "CATEGORY_DESCRIPTIONS", "EMOTIC_CATEGORIES", "NUM_CATEGORIES", "VAD_MAX", "VAD_MIN", "VAD_NAMES",
    "CheckpointError", "Crops", "EmotionModel", "InferenceBackend", "ModelConfig", "PersonEmotion",
    "Predictor", "Preprocess", "RANDOM_WARNING", "TorchBackend", "TwoStreamConfig", "TwoStreamModel",
    "WeightsUnavailableError", "ZeroShotCLIP", "ZeroShotConfig", "create_backend", "create_model",
    "crop_persons", "describe_model", "list_backends", "list_models", "load_checkpoint",
    "load_emotion_model", "model_entry", "preprocess_images", "read_checkpoint", "register_backend",
    "register_model", "save_checkpoint",
    # accelerated inference (ONNX export, detector export)
    "OnnxFileError", "detector_weights_for_backend", "ensure_onnx", "export_detector", "export_onnx",
    "read_onnx_metadata", "weights_sha256",
]
