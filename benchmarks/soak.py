"""Soak test of `emomon run` on a live RTSP camera that drops on a schedule: memory, survival, outages.

Starts an RTSP server (a command given by the caller, e.g. `../shared/tools/rtsp_server.py`), runs the real
`emomon run` on it as a child process, kills the server every `drop_every_s` for `outage_s` (a camera that
reboots), samples the run's memory, threads and open files, stops the run with SIGTERM at the end, and then
checks the outputs: every planted outage is one stream_lost/stream_restored pair with its downtime, frame
records carry rising absolute times, the summary counts the outages.

    python -m benchmarks.soak --video cam.mp4 --server "/usr/bin/python3 rtsp_server.py" --minutes 60 \\
        --out benchmarks/results/soak-rtsp-1h -- --emotion-model tests/assets/trained_tiny.pt --imgsz 320
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.env import environment
from emomon.kernel import parse_utc, utc_iso, write_json_atomic, write_text_atomic


@dataclass
class SoakConfig:
    video: str                      # an H.264 MP4 the server plays (longer than drop_every_s)
    server: str                     # the RTSP server command; VIDEO and PORT are appended
    out: str                        # result folder (outputs of the run go to out/run/)
    minutes: float = 60.0
    drop_every_s: float = 600.0     # a planted outage starts this long after the previous restart
    outage_s: float = 75.0          # longer than the old retry budget (~45 s)
    sample_every_s: float = 15.0
    warmup_s: float = 300.0         # memory before this is start-up, not a trend
    emomon_args: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Camera:
    """The RTSP server as a child process: start() waits for its 'serving' line."""

    def __init__(self, command: list[str], log_path: Path):
        self.command, self.log_path, self.process = command, log_path, None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=open(self.log_path, "ab"),  # noqa: SIM115
                                        text=True)
        line = self.process.stdout.readline()
        if "serving" not in line:
            raise RuntimeError(f"the RTSP server did not start: {line!r}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def _sample(pid: int) -> dict | None:
    import psutil

    try:
        p = psutil.Process(pid)
        return {"rss_mb": round(p.memory_info().rss / 2**20, 1), "threads": p.num_threads(), "fds": p.num_fds()}
    except psutil.Error:
        return None


def run_soak(cfg: SoakConfig) -> dict:
    out = Path(cfg.out)
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    camera = Camera([*shlex.split(cfg.server), cfg.video, str(port)], out / "server.log")
    camera.start()
    command = [sys.executable, "-m", "emomon", "run", "--source", f"rtsp://127.0.0.1:{port}/live",
               "--jsonl", str(run_dir / "run.jsonl"), "--csv", str(run_dir / "run.csv"),
               "--summary", str(run_dir / "summary.json"), "--output", str(run_dir / "run.mp4"),
               "--no-progress", *cfg.emomon_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # torch, OpenMP: one thread
    with open(out / "emomon.log", "wb") as log:
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
    started = time.monotonic()
    end = started + cfg.minutes * 60
    next_drop = started + cfg.drop_every_s
    planted, samples = [], []
    next_sample = started
    try:
        while time.monotonic() < end and run.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                s = _sample(run.pid)
                if s:
                    samples.append({"t_s": round(now - started, 1), **s})
                next_sample += cfg.sample_every_s
            if now >= next_drop and now + cfg.outage_s < end:
                camera.stop()
                down = time.time()
                time.sleep(cfg.outage_s)
                camera.start()
                planted.append({"down_utc": utc_iso(down), "up_utc": utc_iso(time.time()),
                                "seconds": round(time.time() - down, 3)})
                next_drop = time.monotonic() + cfg.drop_every_s
                continue
            time.sleep(min(1.0, max(0.05, min(next_sample, next_drop, end) - time.monotonic())))
        alive = run.poll() is None
        if alive:
            run.send_signal(signal.SIGTERM)
        stdout, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        camera.stop()
    result = {"config": asdict(cfg), "command": shlex.join(command), "alive_at_end": alive,
              "exit_code": run.returncode, "printed": _last_json(stdout.decode("utf-8", "replace")),
              "wall_s": round(time.monotonic() - started, 1), "planted": planted, "samples": samples}
    result.update(analyse(run_dir, planted, samples, cfg.warmup_s))
    result["environment"] = environment("cpu")
    return result


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def analyse(run_dir: Path, planted: list[dict], samples: list[dict], warmup_s: float) -> dict:
    """What the outputs say: frames, events, rising absolute times, outages matched to the planted ones."""
    frames, events, bad_lines, utcs = 0, [], 0, []
    for path in sorted(glob.glob(str(run_dir / "run*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    bad_lines += 1
                    continue
                if "event" in rec:
                    events.append(rec)
                else:
                    frames += 1
                    utcs.append(parse_utc(rec["utc"]))
    rising = all(b >= a for a, b in zip(utcs, utcs[1:]))
    pairs = []
    for lost, back in zip(events[0::2], events[1::2]):
        if lost["event"] == "stream_lost" and back["event"] == "stream_restored":
            pairs.append({"lost_utc": lost["utc"], "restored_utc": back["utc"], "downtime_s": back["downtime_s"],
                          "attempts": back["attempts"], "next_track_id": back.get("next_track_id")})
    matched = []
    for p in planted:
        down = parse_utc(p["down_utc"])
        hit = next((q for q in pairs if abs(parse_utc(q["lost_utc"]) - down) < 15), None)
        matched.append({**p, "recorded": hit})
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    steady = [s["rss_mb"] for s in samples if s["t_s"] >= warmup_s]
    memory = {}
    if len(steady) >= 4:
        quarter = max(1, len(steady) // 4)
        ts = [s["t_s"] / 3600 for s in samples if s["t_s"] >= warmup_s]
        mean_t, mean_r = statistics.fmean(ts), statistics.fmean(steady)
        slope = (sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, steady))
                 / max(sum((t - mean_t) ** 2 for t in ts), 1e-9))
        memory = {"rss_mb_first_quarter_median": statistics.median(steady[:quarter]),
                  "rss_mb_last_quarter_median": statistics.median(steady[-quarter:]),
                  "rss_mb_min": min(steady), "rss_mb_max": max(steady), "slope_mb_per_hour": round(slope, 2),
                  "threads_max": max(s["threads"] for s in samples), "fds_max": max(s["fds"] for s in samples),
                  "fds_last": samples[-1]["fds"]}
    return {"frames": frames, "unreadable_lines": bad_lines, "utc_rising": rising, "events": len(events),
            "outage_pairs": pairs, "planted_matched": matched,
            "all_planted_recorded": all(m["recorded"] is not None for m in matched),
            "summary_outages": summary.get("outages"), "summary_frames": summary.get("frames"),
            "stopped_by": summary.get("stopped_by"), "memory": memory}


def report_md(result: dict) -> str:
    m = result.get("memory", {})
    lines = [
        "# Soak: `emomon run` on a live RTSP camera that drops on a schedule", "",
        f"- command: `{result['command']}`",
        f"- commit: `{result['environment'].get('git', {}).get('commit', '?')}` (see result.json for the tree state)",
        f"- machine: {result['environment'].get('cpu', '?')}",
        f"- ran {result['wall_s'] / 60:.1f} min; alive at the end: {result['alive_at_end']}; exit code "
        f"{result['exit_code']} (143 = stopped by the harness's SIGTERM); stopped_by: {result['stopped_by']}",
        f"- frames written: {result['frames']} (summary: {result['summary_frames']}); unreadable JSONL lines: "
        f"{result['unreadable_lines']}; absolute times rising: {result['utc_rising']}",
        f"- outages planted: {len(result['planted'])}; lost/restored pairs recorded: {len(result['outage_pairs'])}; "
        f"every planted one recorded: {result['all_planted_recorded']}; summary: {result['summary_outages']}",
        f"- memory after warm-up: RSS {m.get('rss_mb_first_quarter_median')} MB (first quarter, median) -> "
        f"{m.get('rss_mb_last_quarter_median')} MB (last quarter), min {m.get('rss_mb_min')}, max "
        f"{m.get('rss_mb_max')}, trend {m.get('slope_mb_per_hour')} MB/h; threads max {m.get('threads_max')}; "
        f"open files max {m.get('fds_max')} (last {m.get('fds_last')})", "",
        "| planted down (UTC) | planted s | recorded lost (UTC) | recorded downtime s | attempts |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in result["planted_matched"]:
        r = p["recorded"] or {}
        lines.append(f"| {p['down_utc']} | {p['seconds']} | {r.get('lost_utc', 'MISSING')} | "
                     f"{r.get('downtime_s', '-')} | {r.get('attempts', '-')} |")
    lines += ["", "| t (s) | RSS MB | threads | open files |", "| --- | --- | --- | --- |"]
    step = max(1, len(result["samples"]) // 30)
    lines += [f"| {s['t_s']} | {s['rss_mb']} | {s['threads']} | {s['fds']} |" for s in result["samples"][::step]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True)
    p.add_argument("--server", required=True, help="RTSP server command; VIDEO and PORT are appended")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=SoakConfig.minutes)
    p.add_argument("--drop-every", type=float, default=SoakConfig.drop_every_s, metavar="S")
    p.add_argument("--outage", type=float, default=SoakConfig.outage_s, metavar="S")
    p.add_argument("--sample-every", type=float, default=SoakConfig.sample_every_s, metavar="S")
    p.add_argument("--warmup", type=float, default=SoakConfig.warmup_s, metavar="S")
    a = p.parse_args(argv)
    cfg = SoakConfig(a.video, a.server, a.out, a.minutes, a.drop_every, a.outage, a.sample_every, a.warmup, extra)
    result = run_soak(cfg)
    write_json_atomic(Path(a.out) / "result.json", result)
    write_text_atomic(Path(a.out) / "result.md", report_md(result))
    print(report_md(result))
    return 0 if result["alive_at_end"] and result["all_planted_recorded"] else 1


if __name__ == "__main__":
    sys.exit(main())
