"""The one-command GPU check (`make gpu-check`, or `bash benchmarks/gpu_check.sh` on a bare GPU machine, which
installs the carried wheels first): the `gpu`/`tensorrt` tests, CPU vs device preprocessing side by side, then
the full `emomon bench` (every backend that loads there, batch sweeps, end to end, multi-stream at 1, 4, 16 and
64 streams), all within `--budget-s`, into one folder: gpu_check.json, gpu_check.md, tests.xml, preprocess.json,
bench.json, bench.md, throughput.png, stages.png.

    python -m benchmarks.gpu_check --device cuda --budget-s 480   # under 8 minutes on one GPU
    python -m benchmarks.gpu_check --device cpu --budget-s 120    # the same script on a CPU (CI runs it)
    python -m benchmarks.gpu_check --device cpu -- --quick --frames 6  # bench flags after -- replace the sizing

TensorRT's wheels come from NVIDIA's own index; where it is missing the report says "not installable here"
and everything else is measured. Exit code 0 when every test that ran passed and the bench finished, 1 when a
test failed (the files are written either way), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

log = logging.getLogger(__name__)
STARTED = time.perf_counter()  # run as a script, the budget counts from here: imports included

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MARKS = re.compile(r"mark\.(gpu|tensorrt)\b")
# backends in the order they are measured: the device's half precision first (the headline), torch.compile
# last (it compiles per batch shape and may take what is left of its share)
CUDA_BACKENDS = ["torch:precision=fp16", "torch", "onnxruntime", "tensorrt", "torch-compile"]
TENSORRT_MISSING = ("not installable here: TensorRT's wheels come from NVIDIA's own index, which this machine "
                    "cannot reach; everything else was measured")


def _asset(relative: str, kit_name: str) -> str | None:
    """../shared's file, else the copy gpu-kit.sh packed into .gpukit/."""
    for path in (SHARED / relative, ROOT / ".gpukit" / kit_name):
        if path.is_file():
            return str(path)
    return None


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, bench_args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--budget-s", type=float, default=480.0, help="the whole check's time budget (default 480)")
    p.add_argument("--out", help="output folder (default benchmarks/results/gpu-check-<device name>)")
    p.add_argument("--source", default=_asset("data/street_crossing.mp4", "street_crossing.mp4"), metavar="VIDEO")
    p.add_argument("--detector-weights", default=_asset("weights/yolo11n-pose.pt", "yolo11n-pose.pt"))
    p.add_argument("--emotion-model",
                   help="default: random (the real-size model; speed does not depend on the weights) on CUDA, "
                        "random:two_stream_tiny on a CPU, where the real-size model's naive baseline alone takes "
                        "minutes (its CPU figures: benchmarks/results/cpu-quick-vitb16-random)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the gpu/tensorrt tests")
    args = p.parse_args(argv)
    args.argv = argv + (["--", *bench_args] if bench_args else [])
    if args.emotion_model is None:
        args.emotion_model = "random" if args.device.startswith("cuda") else "random:two_stream_tiny"
    if args.budget_s <= 0:
        p.error("--budget-s must be > 0")
    return args, bench_args


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import os

    from benchmarks.env import environment

    return f"{environment('cpu')['cpu']} {len(os.sched_getaffinity(0))}-core"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def tensorrt_status() -> dict:
    try:
        import tensorrt
    except Exception as exc:  # noqa: BLE001 - any failure to load is "not here"
        error = f"{type(exc).__name__}: {exc}"
        return {"available": False, "version": None, "status": TENSORRT_MISSING, "error": error}
    return {"available": True, "version": tensorrt.__version__, "status": "installed", "error": None}


# -- the gpu/tensorrt tests -------------------------------------------------------------------------------------
def marked_test_files() -> list[str]:
    """Test files with a gpu or tensorrt mark (collecting only these keeps the stage short)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if MARKS.search(p.read_text(encoding="utf-8", errors="replace")))


def run_tests(out: Path, timeout_s: float) -> dict:
    files = marked_test_files()
    xml = out / "tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu or tensorrt",
           f"--junitxml={xml}", *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        code, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
    except subprocess.TimeoutExpired as exc:
        code = None
        tail = f"stopped after {timeout_s:.0f} s (its share of --budget-s)\n" + str(exc.stdout or "")[-2000:]
    result = {"command": shlex.join(cmd), "files": files, "exit_code": code, "seconds": time.perf_counter() - t0,
              "output_tail": tail, **_junit(xml)}
    result["ok"] = code in (0, 5) and result["failed"] == 0   # 5: nothing collected
    return result


def _junit(path: Path) -> dict:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "tests": []}
    if not path.is_file():
        return counts
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, detail = "failed", (child.get("message") or "")[:300]
            elif child.tag == "skipped":
                outcome, detail = "skipped", (child.get("message") or "")[:300]
        counts[outcome] += 1
        counts["tests"].append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                                "detail": detail})
    return counts


# -- the bench ---------------------------------------------------------------------------------------------------
def bench_argv(args, out: Path, budget_s: float, extra: list[str]) -> list[str]:
    """`emomon bench` flags: sized for the device unless bench flags were given after --."""
    cuda = args.device.startswith("cuda")
    base = ["--device", args.device, "--out", str(out), "--emotion-model", args.emotion_model,
            "--budget-s", f"{budget_s:.0f}"]
    for flag, value in (("--source", args.source), ("--detector-weights", args.detector_weights)):
        if value and flag not in extra:
            base += [flag, value]
    if extra:
        return base + extra
    if cuda:   # the full GPU run: every backend, batch sweeps to 128, 300 frames end to end, 1-64 streams
        return base + ["--backends", ",".join(CUDA_BACKENDS), "--batch-sizes", "1,8,32,128",
                       "--detector-batch-sizes", "1,8,32", "--max-seconds", "2", "--frames", "300",
                       "--naive-frames", "60", "--naive-min-frames", "20", "--stream-sweep", "1,4,16,64",
                       "--stream-frames", "96", "--stream-stagger", "2"]
    # a CPU: the --quick sizes, still every stage and the whole stream sweep (what the budget allows of it)
    return base + ["--quick", "--frames", "6", "--naive-frames", "3", "--naive-min-frames", "3",
                   "--stream-sweep", "1,4,16,64", "--stream-frames", "4", "--stream-stagger", "2"]


def run_check(args, bench_extra: list[str], started: float | None = None) -> tuple[dict, int]:
    import torch

    from benchmarks.preprocess import compare_preprocess, write_preprocess
    from emomon.kernel import InputError

    started = time.perf_counter() if started is None else started
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    name = device_name(args.device)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"gpu-check-{slug(name)}")
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget_s
    left = lambda: budget - (time.perf_counter() - started)  # noqa: E731
    report = {"schema": "emomon.gpu_check", "schema_version": 1, "command": "python -m benchmarks.gpu_check "
              + shlex.join(args.argv), "out": str(out), "device": args.device, "device_name": name, "budget_s": budget,
              "torch": torch.__version__, "cuda": torch.version.cuda, "tensorrt": tensorrt_status(), "stages": {}}
    stages = report["stages"]

    if args.skip_tests:
        stages["tests"] = {"skipped": "--skip-tests"}
    else:
        stages["tests"] = run_tests(out, timeout_s=min(180.0, 0.3 * budget))
        log.info("gpu check: tests %d passed, %d failed, %d skipped (%.0f s)", stages["tests"]["passed"],
                 stages["tests"]["failed"], stages["tests"]["skipped"], stages["tests"]["seconds"])

    if args.source and args.detector_weights and left() > 0.5 * budget:
        t0 = time.perf_counter()
        frames = 12 if args.device.startswith("cuda") else 4
        pre = compare_preprocess(args.source, args.detector_weights, args.device, frames=frames)
        write_preprocess(pre, out)
        stages["preprocess"] = {"seconds": time.perf_counter() - t0, "file": "preprocess.json",
                                "ms_per_frame": {k: v["ms_per_frame"]["p50"] for k, v in pre["modes"].items()},
                                "faster": pre["faster"]}
    else:
        stages["preprocess"] = {"skipped": "no --source/--detector-weights" if not args.source
                                else "the budget left was too small"}

    stages["bench"] = run_bench_process(args, out, bench_extra, budget_s=max(10.0, left() - 15.0))
    report["seconds"] = time.perf_counter() - started
    report["within_budget"] = report["seconds"] <= budget
    code = 0 if stages["tests"].get("ok", True) and stages["bench"]["exit_code"] == 0 else 1
    report["exit_code"] = code
    from emomon.kernel import write_json_atomic

    write_json_atomic(out / "gpu_check.json", report)
    (out / "gpu_check.md").write_text(markdown(report) + "\n", encoding="utf-8")
    return report, code


def run_bench_process(args, out: Path, extra: list[str], budget_s: float) -> dict:
    """`emomon bench` in its own process (the CLI is a layer above the benchmarks). Its parts stop at the budget,
    but a call already running finishes (a torch.compile of one batch shape can take a minute), so it is only
    stopped 4 minutes past it: a stopped bench writes no files."""
    argv = ["bench", *bench_argv(args, out, budget_s, extra)]
    cmd = [sys.executable, "-m", "emomon", *argv]
    t0 = time.perf_counter()
    try:
        code = subprocess.run(cmd, cwd=ROOT, timeout=budget_s + 240).returncode
    except subprocess.TimeoutExpired:
        code = None
    stage = {"command": "emomon " + shlex.join(argv), "argv": argv, "exit_code": code, "budget_s": budget_s,
             "seconds": time.perf_counter() - t0}
    path = out / "bench.json"
    if code == 0 and path.is_file():
        bench = json.loads(path.read_text(encoding="utf-8"))
        stage.update(files={k: n for k, n in (("json", "bench.json"), ("markdown", "bench.md"),
                                             ("throughput_png", "throughput.png"), ("stages_png", "stages.png"))
                            if (out / n).is_file()},
                     skipped=bench["skipped"], headline=headline(bench))
    else:
        stage["error"] = "stopped past its budget" if code is None else f"emomon bench exited with {code}"
    return stage


def headline(bench: dict) -> dict:
    """The figures a reader wants first, from bench.json."""
    s = bench["summary"]
    backends = {name: {"status": e["status"], "reason": e.get("reason"),
                       "scene_best_images_per_s": s.get(f"scene_images_per_s_best_{name}"),
                       "body_best_images_per_s": s.get(f"body_images_per_s_best_{name}")}
                for name, e in bench["model_benchmarks"]["backends"].items()}
    ms = bench.get("multistream") or {}
    return {"backends": backends, "every_frame_fps": s.get("every_frame_fps"), "reuse_fps": s.get("reuse_fps"),
            "pipeline_backend": s.get("pipeline_backend"),
            "every_frame_fraction_of_peak": s.get("every_frame_fraction_of_peak"),
            "multistream": ms.get("sweep"), "realtime_streams_measured": ms.get("realtime_streams_measured"),
            "realtime_fps": ms.get("realtime_fps"), "decode": ms.get("decode")}


def markdown(r: dict) -> str:
    t, b = r["stages"]["tests"], r["stages"]["bench"]
    h = b.get("headline")
    lines = [f"# GPU check: {r['device_name']} ({r['device']})", "",
             f"`{r['command']}`: {r['seconds']:.0f} s of a {r['budget_s']:.0f} s budget; torch {r['torch']}, CUDA "
             f"{r['cuda'] or '-'}. TensorRT: {r['tensorrt']['version'] or r['tensorrt']['status']}.", ""]
    if "exit_code" not in t:
        lines += [f"Tests: not run ({t['skipped']}).", ""]
    else:
        lines += [f"Tests (`-m \"gpu or tensorrt\"`, {len(t['files'])} files): {t['passed']} passed, {t['failed']} "
                  f"failed, {t['skipped']} skipped in {t['seconds']:.0f} s (tests.xml).", ""]
        lines += [f"- {x['test']}: {x['outcome']}{' - ' + x['detail'] if x['detail'] else ''}"
                  for x in t["tests"] if x["outcome"] != "passed"] + [""]
    pre = r["stages"]["preprocess"]
    if "ms_per_frame" in pre:
        lines += ["Preprocessing per frame, p50 ms (preprocess.json): " + ", ".join(
            f"{k} {v:.1f}" for k, v in pre["ms_per_frame"].items()) + f"; faster: {pre['faster']}.", ""]
    if h is None:
        return "\n".join(lines + [f"Bench: {b['error']} (`{b['command']}`)."])
    lines += ["| backend | status | scene best images/s | body best images/s |", "| --- | --- | --- | --- |"]
    for name, e in h["backends"].items():
        lines.append(f"| {name} | {e['status'] if e['status'] == 'ok' else e['status'] + ': ' + (e['reason'] or '')}"
                     f" | {_f(e['scene_best_images_per_s'])} | {_f(e['body_best_images_per_s'])} |")
    lines += ["", f"End to end ({h['pipeline_backend']}): every frame {_f(h['every_frame_fps'])} frames/s, with work "
              f"reuse {_f(h['reuse_fps'])} frames/s.", ""]
    if h["multistream"]:
        lines += ["| streams | aggregate frames/s | slowest stream frames/s | stream p95 ms | all >= "
                  f"{h['realtime_fps']:g} fps |", "| --- | --- | --- | --- | --- |"]
        for row in h["multistream"]:
            if "skipped" in row:
                lines.append(f"| {row['streams']} | skipped: {row['skipped']} | | | |")
            else:
                lines.append(f"| {row['streams']} | {_f(row['aggregate_fps'])} | {_f(row['min_stream_fps'])} | "
                             f"{_f(row['stream_latency_p95_ms'])} | {'yes' if row['realtime_at_n'] else 'no'} |")
        d = h["decode"]
        lines += ["", f"Decode, apart: {_f(d['fps'])} frames/s ({d['decoder']}).", ""]
    if b["skipped"]:
        lines += ["Bench parts skipped: " + "; ".join(f"{k}: {v}" for k, v in b["skipped"].items()), ""]
    lines += ["Full figures: bench.md, bench.json, throughput.png, stages.png."]
    return "\n".join(lines)


def _f(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    from emomon.kernel import EmomonError, setup_logging

    args, bench_extra = parse_args(argv)
    setup_logging()
    try:
        report, code = run_check(args, bench_extra, started)
    except EmomonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"\nwritten to {report['out']}")
    return code


if __name__ == "__main__":
    sys.exit(main(started=STARTED))
