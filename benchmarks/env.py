"""The environment a benchmark ran in: device, driver, library versions, CPU. Every report carries it, so
numbers from different machines and runs can be told apart."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("emomon", "torch", "torchvision", "open_clip_torch", "ultralytics", "supervision", "onnxruntime",
            "onnxruntime-gpu", "onnx", "openvino", "tensorrt", "opencv-python", "numpy")


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None; reads metadata only (does not import the package)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _tensorrt_version() -> str | None:
    version = package_version("tensorrt") or package_version("tensorrt-cu12") or package_version("tensorrt_cu13")
    if version:
        return version
    try:  # a TensorRT from a system install (no pip metadata)
        import tensorrt

        return str(tensorrt.__version__)
    except Exception:  # noqa: BLE001 - absent or broken: not importable is the answer
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(max_paths: int = 40) -> dict:
    """The commit the code came from (`git rev-parse HEAD`) and whether the tree had changes (`dirty`, with the
    changed paths, at most `max_paths`); None values outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=normal")
    paths = [line[3:] for line in (status or "").splitlines() if line.strip()]
    return {"commit": commit.strip() if commit else None,
            "dirty": None if status is None else bool(paths),
            "changed_paths": paths[:max_paths], "changed_count": len(paths)}


def environment(device: str = "cpu") -> dict:
    """GPU name, driver, CUDA, cuDNN, library versions, CPU model and counts, threads, time, git commit."""
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    env = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": None,
        "gpu_memory_gb": None,
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "driver": None,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tensorrt": _tensorrt_version(),
        "versions": {name: package_version(name) for name in PACKAGES},
        "emomon": package_version("emomon"),
    }
    env["git"] = git_state()
    env["git_commit"] = (env["git"]["commit"] or "")[:7] or None
    if str(device).startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                   gpu_capability=f"{props.major}.{props.minor}", gpu_sms=props.multi_processor_count,
                   driver=_nvidia_driver())
    return env
