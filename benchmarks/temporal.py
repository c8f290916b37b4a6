"""The temporal head's cost in the live pipeline: the same frames through the frame model alone (default reuse,
and persons recomputed every frame as a temporal head needs) and through the frame model + a temporal head
(`--temporal-model`), interleaved frame by frame so that load on a shared
machine hits both alike. Writes `temporal.json` and `temporal.md`.

    python -m benchmarks.temporal --source street.mp4 --emotion-model tests/assets/trained_tiny.pt \\
        --temporal-model training/results/temporal-synthetic/models/tcn_transformer-s0.pt --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import environment, git_state
from detector import DetectorConfig
from emomon.kernel import write_json_atomic, write_text_atomic
from emomon.pipeline import EmotionModelConfig, EmotionPipeline, build_detector, build_predictor
from emomon.pipeline.config import PipelineConfig
from emomon.pipeline.temporal_stage import build_temporal_stage
from stream import open_source


def _stats(seconds: list[float]) -> dict:
    ms = 1000 * np.asarray(seconds)
    return {"mean_ms": round(float(ms.mean()), 3), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "frames": len(ms)}


def measure(source: str, emotion_model: str, temporal_model: str, detector_weights: str, frames: int,
            warmup: int = 3) -> dict:
    model_cfg = EmotionModelConfig(emotion_model=emotion_model)
    predictor = build_predictor(model_cfg)
    stage = build_temporal_stage(temporal_model, None, 1, predictor)
    det_cfg = DetectorConfig(weights=detector_weights)
    base = EmotionPipeline(build_detector(det_cfg), predictor, PipelineConfig())
    fresh = PipelineConfig(reuse=dataclasses.replace(PipelineConfig().reuse, refresh_every=1))
    every = EmotionPipeline(build_detector(det_cfg), predictor, fresh)  # the reuse a temporal head runs with
    temporal = EmotionPipeline(build_detector(det_cfg), predictor, PipelineConfig(), temporal=stage)
    pipes = (("frame_model", base), ("frame_model_persons_every_frame", every), ("frame_model+temporal", temporal))
    times: dict[str, list[float]] = {name: [] for name, _ in pipes}
    persons = []
    with open_source(source, max_frames=frames + warmup) as src:
        for k, frame in enumerate(src):
            for name, pipe in pipes:
                predictor.keep_features = pipe is temporal  # ...the temporal pipeline does (part of its cost)
                t = time.perf_counter()
                result = pipe.process(frame.index, frame.time, frame.image)
                if k >= warmup:
                    times[name].append(time.perf_counter() - t)
                    if pipe is temporal:
                        persons.append(len(result.persons))
    head = temporal.times.samples["temporal"][warmup:]
    stats = {name: _stats(t) for name, t in times.items()}
    return {**stats, "temporal_stage": _stats(head),
            "temporal_share_of_frame_time": round(float(np.mean(head)) * 1000 / stats["frame_model"]["mean_ms"], 4),
            "temporal_share_of_frame_time_persons_every_frame": round(
                float(np.mean(head)) * 1000 / stats["frame_model_persons_every_frame"]["mean_ms"], 4),
            "fps": {name: round(1000 / v["mean_ms"], 3) for name, v in stats.items()},
            "persons_per_frame": round(float(np.mean(persons)), 2),
            "temporal_head": {"path": temporal_model, "kind": stage.head.config.kind, "window": stage.window},
            "emotion_model": predictor.model.source.describe()}


def report(r: dict) -> str:
    fm, fe, ft, st = (r["frame_model"], r["frame_model_persons_every_frame"], r["frame_model+temporal"],
                      r["temporal_stage"])
    return "\n".join([
        "# Temporal head cost in the pipeline", "", f"Command: `{r['command']}`  ",
        f"Commit: `{r['git'].get('commit')}`{' (uncommitted changes)' if r['git'].get('dirty') else ''}  ",
        f"Machine: {r['environment'].get('cpu')}, {r['environment'].get('cpu_count')} CPUs  ",
        f"Frame model: {r['emotion_model']}; temporal head: {r['temporal_head']['kind']} over "
        f"{r['temporal_head']['window']} frames; {r['persons_per_frame']} persons per frame", "",
        "| pipeline | frames/s | mean ms/frame | p50 | p95 |", "| --- | --- | --- | --- | --- |",
        f"| frame model | {r['fps']['frame_model']:.2f} | {fm['mean_ms']:.1f} | {fm['p50_ms']:.1f} | "
        f"{fm['p95_ms']:.1f} |",
        f"| frame model, persons recomputed every frame (as with a head) | "
        f"{r['fps']['frame_model_persons_every_frame']:.2f} | {fe['mean_ms']:.1f} | {fe['p50_ms']:.1f} | "
        f"{fe['p95_ms']:.1f} |",
        f"| frame model + temporal head | {r['fps']['frame_model+temporal']:.2f} | {ft['mean_ms']:.1f} | "
        f"{ft['p50_ms']:.1f} | {ft['p95_ms']:.1f} |", "",
        f"Temporal stage (history + one batched head call for all tracks): {st['mean_ms']:.2f} ms per frame "
        f"(p95 {st['p95_ms']:.2f}): {100 * r['temporal_share_of_frame_time']:.1f}% of the frame model's frame time "
        f"with the default reuse, {100 * r['temporal_share_of_frame_time_persons_every_frame']:.1f}% of it with "
        f"persons recomputed every frame (which a head needs); {st['frames']} frames, the three pipelines "
        "interleaved frame by frame.", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True)
    p.add_argument("--emotion-model", required=True)
    p.add_argument("--temporal-model", required=True)
    p.add_argument("--detector-weights", default=DetectorConfig().weights)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    r = measure(args.source, args.emotion_model, args.temporal_model, args.detector_weights, args.frames)
    r = {"command": "python -m benchmarks.temporal " + shlex.join(sys.argv[1:] if argv is None else argv),
         "git": git_state(), "environment": environment("cpu"), **r}
    out = Path(args.out)
    write_json_atomic(out / "temporal.json", r)
    write_text_atomic(out / "temporal.md", report(r))
    print(json.dumps({k: r[k] for k in ("fps", "temporal_share_of_frame_time",
                                        "temporal_share_of_frame_time_persons_every_frame")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
