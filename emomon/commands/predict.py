"""`emomon predict IMAGE`: per-person emotions for one photo."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def add_model_arguments(p: argparse.ArgumentParser, default: str = "zero-shot") -> None:
    """Options shared by every command that loads an emotion model."""
    p.add_argument("--emotion-model", default=default, metavar="zero-shot|random|NAME|PATH",
                   help="zero-shot CLIP, random weights (tests and benchmarks only), a registered model name, "
                        f"or a trained checkpoint file (default: {default})")
    p.add_argument("--scene-weights", metavar="PATH", help="local CLIP weights file (offline machines)")
    p.add_argument("--body-weights", metavar="PATH", help="local ResNet-18 weights file (offline machines)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0, ...")
    p.add_argument("--seed", type=int, default=0, help="seed for --emotion-model random")


def parse_box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"box '{text}' must be x1,y1,x2,y2")
    return box


def register(sub) -> None:
    p = sub.add_parser("predict", help="per-person emotions for one image",
                       description="Print per-person emotions (26 EMOTIC categories + VAD) for one image.")
    p.add_argument("image", help="path to an image file")
    p.add_argument("--boxes", nargs="+", type=parse_box, metavar="x1,y1,x2,y2",
                   help="person boxes in pixels (default: detect persons)")
    add_model_arguments(p)
    p.add_argument("--detector-weights", default="yolo11n-pose.pt", metavar="PATH",
                   help="Ultralytics weights for person detection when no --boxes are given")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def read_image(path: str):
    import cv2
    import numpy as np

    from emomon.errors import InputError

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image '{path}': {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot read image '{path}': not a decodable image file")
    return image


def find_boxes(args, image):
    """Boxes from --boxes, else from the person detector."""
    if args.boxes:
        return args.boxes, None
    from detector import DetectorConfig, PersonDetector

    detections = PersonDetector(DetectorConfig(weights=args.detector_weights, device=args.device)).detect(image)
    return detections.xyxy.tolist(), detections


def run(args) -> int:
    from fusion import Predictor, describe_model, load_emotion_model

    image = read_image(args.image)
    model = load_emotion_model(args.emotion_model, device=args.device, seed=args.seed,
                               scene_weights=args.scene_weights, body_weights=args.body_weights)
    boxes, detections = find_boxes(args, image)
    if boxes == []:
        logging.getLogger("emomon.predict").warning("no person found in %s", args.image)
    people = Predictor(model, device=args.device).predict(image, boxes) if boxes != [] else []
    rows = []
    for i, person in enumerate(people):
        if person is None:
            continue
        row = {"person": i, **person.to_dict(args.top_k)}
        if detections is not None:
            row["score"] = round(float(detections.confidence[i]), 4)
        rows.append(row)
    if args.json:
        json.dump({"image": args.image, "model": describe_model(model), "persons": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"{args.image}: {len(rows)} person(s); model: {describe_model(model)}")
    for row in rows:
        top = ", ".join(f"{name} {p:.0%}" for name, p in row["top"])
        vad = " ".join(f"{k[0].upper()}={v:.1f}" for k, v in row["vad"].items())
        print(f"  #{row['person']} box={row['box']}  {top}  [{vad}]")
    return 0
