"""`VlmEmotionModel`: a vision-language model behind the emotion-model interface of `Predictor`
(`predict(frame, boxes)` -> one `PersonResult` per box), asked one person at a time.

Each person's result carries the full answer in `PersonResult.vlm`; its scores are the answer as a category set
(1 for each chosen category, 0 elsewhere) and its continuous dimensions the answered values (NaN, written as
null, where the answer had none).

    >>> model = load_vlm("vlm:http://127.0.0.1:8000/v1#Qwen/Qwen2-VL-7B-Instruct")     # doctest: +SKIP
    >>> answer = model.ask(frame, [10, 20, 200, 400])                                  # doctest: +SKIP
    >>> answer.categories, answer.dimensions, answer.rationale                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomon.kernel import InputError, first_line
from fusion.models.labels import EMOTIC, LabelSpace
from fusion.results import PersonResult
from fusion.vlm.answer import VlmAnswer, parse_answer
from fusion.vlm.cache import AnswerCache, answer_key
from fusion.vlm.config import VlmConfig
from fusion.vlm.errors import VlmError
from fusion.vlm.image import clip_box, image_digest, question_images
from fusion.vlm.prompt import build_prompt
from fusion.vlm.spec import VlmSpec, parse_vlm_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VlmSource:
    """Where the model is (`describe_model` reads this, as for the other models)."""

    spec: VlmSpec

    def describe(self) -> str:
        return f"{self.spec.describe()} (vision-language model, asked per person)"


class VlmEmotionModel:
    def __init__(self, spec: VlmSpec, config: VlmConfig | None = None, labels: LabelSpace = EMOTIC,
                 cache: AnswerCache | None = None, client=None, device: str = "cpu"):
        self.spec, self.config, self.labels, self.cache = spec, config or VlmConfig(), labels, cache
        self.prompt = build_prompt(labels, crop=self.config.crop)
        self.source = VlmSource(spec)
        self.model = self  # `Predictor`-like: `describe_model(predictor.model)`
        if client is None:
            if spec.kind == "hf":
                from fusion.vlm.hf_client import TransformersClient

                client = TransformersClient(spec, self.config, device)
            else:
                from fusion.vlm.http_client import OpenAIChatClient

                client = OpenAIChatClient(spec, self.config)
        self.client = client

    @property
    def name(self) -> str:
        return self.spec.describe()

    def close(self) -> None:
        self.client.close()

    def ask(self, frame: np.ndarray, box, frame_index: int | None = None, time_s: float | None = None
            ) -> VlmAnswer:
        """The model's answer about the person in `box`; never raises for a server that is down or slow: the
        answer then has `error` set (and is not cached). A box wholly outside the frame is an InputError."""
        clip_box(box, frame.shape)
        key = None
        if self.cache is not None:
            key = answer_key(image_digest(frame), box, self.spec.cache_name, self.prompt.digest)
            hit = self.cache.get(key, self.labels)
            if hit is not None:
                return hit.at(frame=frame_index, time=time_s, model=self.name)
        images = question_images(frame, box, self.config.crop, self.config.max_side, self.config.jpeg_quality)
        start = time.perf_counter()
        try:
            text = self.client.complete(self.prompt, images)
        except VlmError as exc:
            return VlmAnswer(self.labels, error=str(exc), model=self.name, frame=frame_index, time=time_s,
                             latency_s=time.perf_counter() - start)
        latency = time.perf_counter() - start
        answer = parse_answer(text, self.labels, self.name).at(frame=frame_index, time=time_s, latency_s=latency)
        if key is not None:
            try:
                self.cache.put(key, answer, text)
            except InputError as exc:  # a full disk loses the cache entry, never the answer
                log.warning("VLM answer cache: %s", first_line(exc))
        return answer

    def predict(self, frame: np.ndarray, boxes=None) -> list[PersonResult | None]:
        """One `PersonResult` per box (`vlm` holds the answer), asked `config.concurrency` at a time. A person
        whose question got no answer is None, the reason logged."""
        if boxes is None:
            boxes = [[0, 0, frame.shape[1], frame.shape[0]]]
        boxes = [list(map(float, b)) for b in boxes]
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            answers = list(pool.map(lambda b: self.ask(frame, b), boxes))
        out: list[PersonResult | None] = []
        for i, (box, answer) in enumerate(zip(boxes, answers)):
            if not answer.ok:
                log.warning("person %d: the VLM gave no answer (%s)", i, answer.error)
                out.append(None)
                continue
            out.append(PersonResult(i, np.asarray(box, dtype=np.float64), answer.scores(), answer.values(),
                                    labels=self.labels, vlm=answer))
        return out


def load_vlm(spec: str | VlmSpec, config: VlmConfig | None = None, labels: LabelSpace = EMOTIC,
             cache_dir: str | Path | None = None, device: str = "cpu") -> VlmEmotionModel:
    """The model a `vlm:...` spec names; `cache_dir` keeps its answers on disk (keyed by image, box, model and
    prompt)."""
    spec = parse_vlm_spec(spec) if isinstance(spec, str) else spec
    cache = AnswerCache(cache_dir) if cache_dir else None
    return VlmEmotionModel(spec, config, labels, cache, device=device)
