"""Model benchmarks: the scene stream, the body stream, the heads and the detector, each alone, over a sweep of
batch sizes, per backend. Every point is a warmed-up, synchronized loop; figures are medians with spread.

A point reports images/s (batch / median seconds per batch), ms per batch (p50/p95 and more), the peak GPU
memory torch allocated (CUDA only; ONNX Runtime and TensorRT allocate outside torch, so the device-wide
memory in use is recorded too) and the achieved fraction of the device's peak FLOP/s.
"""

from __future__ import annotations

import copy
import gc
import logging
import time

import torch

from benchmarks.flops import peak_for, precision_of
from benchmarks.stats import is_cuda, rate, summarize, time_loop

log = logging.getLogger(__name__)

STREAMS = ("scene", "body", "heads")


def _memory_reset(device) -> None:
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def _memory(device) -> dict:
    if not is_cuda(device):
        return {"peak_memory_mb": None, "device_memory_used_mb": None}
    dev = torch.device(device)
    free, total = torch.cuda.mem_get_info(dev)
    return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1),
            "device_memory_used_mb": round((total - free) / 2**20, 1)}


def _free(device) -> None:
    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()


def make_point(batch_size: int, loop: dict, flops_per_image: float | None, peak_flops: float | None,
               memory: dict) -> dict:
    """One sweep point from a `time_loop` result."""
    samples = loop["samples_s"]
    ms = summarize(samples)
    median_s = ms["p50"] / 1000.0
    ips = rate(batch_size, median_s)
    achieved = flops_per_image * ips if flops_per_image else None
    return {
        "batch_size": batch_size,
        "iterations": len(samples),
        "images_per_s": ips,
        "images_per_s_iqr": [rate(batch_size, ms["p75"] / 1000.0), rate(batch_size, ms["p25"] / 1000.0)],
        "ms_per_batch": ms,
        "ms_per_image": ms["p50"] / batch_size,
        "warmup_ms": [1000.0 * s for s in loop["warmup_s"]],
        "achieved_flops_per_s": achieved,
        "fraction_of_peak": achieved / peak_flops if achieved and peak_flops else None,
        **memory,
    }


class Sweep:
    """Runs one function over batch sizes under a time budget; returns the list of points."""

    def __init__(self, device, warmup: int, repeats: int, max_seconds: float, deadline: float | None = None):
        self.device, self.warmup, self.repeats, self.max_seconds = device, warmup, repeats, max_seconds
        self.deadline = deadline  # a perf_counter time (the bench's --budget-s): later points are skipped

    def run(self, make_fn, batch_sizes, flops_per_image=None, peak_flops=None) -> list[dict]:
        points, per_image_s = [], None
        for bs in batch_sizes:
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                points.append({"batch_size": bs, "skipped": "the --budget-s share of this part was spent"})
                continue
            if per_image_s is not None:
                predicted = per_image_s * bs * (self.warmup + 3)
                if predicted > 4 * self.max_seconds:
                    why = f"predicted {predicted:.0f} s exceeds the time budget ({4 * self.max_seconds:g} s)"
                    points.append({"batch_size": bs, "skipped": why})
                    continue
            try:
                fn = make_fn(bs)
                _memory_reset(self.device)
                seconds = self.max_seconds
                if self.deadline is not None:
                    seconds = max(0.0, min(seconds, self.deadline - time.perf_counter()))
                loop = time_loop(fn, self.device, self.warmup, self.repeats, seconds)
                point = make_point(bs, loop, flops_per_image, peak_flops, _memory(self.device))
            except torch.cuda.OutOfMemoryError:
                _free(self.device)
                points.append({"batch_size": bs, "skipped": "out of GPU memory"})
                break
            except Exception as exc:  # noqa: BLE001 - e.g. a batch beyond what an engine takes
                _free(self.device)
                points.append({"batch_size": bs, "skipped": f"failed: {type(exc).__name__}: {exc}"[:300]})
                break
            points.append(point)
            per_image_s = point["ms_per_image"] / 1000.0
            del fn
        return points


def _stream_fn(backend, stream: str, batch_size: int):
    model, device = backend.model, backend.device
    if stream == "scene":
        x = torch.randn(batch_size, 3, model.scene_preprocess.size, model.scene_preprocess.size, device=device)
        return lambda: backend.encode_scene(x)
    if stream == "body":
        x = torch.randn(batch_size, 3, model.body_preprocess.size, model.body_preprocess.size, device=device)
        return lambda: backend.encode_body(x)
    b = torch.randn(batch_size, model.body_dim, device=device)
    s = torch.randn(batch_size, model.scene_dim, device=device)
    return lambda: backend.heads(b, s)


def bench_backend(backend, batch_sizes, sweep: Sweep, flops: dict | None, peak: dict | None) -> dict:
    """Scene, body and heads of one backend over the batch sizes."""
    precision = precision_of(backend)
    peak_flops = peak_for(peak, precision) if peak else None
    per_image = {"scene": None, "body": None, "heads": None}
    if flops:
        per_image = {"scene": flops["scene"], "body": flops["body"] / flops["persons"],
                     "heads": flops["heads"] / flops["persons"]}
    streams = {}
    for stream in STREAMS:
        t0 = time.perf_counter()
        streams[stream] = sweep.run(lambda bs, st=stream: _stream_fn(backend, st, bs), batch_sizes,
                                    per_image[stream], peak_flops)
        log.info("bench %s %s: %s (%.1f s)", backend.name, stream, _brief(streams[stream]),
                 time.perf_counter() - t0)
    return {"status": "ok", "precision": precision, "peak_flops_per_s": peak_flops, "streams": streams}


def parse_backend_spec(spec: str) -> tuple[str, dict]:
    """'onnxruntime:precision=fp16:threads=2' -> ('onnxruntime', {'precision': 'fp16', 'threads': 2})."""
    name, *options = spec.split(":")
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            from emomon.kernel import InputError

            raise InputError(f"backend option '{option}' in '{spec}' must look like key=value")
        parsed[key] = _value(value)
    return name.strip(), parsed


def _value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def create_backend_spec(spec: str, model, device):
    """A backend from a spec ('name' or 'name:key=value:...') on its own copy of the model."""
    from fusion import create_backend

    name, options = parse_backend_spec(spec)
    return create_backend(name, copy.deepcopy(model), device=device, **options)


def bench_backends(model, names, device, batch_sizes, sweep: Sweep, flops=None, peak=None,
                   skipped: dict | None = None) -> dict:
    """Every named backend (a spec: 'name' or 'name:key=value:...') on its own copy of the model (a backend
    may convert its model in place). One that is not registered or fails to build is recorded as skipped,
    with the reason; its setup time (export, engine build, compilation) is recorded apart from the sweep."""
    from fusion import list_backends

    results = {name: {"status": "skipped", "reason": why} for name, why in (skipped or {}).items()}
    part_end = sweep.deadline
    for k, name in enumerate(names):
        if part_end is not None:  # each backend gets an equal share of the part's time left
            sweep.deadline = time.perf_counter() + max(0.0, part_end - time.perf_counter()) / (len(names) - k)
        if parse_backend_spec(name)[0] not in list_backends():
            results[name] = {"status": "skipped",
                             "reason": f"not registered in fusion.backends (registered: {', '.join(list_backends())})"}
            continue
        t0 = time.perf_counter()
        try:
            backend = create_backend_spec(name, model, device)
        except Exception as exc:  # noqa: BLE001 - an unavailable backend is a result, not a crash
            results[name] = {"status": "skipped", "reason": f"{type(exc).__name__}: {exc}".strip()[:500]}
            log.warning("bench: backend %s skipped: %s", name, results[name]["reason"])
            _free(device)
            continue
        setup_s = time.perf_counter() - t0
        try:
            results[name] = {**bench_backend(backend, batch_sizes, sweep, flops, peak), "setup_s": setup_s,
                             "seconds": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001 - e.g. a backend that builds but cannot run a batch size
            results[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500], "setup_s": setup_s}
            log.warning("bench: backend %s failed: %s", name, results[name]["reason"])
        finally:
            del backend
            _free(device)
    sweep.deadline = part_end
    return results


def bench_detector(detector, frames, batch_sizes, sweep: Sweep, flops_per_frame=None, peak=None,
                   precision: str = "fp32") -> dict:
    """The detector over batch sizes of real frames (Ultralytics pre-processing, network, NMS, conversion)."""
    batched = hasattr(detector, "detect_batch")

    def make_fn(bs):
        batch = [frames[i % len(frames)] for i in range(bs)]
        if batched:
            return lambda: detector.detect_batch(batch)
        return lambda: [detector.detect(f) for f in batch]

    peak_flops = peak_for(peak, precision) if peak else None
    points = sweep.run(make_fn, batch_sizes, flops_per_frame, peak_flops)
    log.info("bench detector %s: %s", precision, _brief(points))
    return {"status": "ok", "precision": precision, "batched_call": batched, "weights": detector.config.weights,
            "imgsz": detector.config.imgsz, "frame_size": list(frames[0].shape[1::-1]),
            "peak_flops_per_s": peak_flops, "points": points}


def _brief(points: list[dict]) -> str:
    return ", ".join(f"b{p['batch_size']}: {p['images_per_s']:.1f}/s" if "images_per_s" in p
                     else f"b{p['batch_size']}: skipped" for p in points)
