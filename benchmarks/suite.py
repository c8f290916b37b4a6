"""`run_bench(config)`: every benchmark in one run, one report dict (see benchmarks.schema); `write_outputs`
writes bench.json, bench.md, throughput.png and stages.png.

Order: environment and peak FLOP/s, FLOP counts, model benchmarks per backend (each on its own copy of the
model, freed afterwards), detector, the optimized pipeline twice (every frame, i.e. work reuse off, then with
the default work reuse), the naive baseline on the same first frames, multi-stream. Then two speed-ups, each
over the same first frames of both runs: exact (every-frame pipeline vs naive: the same outputs) and with
reuse (default pipeline vs naive: approximate outputs), with how far the reuse run's outputs are from the
every-frame run's. Parts can be skipped; a skipped part is null in the report and named in `skipped` with why.
"""

from __future__ import annotations

import copy
import logging
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.schema import PARTS, SCHEMA, SCHEMA_VERSION, check
from benchmarks.stats import is_cuda
from detector.config import DetectorConfig
from emomon.kernel import finite_json

log = logging.getLogger(__name__)


_DETECTOR = DetectorConfig()


@dataclass
class BenchConfig:
    """What to benchmark. None means "the default for quick/full and the device" (see `resolved`)."""

    quick: bool = False
    device: str = "cpu"
    source: str | None = None
    frames: int | None = None            # optimized end-to-end run
    naive_frames: int | None = None      # naive baseline, at most (the same first frames)
    naive_min_frames: int | None = None  # naive baseline, at least: the floor wins over naive_max_seconds
    naive_max_seconds: float | None = None  # past the floor, the naive run stops after this (slow by design)
    streams: int | None = None
    stream_counts: list[int] | None = None  # multi-stream sweep (GPU: 1,4,16,64; else: [streams])
    stream_frames: int | None = None     # frames per stream in multi-stream mode
    stream_stagger: int = 1              # stream i starts i x this many frames into the clip
    max_batch: int | None = None         # multi-stream: most requests merged into one call (None: no limit)
    realtime_fps: float = 24.0           # multi-stream: the frame rate a stream must keep to count as real time
    budget_s: float | None = None        # whole run: parts and sweep points that would pass it are skipped
    backends: list[str] | None = None    # None: every registered backend (quick: torch only)
    pipeline_backend: str = "auto"       # auto: the fastest scene stream at batch 1 among the benchmarked ones
    batch_sizes: list[int] | None = None
    detector_batch_sizes: list[int] | None = None
    warmup: int | None = None
    repeats: int | None = None
    max_seconds: float | None = None     # timed seconds per sweep point before stopping early
    pipeline_warmup_frames: int = 2
    emotion_model: str = "random"
    scene_weights: str | None = None
    body_weights: str | None = None
    seed: int = 0
    detector_weights: str = _DETECTOR.weights
    trust_detector_weights: bool = _DETECTOR.trust_weights  # full unpickling of a trusted .pt (not weights-only)
    imgsz: int = _DETECTOR.imgsz
    max_wait_ms: float = 10.0
    skip: list[str] = field(default_factory=list)
    out: str = "out/bench"

    def resolved(self) -> BenchConfig:
        c = copy.deepcopy(self)
        gpu = is_cuda(c.device)
        q = c.quick

        def pick(value, quick, cpu, cuda):
            return value if value is not None else (quick if q else (cuda if gpu else cpu))

        c.frames = pick(c.frames, 48, 120, 300)
        c.naive_frames = min(c.frames, pick(c.naive_frames, 24, 48, 120))
        c.naive_min_frames = min(c.naive_frames, pick(c.naive_min_frames, 12, 24, 60))
        c.naive_max_seconds = pick(c.naive_max_seconds, 60.0, 300.0, 120.0)
        sweep = gpu and not q and c.streams is None
        c.streams = pick(c.streams, 2, 2, 8)
        c.stream_counts = sorted(set(c.stream_counts or ([1, 4, 16, 64] if sweep else [c.streams])))
        c.streams = max(c.stream_counts)
        c.stream_frames = pick(c.stream_frames, 8, 48, 150)
        c.batch_sizes = pick(c.batch_sizes, [1, 4, 8], [1, 8, 32], [1, 8, 32, 128])
        c.detector_batch_sizes = pick(c.detector_batch_sizes, [1, 4, 8], [1, 8, 32], [1, 8, 32, 128])
        c.warmup = pick(c.warmup, 1, 2, 10)
        c.repeats = pick(c.repeats, 3, 10, 50)
        c.max_seconds = pick(c.max_seconds, 2.0, 10.0, 5.0)
        return c


def _validate(c: BenchConfig) -> None:
    import torch

    from emomon.kernel import InputError

    unknown = sorted(set(c.skip) - set(PARTS))
    if unknown:
        raise InputError(f"--skip {','.join(unknown)}: unknown part(s); choose from {', '.join(PARTS)}")
    if is_cuda(c.device) and not torch.cuda.is_available():
        raise InputError(f"--device {c.device}: this torch sees no CUDA device (use --device cpu)")
    if not (is_cuda(c.device) or c.device == "cpu"):
        raise InputError(f"--device must be cpu or cuda[:N], not '{c.device}'")
    for name in ("frames", "naive_frames", "naive_min_frames", "streams", "stream_frames", "repeats"):
        if getattr(c, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1")
    if min(c.stream_counts) < 1 or (c.max_batch is not None and c.max_batch < 1) or c.stream_stagger < 0:
        raise InputError("--streams, --max-batch must be >= 1 and --stream-stagger >= 0")
    if c.budget_s is not None and c.budget_s <= 0:
        raise InputError("--budget-s must be > 0")
    if c.warmup < 0 or not c.batch_sizes or min(c.batch_sizes + c.detector_batch_sizes) < 1:
        raise InputError("--warmup must be >= 0 and batch sizes >= 1")
    from benchmarks.models import parse_backend_spec

    for spec in (c.backends or []) + ([] if c.pipeline_backend == "auto" else [c.pipeline_backend]):
        parse_backend_spec(spec)  # InputError for a malformed spec, before any model is loaded
    if c.pipeline_backend != "auto":
        from fusion import list_backends

        if parse_backend_spec(c.pipeline_backend)[0] not in list_backends():
            raise InputError(f"--pipeline-backend {c.pipeline_backend}: not a registered backend "
                             f"({', '.join(list_backends())})")
    if c.source is not None and not Path(c.source).is_file():
        raise InputError(f"--source '{c.source}': no such video file")


def _parameters(model) -> dict[str, int]:
    out = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    out = {k: v for k, v in out.items() if v}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def _free(device) -> None:
    import gc

    import torch

    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()


def _source_info(path: str) -> dict:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        return {"fps": fps if fps and fps > 0 else None, "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                "frame_count": int(cap.get(cv2.CAP_PROP_FRAME_COUNT))}
    finally:
        cap.release()


def _frames(path: str, n: int) -> list:
    import cv2

    cap = cv2.VideoCapture(path)
    frames = []
    try:
        while len(frames) < n:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(image)
    finally:
        cap.release()
    return frames


def _pick_backend(c: BenchConfig, results: dict) -> tuple[str, str]:
    if c.pipeline_backend != "auto":
        return c.pipeline_backend, "chosen with --pipeline-backend"
    best, best_ips = None, 0.0
    for name, entry in results.items():
        if entry.get("status") != "ok" or "compile" in name:  # compiled per shape: the pipeline's shapes vary
            continue
        scene = [p for p in entry["streams"]["scene"] if "images_per_s" in p]
        if scene and scene[0]["images_per_s"] > best_ips:
            best, best_ips = name, scene[0]["images_per_s"]
    if best is None:
        return "torch", "auto: no backend benchmarked, using torch"
    return best, f"auto: fastest scene stream at batch {results[best]['streams']['scene'][0]['batch_size']} " \
                 f"({best_ips:.1f} images/s; torch.compile backends are left out: they compile per batch shape)"


# shares of the time budget left when a part starts (the parts after it keep theirs); peak, FLOPs and loading
# are not budgeted: they are short and everything needs them
BUDGET_SHARES = {"models": 3, "detector": 1, "pipeline": 3, "multistream": 3}


def run_bench(config: BenchConfig, command: str | None = None) -> dict:
    """Run the benchmarks; return the report (validated against the schema)."""
    suite = _Suite(config, command)
    suite.lap("setup")
    suite.peak_and_flops()
    suite.load_detector()
    suite.model_benchmarks()
    suite.detector_benchmarks()
    suite.choose_pipeline_backend()
    suite.pipeline()
    suite.multistream()
    return suite.finish()


class _Suite:
    """One `run_bench` call: the resolved config, what the parts share (model, detector, peak, FLOPs) and the
    report as it fills. `run_bench` calls one method per part, in order; a part named in --skip stays null
    in the report (and is listed in `skipped`), `lap` adds each part's seconds to `part_seconds`."""

    def __init__(self, config: BenchConfig, command: str | None):
        import torch

        from benchmarks.env import environment

        self.started = time.perf_counter()
        c = self.c = config.resolved()
        _validate(c)
        self.out_dir = Path(c.out)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.skip, self.skipped, self.warnings = set(c.skip), {}, []
        for part in self.skip:
            self.skipped[part] = "skipped with --skip"
        self.env = environment(c.device)
        if c.device == "cuda":
            c.device = f"cuda:{torch.cuda.current_device()}"
        self.src = self._source()
        self.model = self._emotion_model()
        self.report = self._empty_report(command)
        self._last = self.started
        self.deadline = None if c.budget_s is None else self.started + c.budget_s
        self._budgeted = [p for p in BUDGET_SHARES if p not in self.skip]

    def part_deadline(self, part: str) -> float | None:
        """When `part` must end: its share of the budget left now. None without --budget-s."""
        if self.deadline is None:
            return None
        parts = self._budgeted[self._budgeted.index(part):] if part in self._budgeted else [part]
        left = self.deadline - time.perf_counter()
        return time.perf_counter() + max(0.0, left) * BUDGET_SHARES[part] / sum(BUDGET_SHARES[p] for p in parts)

    def over_budget(self, part: str) -> bool:
        """True (and the part named in `skipped`) when the budget is spent before `part` starts."""
        if self.deadline is None or time.perf_counter() < self.deadline:
            return False
        self.skipped[part] = f"the --budget-s {self.c.budget_s:g} s budget was spent before this part"
        return True

    def lap(self, part: str) -> None:
        parts, now = self.report["part_seconds"], time.perf_counter()
        parts[part] = parts.get(part, 0.0) + now - self._last
        self._last = now

    # -- set-up ---------------------------------------------------------------------------------------
    def _source(self) -> dict:
        """The input video (generated when no --source is given) and what it holds."""
        c = self.c
        generated = c.source is None
        if generated:
            from benchmarks.clip import generate_clip

            need = max(c.frames, c.stream_frames, c.naive_frames) + c.pipeline_warmup_frames + 2
            c.source = str(generate_clip(self.out_dir / "generated_clip.mp4", frames=need))
            self.warnings.append("no --source given: benchmarked a clip generated from Ultralytics' bus.jpg and "
                                 "zidane.jpg")
        src = {"path": str(c.source), "generated": generated, **_source_info(c.source)}
        if src["frame_count"] and src["frame_count"] < c.frames + c.pipeline_warmup_frames:
            self.warnings.append(f"the source has {src['frame_count']} frames, fewer than the {c.frames} asked for")
        return src

    def _emotion_model(self):
        from emomon.pipeline import EmotionModelConfig, load_model

        c = self.c
        model = load_model(EmotionModelConfig(c.emotion_model, seed=c.seed, scene_weights=c.scene_weights,
                                              body_weights=c.body_weights), device="cpu")
        if model.source.kind == "random":
            self.warnings.append("the emotion model has random weights: speed is that of the real architecture, "
                                 "the emotions are meaningless")
        return model

    def _empty_report(self, command: str | None) -> dict:
        from fusion import describe_model

        model = self.model
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "created_utc": self.env["time_utc"],
                "duration_s": 0.0, "command": command or "benchmarks.run_bench",
                "config": {}, "environment": self.env,
                "model": {"description": describe_model(model), "name": model.model_name,
                          "parameters": _parameters(model)},
                "source": self.src, "flops": None, "peak": None,
                "model_benchmarks": {"backends": {}, "detector": {}},
                "pipeline": None, "multistream": None, "summary": {}, "skipped": self.skipped,
                "warnings": self.warnings, "part_seconds": {}}

    # -- the physical limit ---------------------------------------------------------------------------
    def peak_and_flops(self) -> None:
        from benchmarks.flops import device_peak, emotion_flops

        c = self.c
        names = self._backend_names()[0] + [c.pipeline_backend]
        reduced = ("bf16",) if any("fp16" in n or "bf16" in n for n in names) else ()  # torch-fp16 is bf16 on CPU
        self.peak = device_peak(c.device, self.env.get("gpu"), quick=c.quick, precisions=reduced)
        self.report["peak"] = self.peak
        self.flops = None
        if "flops" not in self.skip:
            self.flops = emotion_flops(self.model, persons=1)
        self.lap("peak_and_flops")

    # -- detectors ------------------------------------------------------------------------------------
    def make_detector(self, half: bool):
        from emomon.pipeline import build_detector

        c = self.c
        # the .pt model in the precision it is labelled with (FLOP counts need the torch module); the detector
        # runtimes `--precision auto` picks are compared by `emomon bench --realtime`
        return build_detector(DetectorConfig(weights=c.detector_weights, imgsz=c.imgsz, device=c.device, half=half,
                                             trust_weights=c.trust_detector_weights, runtime="torch",
                                             precision="fp16" if half else "fp32"))

    def load_detector(self) -> None:
        from benchmarks.flops import detector_flops

        flops = self.flops
        self.detector = self.make_detector(half=is_cuda(self.c.device))
        self.det_flops, det_note = detector_flops(self.detector, (self.src["height"], self.src["width"]))
        self.lap("detector_load")
        if flops is not None:
            self.report["flops"] = {
                "method": "torch.utils.flop_counter.FlopCounterMode, 2 FLOPs per multiply-add; attention included",
                "scene_per_frame": flops["scene"], "body_per_person": flops["body"],
                "heads_per_person": flops["heads"], "detector_per_frame": self.det_flops,
                "detector_note": det_note, "per_frame_every_frame": None}

    # -- model benchmarks -----------------------------------------------------------------------------
    def _backend_names(self) -> tuple[list[str], dict[str, str]]:
        """The backends to benchmark, and why each registered one left out is."""
        from fusion import list_backends

        c = self.c
        registered = list_backends()
        if c.backends is not None:
            return list(c.backends), {}
        if c.quick:
            names = ["torch"]
            return names, {n: "not benchmarked in --quick (name it in --backends to include it)" for n in registered
                           if n not in names}
        slow = [] if is_cuda(c.device) else [n for n in registered if "compile" in n]
        return [n for n in registered if n not in slow], {
            n: "torch.compile on CPU takes many minutes per shape; name it in --backends to include it" for n in slow}

    def model_benchmarks(self) -> None:
        from benchmarks.models import Sweep, bench_backends

        c = self.c
        self.sweep = Sweep(c.device, c.warmup, c.repeats, c.max_seconds)
        self.names, not_run = self._backend_names()
        self.backend_results: dict = {}
        self.sweep.deadline = self.part_deadline("models")
        if "models" not in self.skip and not self.over_budget("models"):
            self.backend_results = bench_backends(self.model, self.names, c.device, c.batch_sizes, self.sweep,
                                                  self.flops, self.peak, skipped=not_run)
        self.report["model_benchmarks"]["backends"] = self.backend_results
        self.lap("models")

    def detector_benchmarks(self) -> None:
        from benchmarks.models import bench_detector

        c, sweep = self.c, self.sweep
        if "detector" in self.skip or self.over_budget("detector"):
            return
        sweep.deadline = self.part_deadline("detector")
        frames = _frames(c.source, min(32, max(c.detector_batch_sizes)))  # larger batches cycle through these
        dets = {}
        precision = "fp16" if self.detector.config.half else "fp32"
        dets[f"yolo-{precision}"] = bench_detector(self.detector, frames, c.detector_batch_sizes, sweep,
                                                   self.det_flops, self.peak, precision)
        if is_cuda(c.device):
            fp32 = self.make_detector(half=False)
            dets["yolo-fp32"] = bench_detector(fp32, frames, c.detector_batch_sizes, sweep, self.det_flops,
                                               self.peak, "fp32")
            del fp32
        self.report["model_benchmarks"]["detector"] = dets
        self.lap("detector")

    # -- end to end -----------------------------------------------------------------------------------
    def choose_pipeline_backend(self) -> None:
        from emomon.pipeline import PipelineConfig

        self.pipeline_config = PipelineConfig()
        self.backend_name, self.backend_why = _pick_backend(self.c, self.backend_results)
        self.backend = None

    def pipeline(self) -> None:
        """The optimized pipeline every frame and with work reuse, the naive baseline on the same first frames,
        the speed-ups and the output deviations."""
        from benchmarks.compare import output_deviation, speedup
        from benchmarks.models import create_backend_spec
        from emomon.pipeline import PipelineConfig, ReuseConfig

        if "pipeline" in self.skip or self.over_budget("pipeline"):
            return
        self.pipeline_deadline = self.part_deadline("pipeline")
        self.backend = create_backend_spec(self.backend_name, self.model, self.c.device)
        base = self.pipeline_config
        configs = {"every_frame": PipelineConfig(reuse=ReuseConfig.every_frame(), smoothing=base.smoothing,
                                                 top_k=base.top_k),
                   "reuse": base}
        runs, outputs = {}, {}
        for name, config in configs.items():
            outputs[name] = []
            runs[name] = self.optimized_run(config, outputs[name])
            self.lap(f"pipeline_{name}")
        naive = speed = naive_deviation = None
        if "naive" not in self.skip:
            outputs["naive"] = []
            naive = self.naive(outputs["naive"])
            speed = {"exact": speedup(runs["every_frame"], naive, "every_frame", "naive"),
                     "with_reuse": speedup(runs["reuse"], naive, "reuse", "naive"),
                     "note": "exact: the pipeline with work reuse off (every frame) vs the naive loop: the same "
                             "outputs (see naive_deviation), the gain is batching, one scene per frame and the "
                             "reader thread; with_reuse: the default pipeline (work reuse on: approximate "
                             "outputs, see reuse_deviation) vs the naive loop. Each is frames/s over the same first "
                             "`frames` frames of both runs; frame_ms: the spread of per-frame wall times there"}
            naive_deviation = output_deviation(outputs["every_frame"], outputs["naive"])
        self.report["pipeline"] = {
            **runs, "naive": naive, "speedup": speed,
            "reuse_over_every_frame": speedup(runs["reuse"], runs["every_frame"], "reuse", "every_frame"),
            "reuse_deviation": output_deviation(outputs["every_frame"], outputs["reuse"]),
            "naive_deviation": naive_deviation,
            "deviation_note": "persons matched by (frame, track id) over the same frames; reference: the "
                              "every-frame run; absolute differences of the 26 category probabilities and of VAD "
                              "(1-10 scale); top-1: the highest-scoring category agrees",
        }
        if self.flops is not None:
            persons = runs["every_frame"]["mean_persons_per_frame"]
            self.report["flops"]["per_frame_every_frame"] = {
                "persons": persons,
                "total": int((self.det_flops or 0) + self.flops["scene"]
                             + persons * (self.flops["body"] + self.flops["heads"]))}
        summary = self.report["summary"]
        summary.update(every_frame_fps=runs["every_frame"]["fps"], reuse_fps=runs["reuse"]["fps"],
                       reuse_persons_per_s=runs["reuse"]["persons_per_s"], pipeline_backend=self.backend_name,
                       decode_hidden_fraction=runs["reuse"]["overlap"]["decode_hidden_fraction"])
        if speed:
            summary.update(naive_fps=naive["fps"], naive_frames=naive["frames"],
                           speedup_exact=speed["exact"]["speedup"], speedup_exact_frames=speed["exact"]["frames"],
                           speedup_with_reuse=speed["with_reuse"]["speedup"],
                           speedup_with_reuse_frames=speed["with_reuse"]["frames"])

    def optimized_run(self, config, outputs: list) -> dict:
        from benchmarks.e2e import run_optimized
        from benchmarks.flops import peak_for, precision_of

        c = self.c
        run = run_optimized(c.source, c.frames, self.detector, self.backend, config, c.pipeline_warmup_frames,
                            self.flops, self.det_flops, peak_for(self.peak, precision_of(self.backend)),
                            work_dir=self.out_dir, outputs=outputs)
        run["backend_choice"] = self.backend_why
        return run

    def naive(self, outputs: list | None = None) -> dict:
        """The naive baseline, on an fp32 copy of the model (and an fp32 detector on CUDA)."""
        from benchmarks.flops import peak_for
        from benchmarks.naive import run_naive

        c = self.c
        naive_model = copy.deepcopy(self.model)
        naive_detector = self.make_detector(half=False) if is_cuda(c.device) else self.detector
        max_seconds = c.naive_max_seconds
        if self.pipeline_deadline is not None:  # the frame floor still wins: both speed-ups rest on it
            max_seconds = min(max_seconds, max(0.0, self.pipeline_deadline - time.perf_counter()))
        naive = run_naive(c.source, c.naive_frames, naive_detector, naive_model, c.device,
                          self.pipeline_config.smoothing, flops=self.flops, detector_flops=self.det_flops,
                          peak_flops=peak_for(self.peak, "fp32"), work_dir=self.out_dir,
                          max_seconds=max_seconds, min_frames=c.naive_min_frames, outputs=outputs)
        del naive_model, naive_detector
        _free(c.device)
        self.lap("naive")
        return naive

    # -- multi-stream ---------------------------------------------------------------------------------
    def multistream(self) -> None:
        from benchmarks.models import create_backend_spec
        from benchmarks.multistream import run_sweep
        from fusion import Predictor

        c = self.c
        if "multistream" in self.skip or self.over_budget("multistream"):
            return
        if self.backend is None:
            self.backend = create_backend_spec(self.backend_name, self.model, c.device)
        predictor = Predictor(self.backend, preprocess=self.pipeline_config_preprocess())
        ms = run_sweep(c.source, c.stream_counts, c.stream_frames, self.detector, predictor,
                       self.pipeline_config, self.src["fps"], c.max_wait_ms / 1000.0,
                       make_detector=lambda: self.make_detector(is_cuda(c.device)), max_batch=c.max_batch,
                       stagger=c.stream_stagger, realtime_fps=c.realtime_fps,
                       deadline=self.part_deadline("multistream"))
        self.report["multistream"] = ms
        self.lap("multistream")
        self.report["summary"].update(multistream_streams=ms["streams"], multistream_aggregate_fps=ms["aggregate_fps"],
                                      realtime_streams_estimate=ms["realtime_streams_estimate"],
                                      realtime_streams_measured=ms["realtime_streams_measured"],
                                      multistream_preprocess=predictor.preprocess,
                                      decode_fps=ms["decode"]["fps"])

    def pipeline_config_preprocess(self) -> str:
        """The `--preprocess` of the product's default (`auto`): on the device on CUDA, OpenCV on a CPU."""
        from emomon.pipeline.config import EmotionModelConfig

        return EmotionModelConfig().preprocess

    # -- the report -----------------------------------------------------------------------------------
    def finish(self) -> dict:
        """Best images/s per backend, the peak reconciled with what the runs achieved, the config, JSON types."""
        report, summary = self.report, self.report["summary"]
        for name, entry in self.backend_results.items():
            if entry.get("status") == "ok":
                for stream in ("scene", "body"):
                    best = max((p["images_per_s"] for p in entry["streams"][stream] if "images_per_s" in p),
                               default=None)
                    summary[f"{stream}_images_per_s_best_{name}"] = best
        self.reconcile_peak()
        config_dict = asdict(self.c)
        config_dict["backends"] = list(self.names)
        config_dict["skip"] = sorted(self.skip)
        report["config"] = config_dict
        report["duration_s"] = time.perf_counter() - self.started
        return finite_json(report)

    def reconcile_peak(self) -> None:
        """Every fraction of peak against the peak raised to the best figure achieved at its precision: a figure
        above the measured peak means the peak measurement was low (load), so the peak is the max of both."""
        from benchmarks.flops import peak_for, reconcile_peak

        report = self.report
        figures = peak_figures(report)
        peak = report["peak"] = reconcile_peak(self.peak, [(prec, node["achieved_flops_per_s"], path)
                                                           for node, prec, path, _ in figures])
        for node, precision, _, entry in figures:
            used = peak_for(peak, precision)
            node["fraction_of_peak"] = node["achieved_flops_per_s"] / used if used else None
            if entry is not None:
                entry["peak_flops_per_s"] = used
        for raised in peak["raised"]:
            self.warnings.append(f"{raised['by']} achieved {raised['to'] / 1e9:.1f} GFLOP/s, above the {peak['basis']} "
                                 f"{raised['key']} peak of {raised['from'] / 1e9:.1f} GFLOP/s: the peak measurement "
                                 "was low (other load?); fractions use the larger figure")
        pipe = report["pipeline"]
        if pipe is not None:
            report["summary"].update(
                pipeline_peak_flops_per_s=peak_for(peak, pipe["every_frame"]["precision"]),
                every_frame_fraction_of_peak=pipe["every_frame"]["fraction_of_peak"],
                reuse_fraction_of_peak=pipe["reuse"]["fraction_of_peak"])


def peak_figures(report: dict) -> list[tuple[dict, str, str, dict | None]]:
    """Every figure with an achieved FLOP/s: (the dict holding it, its precision, where it is in the report,
    the backend/detector entry that records the peak it used, or None)."""
    found = []
    benches = report["model_benchmarks"]
    for kind in ("backends", "detector"):
        for name, entry in benches[kind].items():
            if entry.get("status") != "ok":
                continue
            streams = entry["streams"] if kind == "backends" else {"points": entry["points"]}
            for stream, points in streams.items():
                for i, point in enumerate(points):
                    if point.get("achieved_flops_per_s"):
                        found.append((point, entry["precision"], f"model_benchmarks.{kind}.{name}.{stream}[{i}]",
                                      entry))
    for name in ("every_frame", "reuse", "naive"):
        run = (report["pipeline"] or {}).get(name)
        if run and run.get("achieved_flops_per_s"):
            found.append((run, run["precision"], f"pipeline.{name}", None))
    return found


def write_outputs(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """bench.json (validated), bench.md, throughput.png, stages.png in `out_dir`."""
    from benchmarks.report import plot, to_markdown
    from emomon.kernel import write_json_atomic

    out_dir = Path(out_dir)
    paths = {"json": write_json_atomic(out_dir / "bench.json", report)}
    check(report)
    paths["markdown"] = out_dir / "bench.md"
    paths["markdown"].write_text(to_markdown(report) + "\n", encoding="utf-8")
    throughput, stages = plot(report, out_dir)
    paths.update(throughput_png=throughput, stages_png=stages)
    return paths


def command_line(argv: list[str] | None = None) -> str:
    return "emomon " + shlex.join(sys.argv[1:] if argv is None else argv)
