"""`emomon train-temporal | evaluate-temporal | ablate-temporal`, and `make-synthetic --video`: emotions over
time. Argument parsing only; the work happens in `training.temporal` (imported inside each function, so
`emomon --help` stays fast).

    emomon make-synthetic --video --out /tmp/synthv --detector-weights yolo11n-pose.pt
    emomon train-temporal --data /tmp/synthv --emotion-model runs/x/best.pt --out runs/temporal
    emomon run --source street.mp4 --emotion-model runs/x/best.pt --temporal-model runs/temporal/temporal.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from emomon.commands.options import integer
from training.temporal.config import ExtractConfig, TrainTemporalConfig

_TRAIN, _EXTRACT = TrainTemporalConfig(), ExtractConfig()
KINDS = ("per_frame", "tcn", "transformer", "tcn_transformer")  # fusion.temporal.KINDS (importing it loads torch)


def _extract_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("feature extraction (cached per video)")
    g.add_argument("--emotion-model", default=_EXTRACT.frame_model, metavar="zero-shot|NAME|PATH",
                   help="the frame model whose per-person features the temporal head reads (run and app must use "
                        f"the same one; default {_EXTRACT.frame_model})")
    g.add_argument("--detector-weights", default=_EXTRACT.detector_weights, metavar="PATH")
    g.add_argument("--imgsz", type=integer(32, multiple=32), default=_EXTRACT.imgsz, help="detector input size")
    g.add_argument("--device", default=_EXTRACT.device)
    g.add_argument("--every-frame", action="store_true",
                   help="no work reuse while extracting (default: the same reuse as emomon run)")
    g.add_argument("--feature-cache", metavar="DIR", help="where sequences are cached (default $EMOMON_CACHE)")


def _train_flags(p: argparse.ArgumentParser, kind: bool = True) -> None:
    g = p.add_argument_group("temporal head")
    if kind:
        g.add_argument("--kind", choices=KINDS, default=_TRAIN.kind)
    g.add_argument("--window", type=integer(1), default=_TRAIN.window, help="frames per prediction")
    g.add_argument("--hidden", type=integer(4), default=_TRAIN.hidden)
    g.add_argument("--epochs", type=integer(1), default=_TRAIN.epochs)
    g.add_argument("--batch-size", type=integer(1), default=_TRAIN.batch_size)
    g.add_argument("--lr", type=float, default=_TRAIN.lr)


def register(sub) -> None:
    p = sub.add_parser("train-temporal", help="train a temporal head on videos in the Aff-Wild2 / ABAW layout",
                       description="Extract per-track feature sequences (cached), then train a causal temporal "
                                   "head with 1 - CCC (valence, arousal) + cross-entropy (expressions).")
    p.add_argument("--data", required=True, help="root of the ABAW layout (VA_Estimation_Challenge/...)")
    p.add_argument("--out", default="runs/temporal", help="run folder: temporal.pt, metrics.json")
    p.add_argument("--seed", type=integer(0), default=_TRAIN.seed)
    _train_flags(p)
    _extract_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate-temporal", help="CCC and expression F1 of a temporal head on one split")
    p.add_argument("--model", required=True, metavar="PATH", help="a temporal head (train-temporal)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--ema", action="store_true", help="EMA-smooth the outputs as the pipeline smooths a frame model")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    _extract_flags(p)
    p.set_defaults(func=cmd_evaluate, emotion_model=None)

    p = sub.add_parser("ablate-temporal", help="per-frame / +EMA / TCN / Transformer / TCN+Transformer over seeds",
                       description="The temporal ablation on the validation split: Markdown, CSV, a plot and the "
                                   "trained heads under --out.")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="runs/temporal-ablation")
    p.add_argument("--seeds", type=integer(1), default=3)
    _train_flags(p, kind=False)
    _extract_flags(p)
    p.set_defaults(func=cmd_ablate)


def add_synthetic_video_flags(p: argparse.ArgumentParser) -> None:
    """`make-synthetic --video` (registered on the existing make-synthetic parser)."""
    g = p.add_argument_group("--video: synthetic videos with a planted temporal signal (Aff-Wild2 layout)")
    g.add_argument("--video", action="store_true", help="write videos + VA/expression annotations instead of images")
    g.add_argument("--train-videos", type=integer(1), default=16)
    g.add_argument("--val-videos", type=integer(1), default=6)
    g.add_argument("--seconds", type=float, default=8.0)
    g.add_argument("--person-image", action="append", metavar="IMAGE",
                   help="photo(s) to cut persons from (default: the two Ultralytics ships, bus.jpg and zidane.jpg)")
    g.add_argument("--detector-weights", default=_EXTRACT.detector_weights, metavar="PATH",
                   help="finds the persons in --person-image")


def _extract_config(args) -> ExtractConfig:
    from emomon.pipeline.config import ReuseConfig

    return ExtractConfig(frame_model=args.emotion_model, detector_weights=args.detector_weights, imgsz=args.imgsz,
                         device=args.device, reuse=ReuseConfig.every_frame() if args.every_frame else ReuseConfig())


def _sequences(args, extract: ExtractConfig, splits=("train", "val")):
    from training.temporal import Extractor, load_sequences
    from training.temporal.abaw import has_split

    extractor = Extractor(extract, args.feature_cache)
    # A set without a validation split still trains (metrics.json then has no val metrics).
    return extractor, {split: load_sequences(args.data, split, extractor) if split != "val" or len(splits) == 1
                       or has_split(args.data, split) else [] for split in splits}


def _train_config(args, **changes) -> TrainTemporalConfig:
    return dataclasses.replace(_TRAIN, window=args.window, hidden=args.hidden, epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, **changes)


def _command() -> str:
    return "emomon " + shlex.join(sys.argv[1:])


def cmd_train(args) -> int:
    from emomon.kernel import InputError, write_json_atomic
    from fusion.temporal import save_temporal
    from training.temporal import evaluate, train_temporal

    extract = _extract_config(args)
    extractor, seqs = _sequences(args, extract)
    if not seqs["train"]:
        raise InputError(f"no training sequence with a tracked person under '{args.data}'")
    cfg = _train_config(args, kind=args.kind, seed=args.seed)
    model = train_temporal(seqs["train"], cfg)
    out = Path(args.out)
    path = save_temporal(model, out / "temporal.pt", {"frame_model": extractor.frame_model,
                                                       "train": dataclasses.asdict(cfg), "data": str(args.data)})
    metrics = {"val": evaluate(model, seqs["val"]) if seqs["val"] else None, "command": _command()}
    write_json_atomic(out / "metrics.json", metrics)
    print(json.dumps({"model": str(path), **metrics}))
    return 0


def cmd_evaluate(args) -> int:
    from emomon.kernel import write_json_atomic
    from fusion.temporal import load_temporal
    from training.temporal import evaluate

    model = load_temporal(args.model)
    if args.emotion_model is None:  # the frame model it was trained on
        args.emotion_model = model.metadata.get("frame_model", {}).get("spec") or _EXTRACT.frame_model
    _, seqs = _sequences(args, _extract_config(args), (args.split,))
    metrics = evaluate(model, seqs[args.split], model.metadata.get("train", {}).get("ema_alpha", _TRAIN.ema_alpha)
                       if args.ema else None)
    if args.json:
        write_json_atomic(args.json, metrics)
    print(json.dumps(metrics))
    return 0


def cmd_ablate(args) -> int:
    from training.ablation import provenance
    from training.temporal.ablation import data_report, run_ablation

    extractor, seqs = _sequences(args, _extract_config(args))
    info = {**provenance(_command()), "data": data_report(Path(args.data).name, seqs["train"], seqs["val"]),
            "frame_model": extractor.frame_model}
    result = run_ablation(seqs["train"], seqs["val"], _train_config(args), args.seeds, Path(args.out), info,
                          extractor.frame_model)
    print(json.dumps({v: {m: round(x[0], 4) for m, x in e.items() if isinstance(x, tuple)}
                      for v, e in result["summary"].items()}))
    return 0


def cmd_make_synthetic_video(args) -> int:
    from detector import DetectorConfig, PersonDetector
    from training.temporal.synthetic_video import SyntheticVideoConfig, make_synthetic_videos

    images = args.person_image
    if not images:
        import ultralytics

        assets = Path(ultralytics.__file__).parent / "assets"
        images = [str(assets / "zidane.jpg"), str(assets / "bus.jpg")]
    cfg = SyntheticVideoConfig(train_videos=args.train_videos, val_videos=args.val_videos, seconds=args.seconds,
                               seed=args.seed)
    detector = PersonDetector(DetectorConfig(weights=args.detector_weights))
    info = make_synthetic_videos(args.out, images, detector, cfg)
    print(json.dumps({"out": args.out, "videos": {k: len(v) for k, v in info["videos"].items()},
                      "frames_per_video": info["frames_per_video"]}))
    return 0
