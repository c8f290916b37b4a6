"""Human-readable views of a benchmark report: a Markdown summary and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.e2e import STAGES


def _f(value, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def _pct(value) -> str:
    return "-" if value is None else (f"{100 * value:.2f}%" if value < 0.1 else f"{100 * value:.1f}%")


def _g(flops) -> str:
    return "-" if flops is None else f"{flops / 1e9:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _spread(ms: dict | None) -> str:
    """'p50 X ms (IQR a-b)' of a per-frame ms summary."""
    if not ms:
        return "-"
    return f"p50 {ms['p50']:.0f} ms (IQR {ms['p25']:.0f}-{ms['p75']:.0f})"


def _run_row(label: str, run: dict) -> list[str]:
    return [label, f"{run['fps']:.3f} frames/s, {run['persons_per_s']:.2f} persons/s over {run['frames']} frames "
                   f"({run['mean_persons_per_frame']:.1f} persons/frame); per frame {_spread(run.get('frame_ms'))}"]


def _speed_row(label: str, s: dict) -> list[str]:
    return [f"{label} (same first {s['frames']} frames)",
            f"**{_f(s['speedup'], 2)}x** ({s['run_fps']:.3f} vs {s['baseline_fps']:.3f} frames/s); per-frame "
            f"medians {_f(s['median_frame_speedup'], 2)}x ({_spread(s['run_frame_ms'])} vs "
            f"{_spread(s['baseline_frame_ms'])}); emotion stages {_f(s['emotion_speedup'], 2)}x"]


def _deviation(d: dict | None) -> str:
    if not d or not d["matched"]:
        return "no persons matched"
    return (f"{d['matched']} persons matched over {d['frames']} frames: probabilities max abs "
            f"{d['prob_max_abs']:.4f}, p99 {d['prob_p99_abs']:.4f}, mean abs {d['prob_mean_abs']:.5f}; VAD max abs "
            f"{d['vad_max_abs']:.4f}, mean abs {d['vad_mean_abs']:.5f}; same top-1 for "
            f"{100 * d['top1_agreement']:.1f}%")


def headline_rows(r: dict) -> list[list[str]]:
    rows = []
    pipe = r.get("pipeline") or {}
    every, reuse, naive = pipe.get("every_frame"), pipe.get("reuse"), pipe.get("naive")
    speed = pipe.get("speedup") or {}
    if every:
        rows.append(_run_row(f"optimized pipeline, every frame (work reuse off; {every['backend']}, batched, "
                             "background decode)", every))
    if reuse:
        rows.append(_run_row(f"optimized pipeline, work reuse on (the default; {reuse['backend']})", reuse))
    if naive:
        rows.append(_run_row(f"naive baseline (per person, fp32 eager, scene per person, inline decode; at least "
                             f"{naive['min_frames']} frames, stopped by: {naive['stopped_by']})", naive))
    if speed.get("exact"):
        rows.append(_speed_row("speed-up, exact: every frame / naive, same outputs", speed["exact"]))
    if speed.get("with_reuse"):
        rows.append(_speed_row("speed-up with work reuse: reuse / naive, approximate outputs", speed["with_reuse"]))
    if pipe.get("reuse_over_every_frame"):
        rows.append(_speed_row("work reuse alone: reuse / every frame", pipe["reuse_over_every_frame"]))
    if pipe.get("reuse_deviation"):
        rows.append(["outputs, reuse vs every frame (approximation of work reuse)",
                     _deviation(pipe["reuse_deviation"])])
    if pipe.get("naive_deviation"):
        rows.append(["outputs, naive vs every frame (exactness check)", _deviation(pipe["naive_deviation"])])
    ms = r.get("multistream")
    if ms:
        fps = ms.get("realtime_fps", ms["source_fps"])
        measured = (f"{ms['realtime_streams_measured']} measured (every stream >= {fps:g} fps), "
                    if "realtime_streams_measured" in ms else "")
        rows.append([f"multi-stream ({ms['streams']} streams, one model, batched)",
                     f"{ms['aggregate_fps']:.2f} frames/s aggregate, latency p50 {ms['latency_ms']['p50']:.0f} ms / "
                     f"p95 {ms['latency_ms']['p95']:.0f} ms; real-time streams at {fps:g} fps: {measured}"
                     f"~{ms['realtime_streams_estimate']} estimated (aggregate / {fps:g})"])
        if ms.get("decode"):
            d = ms["decode"]
            rows.append(["decode (apart from the streams: once per source)",
                         f"{d['fps']:.0f} frames/s, {d['ms_per_frame']['p50']:.1f} ms per {d['width']}x{d['height']} "
                         f"frame p50; {d['decoder']}"])
    fl = r.get("flops")
    if fl and fl.get("per_frame_every_frame"):
        e = fl["per_frame_every_frame"]
        rows.append(["model FLOPs per frame (every frame, no reuse)",
                     f"{_g(e['total'])} GFLOP = detector {_g(fl['detector_per_frame'])} + scene "
                     f"{_g(fl['scene_per_frame'])} + {e['persons']:.1f} persons x (body {_g(fl['body_per_person'])} "
                     f"+ heads {_g(fl['heads_per_person'])})"])
    peak = r.get("peak") or {}
    for name, run in (("every frame", every), ("work reuse", reuse), ("naive", naive)):
        if run and run.get("fraction_of_peak") is not None:
            used = run["achieved_flops_per_s"] / run["fraction_of_peak"]
            rows.append([f"{name}: executed model FLOP/s vs device peak ({run['precision']})",
                         f"{_g(run['achieved_flops_per_s'])} GFLOP/s = {_pct(run['fraction_of_peak'])} of "
                         f"{_g(used)} GFLOP/s ({peak.get('basis', '?')} peak)"])
    return rows


def model_rows(r: dict) -> list[list[str]]:
    rows = []
    for name, entry in r["model_benchmarks"]["backends"].items():
        if entry["status"] != "ok":
            rows.append([name, "-", "-", f"{entry['status']}: {entry.get('reason', '')}", "", "", "", ""])
            continue
        for stream, points in entry["streams"].items():
            for p in points:
                if "skipped" in p:
                    rows.append([name, stream, p["batch_size"], f"skipped: {p['skipped']}", "", "", "", ""])
                    continue
                rows.append([name, stream, p["batch_size"], _f(p["images_per_s"]), _f(p["ms_per_batch"]["p50"], 2),
                             _f(p["ms_per_batch"]["p95"], 2), _f(p["peak_memory_mb"], 0), _pct(p["fraction_of_peak"])])
    for name, entry in r["model_benchmarks"]["detector"].items():
        if entry["status"] != "ok":
            rows.append([name, "detector", "-", f"{entry['status']}: {entry.get('reason', '')}", "", "", "", ""])
            continue
        for p in entry["points"]:
            if "skipped" in p:
                rows.append([name, "detector", p["batch_size"], f"skipped: {p['skipped']}", "", "", "", ""])
                continue
            rows.append([name, "detector", p["batch_size"], _f(p["images_per_s"]), _f(p["ms_per_batch"]["p50"], 2),
                         _f(p["ms_per_batch"]["p95"], 2), _f(p["peak_memory_mb"], 0), _pct(p["fraction_of_peak"])])
    return rows


def _calls(run: dict | None, stage: str) -> str:
    if run is None:
        return "-"
    st = run["stages"][stage]
    if "calls" not in st:
        return str(run["frames"])
    per_call = (st.get("per_call_ms") or {}).get("p50")
    return f"{st['calls']} x {st['mean_batch']:.1f} ({_f(per_call, 1)} ms)"


RUNS = ("every_frame", "reuse", "naive")


def stage_rows(r: dict) -> list[list[str]]:
    pipe = r.get("pipeline") or {}
    runs = [pipe.get(k) for k in RUNS]
    reuse = pipe.get("reuse")
    rows = []
    for stage in STAGES:
        row = [stage + (" (reader thread)" if reuse and reuse["stages"][stage]["overlapped"] else ""),
               _calls(reuse, stage)]
        for run in runs:
            if run is None:
                row += ["-"] * 3
                continue
            st = run["stages"][stage]
            pf = st["per_frame_ms"] or {}
            row += [_f(pf.get("p50"), 1), _f(pf.get("p95"), 1), _pct(st["share"])]
        rows.append(row)
    return rows


def _env_lines(r: dict) -> list[str]:
    env = r["environment"]
    git = env.get("git") or {}
    dirty = {True: f", dirty: {git.get('changed_count', '?')} changed paths", False: ", clean tree"}.get(
        git.get("dirty"), "")
    return [f"torch {env['versions'].get('torch')}, CUDA {env.get('cuda')}, driver {env.get('driver')}, "
            f"TensorRT {env.get('tensorrt')}, onnxruntime {env['versions'].get('onnxruntime')}; "
            f"{env.get('cpu_affinity')} of {env.get('cpu_count')} CPUs ({env.get('cpu')}), "
            f"{env.get('torch_threads')} torch threads; emomon {env.get('emomon')}, git {git.get('commit')}{dirty}  "]


def _peak_lines(peak: dict | None) -> list[str]:
    if not peak:
        return []
    tf = ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak["flops_per_s"].items())
    measured = ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak["measured"]["flops_per_s"].items())
    nominal = peak.get("nominal")
    lines = [f"Peak used for fractions ({peak['basis']}): {tf}. Measured: {measured} ({peak['measured']['method']})."
             + (" Nominal: " + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in nominal["flops_per_s"].items())
                + f" ({nominal['source']})." if nominal else f" Nominal: none ({peak['nominal_note']}).")]
    lines += [f"Raised: {x['note']} ({x['from'] / 1e9:.1f} -> {x['to'] / 1e9:.1f} GFLOP/s)." for x in peak["raised"]]
    return lines + [""]


def to_markdown(r: dict) -> str:
    env = r["environment"]
    device = env.get("gpu") or env.get("cpu")
    lines = [f"# emomon bench: {device} ({r['config']['device']})", "",
             f"`{r['command']}`  ", f"{r['created_utc']}, {r['duration_s']:.0f} s, schema {r['schema']} "
             f"v{r['schema_version']}", "", *_env_lines(r),
             f"emotion model: {r['model']['description']}; detector: {r['config']['detector_weights']}  ",
             f"source: {r['source']['path']} ({r['source']['width']}x{r['source']['height']} at "
             f"{_f(r['source']['fps'])} fps{', generated' if r['source']['generated'] else ''})", ""]
    lines += ["## Headline", ""] + _table(["figure", "value"], headline_rows(r)) + [""]
    lines += ["## Model throughput (warmed-up, synchronized; images/s at the median; % of peak FLOP/s)", ""]
    lines += _table(["backend", "stream", "batch", "images/s", "ms/batch p50", "p95", "peak MB", "% peak"],
                    model_rows(r)) + [""]
    pipe = r.get("pipeline")
    if pipe:
        lines += ["## Pipeline stages (ms per frame; share of wall time)", ""]
        lines += _table(["stage", "reuse run: calls x batch (p50/call)", "every frame p50", "p95", "share",
                         "reuse p50", "p95", "share", "naive p50", "p95", "share"], stage_rows(r)) + [""]
        lines += ["Per-frame figures count 0 ms on frames where work reuse skipped a stage; per-call times are "
                  "in the calls column.", ""]
        ov = pipe["reuse"]["overlap"]
        lines += [f"Decode/inference overlap (measured, reuse run): the reader thread decoded for "
                  f"{ov['decode_busy_s']:.2f} s, the pipeline waited {ov['consumer_wait_s']:.2f} s for frames: "
                  f"{_pct(ov['decode_hidden_fraction'])} of decoding was hidden behind inference "
                  f"({ov['hidden_s']:.2f} s). Work reuse: {pipe['reuse']['counts']}.", ""]
        if pipe.get("speedup"):
            lines += [f"Speed-ups: {pipe['speedup']['note']}. Deviations: {pipe['deviation_note']}.", ""]
    ms = r.get("multistream")
    if ms:
        batching = "; ".join(f"{kind}: {b['calls']} calls x {b['mean_requests']:.1f} streams "
                             f"({_f((b['ms_per_call'] or {}).get('p50'), 1)} ms p50)"
                             for kind, b in ms["batching"].items())
        lines += [f"Multi-stream: {ms['streams']} streams x {ms['frames_per_stream']} frames, per-stream "
                  f"{', '.join(f'{v:.2f}' for v in ms['per_stream_fps'])} frames/s; detector "
                  f"{'batched across streams' if ms['batched_detector'] else 'one call per stream'}; batching: "
                  f"{batching}. {ms['note']}.", ""]
        if ms.get("sweep"):
            lines += _table(["streams", "aggregate frames/s", "slowest stream frames/s", "stream p50 ms (median)",
                             "stream p95 ms (worst)", f"every stream >= {ms.get('realtime_fps', 24):g} fps",
                             "mean batch (track/scene/predict)", "longest hold ms"], [
                [str(row["streams"]), row.get("skipped", "")] + [""] * 6 if "skipped" in row else
                [str(row["streams"]), f"{row['aggregate_fps']:.2f}", f"{row['min_stream_fps']:.2f}",
                 _f(row["stream_latency_p50_ms"], 0), _f(row["stream_latency_p95_ms"], 0),
                 "yes" if row["realtime_at_n"] else "no",
                 " / ".join(_f(row["batch_mean"].get(k), 1) for k in ("track", "scene", "predict")),
                 _f(max((v for v in row["held_ms_max"].values() if v is not None), default=None), 1)]
                for row in ms["sweep"]]) + [""]
    lines += _peak_lines(r.get("peak"))
    if r["skipped"]:
        lines += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in r["skipped"].items()), ""]
    if r["warnings"]:
        lines += ["Warnings:", *[f"- {w}" for w in r["warnings"]], ""]
    return "\n".join(lines)


def _xy(points: list[dict]) -> tuple[list, list, list, list]:
    ok = [p for p in points if "images_per_s" in p]
    return ([p["batch_size"] for p in ok], [p["images_per_s"] for p in ok],
            [p["images_per_s_iqr"][0] for p in ok], [p["images_per_s_iqr"][1] for p in ok])


def plot(r: dict, out_dir: str | Path) -> list[Path]:
    """throughput.png (images/s vs batch size per backend and stream) and stages.png (per-stage latency)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for name, entry in r["model_benchmarks"]["backends"].items():
        for stream, points in (entry.get("streams") or {}).items():
            series.setdefault(stream, {})[name] = _xy(points)
    for name, entry in r["model_benchmarks"]["detector"].items():
        series.setdefault("detector", {})[name] = _xy(entry.get("points") or [])
    panels = [s for s in ("scene", "body", "heads", "detector") if s in series] or ["(no model benchmarks)"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, stream in zip(axes[0], panels):
        for name, (x, y, lo, hi) in series.get(stream, {}).items():
            if x:
                err = [[max(0.0, a - b) for a, b in zip(y, lo)], [max(0.0, b - a) for a, b in zip(y, hi)]]
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
        ax.set_xscale("log", base=2)
        ticks = sorted({b for xs, *_ in series.get(stream, {}).values() for b in xs})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_ylim(bottom=0)
        ax.set_title(stream)
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/s")
        ax.grid(alpha=0.3)
        if series.get(stream):
            ax.legend(fontsize=8)
    fig.suptitle(f"throughput on {r['environment'].get('gpu') or 'CPU'} (median, bars: interquartile range)",
                 fontsize=10)
    fig.tight_layout()
    paths.append(out_dir / "throughput.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    pipe = r.get("pipeline") or {}
    runs = [(k, pipe[k]) for k in RUNS if pipe.get(k)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = plt.get_cmap("tab10")
    for i, stage in enumerate(STAGES):
        widths = [(run["stages"][stage]["per_frame_ms"] or {}).get("mean", 0.0) for _, run in runs]
        lefts = [sum((run["stages"][s]["per_frame_ms"] or {}).get("mean", 0.0) for s in STAGES[:i]) for _, run in runs]
        axes[0].barh([k for k, _ in runs], widths, left=lefts, color=colors(i), label=stage)
    axes[0].set_xlabel("mean ms per frame (decode overlaps in the optimized runs)")
    axes[0].set_title("where a frame's time goes")
    axes[0].legend(fontsize=7, ncol=3)
    if runs:
        opt = runs[0][1]  # the every-frame run: every stage on every frame
        x = range(len(STAGES))
        for j, q in enumerate(("p50", "p95", "p99")):
            axes[1].bar([k + (j - 1) * 0.27 for k in x],
                        [(opt["stages"][s]["per_frame_ms"] or {}).get(q, 0.0) for s in STAGES], width=0.27, label=q)
        axes[1].set_xticks(list(x), STAGES, rotation=35, ha="right", fontsize=8)
        axes[1].set_ylabel("ms per frame")
        axes[1].set_title(f"{runs[0][0]} run: per-stage latency")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "stages.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
