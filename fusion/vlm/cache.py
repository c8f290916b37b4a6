"""A resumable on-disk cache of VLM answers, keyed by image, box, model and prompt.

One small JSON file per answer (written atomically), so an evaluation that stops half way keeps every answer it
got and the next run asks only for the rest. Answers that never came back (timeouts, a server that is down) are
not cached: they are asked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from emomon.kernel import write_json_atomic
from fusion.models.labels import LabelSpace
from fusion.vlm.answer import VlmAnswer, answer_from_record

log = logging.getLogger(__name__)


def answer_key(image_digest: str, box, model: str, prompt_digest: str) -> str:
    box_text = ",".join(f"{float(v):.1f}" for v in box)
    return hashlib.sha256(f"{image_digest}|{box_text}|{model}|{prompt_digest}".encode()).hexdigest()


class AnswerCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str, labels: LabelSpace) -> VlmAnswer | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError) as exc:  # a torn or foreign file: ask again, it is rewritten
            log.warning("VLM answer cache: unreadable %s (%s); asking again", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return answer_from_record(data, labels).at(cached=True, latency_s=0.0)

    def put(self, key: str, answer: VlmAnswer, text: str) -> None:
        if not answer.ok:
            return
        write_json_atomic(self._path(key), {
            "categories": list(answer.categories), "dimensions": answer.dimensions, "rationale": answer.rationale,
            "dropped": list(answer.dropped), "model": answer.model, "latency_s": answer.latency_s, "text": text})

    def stats(self) -> dict:
        return {"folder": str(self.folder), "hits": self.hits, "misses": self.misses}
