"""EMOTIC as chat-format JSONL for fine-tuning a vision-language model (design notes 1.4: a fine-tuned VLM beats
the two-stream baselines).

One line per annotated person: the image with that person's box drawn in red (written as a JPEG, since the
model must see the box), the question `emomon` asks at inference (`fusion.vlm.build_prompt`, the same text, so a
model fine-tuned on it answers what `--vlm` and `evaluate --emotion-model vlm:...` parse), and the annotation as
the answer JSON (`categories`, `valence`, `arousal`, `dominance`, `rationale`: EMOTIC has no rationales, so it is
empty). The layout is the "sharegpt" messages + images format that LLaMA-Factory and ms-swift read (a
`dataset_info.json` for LLaMA-Factory is written beside it); `box` and `source_image` are kept for reference.

    >>> export_chat_jsonl("/data/emotic", "train", "out/emotic-vlm")    # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from emomon.kernel import InputError, atomic_write, write_json_atomic

log = logging.getLogger(__name__)


def answer_json(categories, vad, labels) -> str:
    named = [c for c, on in zip(labels.categories, categories) if on > 0.5]
    dims = {d.name: round(float(v), 2) for d, v in zip(labels.dimensions, vad)}
    return json.dumps({"categories": named, **dims, "rationale": ""})


def export_chat_jsonl(data, split: str, out, limit: int = 0, crop: bool = False, max_side: int = 1024) -> dict:
    """Write `OUT/<split>.jsonl`, `OUT/images/` and `OUT/dataset_info.json`; returns counts."""
    from fusion.models.labels import EMOTIC
    from fusion.vlm import build_prompt, question_images
    from training.annotations import load_split
    from training.dataset import read_image

    out = Path(out).expanduser()
    records = load_split(data, split).records
    if limit:
        records = records[:limit]
    prompt = build_prompt(EMOTIC, crop=crop)
    images_dir = out / "images"
    try:
        images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write '{images_dir}': {exc.strerror or exc}") from None
    written = unreadable = 0
    jsonl = out / f"{split}.jsonl"
    with atomic_write(jsonl) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, rec in enumerate(records):
            image = read_image(rec.image_path)
            if image is None:
                unreadable += 1
                continue
            paths = []
            for k, jpeg in enumerate(question_images(image, rec.bbox, crop=crop, max_side=max_side)):
                path = images_dir / f"{split}_{i:06d}_{'frame' if k == 0 else 'crop'}.jpg"
                path.write_bytes(jpeg)
                paths.append(str(path.relative_to(out)))
            f.write(json.dumps({
                "id": f"{split}-{i}",
                "messages": [{"role": "system", "content": prompt.system},
                             {"role": "user", "content": "<image>" * len(paths) + prompt.text},
                             {"role": "assistant", "content": answer_json(rec.categories, rec.vad, EMOTIC)}],
                "images": paths,
                "box": [round(float(v), 1) for v in rec.bbox], "source_image": str(rec.image_path)}) + "\n")
            written += 1
    info_path = out / "dataset_info.json"  # one entry per exported split: keep the others'
    try:
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    except (OSError, ValueError):
        info = {}
    write_json_atomic(info_path, {**info, f"emotic_vlm_{split}": {
        "file_name": jsonl.name, "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}})
    if unreadable:
        log.warning("%d unreadable images left out", unreadable)
    return {"jsonl": str(jsonl), "persons": written, "unreadable": unreadable, "prompt_digest": prompt.digest}
