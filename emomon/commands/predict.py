"""`emomon predict IMAGE`: per-person emotions for one photo."""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys

from emomon.commands.options import add_detector_weights_argument, add_model_arguments, add_top_k_argument


def parse_box(text: str) -> list[float]:
    """argparse `type` of --boxes: four finite numbers x1,y1,x2,y2 with x2 > x1 and y2 > y1 (any position:
    a box partly outside the image is clipped to it later, one wholly outside is an error then)."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"box '{text}' must be x1,y1,x2,y2 (four numbers)")
    if not all(math.isfinite(v) for v in box):
        raise argparse.ArgumentTypeError(f"box '{text}' has a coordinate that is not a finite number")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise argparse.ArgumentTypeError(f"box '{text}' is empty: x2 must be greater than x1 and y2 than y1")
    return box


MIN_BOX = 4  # pixels a box keeps inside the image: fusion.Predictor's default min_box_size (a test holds them equal)


def check_boxes(boxes: list[list[float]], image, min_size: int = MIN_BOX) -> None:
    """Every user box keeps at least `min_size` x `min_size` pixels inside the image (it is clipped to it),
    else InputError naming the box: the predictor would skip it and print no person."""
    from emomon.kernel import InputError

    h, w = image.shape[:2]
    for x1, y1, x2, y2 in boxes:
        inside_w, inside_h = min(x2, w) - max(x1, 0.0), min(y2, h) - max(y1, 0.0)
        if inside_w < min_size or inside_h < min_size:
            where = ("is outside" if inside_w <= 0 or inside_h <= 0
                     else f"has less than {min_size}x{min_size} pixels inside")
            raise InputError(f"box {x1:g},{y1:g},{x2:g},{y2:g} {where} the {w}x{h} image "
                             "(--boxes takes x1,y1,x2,y2 in the image's pixels)")


def register(sub) -> None:
    p = sub.add_parser("predict", help="per-person emotions for one image",
                       description="Print per-person emotions (26 EMOTIC categories + VAD) for one image.")
    # A value that starts with '-' and a digit ('-5,10,100,200') is a value, not an option (predict has no option
    # named like that), so a box with negative coordinates needs no '--boxes='. argparse's own pattern takes
    # '-5' and '-.5' but not '-5,10,...'; it is an attribute of the parser, set in its __init__.
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    p.add_argument("image", help="path to an image file")
    p.add_argument("--boxes", nargs="+", type=parse_box, metavar="x1,y1,x2,y2",
                   help="person boxes in pixels (default: detect persons); partly outside the image: clipped")
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


def temporal_stage(args, predictor):
    """With --temporal-model: the stage that runs each person of the photo as a one-frame sequence."""
    if not args.temporal_model:
        return None
    from emomon.pipeline.temporal_stage import build_temporal_stage

    return build_temporal_stage(args.temporal_model, None, 1, predictor, device=args.device)


def run(args) -> int:
    image = read_image(args.image)  # a path with a typo fails before torch is imported (seconds) or a model built
    if args.boxes:
        check_boxes(args.boxes, image)
    from emomon.commands.options import model_config
    from emomon.pipeline import build_predictor
    from fusion import describe_model

    predictor = build_predictor(model_config(args))
    boxes, detections = find_boxes(args, image)
    if boxes == []:
        logging.getLogger("emomon.predict").warning("no person found in %s", args.image)
    stage = temporal_stage(args, predictor)
    people = predictor.predict(image, boxes) if boxes != [] else []
    if stage is not None:
        out = stage.apply(0, 0.0, [None] * len(people), {i: p for i, p in enumerate(people) if p is not None})
        people = [out.get(i) for i in range(len(people))]
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
        json.dump({"image": args.image, "model": model_text, "persons": rows}, sys.stdout, indent=1, allow_nan=False)
        print()
        return 0
    print(f"{args.image}: {len(rows)} person(s); model: {model_text}")
    for row in rows:
        top = ", ".join(f"{name} {p:.0%}" for name, p in row["top"])
        vad = " ".join(f"{k[0].upper()}={'n/a' if v is None else f'{v:.1f}'}" for k, v in row["vad"].items())
        print(f"  #{row['person']} box={row['box']}  {top}  [{vad}]")
        if row.get("vlm"):  # a VLM's answer (--emotion-model vlm:...): what it saw
            print(f"      {', '.join(row['vlm']['categories']) or 'no category'}: {row['vlm']['rationale']}")
    return 0
