"""`emomon predict IMAGE`: per-person emotions for one photo."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from emomon.commands.options import add_detector_weights_argument, add_model_arguments, add_top_k_argument


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
    add_model_arguments(p, backend=True)
    add_detector_weights_argument(p, " for person detection when no --boxes are given")
    add_top_k_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def read_image(path: str):
    import cv2
    import numpy as np

    from emomon.kernel import InputError

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image '{path}': {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot read image '{path}': not a decodable image file")
    return image


def find_boxes(args, image):
    """Boxes from --boxes, else from the person detector (with its detections, for scores and keypoints)."""
    if args.boxes:
        return args.boxes, None
    from emomon.commands.options import detector_config
    from emomon.pipeline import build_detector

    detections = build_detector(detector_config(args), args.backend).detect(image)
    return detections.xyxy.tolist(), detections


def run(args) -> int:
    from emomon.commands.options import model_config
    from emomon.pipeline import build_predictor
    from fusion import describe_model

    image = read_image(args.image)
    predictor = build_predictor(model_config(args))
    boxes, detections = find_boxes(args, image)
    if boxes == []:
        logging.getLogger("emomon.predict").warning("no person found in %s", args.image)
    people = predictor.predict(image, boxes) if boxes != [] else []
    keypoints = detections.data.get("keypoints") if detections is not None and detections.data else None
    rows = []
    for i, person in enumerate(people):
        if person is None:
            continue
        if detections is not None:
            person = person.replace(score=float(detections.confidence[i]),
                                    keypoints=None if keypoints is None else keypoints[i])
        rows.append({"person": i, **person.record(args.top_k)})
    model_text = describe_model(predictor.model)
    if args.json:
        json.dump({"image": args.image, "model": model_text, "persons": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"{args.image}: {len(rows)} person(s); model: {model_text}")
    for row in rows:
        top = ", ".join(f"{name} {p:.0%}" for name, p in row["top"])
        vad = " ".join(f"{k[0].upper()}={v:.1f}" for k, v in row["vad"].items())
        print(f"  #{row['person']} box={row['box']}  {top}  [{vad}]")
    return 0
