"""Vision-language model commands: `emomon evaluate --emotion-model vlm:...` (training.vlm_evaluation) and
`emomon export-vlm-data` (training.vlm_export)."""

from __future__ import annotations

import sys


def cmd_evaluate_vlm(args) -> int:
    from emomon.commands.vlm_options import vlm_client_config
    from emomon.kernel import InputError, write_json_atomic
    from fusion.vlm import parse_vlm_spec
    from training.vlm_evaluation import default_cache, evaluate_vlm

    parse_vlm_spec(args.emotion_model)  # one line, exit 2, before the data is read
    if args.limit < 0:
        raise InputError("--limit must be 0 (all) or more")
    device = "cpu" if args.device == "auto" else args.device
    result = evaluate_vlm(args.emotion_model, args.data, args.split, limit=args.limit,
                          config=vlm_client_config(args), cache=args.vlm_cache or default_cache(), device=device,
                          progress=sys.stderr.isatty())
    extra = result.extra
    cache = extra["cache"]
    print(f"{extra['model']} on {args.split}: {extra['answered']} of {extra['persons_asked']} persons answered"
          + (f" ({extra['unanswered']} got no answer, left out)" if extra["unanswered"] else "")
          + f"; answer cache {cache['hits']} hits, {cache['misses']} asked ({cache['folder']})")
    print(f"note: {extra['scores']}")
    print(result.table())
    if extra["dropped_from_answers"]:
        print("dropped from answers: " + ", ".join(f"{n} {k}" for k, n in extra["dropped_from_answers"].items()))
    if args.json:
        write_json_atomic(args.json, result.as_dict())  # with the prompt, the model and the cache counts
        print(f"written: {args.json}")
    return 0


def register_export(subparsers) -> None:
    p = subparsers.add_parser("export-vlm-data", help="EMOTIC as chat-format JSONL for fine-tuning a VLM",
                              description="One line per person: the image with the person's box drawn, emomon's "
                                          "question and the annotation as the answer JSON (LLaMA-Factory / "
                                          "ms-swift 'sharegpt' messages + images; dataset_info.json beside it).")
    p.add_argument("--data", required=True, help="EMOTIC directory or CSV layout (as for emomon train)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N persons")
    p.add_argument("--crop", action="store_true", help="also give the person's crop as a second image")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from training.vlm_export import export_chat_jsonl

    done = export_chat_jsonl(args.data, args.split, args.out, limit=args.limit, crop=args.crop)
    print(f"written: {done['jsonl']} ({done['persons']} persons; images in {args.out}/images; "
          f"{args.out}/dataset_info.json for LLaMA-Factory)")
    return 0
