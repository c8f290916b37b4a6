"""`emomon train | ablate | evaluate | make-synthetic`: argument parsing only; the work happens in the
modules they call (imported inside each function so `emomon --help` stays fast).

    from emomon.cli import main
    main(["make-synthetic", "--out", "/tmp/synth"])
    main(["train", "--config", "training/configs/clean.yaml", "--data", "/tmp/synth", "--model",
          "two_stream_tiny", "--no-pretrained", "--epochs", "3", "--out", "/tmp/run"])
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex

log = logging.getLogger(__name__)


def _quiet_other_ranks() -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)


def _common_overrides(args) -> dict:
    from training.config import parse_set

    out = parse_set(getattr(args, "set", None))
    for flag, key in (("model", "model"), ("epochs", "epochs"), ("seed", "seed"), ("batch_size", "batch_size"),
                      ("lr", "lr"), ("device", "device"), ("workers", "num_workers"),
                      ("feature_cache", "feature_cache"), ("out", "out"), ("data", "data")):
        value = getattr(args, flag, None)
        if value is not None:
            out[key] = value
    if getattr(args, "no_pretrained", False):
        out["pretrained"] = False
    if getattr(args, "resume", False):
        out["resume"] = True
    if getattr(args, "no_progress", False):
        out["progress"] = False
    return out


def cmd_train(args) -> int:
    from training.config import load_config
    from training.trainer import train

    _quiet_other_ranks()
    cfg = load_config(args.config, _common_overrides(args))
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        shown = result.test if result.test is not None else result.val
        print(f"{cfg.variant} seed {cfg.seed}: best epoch {result.best_epoch} -> {result.best_checkpoint}")
        print(f"[{'test' if result.test is not None else 'val'} split]")
        print(shown.table())
    return 0


def cmd_ablate(args) -> int:
    from training.ablation import parse_sweep, run_ablation, run_sweep
    from training.config import parse_set

    variants = tuple(v.strip() for v in args.variants.split(",")) if args.variants else None
    overrides = parse_set(args.set)
    for flag, key in (("batch_size", "batch_size"), ("lr", "lr"), ("device", "device"),
                      ("workers", "num_workers")):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    if args.no_pretrained:
        overrides["pretrained"] = False
    if args.no_progress:
        overrides["progress"] = False
    cache = False if args.no_feature_cache else (args.feature_cache or True)
    kwargs = {"variants": variants} if variants else {}
    if args.sweep:
        grid = parse_sweep(args.sweep)
        sweep = run_sweep(args.data, grid, seeds=args.seeds, model=args.model, epochs=args.epochs, out=args.out,
                          quick=args.quick, feature_cache=cache, overrides=overrides,
                          command=_ablate_command(args), **kwargs)
        print((sweep.out / "sweep.md").read_text())
        print(f"written: {sweep.out / 'sweep.md'}, sweep.json, sweep.csv")
        return 0
    result = run_ablation(args.data, seeds=args.seeds, model=args.model, epochs=args.epochs, out=args.out,
                          quick=args.quick, feature_cache=cache, overrides=overrides,
                          command=_ablate_command(args), **kwargs)
    print((result.out / "ablation.md").read_text().split("\n## Per-category")[0])
    print(f"written: {result.out / 'ablation.md'}, ablation.csv, ablation_runs.csv, ablation.png")
    return 0


def _ablate_command(args) -> str:
    parts = ["emomon", "ablate", "--data", args.data, *(["--seeds", str(args.seeds)] if args.seeds else []),
             "--out", args.out]
    for flag in ("model", "epochs", "variants", "batch_size", "lr", "device"):
        if getattr(args, flag, None) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    parts += [f for f, on in (("--quick", args.quick), ("--no-pretrained", args.no_pretrained),
                              ("--no-feature-cache", args.no_feature_cache)) if on]
    for item in args.set or []:
        parts += ["--set", item]
    for item in args.sweep or []:
        parts += ["--sweep", item]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_evaluate(args) -> int:
    from emomon.kernel import write_json_atomic
    from emomon.kernel.files import check_writable
    from training.evaluation import evaluate_checkpoint

    if args.json:
        check_writable(args.json)  # an unwritable --json fails now, not after the evaluation
    if args.emotion_model:  # a VLM: emomon/commands/vlm.py
        from emomon.commands.vlm import cmd_evaluate_vlm

        return cmd_evaluate_vlm(args)
    result = evaluate_checkpoint(args.checkpoint, args.data, args.split, batch_size=args.batch_size,
                                 device=args.device, feature_cache=args.feature_cache,
                                 thresholds=args.thresholds, num_workers=args.workers or 0,
                                 max_persons=args.limit)
    print(f"{args.checkpoint} on {args.split} ({result.extra.get('model')}, variant "
          f"{result.extra.get('variant') or 'n/a'})")
    print(result.table())
    clef = result.extra.get("clef")
    if clef:  # CLEF-lite: the same checkpoint at lambda 0, 1 and its own (chosen on val at training time)
        print(f"CLEF-lite mAP: lambda=0 {100 * clef['mAP_lambda_0']:.2f}, lambda=1 {100 * clef['mAP_lambda_1']:.2f}, "
              f"checkpoint lambda={clef['lambda_checkpoint']:g} ({clef['lambda_chosen_on']}) "
              f"{100 * clef['mAP_lambda_checkpoint']:.2f}")
    if args.json:
        write_json_atomic(args.json, result.as_dict())  # whole or absent; InputError naming the file
        print(f"written: {args.json}")
    return 0


def cmd_make_synthetic(args) -> int:
    if args.video:  # synthetic videos with a planted temporal signal (emomon/commands/temporal.py)
        from emomon.commands.temporal import cmd_make_synthetic_video

        return cmd_make_synthetic_video(args)
    from emomon.kernel import InputError
    from training.synthetic import make_synthetic

    try:
        w, h = (int(v) for v in args.image_size.lower().split("x"))
    except ValueError:
        raise InputError(f"--image-size expects WxH, e.g. 128x96, got '{args.image_size}'") from None
    summary = make_synthetic(args.out, persons=args.persons, seed=args.seed, fmt=args.format, image_size=(w, h))
    print(f"synthetic EMOTIC ({summary['format']}) in {args.out}: {summary['persons']} persons; "
          f"annotations {summary['annotations']}")
    return 0


def _train_flags(p: argparse.ArgumentParser, ablate: bool = False) -> None:
    p.add_argument("--model", help="fusion model name (default two_stream_vitb16; --quick: two_stream_tiny)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, help="DataLoader workers (default: 0 on CPU, up to 8 on CUDA)")
    p.add_argument("--feature-cache", metavar="DIR",
                   help="cache frozen scene-tower embeddings here" + (" (default OUT/feature_cache)" if ablate
                                                                       else ""))
    p.add_argument("--no-pretrained", action="store_true", help="random towers (no downloads; for tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config field (repeatable), e.g. --set mixup_alpha=0.2")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one variant on EMOTIC (or a synthetic set)",
                              description="Train one variant. Precedence: defaults < --config YAML < flags.")
    p.add_argument("--config", default="clean", help="variant name or YAML path (default clean)")
    p.add_argument("--data", help="EMOTIC directory (Annotations/Annotations.mat + emotic/) or CSV layout")
    p.add_argument("--out", help="run directory (default runs/<variant>-s<seed>)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    _train_flags(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("ablate", help="train all five variants x seeds; write the ablation table",
                              description="The ablation study: clean, ccim, clef_lite, asl, cb_sampling.")
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 per variant (default 5; 3 with --quick)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--quick", action="store_true", help="tiny model, random towers, 8 epochs (CPU minutes)")
    p.add_argument("--variants", help="comma-separated subset (default all five; clean for --sweep)")
    p.add_argument("--sweep", action="append", metavar="KEY=V1,V2",
                   help="instead of the ablation, compare settings of config fields on val (repeatable: the "
                        "product), e.g. --sweep vad_weight=0,0.05,0.5 --sweep category_reduction=sum,mean")
    p.add_argument("--no-feature-cache", action="store_true")
    _train_flags(p, ablate=True)
    p.set_defaults(func=cmd_ablate)

    p = subparsers.add_parser("evaluate", help="metrics of one checkpoint (or a VLM) on one split")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint")
    which.add_argument("--emotion-model", metavar="vlm:SPEC",
                       help="a vision-language model instead of a checkpoint: vlm:http://HOST:PORT/v1#MODEL or "
                            "vlm:hf:PATH (answers cached, see --vlm-cache)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--thresholds", default="checkpoint", choices=["checkpoint", "val", "none"],
                   help="per-category thresholds for P/R/F1: saved in the checkpoint (default), recomputed "
                        "on val, or none")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--feature-cache", metavar="DIR")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N persons of the split")
    from emomon.commands.vlm_options import add_vlm_client_arguments

    add_vlm_client_arguments(p.add_argument_group("vision-language model (--emotion-model vlm:...)"))
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("make-synthetic", help="write a small synthetic EMOTIC-format data set")
    p.add_argument("--out", required=True)
    p.add_argument("--persons", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", default="mat", choices=["mat", "tandon_csv", "kaggle_csv"])
    p.add_argument("--image-size", default="128x96", help="WxH of the images (default 128x96)")
    from emomon.commands.temporal import add_synthetic_video_flags

    add_synthetic_video_flags(p)
    p.set_defaults(func=cmd_make_synthetic)

    from emomon.commands.vlm import register_export

    register_export(subparsers)  # export-vlm-data: EMOTIC as chat-format JSONL for VLM fine-tuning
