"""The physical limit: model FLOPs counted with `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per
multiply-add, as vendors quote peaks) and the device's peak FLOP/s, nominal for known GPUs and measured with
the best burst of a warmed-up large matmul otherwise (always measured on CPU, and always recorded beside the
nominal figure); `reconcile_peak` raises a peak that a run beat, so fractions of peak stay in (0, 1].

    >>> from fusion import create_model
    >>> f = emotion_flops(create_model("two_stream_tiny", pretrained=False), persons=2)
    >>> f["body"] == 2 * emotion_flops(create_model("two_stream_tiny", pretrained=False))["body"]
    True

Two details make the count right for CLIP's ViT: nn.MultiheadAttention's inference fast path runs as one
fused op the counter cannot see (it is switched off while counting), and PyTorch's CPU flash attention op
has no formula in the counter (one is supplied here). ViT-B/16 at 224 counts 35.1 GFLOP, ResNet-18 3.6.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from benchmarks.stats import synchronize

log = logging.getLogger(__name__)


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_formulas() -> dict:
    ops = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            ops[op] = _cpu_sdpa_flops
    return ops


@contextlib.contextmanager
def _mha_fastpath_off():
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def count_flops(fn, *args, **kwargs) -> int:
    """FLOPs of one call of fn(*args, **kwargs), run under inference mode."""
    counter = FlopCounterMode(display=False, custom_mapping=_custom_formulas())
    with torch.inference_mode(), _mha_fastpath_off(), counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def _param(module: torch.nn.Module) -> torch.Tensor:
    return next(iter(module.parameters()), torch.zeros(()))


def emotion_flops(model, persons: int = 1) -> dict:
    """FLOPs of one frame's emotion work with `persons` persons: scene once, body and heads per person."""
    if persons < 1:
        raise ValueError("persons must be >= 1")
    p = _param(model)
    kw = {"device": p.device, "dtype": p.dtype if p.is_floating_point() else torch.float32}
    bs, ss = model.body_preprocess.size, model.scene_preprocess.size
    scene = count_flops(model.encode_scene, torch.zeros(1, 3, ss, ss, **kw))
    body = count_flops(model.encode_body, torch.zeros(persons, 3, bs, bs, **kw))
    heads = count_flops(model.forward_features, torch.zeros(persons, model.body_dim, **kw),
                        torch.zeros(persons, model.scene_dim, **kw))
    return {"persons": persons, "scene": scene, "body": body, "heads": heads, "total": scene + body + heads}


def letterbox_shape(frame_hw: tuple[int, int], imgsz: int, stride: int = 32) -> tuple[int, int]:
    """The (h, w) Ultralytics feeds its model for a frame at `imgsz` (rectangular, padded to the stride)."""
    h, w = frame_hw
    r = imgsz / max(h, w)
    nh, nw = round(h * r), round(w * r)
    return math.ceil(nh / stride) * stride, math.ceil(nw / stride) * stride


def detector_flops(detector, frame_hw: tuple[int, int]) -> tuple[int | None, str]:
    """FLOPs of the detector network for one frame (pre/post-processing and NMS not included)."""
    net = getattr(getattr(detector, "model", None), "model", None)
    if not isinstance(net, torch.nn.Module):
        return None, "detector weights are not a PyTorch model (exported .onnx/.engine): not counted"
    stride = int(max(getattr(net, "stride", torch.tensor([32])).tolist()))
    h, w = letterbox_shape(frame_hw, detector.config.imgsz, stride)
    p = _param(net)
    x = torch.zeros(1, 3, h, w, device=p.device, dtype=p.dtype)
    try:
        return count_flops(net, x), f"network forward at {w}x{h} (letterboxed from {frame_hw[1]}x{frame_hw[0]})"
    except Exception as exc:  # noqa: BLE001 - a count is a nice-to-have; the benchmark goes on without it
        return None, f"could not count: {type(exc).__name__}: {exc}"


# Nominal dense peaks in TFLOP/s (vendor datasheets, boost clock, no sparsity). fp32 is the non-tensor-core
# rate (PyTorch's default matmul precision); fp16/bf16 are tensor-core rates with fp32 accumulation.
# Checked in order; the first pattern that matches the device name wins.
GPU_PEAKS_TFLOPS: list[tuple[str, str, dict[str, float]]] = [
    (r"H100.*NVL", "H100 NVL", {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5, "int8": 1671.0}),
    (r"H100.*PCIe", "H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0, "int8": 1513.0}),
    (r"H100", "H100 SXM", {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9}),
    (r"H200.*NVL", "H200 NVL", {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5, "int8": 1671.0}),
    (r"H200", "H200 SXM", {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9}),
    (r"A100", "A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}),
    (r"L40S", "L40S", {"fp32": 91.6, "tf32": 183.0, "fp16": 362.1, "bf16": 362.1, "int8": 733.0}),
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0, "int8": 242.0}),
    (r"\bA10\b", "A10", {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0, "int8": 250.0}),
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65.0, "int8": 130.0}),
    (r"V100", "V100", {"fp32": 15.7, "fp16": 125.0}),
    (r"RTX 4090", "RTX 4090", {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6}),
    (r"RTX 3090", "RTX 3090", {"fp32": 35.6, "fp16": 71.0, "bf16": 71.0, "int8": 284.0}),
]


def nominal_peak(device_name: str | None) -> tuple[str, dict[str, float]] | None:
    """(matched model, {precision: FLOP/s}) for a known GPU name, else None."""
    for pattern, label, peaks in GPU_PEAKS_TFLOPS:
        if device_name and re.search(pattern, device_name):
            return label, {k: v * 1e12 for k, v in peaks.items()}
    return None


def measure_matmul(device="cpu", dtype=torch.float32, size: int | None = None, warmup_s: float = 0.3,
                   bursts: int = 6, burst_s: float = 0.2) -> dict:
    """The best FLOP/s of square matmuls on the device, the practical ceiling for dense layers.

    Warmed up for `warmup_s` (at least two calls: kernel selection, lazy init, clocks), then `bursts` timed
    bursts of at least `burst_s` each (at least one call); the best burst is the peak (a peak is a best case:
    on a shared machine other load only ever lowers a burst). Returns the peak and how it was measured.
    """
    if size is None:
        size = 8192 if str(device).startswith("cuda") else 2048
    if bursts < 1:
        raise ValueError("bursts must be >= 1")
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    flop = 2.0 * size**3
    rates, calls = [], 0
    t_start = time.perf_counter()
    with torch.inference_mode():
        t0, n = time.perf_counter(), 0
        while n < 2 or time.perf_counter() - t0 < warmup_s:
            torch.mm(a, b)
            synchronize(device)
            n += 1
        warm = time.perf_counter() - t0
        for _ in range(bursts):
            t0, n = time.perf_counter(), 0
            while n < 1 or time.perf_counter() - t0 < burst_s:
                torch.mm(a, b)
                n += 1
                synchronize(device)
            rates.append(flop * n / (time.perf_counter() - t0))
            calls += n
    return {"flops_per_s": max(rates), "median_flops_per_s": float(sorted(rates)[len(rates) // 2]),
            "op": "torch.mm", "size": size, "dtype": str(dtype).replace("torch.", ""), "warmup_s": warm,
            "bursts": bursts, "burst_s": burst_s, "calls": calls, "total_s": time.perf_counter() - t_start,
            "threads": torch.get_num_threads(), "burst_flops_per_s": rates}


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def device_peak(device: str, device_name: str | None, quick: bool = False,
                precisions: tuple[str, ...] = ()) -> dict:
    """Peak FLOP/s per precision to compare against, with both figures behind it.

    `measured`: the best burst of a warmed-up square matmul per precision (fp32 always, fp16 on CUDA, plus
    `precisions`), about 1.5 s each (quick) or 3 s. `nominal`: the vendor's dense peak for known GPUs, else
    None (CPUs: clock and vector width vary by SKU and load, so no figure is claimed). `flops_per_s`, the
    peak that fractions divide by, is the nominal table for known GPUs, else the measured one;
    `reconcile_peak` raises it to any figure a run achieved above it, so every fraction is in (0, 1].
    """
    cuda = str(device).startswith("cuda")
    warmup_s, bursts, burst_s = (0.3, 6, 0.2) if quick else (0.5, 10, 0.25)
    wanted = ["fp32"] + (["fp16"] if cuda else []) + [p for p in precisions if p in _DTYPES]
    methods = {}
    for precision in dict.fromkeys(wanted):
        methods[precision] = measure_matmul(device, _DTYPES[precision], warmup_s=warmup_s, bursts=bursts,
                                            burst_s=burst_s)
    measured = {k: m["flops_per_s"] for k, m in methods.items()}
    m = methods["fp32"]
    how = (f"best of {m['bursts']} bursts (>= {m['burst_s']:g} s each, after {m['warmup_s']:.1f} s of warm-up) of "
           f"square {m['size']}^3 torch.mm per precision, {m['threads']} threads")
    known = nominal_peak(device_name) if cuda else None
    nominal = None
    if known:
        label, peaks = known
        nominal = {"matched": label, "flops_per_s": peaks,
                   "source": f"vendor datasheet of the {label}: dense, boost clock, no sparsity"}
    what = "CPU" if not cuda else f"GPU '{device_name}'"
    base = {"name": device_name or "cpu", "matched": known[0] if known else None,
            "measured": {"flops_per_s": measured, "method": how, "details": methods},
            "nominal": nominal,
            "nominal_note": nominal["source"] if nominal else (
                "no nominal peak: not a GPU in the table of known GPUs" if cuda else
                "no nominal peak for CPUs (clock and vector width vary with the SKU and the load)"),
            "raised": []}
    if nominal:
        return {**base, "basis": "nominal", "flops_per_s": dict(nominal["flops_per_s"]),
                "note": f"nominal dense peak of the {nominal['matched']} (datasheet, no sparsity); "
                        f"measured matmul beside it: {how}"}
    return {**base, "basis": "measured", "flops_per_s": dict(measured),
            "note": f"{what}: measured on the spot, {how}; other load on the machine lowers it"}


def peak_key(peak: dict, precision: str) -> str | None:
    """The key of `peak["flops_per_s"]` that `peak_for` divides a `precision` figure by."""
    table = peak.get("flops_per_s") or {}
    for key in (precision, "fp16" if precision == "bf16" else None, "fp32"):
        if key and table.get(key):
            return key
    return None


def reconcile_peak(peak: dict, figures: list[tuple[str, float | None, str]]) -> dict:
    """The peak, raised wherever an achieved figure exceeds it: a run cannot beat the device's peak, so a
    lower peak means its measurement was wrong (load during the matmul bursts). `figures` holds
    (precision, achieved FLOP/s, where in the report); each raised key is recorded in `raised` with the
    figure that raised it. Returns a new dict; afterwards every achieved / peak_for(...) is <= 1."""
    out = {**peak, "flops_per_s": dict(peak.get("flops_per_s") or {}), "raised": list(peak.get("raised") or [])}
    best: dict[str, tuple[float, str, str]] = {}
    for precision, achieved, where in figures:
        key = peak_key(out, precision)
        if key is None or not achieved:
            continue
        if achieved > best.get(key, (0.0,))[0]:
            best[key] = (float(achieved), where, precision)
    for key, (achieved, where, precision) in best.items():
        before = out["flops_per_s"][key]
        if achieved > before:
            out["flops_per_s"][key] = achieved
            out["raised"].append({"key": key, "from": before, "to": achieved, "by": where, "precision": precision,
                                  "note": f"{where} ({precision}) achieved more than the {out['basis']} {key} peak:"
                                          f" that peak was too low, the peak is the larger of the two"})
    return out


def precision_of(backend) -> str:
    """The arithmetic precision a backend runs in: its `precision` attribute, else guessed from its name."""
    declared = getattr(backend, "precision", None)
    if isinstance(declared, str) and declared:
        return declared.lower()
    name = str(getattr(backend, "name", "")).lower()
    for key in ("int8", "bf16", "fp16", "half"):
        if key in name:
            return "fp16" if key == "half" else key
    return "fp16" if "tensorrt" in name or "trt" in name else "fp32"


def peak_for(peak: dict, precision: str) -> float | None:
    """Peak FLOP/s for a precision, falling back to fp16 for bf16 and to fp32 when nothing better is known."""
    key = peak_key(peak, precision)
    return float(peak["flops_per_s"][key]) if key else None
