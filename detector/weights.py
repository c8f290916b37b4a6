"""Load Ultralytics weights by release name or path, failing with one line that says how to fix it."""

from __future__ import annotations

from pathlib import Path

from emomon.kernel import InputError, first_line

FLAG = "--detector-weights PATH"
PERSON_TASKS = ("detect", "segment", "pose", "obb")  # tasks whose results carry boxes


class DetectorError(InputError):
    """Detector weights or tracker settings that are missing, unreadable or unusable."""


def is_downloadable(weights: str) -> bool:
    """A URL or a bare Ultralytics release name ('yolo11n-pose.pt') that `YOLO()` would try to download."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if weights.lower().startswith(("http://", "https://", "ul://")):
        return True
    bare = Path(weights).name == weights
    release = weights in GITHUB_ASSETS_NAMES or (weights.startswith("yolo") and weights.endswith(".pt"))
    return bare and release


def load_yolo(weights: str):
    """`YOLO(weights)` for a person detector, or a `DetectorError` for each way that fails.

    Bare release names are looked up in the working folder and Ultralytics' weights folder, then downloaded;
    anything else must be an existing file (or a model YAML Ultralytics knows, for random-init tests).
    """
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    name = str(weights).strip()
    path = Path(name).expanduser()
    cache = SETTINGS.get("weights_dir")
    if not path.exists() and not is_downloadable(name) and path.suffix not in (".yaml", ".yml"):
        raise DetectorError(f"detector weights '{name}' not found; pass an existing model file with {FLAG}")
    try:
        model = YOLO(str(path) if path.exists() else name)
    except Exception as exc:  # noqa: BLE001 - Ultralytics raises many types for bad or unreachable files
        if path.exists():
            raise DetectorError(f"detector weights '{name}' are not a valid Ultralytics model "
                                f"({first_line(exc)}); pass a YOLO .pt/.onnx/.engine file with {FLAG}"
                                ) from None
        if not is_downloadable(name):
            raise DetectorError(f"detector weights '{name}' not found ({first_line(exc)}); "
                                f"pass an existing model file with {FLAG}") from None
        raise DetectorError(
            f"cannot get detector weights '{name}': not in the working folder or Ultralytics' weights folder "
            f"{cache}, and the download failed (offline?); download it on a connected machine into {cache} "
            f"or pass the file with {FLAG}") from None
    if model.task not in PERSON_TASKS:
        raise DetectorError(f"detector weights '{name}' are a '{model.task}' model without boxes; "
                            f"pass a detect, segment or pose model with {FLAG}")
    return model
