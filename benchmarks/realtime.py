"""`emomon bench --realtime`: is the default `emomon run` real time on this machine, and what did it cost?

One run, side by side on the same frames of one clip:
- **settings**: the real pipeline (`run_pipeline`, annotated video and JSONL written) per setting: fp32 every
  frame, fp32 with the old reuse defaults (the default before precision and the new reuse), the new defaults,
  and the steps between. frames/s over the frames after the warm-up ones, per round; with several rounds
  the settings alternate (A B C A B C), so load on a shared machine hits them alike. Process CPU seconds per
  frame are recorded beside wall time: on a loaded machine they move less.
- **detector**: each detector runtime on the same frames, round-robin, with how its persons match the .pt
  model in fp32 (box IoU, persons per frame, track ids).
- **accuracy guard**: with a model whose outputs depend on the input (the trained test model), each
  faster setting against fp32 every frame: persons matched by frame and box, max/p99/mean absolute
  probability difference, max VAD difference, top-1 agreement.
- **startup**: `emomon run --max-frames 1` in a fresh process, twice (the first may export the detector).

Writes realtime.json and realtime.md (command, commit, machine).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detector import DetectorConfig
from emomon.kernel import finite_json
from emomon.kernel.files import write_text_atomic
from emomon.pipeline import (
    EmotionModelConfig,
    MonitorConfig,
    OutputPaths,
    PipelineConfig,
    ReuseConfig,
    build_detector,
    build_pipeline,
    build_predictor,
    run_pipeline,
)

log = logging.getLogger(__name__)

OLD_REUSE = ReuseConfig(scene_every=4, refresh_every=2)  # the defaults before issue 13 (chosen on random weights)


@dataclass(frozen=True)
class Setting:
    """One way to run the pipeline: precision, reuse, the detector's runtime and whether detection overlaps."""

    name: str
    precision: str = "auto"
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
    detector_runtime: str = "auto"
    overlap: bool = PipelineConfig().overlap

    def describe(self) -> dict:
        return {"name": self.name, "precision": self.precision, "detector_runtime": self.detector_runtime,
                "overlap": self.overlap,
                **{k: getattr(self.reuse, k) for k in ("scene_every", "scene_change", "refresh_every", "refresh_iou")}}


def default_settings() -> list[Setting]:
    """Today's fp32 every-frame run, the old default (fp32, old reuse), the steps, and the new defaults (the
    steps before the last run one frame after another, as before issue 13)."""
    every = ReuseConfig.every_frame()
    return [Setting("fp32 every frame", "fp32", every, "torch", overlap=False),
            Setting("fp32 old reuse (old default)", "fp32", OLD_REUSE, "torch", overlap=False),
            Setting("auto precision every frame", "auto", every, "auto", overlap=False),
            Setting("auto precision old reuse", "auto", OLD_REUSE, "auto", overlap=False),
            Setting("new reuse, no overlap", "auto", ReuseConfig(), "auto", overlap=False),
            Setting("new defaults", "auto", ReuseConfig(), "auto")]


@dataclass
class RealtimeConfig:
    source: str
    emotion_model: str = "random"            # speed does not depend on the weights
    accuracy_model: str | None = None        # a model whose outputs depend on the input (the trained test model)
    detector_weights: str = DetectorConfig().weights
    frames: int = 130                        # per setting and round, warm-up included
    warmup: int = 10                         # frames not timed (model warm-up, first allocations)
    rounds: int = 1
    accuracy_frames: int = 120
    detector_frames: int = 60
    startup: bool = True
    seed: int = 0
    settings: list[Setting] = field(default_factory=default_settings)


def _cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _open(source: str, frames: int):
    from stream import open_source

    return open_source(source, max_frames=frames)


class Models:
    """Detectors and predictors shared by the settings that need the same ones (loading is not timed)."""

    def __init__(self, config: RealtimeConfig, model: str):
        self.config, self.model = config, model
        self._detectors: dict = {}
        self._predictors: dict = {}
        self.last_counts: dict = {}  # the reuse counters of the last `pipeline_persons` run

    def monitor(self, s: Setting) -> MonitorConfig:
        det = DetectorConfig(weights=self.config.detector_weights, precision=s.precision, runtime=s.detector_runtime)
        return MonitorConfig(det, EmotionModelConfig(self.model, seed=self.config.seed, precision=s.precision),
                             PipelineConfig(reuse=dataclasses.replace(s.reuse), overlap=s.overlap))

    def pipeline(self, s: Setting):
        m = self.monitor(s)
        dkey, pkey = (s.precision, s.detector_runtime), s.precision
        if dkey not in self._detectors:
            self._detectors[dkey] = build_detector(m.detector, m.model.backend)
        if pkey not in self._predictors:
            self._predictors[pkey] = build_predictor(m.model)
        return build_pipeline(m, detector=self._detectors[dkey], predictor=self._predictors[pkey])


def time_setting(models: Models, s: Setting, config: RealtimeConfig, out_dir: Path) -> dict:
    """One timed run of the real pipeline with video and JSONL output."""
    pipeline = models.pipeline(s)
    done: list[float] = []
    cpu: list[float] = []

    def on_frame(_result):
        done.append(time.perf_counter())
        cpu.append(_cpu_seconds())

    stem = out_dir / s.name.replace(" ", "_").replace("(", "").replace(")", "")
    with _open(config.source, config.frames) as source:
        report = run_pipeline(source, pipeline, OutputPaths(video=f"{stem}.mp4", jsonl=f"{stem}.jsonl"),
                              progress=False, on_frame=on_frame)
    w = min(config.warmup, len(done) - 1)
    timed = len(done) - 1 - w
    wall = done[-1] - done[w] if timed > 0 else float("nan")
    cpu_s = cpu[-1] - cpu[w] if timed > 0 else float("nan")
    counts = dict(pipeline.counts)
    return {"frames": report.frames, "timed_frames": timed, "fps": timed / wall if wall > 0 else None,
            "cpu_s_per_frame": cpu_s / timed if timed > 0 else None, "stages": pipeline.times.summary(),
            "counts": counts, "run_info": getattr(pipeline, "run_info", {})}


def speed(config: RealtimeConfig) -> dict:
    models = Models(config, config.emotion_model)
    runs: dict[str, list[dict]] = {s.name: [] for s in config.settings}
    with tempfile.TemporaryDirectory(prefix="emomon-realtime-") as tmp:
        for s in config.settings:  # build (and export) everything before the first timed frame
            models.pipeline(s)
        for r in range(config.rounds):
            for s in config.settings:
                result = time_setting(models, s, config, Path(tmp))
                log.info("round %d, %s: %.2f frames/s", r + 1, s.name, result["fps"] or 0.0)
                runs[s.name].append(result)
    rows = []
    for s in config.settings:
        fps = [r["fps"] for r in runs[s.name] if r["fps"]]
        cpu = [r["cpu_s_per_frame"] for r in runs[s.name] if r["cpu_s_per_frame"]]
        rows.append({**s.describe(), "fps_median": float(np.median(fps)) if fps else None, "fps_rounds": fps,
                     "cpu_s_per_frame_median": float(np.median(cpu)) if cpu else None,
                     "run_info": runs[s.name][-1]["run_info"], "counts": runs[s.name][-1]["counts"],
                     "stages": runs[s.name][-1]["stages"]})
    base = rows[0]["fps_median"]
    for row in rows:
        row["speedup_vs_first"] = row["fps_median"] / base if base and row["fps_median"] else None
    return {"settings": rows}


# -- detector runtimes ---------------------------------------------------------------------------------------
DETECTOR_VARIANTS = (("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"),
                     ("openvino", "bf16"))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def match_boxes(a: np.ndarray, b: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matches (i in a, j in b, IoU) at IoU >= threshold, best first."""
    if not len(a) or not len(b):
        return []
    iou = _iou(a, b)
    pairs = sorted(((iou[i, j], i, j) for i in range(len(a)) for j in range(len(b)) if iou[i, j] >= threshold),
                   reverse=True)
    used_a, used_b, out = set(), set(), []
    for v, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i), used_b.add(j)
            out.append((i, j, float(v)))
    return out


def compare_tracks(ref: list, other: list) -> dict:
    """How far one detector's tracked persons are from the reference's, frame by frame.

    `ref`/`other`: per frame (boxes (N, 4), track ids (N,)). Track ids are compared through the mapping
    each reference id has most often; `id_agreement` is the share of matched persons that follow it."""
    ious, same_count, matched, total, pairs = [], 0, 0, 0, []
    for (ra, rid), (oa, oid) in zip(ref, other):
        same_count += len(ra) == len(oa)
        total += len(ra)
        for i, j, v in match_boxes(ra, oa):
            ious.append(v)
            matched += 1
            pairs.append((int(rid[i]), int(oid[j])))
    mapping: dict[int, dict[int, int]] = {}
    for r, o in pairs:
        mapping.setdefault(r, {}).setdefault(o, 0)
        mapping[r][o] += 1
    agree = sum(max(c.values()) for c in mapping.values())
    return {"frames": len(ref), "frames_same_person_count": same_count, "reference_persons": total,
            "matched_persons": matched, "matched_share": matched / total if total else 1.0,
            "box_iou_mean": float(np.mean(ious)) if ious else None,
            "box_iou_p5": float(np.percentile(ious, 5)) if ious else None,
            "box_iou_min": float(np.min(ious)) if ious else None,
            "id_agreement": agree / len(pairs) if pairs else None}


def detector_runtimes(config: RealtimeConfig, variants=DETECTOR_VARIANTS) -> dict:
    """Per-frame detect+track time of each runtime (round-robin over the same frames) and its match."""
    with _open(config.source, config.detector_frames) as source:
        frames = [f.image for f in source]
    detectors = {}
    for runtime, precision in variants:
        try:
            detectors[f"{runtime} {precision}"] = build_detector(
                DetectorConfig(weights=config.detector_weights, runtime=runtime, precision=precision))
        except Exception as exc:  # noqa: BLE001 - a runtime missing here is reported, not fatal
            log.warning("detector %s %s unavailable: %s", runtime, precision, exc)
    times = {k: [] for k in detectors}
    tracks = {k: [] for k in detectors}
    for d in detectors.values():
        d.track(frames[0])
        d.reset()
    for image in frames:
        for name, d in detectors.items():
            t = time.perf_counter()
            dets = d.track(image)
            times[name].append(time.perf_counter() - t)
            tracks[name].append((dets.xyxy.copy(), np.asarray(dets.tracker_id, int)))
    ref = tracks.get("torch fp32")
    rows = []
    for name, d in detectors.items():
        rows.append({"runtime": name, "ran_as": d.describe(), "ms_p50": 1000 * float(np.median(times[name])),
                     "ms_mean": 1000 * float(np.mean(times[name])),
                     "vs_torch_fp32": compare_tracks(ref, tracks[name]) if ref is not None else None})
    return {"frames": len(frames), "detectors": rows}


# -- accuracy guard ------------------------------------------------------------------------------------------
def pipeline_persons(models: Models, s: Setting, config: RealtimeConfig) -> list:
    """Per frame: (boxes (N, 4), [(probs, vad, top-1)]) of the persons a setting reports."""
    pipeline = models.pipeline(s)
    out = []
    with _open(config.source, config.accuracy_frames) as source:
        for frame in source:
            result = pipeline.process(frame.index, frame.time, frame.image)
            people = [p for p in result.persons if p is not None]
            out.append((np.array([p.box for p in people], np.float32).reshape(-1, 4),
                        [(np.asarray(p.probs), np.asarray(p.vad), p.top1) for p in people]))
    models.last_counts = dict(pipeline.counts)
    return out


def guard_rows(reference: list, other: list) -> dict:
    """Per-person differences of `other` from `reference`, persons matched by frame and box (IoU >= 0.5)."""
    dp, dv, top1, top3, total = [], [], [], [], 0
    for (rb, rp), (ob, op) in zip(reference, other):
        total += len(rb)
        for i, j, _ in match_boxes(rb, ob):
            dp.append(float(np.abs(rp[i][0] - op[j][0]).max()))
            dv.append(float(np.abs(rp[i][1] - op[j][1]).max()))
            top1.append(rp[i][2] == op[j][2])
            top3.append(_top(rp[i][0], 3) == _top(op[j][0], 3))
    if not dp:
        return {"matched_persons": 0, "reference_persons": total}
    return {"matched_persons": len(dp), "reference_persons": total, "prob_max": max(dp),
            "prob_p99": float(np.percentile(dp, 99)), "prob_mean": float(np.mean(dp)), "vad_max": max(dv),
            "vad_mean": float(np.mean(dv)), "top1_agreement": float(np.mean(top1)),
            "top3_agreement": float(np.mean(top3))}


def _top(probs: np.ndarray, k: int) -> frozenset:
    """The k categories a record and the overlay list (top_k=3 by default), as a set: their order aside."""
    return frozenset(np.argsort(-np.asarray(probs))[:k].tolist())


def reference_variety(reference: list) -> dict:
    """How many different top-1 and top-3 answers the reference gives: an agreement over a model that always
    answers the same says little, so the report shows it."""
    people = [p for _, persons in reference for p in persons]
    return {"top1_kinds": len({p[2] for p in people}), "top3_kinds": len({_top(p[0], 3) for p in people})}


def accuracy_guard(config: RealtimeConfig, settings: list[Setting] | None = None) -> dict:
    models = Models(config, config.accuracy_model)
    settings = settings or config.settings
    reference = pipeline_persons(models, settings[0], config)
    rows = [{**s.describe(), **guard_rows(reference, pipeline_persons(models, s, config))} for s in settings[1:]]
    return {"model": config.accuracy_model, "frames": config.accuracy_frames, "reference": settings[0].describe(),
            "reference_variety": reference_variety(reference), "settings": rows}


# -- startup -------------------------------------------------------------------------------------------------
def startup(config: RealtimeConfig, tries: int = 2) -> dict:
    """Wall seconds of `emomon run --max-frames 1` in a fresh process with the default flags."""
    out = []
    with tempfile.TemporaryDirectory(prefix="emomon-startup-") as tmp:
        cmd = [sys.executable, "-m", "emomon", "run", "--source", config.source, "--max-frames", "1",
               "--emotion-model", config.emotion_model, "--detector-weights", config.detector_weights,
               "--jsonl", str(Path(tmp) / "x.jsonl"), "--no-progress"]
        for _ in range(tries):
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            out.append({"seconds": time.perf_counter() - t, "exit_code": proc.returncode})
    return {"command": " ".join(["emomon", *cmd[3:]]), "runs": out}


# -- the whole report ----------------------------------------------------------------------------------------
def run_realtime(config: RealtimeConfig, command: str, parts: tuple[str, ...] = ("speed", "detector", "accuracy",
                                                                              "startup")) -> dict:
    from benchmarks.env import environment

    report = {"schema": "emomon.realtime", "schema_version": 1, "command": command, "environment": environment(),
              "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "settings"},
              "settings": [s.describe() for s in config.settings]}
    if "startup" in parts:  # first: a fresh process, before this one loads models and competes for the cores
        report["startup"] = startup(config)
    if "detector" in parts:
        report["detector"] = detector_runtimes(config)
    if "speed" in parts:
        report["speed"] = speed(config)
    if "accuracy" in parts and config.accuracy_model:
        report["accuracy_guard"] = accuracy_guard(config)
    return finite_json(report)


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = ["# emomon realtime benchmark", "", f"`{report['command']}`", "",
             f"commit {env.get('git_commit')}, {env.get('time_utc')}, {env.get('cpu')} "
             f"({env.get('cpu_affinity')} cores usable, torch threads {env.get('torch_threads')}), "
             f"torch {env['versions'].get('torch')}, openvino {env['versions'].get('openvino')}", ""]
    if report.get("speed"):
        lines += ["## End to end (annotated video and JSONL written)", "",
                  "| setting | precision (ran as) | detector | scene every | refresh every | overlap | frames/s | "
                  "x first | CPU s/frame |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in report["speed"]["settings"]:
            p = r["run_info"].get("precision", {})
            lines.append(f"| {r['name']} | {r['precision']} ({p.get('emotion_model')}) | {p.get('detector')} | "
                         f"{r['scene_every']} | {r['refresh_every']} | {'yes' if r.get('overlap') else 'no'} | "
                         f"{_f(r['fps_median'])} | "
                         f"{_f(r['speedup_vs_first'])} | {_f(r['cpu_s_per_frame_median'], 3)} |")
        lines.append("")
    if report.get("detector"):
        lines += [f"## Detector runtimes ({report['detector']['frames']} frames, detect + track, round-robin)", "",
                  "| runtime | ran as | ms/frame p50 | same persons/frame | matched | box IoU mean (min) | "
                  "track-id agreement |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in report["detector"]["detectors"]:
            c = r["vs_torch_fp32"] or {}
            lines.append(f"| {r['runtime']} | {r['ran_as']} | {_f(r['ms_p50'], 1)} | "
                         f"{c.get('frames_same_person_count')}/{c.get('frames')} | {_f(c.get('matched_share'), 3)} | "
                         f"{_f(c.get('box_iou_mean'), 3)} ({_f(c.get('box_iou_min'), 3)}) | "
                         f"{_f(c.get('id_agreement'), 3)} |")
        lines.append("")
    if report.get("accuracy_guard"):
        g = report["accuracy_guard"]
        variety = g.get("reference_variety", {})
        lines += [f"## Accuracy guard: {g['model']}, {g['frames']} frames, against {g['reference']['name']}", "",
                  f"The reference gives {variety.get('top1_kinds', '?')} different top-1 and "
                  f"{variety.get('top3_kinds', '?')} different top-3 answers over its persons.", "",
                  "| setting | persons matched | max abs prob diff | p99 | mean | max abs VAD diff | top-1 agreement | "
                  "top-3 agreement |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in g["settings"]:
            top1 = 100 * r["top1_agreement"] if "top1_agreement" in r else None
            top3 = 100 * r["top3_agreement"] if "top3_agreement" in r else None
            lines.append(f"| {r['name']} | {r['matched_persons']}/{r['reference_persons']} | "
                         f"{_f(r.get('prob_max'), 4)} | {_f(r.get('prob_p99'), 4)} | {_f(r.get('prob_mean'), 4)} | "
                         f"{_f(r.get('vad_max'), 3)} | {_f(top1, 1)}% | {_f(top3, 1)}% |")
        lines.append("")
    if report.get("startup"):
        s = report["startup"]
        lines += ["## Startup (fresh process to the first frame written)", "", f"`{s['command']}`: " +
                  ", ".join(f"{r['seconds']:.1f} s (exit {r['exit_code']})" for r in s["runs"]), ""]
    if report.get("webcam"):
        w = report["webcam"]
        lines += ["## Web app webcam path", "", f"{w['frames']} frames through the app engine's session pipeline "
                  f"(model {w['model']}, precision {w['precision']}): {_f(w['fps'])} frames/s", ""]
    return "\n".join(lines)


def write_realtime(report: dict, out: str | os.PathLike) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "realtime.json", "markdown": out / "realtime.md"}
    write_text_atomic(paths["json"], json.dumps(report, indent=1) + "\n")
    write_text_atomic(paths["markdown"], markdown(report) + "\n")
    return paths
