"""Load Ultralytics weights by release name or path, failing with one line that says how to fix it.

A `.pt` checkpoint is a pickle, and unpickling runs whatever the file tells it to (a planted `__reduce__`
can call `os.system`). So `.pt` files load with `torch.load(weights_only=True)`: tensors, plain containers
and an allowlist of model classes (Ultralytics' `nn.tasks` models and `nn.modules` layers, `torch.nn`
layers) are all it can build; a file that needs anything else is refused before any of it runs, with one
line naming the first offending global. `trust=True` (`--trust-detector-weights`) loads a file the user
trusts with full unpickling, as Ultralytics does by default. Exported `.onnx`/`.engine`/`.torchscript`
files and folders are not pickles and load as before.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import pickletools
import re
import threading
import warnings
from pathlib import Path

from emomon.kernel import InputError, first_line

FLAG = "--detector-weights PATH"
TRUST_FLAG = "--trust-detector-weights"
PERSON_TASKS = ("detect", "segment", "pose", "obb")  # tasks whose results carry boxes
# Serialises loads: the safe mode is switched on for the duration of one `YOLO()` call (a module global).
_LOAD_LOCK = threading.Lock()
# Globals a weights-only load may resolve, for naming the offending one (anything else is reported).
_EXPECTED = ("torch.", "collections.", "ultralytics.", "numpy.", "_codecs.", "builtins.getattr")


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


def load_yolo(weights: str, trust: bool = False, label: str | None = None):
    """`YOLO(weights)` for a person detector, or a `DetectorError` for each way that fails.

    Bare release names are looked up in the working folder and Ultralytics' weights folder, then downloaded;
    anything else must be an existing file (or a model YAML Ultralytics knows, for random-init tests).
    `.pt` checkpoints load weights-only (see the module docstring) unless `trust` is set. `label` names the
    weights in messages (default: `weights` itself).
    """
    from ultralytics.utils import SETTINGS

    name = str(weights).strip()
    shown = label or name
    path = Path(name).expanduser()
    cache = SETTINGS.get("weights_dir")
    if not path.exists() and not is_downloadable(name) and path.suffix not in (".yaml", ".yml"):
        raise DetectorError(f"detector weights '{shown}' not found; pass an existing model file with {FLAG}")
    target = str(path) if path.exists() else name
    safe = not trust and path.suffix not in (".yaml", ".yml")  # a YAML builds a fresh model: nothing to unpickle
    try:
        with _LOAD_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on stderr: one line only
            model = _load_safely(target, shown) if safe else _yolo(target)
    except DetectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ultralytics raises many types for bad or unreachable files
        offending = _offending_global(exc, target) if safe else None
        if offending:
            raise DetectorError(
                f"detector weights '{shown}' were refused: they contain objects outside the allowlist of model "
                f"classes (first: {offending}), and loading them could run code; pass a YOLO .pt/.onnx/.engine "
                f"file with {FLAG}, or add {TRUST_FLAG} if you trust this file") from None
        if path.exists():
            detail = (_unreadable(exc) if safe else None) or first_line(exc)
            raise DetectorError(f"detector weights '{shown}' are not a valid Ultralytics model "
                                f"({detail}); pass a YOLO .pt/.onnx/.engine file with {FLAG}") from None
        if not is_downloadable(name):
            raise DetectorError(f"detector weights '{shown}' not found ({first_line(exc)}); "
                                f"pass an existing model file with {FLAG}") from None
        raise DetectorError(
            f"cannot get detector weights '{shown}': not in the working folder or Ultralytics' weights folder "
            f"{cache}, and the download failed (offline?); download it on a connected machine into {cache} "
            f"or pass the file with {FLAG}") from None
    if model.task not in PERSON_TASKS:
        raise DetectorError(f"detector weights '{shown}' are a '{model.task}' model without boxes; "
                            f"pass a detect, segment or pose model with {FLAG}")
    return model


def _yolo(target: str):
    from ultralytics import YOLO

    return YOLO(target)


# ---- the weights-only load ---------------------------------------------------------------------------------

def _load_safely(target: str, shown: str):
    """`YOLO(target)` with every `.pt` checkpoint unpickled weights-only.

    Ultralytics (8.4+) has this mode itself (`ULTRALYTICS_SAFE_LOAD`, read once at import into
    `ultralytics.nn.tasks.SAFE_LOAD`): its `torch_safe_load` then calls `torch.load(weights_only=True)` with an
    allowlist of the model classes the checkpoint names, and never falls back to a full unpickle. We switch it
    on for this one call (under `_LOAD_LOCK`), so the file is read and unpickled exactly once, safely.
    Older Ultralytics: `_verify_weights_only` first, then `YOLO()` (see there).
    """
    from ultralytics.nn import tasks

    if _ultralytics_safe_mode(tasks):
        with _module_flag(tasks, "SAFE_LOAD", True):
            return _yolo(target)
    from ultralytics.utils.checks import check_model_file_from_stem
    from ultralytics.utils.downloads import attempt_download_asset

    file = check_model_file_from_stem(target)  # Ultralytics reads "yolo11n" as "yolo11n.pt"
    if str(file).rpartition(".")[-1].lower() == "pt":
        file = str(attempt_download_asset(file))  # a release name: the local (downloaded) file
        _verify_weights_only(file, shown)
    # The second read below unpickles the same bytes the weights-only load accepted; a pickle that loads
    # weights-only builds only allowlisted classes, so it cannot run code in the full unpickle either.
    return _yolo(file)


def _ultralytics_safe_mode(tasks) -> bool:
    import inspect

    safe = getattr(tasks, "_SafeLoad", None)
    return (bool(getattr(safe, "SUPPORTED", False)) and hasattr(tasks, "SAFE_LOAD")
            and "safe_only" in inspect.signature(tasks.torch_safe_load).parameters)


@contextlib.contextmanager
def _module_flag(module, name: str, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _verify_weights_only(file: str, shown: str) -> None:
    """`torch.load(file, weights_only=True)` with our allowlist: the model classes the checkpoint names in
    `torch.nn.modules.*`, `ultralytics.nn.modules.*` and `ultralytics.nn.tasks`, a `getattr` limited to
    module attributes, and the few data types official checkpoints carry. Raises what torch raises."""
    import torch

    serialization = torch.serialization
    if not hasattr(serialization, "get_unsafe_globals_in_checkpoint"):
        raise DetectorError(f"detector weights '{shown}' cannot be loaded safely with torch {torch.__version__} "
                            f"(needs torch >= 2.6 or a newer ultralytics); upgrade, or add {TRUST_FLAG} if you "
                            f"trust this file")
    try:
        needed = serialization.get_unsafe_globals_in_checkpoint(file)
    except ValueError:  # not a torch.save zip archive: torch.load below says what it is
        needed = []
    with serialization.safe_globals(_allowlist(needed)):
        torch.load(file, map_location="cpu", weights_only=True)


def _allowlist(needed: list[str]) -> list:
    import pathlib

    import numpy as np
    import torch
    from ultralytics.utils import IterableSimpleNamespace

    scalar = np.float64(0).__reduce__()[0]
    data = {"numpy.dtype": np.dtype, "numpy.core.multiarray.scalar": scalar,
            "numpy._core.multiarray.scalar": scalar, "builtins.getattr": _module_getattr,
            "ultralytics.utils.IterableSimpleNamespace": IterableSimpleNamespace,
            "ultralytics.yolo.utils.IterableSimpleNamespace": IterableSimpleNamespace,
            "pathlib.PosixPath": pathlib.Path, "pathlib.WindowsPath": pathlib.Path}
    entries = []
    for name in needed:
        module, _, attr = name.rpartition(".")
        if name in data:
            entries.append((data[name], name))
        elif module == "ultralytics.nn.tasks" or module.startswith(("torch.nn.modules.", "ultralytics.nn.modules.")):
            try:
                obj = getattr(importlib.import_module(module), attr, None)
            except ImportError:
                continue
            if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
                entries.append((obj, name))
    if "numpy.dtype" in needed:
        entries.append(type(np.dtype(np.float64)))  # built at load time, absent from the scan
    return entries


def _module_getattr(obj, name: str):
    """`getattr` as checkpoints use it (`Detect.forward`, an enum member), refusing anything else."""
    import enum

    import torch

    if isinstance(obj, type) and not name.startswith("__") and issubclass(obj, (torch.nn.Module, enum.Enum)):
        return getattr(obj, name)
    if isinstance(obj, torch.nn.Module) and name in ("forward", "forward_fuse"):
        return getattr(type(obj), name).__get__(obj)
    raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) refused in a weights-only load")


# ---- naming what was refused -------------------------------------------------------------------------------

def _chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _offending_global(exc: BaseException, target: str) -> str | None:
    """The first global a weights-only load refused, when `exc` is such a refusal (else None: the file is
    damaged or not a pickle, and the caller says so)."""
    chain = _chain(exc)
    if not any(isinstance(e, pickle.UnpicklingError) for e in chain):
        return None
    for e in chain:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:  # torch writes builtins without their module ("GLOBAL exec")
            return found.group(1) if "." in found.group(1) else f"builtins.{found.group(1)}"
    return _first_unexpected_global(target)  # e.g. a protocol-4 pickle, which torch stops at before its globals


def _unreadable(exc: BaseException) -> str | None:
    """Why the weights-only unpickler stopped on a file that names no global (bytes that are not a pickle)."""
    for e in _chain(exc):
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
        if isinstance(e, pickle.UnpicklingError) and found:
            return f"not a PyTorch checkpoint: the weights-only loader stopped at '{found.group(1).strip()[:80]}'"
    return None


def _first_unexpected_global(target: str) -> str | None:
    """Scan a plain pickle's opcodes (no code runs) for the first global outside torch, numpy, Ultralytics."""
    try:
        data = Path(target).read_bytes()
    except OSError:
        return None
    strings, memo, top = [], {}, None  # `top`: the string on top of the pickle stack, if it is one
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            kind = op.name
            if kind == "MEMOIZE":
                memo[len(memo)] = top
                continue
            if kind in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = top
                continue
            if kind in ("GET", "BINGET", "LONG_BINGET"):
                top = memo.get(arg)
            else:
                top = arg if isinstance(arg, str) and kind.endswith(("UNICODE", "STRING")) else None
            if top is not None:
                strings.append(top)
            name = None
            if kind in ("GLOBAL", "INST"):
                name = arg.replace(" ", ".")
            elif kind == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            if name and not name.startswith(_EXPECTED):
                return name
    except Exception:  # noqa: BLE001 - not a pickle (or a damaged one): nothing to name
        return None
    return None
