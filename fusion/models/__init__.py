"""The emotion models themselves: the `EmotionModel` interface, the two-stream and zero-shot models, their
configs, towers, weights, preprocessing, the name-based factory, checkpoints and `--emotion-model` loading.

The bottom of `fusion`: nothing here imports `fusion.export`, `fusion.backends` or `fusion.predictor`.
"""

from fusion.models.base import EmotionModel
from fusion.models.categories import (
    CATEGORY_DESCRIPTIONS,
    EMOTIC_CATEGORIES,
    NUM_CATEGORIES,
    VAD_MAX,
    VAD_MIN,
    VAD_NAMES,
)
from fusion.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from fusion.models.config import TwoStreamConfig, ZeroShotConfig
from fusion.models.device_preprocess import PREPROCESS_MODES, resolve_preprocess
from fusion.models.factory import create_model, list_models, model_entry, register_model
from fusion.models.label_file import LabelFileError, LabelSet, read_label_file
from fusion.models.labels import ABAW, EMOTIC, Dimension, LabelSpace, label_space
from fusion.models.loading import RANDOM_WARNING, describe_model, load_emotion_model
from fusion.models.preprocess import Crops, Preprocess, crop_persons, preprocess_images
from fusion.models.source import ModelSource
from fusion.models.two_stream import TwoStreamModel
from fusion.models.weights import WeightsUnavailableError
from fusion.models.zero_shot import ZeroShotCLIP

__all__ = [
    "CATEGORY_DESCRIPTIONS", "EMOTIC_CATEGORIES", "NUM_CATEGORIES", "VAD_MAX", "VAD_MIN", "VAD_NAMES",
    "CheckpointError", "Crops", "EmotionModel", "ModelSource", "Preprocess", "RANDOM_WARNING", "TwoStreamConfig",
    "TwoStreamModel", "WeightsUnavailableError", "ZeroShotCLIP", "ZeroShotConfig", "create_model",
    "crop_persons", "describe_model", "list_models", "load_checkpoint", "load_emotion_model", "model_entry",
    "preprocess_images", "read_checkpoint", "register_model", "save_checkpoint",
    "ABAW", "EMOTIC", "Dimension", "LabelFileError", "LabelSet", "LabelSpace", "label_space", "read_label_file",
    "PREPROCESS_MODES", "resolve_preprocess",
]
