"""`emomon export`: ONNX graphs or TensorRT engines of the emotion model (and optionally the detector)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from detector.config import DetectorConfig
from emomon.commands.options import add_detector_weights_argument, add_model_arguments

log = logging.getLogger("emomon.export")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive integer")
    return value


def register(sub) -> None:
    p = sub.add_parser("export", help="export the emotion model to ONNX or TensorRT engines",
                       description="Export the emotion model's three graphs (body, scene, heads) to ONNX, or "
                                   "build TensorRT engines from them; print what was written.")
    add_model_arguments(p)
    p.add_argument("--format", choices=["onnx", "tensorrt"], default="onnx")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                   help="fp32 (default for onnx), fp16 (default for tensorrt) or int8 (Q/DQ, calibrated)")
    p.add_argument("--max-batch", type=positive, default=32,
                   help="TensorRT profile: most persons per body/heads call (larger batches run in chunks)")
    p.add_argument("--opt-batch", type=positive, default=8, help="TensorRT profile: the batch to tune for")
    p.add_argument("--max-scene-batch", type=positive, default=8, help="TensorRT profile: most frames per call")
    p.add_argument("--opset", type=positive, default=None, help="ONNX opset (default 20)")
    p.add_argument("--calibration", metavar="PATH",
                   help="int8: a folder, glob or video of real frames (default: Ultralytics' sample photos)")
    p.add_argument("--out", metavar="DIR", help="output folder (default exports/MODEL_NAME)")
    p.add_argument("--include-detector", "--detector", action="store_true", dest="include_detector",
                   help="also export the YOLO detector with Ultralytics (ONNX, or an engine for tensorrt)")
    add_detector_weights_argument(p, " (a local .pt for --include-detector)")
    p.add_argument("--imgsz", type=positive, default=DetectorConfig().imgsz,
                   help="detector input size for --include-detector")
    p.add_argument("--json", action="store_true", help="print a JSON manifest instead of lines")
    p.set_defaults(func=run)


def _place(src: Path, dst: Path) -> Path:
    """Put a cached file into the output folder: a hard link when possible, else a copy."""
    if dst.exists() and dst.resolve() == src.resolve():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def run(args) -> int:
    from emomon.commands.options import model_config
    from emomon.kernel import InputError, write_text_atomic
    from emomon.pipeline import load_model
    from fusion import describe_model
    from fusion.export import OPSET, export_onnx, onnx_name

    precision = args.precision or ("fp16" if args.format == "tensorrt" else "fp32")
    device = args.device
    if args.format == "tensorrt":
        from fusion.export import default_profiles, require_tensorrt

        require_tensorrt()  # one line naming the install extra, before any slow work
        import torch

        device = "cuda" if device == "cpu" else device
        if not torch.cuda.is_available():
            raise InputError("TensorRT engines are built on a CUDA GPU and none is visible here")
        profiles = default_profiles(args.max_batch, args.opt_batch, args.max_scene_batch)
    calibration = None
    if precision == "int8":  # read the frames first: a bad path fails before minutes of export
        from fusion.export import calibration_images

        calibration = calibration_images(args.calibration)
    if args.include_detector and not Path(args.detector_weights).expanduser().is_file():
        raise InputError(f"detector weights '{args.detector_weights}' not found: pass a local YOLO .pt file "
                         f"with --detector-weights")
    model = load_model(model_config(args), device=device)
    out = Path(args.out or Path("exports") / (model.model_name or "model"))
    opset = args.opset or OPSET
    written: list[Path] = []
    if args.format == "onnx":
        files = export_onnx(model, out, opset=opset, precision=precision, calibration=calibration)
        written += [out / onnx_name(g) for g in files]  # the fp32 graphs are always written
        if precision != "fp32":
            written += list(files.values())
    else:
        from fusion.backends.tensorrt import engine_name
        from fusion.export import GRAPHS, ensure_onnx
        from fusion.export.tensorrt_build import ensure_engine

        for path in ensure_onnx(model, opset=opset).values():  # the fp32 graphs, for reference
            written.append(_place(path, out / path.name))
        for graph in GRAPHS:
            engine = ensure_engine(None, graph, precision, profiles[graph], device=device, model=model,
                                   calibration=calibration, opset=opset)
            written.append(_place(engine, out / engine_name(graph, precision)))
    if args.include_detector:
        from detector import export_detector

        fmt = "engine" if args.format == "tensorrt" else "onnx"
        written.append(export_detector(args.detector_weights, fmt, out_dir=out / "detector", imgsz=args.imgsz,
                                       half=fmt == "engine" and precision != "fp32",
                                       device=device if fmt == "engine" else None,
                                       trust=args.trust_detector_weights))
    manifest = {"model": describe_model(model), "model_name": model.model_name, "format": args.format,
                "precision": precision, "opset": opset, "out": str(out),
                "files": [{"path": str(p), "bytes": p.stat().st_size} for p in written]}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    if args.json:
        json.dump(manifest, sys.stdout, indent=1)
        print()
        return 0
    print(f"exported {manifest['model']} ({args.format}, {precision}) to {out}/")
    for f in manifest["files"]:
        print(f"  {f['path']}  {f['bytes'] / 1e6:.1f} MB")
    return 0
