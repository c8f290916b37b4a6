"""Preprocessing side by side: OpenCV on the host (`Predictor(preprocess="cpu")`) against the device path
(`preprocess="device"`: one upload per frame, all crops in one roi_align call), on the same frames and YOLO
boxes, alternating rounds; ms per frame up to the model inputs on the device (synchronized), and how far
the two inputs are apart. What `--preprocess auto` picks per device rests on this.

    python -m benchmarks.preprocess --source street.mp4 --detector-weights yolo11n-pose.pt --device cpu \\
        --out benchmarks/results/preprocess-cpu-2core
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.stats import summarize, synchronize

MODES = ("cpu", "device")


def _frames_and_boxes(source: str, weights: str, device: str, frames: int):
    import cv2

    from detector.config import DetectorConfig
    from emomon.pipeline import build_detector

    cap = cv2.VideoCapture(source)
    images = []
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
    cap.release()
    detector = build_detector(DetectorConfig(weights=weights, device=device, runtime="torch"))
    return images, [detector.detect(im).xyxy.astype(np.float32) for im in images]


def compare_preprocess(source: str, weights: str, device: str = "cpu", frames: int = 12, rounds: int = 3) -> dict:
    """Both paths on the first `frames` frames with the real-size model's inputs (body 224 squashed, ImageNet
    statistics; scene 224 squashed, CLIP statistics)."""
    import torch

    from fusion.models.config import TwoStreamConfig
    from fusion.models.device_preprocess import crops_on_device, scenes_on_device, upload_frame
    from fusion.models.preprocess import CLIP_MEAN, CLIP_STD, Preprocess, crop_persons, preprocess_images

    cfg = TwoStreamConfig()
    body = Preprocess(size=cfg.body_size)
    scene = Preprocess(size=224, mean=CLIP_MEAN, std=CLIP_STD, resize=cfg.scene_fit)
    dev = torch.device(device)
    images, boxes = _frames_and_boxes(source, weights, device, frames)

    def cpu(image, bx):
        crops = crop_persons(image, bx)
        out = (preprocess_images(crops.images, body).to(dev, non_blocking=True),
               preprocess_images([image], scene).to(dev, non_blocking=True))
        synchronize(dev)
        return out

    def on_device(image, bx):
        crops = crop_persons(image, bx)
        frame = upload_frame(image, dev)
        index = torch.zeros(len(crops.boxes), device=dev)
        out = (crops_on_device(frame[None], torch.from_numpy(crops.boxes).to(dev), index, body),
               scenes_on_device(frame[None], scene))
        synchronize(dev)
        return out

    fns = {"cpu": cpu, "device": on_device}
    for fn in fns.values():   # warm-up (kernels, allocator, pinned pool)
        fn(images[0], boxes[0])
    samples = {m: [] for m in MODES}
    for _ in range(rounds):
        for mode in MODES:
            for image, bx in zip(images, boxes):
                t0 = time.perf_counter()
                fns[mode](image, bx)
                samples[mode].append(time.perf_counter() - t0)
    diffs = {"body": [], "scene": []}
    for image, bx in zip(images, boxes):
        (b0, s0), (b1, s1) = cpu(image, bx), on_device(image, bx)
        diffs["body"].append((b0 - b1).abs().flatten().cpu())
        diffs["scene"].append((s0 - s1).abs().flatten().cpu())
    parity = {k: {"mean_abs": float(torch.cat(v).mean()), "median_abs": float(torch.cat(v).median()),
                  "max_abs": float(torch.cat(v).max())} for k, v in diffs.items()}
    modes = {m: {"ms_per_frame": summarize(samples[m]), "frames": len(samples[m])} for m in MODES}
    faster = min(MODES, key=lambda m: modes[m]["ms_per_frame"]["p50"])
    return {"device": str(dev), "frames": len(images), "rounds": rounds,
            "persons_per_frame": float(np.mean([len(b) for b in boxes])), "modes": modes, "faster": faster,
            "ratio_cpu_over_device": modes["cpu"]["ms_per_frame"]["p50"] / modes["device"]["ms_per_frame"]["p50"],
            "parity": parity,
            "note": "per frame: crops of every YOLO person + the scene image, resized, normalised and on the device "
                    "(synchronized); rounds alternate the two paths on the same frames; parity in normalised units "
                    "(one uint8 level is about 0.017)"}


def write_preprocess(result: dict, out: str | Path, command: str | None = None) -> Path:
    from benchmarks.env import environment
    from emomon.kernel import write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(result["device"])
    result = {**result, "command": command or result.get("command"), "environment": env}
    path = write_json_atomic(out / "preprocess.json", result)
    m = result["modes"]
    lines = [f"# Preprocessing: OpenCV on the host vs on the device ({result['device']})", "",
             f"Command: `{result['command']}`; commit {env['git']['commit']} (dirty: {env['git']['dirty']}); "
             f"{env['cpu']}, {env['cpu_count']} cores, GPU {env.get('gpu') or '-'}.", "",
             "| path | ms per frame p50 | p95 |", "| --- | --- | --- |"]
    lines += [f"| {k} | {v['ms_per_frame']['p50']:.1f} | {v['ms_per_frame']['p95']:.1f} |" for k, v in m.items()]
    p = result["parity"]
    lines += ["", f"{result['frames']} frames x {result['rounds']} rounds, {result['persons_per_frame']:.1f} persons "
              f"per frame; faster: **{result['faster']}** (cpu / device = {result['ratio_cpu_over_device']:.2f}). "
              f"Inputs apart: body mean {p['body']['mean_abs']:.4f} (max {p['body']['max_abs']:.2f}), scene mean "
              f"{p['scene']['mean_abs']:.4f} (max {p['scene']['max_abs']:.2f}). {result['note']}.", ""]
    (out / "preprocess.md").write_text("\n".join(lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.preprocess", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True)
    p.add_argument("--detector-weights", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    result = compare_preprocess(args.source, args.detector_weights, args.device, args.frames, args.rounds)
    command = "python -m benchmarks.preprocess " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(write_preprocess(result, args.out, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
