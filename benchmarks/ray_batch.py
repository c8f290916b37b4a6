"""Throughput of `emomon batch` on 1 vs 2 (or more) Ray workers, and in one process, on one corpus, side by side.

    python -m benchmarks.ray_batch --source ../shared/data/street_crossing.mp4 --videos 6 --frames 40 \
        --workers 1,2 --out benchmarks/results/ray-batch-street -- \
        --emotion-model tests/assets/trained_tiny.pt --detector-weights ../shared/weights/yolo11n-pose.pt

The corpus is `--videos` clips of `--frames` frames cut from `--source`. Each setting is the real command
(`emomon batch`, a subprocess that starts its own local Ray cluster), so what is measured is what a user runs;
frames/s counts from the moment the workers had loaded their models (the report's `fps`), and the wall time
(`seconds`) includes starting Ray and loading the models. Writes ray_batch.json and ray_batch.md in `--out`,
with the command, the commit, the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.env import environment


def cut_corpus(source: Path, videos: int, frames: int, folder: Path) -> list[Path]:
    """`videos` clips of `frames` frames each, from evenly spaced starts in `source`."""
    import av

    with av.open(str(source)) as probe:
        total = probe.streams.video[0].frames or 0
    starts = [int(i * max(total - frames, 0) / max(videos - 1, 1)) for i in range(videos)]
    return [cut_clip(source, start, frames, folder / f"clip{n:02d}.mp4") for n, start in enumerate(starts)]


def cut_clip(source: Path, start: int, frames: int, out: Path) -> Path:
    """Frames `start` .. `start + frames - 1` of `source` as an H.264 MP4 at `out`."""
    import av

    with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        enc = dst.add_stream("libx264", rate=24)
        enc.width, enc.height, enc.pix_fmt = stream.width, stream.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream)):
            if i >= start + frames:
                break
            if i >= start:
                dst.mux(enc.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")))
        dst.mux(enc.encode())
    return out


def run_batch(clips: list[Path], out: Path, extra: list[str], workers: int | None) -> dict:
    cmd = [sys.executable, "-m", "emomon", "batch", *map(str, clips), "--out", str(out), "--no-resume",
           "--no-progress", *extra]
    if workers is not None:
        cmd += ["--ray", "--workers", str(workers), "--worker-cpus", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"setting": "one process" if workers is None else f"ray, {workers} worker(s)", "workers": workers,
            **{k: report[k] for k in ("videos", "done", "frames", "seconds", "work_seconds", "fps")}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_batch", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True)
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--no-local", action="store_true", help="skip the one-process run")
    p.add_argument("--out", required=True)
    args = p.parse_args(ours)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ray-batch-") as tmp:
        clips = cut_corpus(Path(args.source), args.videos, args.frames, Path(tmp))
        settings = ([] if args.no_local else [None]) + [int(w) for w in args.workers.split(",")]
        for workers in settings:
            rows.append(run_batch(clips, Path(tmp) / f"out-{workers}", extra, workers))
            print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["workers"] == 1), None)
    for r in rows:
        r["speedup_vs_1_worker"] = round(r["fps"] / base["fps"], 2) if base and base["fps"] else None
    load_after = os.getloadavg()
    result = {"command": "python -m benchmarks.ray_batch " + shlex.join(argv), "corpus": {
        "source": args.source, "videos": args.videos, "frames_per_video": args.frames},
        "load_average_before": load_before, "load_average_after": load_after,
        # the load before the run says whether other jobs were there; the one after also counts this run's own
        "measured_under_load": load_before[0] > 0.5 * (os.cpu_count() or 1),
        "rows": rows, "environment": environment("cpu")}
    (out / "ray_batch.json").write_text(json.dumps(result, indent=1))
    lines = ["# emomon batch: one process vs Ray workers", "", f"Command: `{result['command']}`", "",
             f"Commit {result['environment']['git_commit']} (dirty: {result['environment']['git']['dirty']}), "
             f"{result['environment']['cpu']}, {result['environment']['cpu_count']} CPUs; load average "
             f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
             + (" (measured under load: other jobs shared the CPUs)" if result["measured_under_load"] else ""),
             "", "| setting | videos | frames | wall s (with start-up) | work s | frames/s | vs 1 worker |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['done']} | {r['frames']} | {r['seconds']} | {r['work_seconds']} | {r['fps']} | "
              f"{r['speedup_vs_1_worker']} |" for r in rows]
    (out / "ray_batch.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'ray_batch.json'} and {out / 'ray_batch.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
