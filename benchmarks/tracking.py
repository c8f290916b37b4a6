"""Tracking recall against Ultralytics' own `model.track`: how many persons are tracked per frame, and
whether the ids agree, for emomon's detector (low-score boxes fed to the tracker, as `model.track` does) and
for the old way (the detector thresholded at `--conf` before the tracker).

    python -m benchmarks.tracking --source ../shared/data/street_crossing.mp4 \\
        --detector-weights ../shared/weights/yolo11n-pose.pt --frames 200 --out benchmarks/results/tracking
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def compare(source: str, weights: str, frames: int, tracker: str = "bytetrack.yaml") -> dict:
    import cv2
    from ultralytics import YOLO

    from detector import DetectorConfig, PersonDetector
    from detector.tracking import assign_ids, new_tracker

    capture = cv2.VideoCapture(source)
    images = [image for ok, image in (capture.read() for _ in range(frames)) if ok]
    capture.release()
    ours = PersonDetector(DetectorConfig(weights=weights, tracker=tracker, min_box_size=1))
    old = PersonDetector(DetectorConfig(weights=weights, tracker=tracker, min_box_size=1))
    old_tracker = new_tracker(old._tracker_settings)
    reference = YOLO(weights)
    rows = {"ours": [], "old": [], "model.track": []}
    for image in images:
        rows["ours"].append(sorted(ours.track(image).tracker_id.tolist()))
        dets = old.detect_batch([image])[0]  # the old way: thresholded at conf before the tracker
        rows["old"].append(sorted(assign_ids(old_tracker, dets, image).tracker_id.tolist()))
        result = reference.track(image, persist=True, classes=[0], tracker=tracker, verbose=False)[0]
        rows["model.track"].append(sorted(result.boxes.id.int().tolist()) if result.boxes.id is not None else [])
    ref = rows["model.track"]
    out = {"frames": len(images), "tracker": tracker}
    for name, ids in rows.items():
        out[name] = {"persons_per_frame": round(sum(map(len, ids)) / max(1, len(ids)), 3),
                     "frames_same_count_as_model_track": sum(len(a) == len(b) for a, b in zip(ids, ref)),
                     "frames_same_ids_as_model_track": sum(a == b for a, b in zip(ids, ref))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True)
    p.add_argument("--detector-weights", required=True)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--tracker", default="bytetrack.yaml")
    p.add_argument("--out", required=True, metavar="DIR")
    args = p.parse_args(argv)
    from benchmarks.env import environment
    from emomon.kernel import write_json_atomic, write_text_atomic

    result = compare(args.source, args.detector_weights, args.frames, args.tracker)
    command = "python -m benchmarks.tracking " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    report = {"command": command, "environment": environment("cpu"), "result": result}
    out = Path(args.out)
    write_json_atomic(out / "tracking.json", report)
    lines = [f"# Tracking vs Ultralytics' model.track ({result['tracker']}, {result['frames']} frames)", "",
             f"`{command}`", "", "| detector | persons/frame | frames with model.track's count | with its ids |",
             "| --- | --- | --- | --- |"]
    for name in ("ours", "old", "model.track"):
        r = result[name]
        lines.append(f"| {name} | {r['persons_per_frame']} | {r['frames_same_count_as_model_track']} | "
                     f"{r['frames_same_ids_as_model_track']} |")
    write_text_atomic(out / "tracking.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
