"""`emomon evaluate --emotion-model vlm:...`: a vision-language model on an EMOTIC split.

Each annotated person is asked about once (the image with the person's box drawn), `concurrency` at a time,
through a resumable answer cache (keyed by image, box, model and prompt; a stopped run keeps its answers and the
next one asks only for the rest). A VLM answers with a category *set*, so the scores are that set: 1 for each
category it named, 0 otherwise. Per-category precision, recall and F1 are those of the named set (threshold
0.5 on those scores); AP over such binary scores is the area under a two-point precision-recall curve (it equals
precision x recall + (1 - recall) x prevalence, so it is comparable between VLMs, and only roughly with the AP of
a model that ranks persons). VAD MAE is over the persons whose answer gave a valid value for that dimension.
Persons the server never answered (timeouts, errors) are left out and counted; the prompt goes into the results.

    >>> result = evaluate_vlm("vlm:http://127.0.0.1:8000/v1#Qwen/Qwen2-VL-7B-Instruct", "/data/emotic",
    ...                       "test", limit=200)                                                # doctest: +SKIP
    >>> print(result.table())                                                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from emomon.kernel import cache_dir
from training.annotations import load_split
from training.dataset import read_image
from training.metrics import EvalResult, evaluate_arrays

log = logging.getLogger(__name__)

SCORES_NOTE = ("scores are the VLM's answer as a category set (1 named, 0 not); P/R/F1 are those of the named set "
               "(threshold 0.5); AP over these binary scores")
STOP_AFTER = 8  # questions in a row without an answer before the evaluation gives up (the server is down)


def default_cache() -> str:
    return str(cache_dir("vlm-answers"))


def _reason_kind(reason: str) -> str:
    """'unknown category Joy' -> 'unknown category' (reasons are counted by kind in the results)."""
    for kind in ("unknown category", "missing", "no JSON object", "outside", "is not a number", "categories where"):
        if kind in reason:
            return kind
    return reason[:40]


def evaluate_vlm(spec: str, data, split: str = "test", *, limit: int = 0, config=None,
                 cache: str | None = None, device: str = "cpu", progress: bool = False) -> EvalResult:
    from fusion.models.labels import EMOTIC
    from fusion.vlm import VlmConfig, VlmUnavailable, load_vlm

    config = config or VlmConfig()
    records = load_split(data, split).records
    if limit:
        records = records[:limit]
    model = load_vlm(spec, config, EMOTIC, cache_dir=cache or default_cache(), device=device)
    answers: list = [None] * len(records)
    state = {"failed_in_a_row": 0, "stopped": None}
    lock = threading.Lock()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(records), unit="person", desc="vlm")

    def ask(i: int) -> None:
        if state["stopped"]:
            return
        rec = records[i]
        image = read_image(rec.image_path)
        if image is None:
            return
        answer = model.ask(image, rec.bbox)
        with lock:
            answers[i] = answer
            state["failed_in_a_row"] = 0 if answer.ok else state["failed_in_a_row"] + 1
            if state["failed_in_a_row"] >= STOP_AFTER and not state["stopped"]:
                state["stopped"] = answer.error
            if bar is not None:
                bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
            list(pool.map(ask, range(len(records))))
    finally:
        if bar is not None:
            bar.close()
        model.close()
    if state["stopped"]:
        got = sum(a is not None and a.ok for a in answers)
        raise VlmUnavailable(f"{STOP_AFTER} questions in a row got no answer from {model.name} "
                             f"(last: {state['stopped']}); {got} answers so far are kept in {model.cache.folder}")
    answered = [i for i, a in enumerate(answers) if a is not None and a.ok]
    unreadable = sum(a is None for a in answers)
    unanswered = len(records) - len(answered) - unreadable
    if not answered:
        raise VlmUnavailable(f"no person of {split} got an answer from {model.name}")
    labels = np.stack([records[i].categories for i in answered])
    vad_true = np.stack([records[i].vad for i in answered])
    scores = np.stack([answers[i].scores() for i in answered])
    vad_pred = np.stack([answers[i].values() for i in answered])
    result = evaluate_arrays(labels, scores, np.nan_to_num(vad_pred), vad_true,
                             thresholds=np.full(labels.shape[1], 0.5), skipped=unreadable)
    valid = ~np.isnan(vad_pred)
    result.vad_mae = np.array([np.abs(vad_pred[valid[:, d], d] - vad_true[valid[:, d], d]).mean()
                               if valid[:, d].any() else np.nan for d in range(vad_pred.shape[1])])
    dropped = Counter(_reason_kind(r) for i in answered for r in answers[i].dropped)
    result.extra = {
        "model": model.name, "split": split, "limit": limit or None, "scores": SCORES_NOTE,
        "persons_asked": len(records), "answered": len(answered), "unanswered": unanswered,
        "vad_answered": dict(zip(EMOTIC.dimension_names, map(int, valid.sum(0)))),
        "mean_categories_named": round(float(scores.sum(1).mean()), 3),
        "dropped_from_answers": dict(dropped.most_common()),
        "cache": model.cache.stats(), "prompt": model.prompt.to_dict(),
        "client": {"timeout_s": config.timeout_s, "retries": config.retries, "concurrency": config.concurrency,
                   "structured_output": bool(getattr(model.client, "structured", False)), "crop": config.crop},
    }
    return result
