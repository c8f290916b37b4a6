"""A VLM's answer about one person: parsed leniently, checked against the label space, kept typed.

Whatever the model wrote (a JSON object, one wrapped in prose or a ``` fence, names in another case, numbers as
strings, VAD nested under "vad"), `parse_answer` keeps what is valid and drops the rest with a reason: unknown
labels, missing fields, values out of range or not numbers; text without any JSON object is an answer with
nothing valid in it (the reason in `dropped`). Nothing it receives makes it raise.

    >>> from fusion.models.labels import EMOTIC
    >>> a = parse_answer('Sure! {"categories": ["happiness", "Joy"], "valence": 8, "arousal": "6", '
    ...                  '"dominance": 42, "rationale": "smiling"}', EMOTIC)
    >>> a.categories, a.dimensions, a.dropped
    (('Happiness',), {'valence': 8.0, 'arousal': 6.0}, ('unknown category Joy', 'dominance 42 outside 1-10'))
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from fusion.models.labels import LabelSpace

log = logging.getLogger(__name__)

RATIONALE_CHARS = 300
# Names a VLM often writes for one of EMOTIC's categories (compared after `_key`).
ALIASES = {"doubt": "Doubt/Confusion", "confusion": "Doubt/Confusion", "doubtconfusion": "Doubt/Confusion"}


@dataclass(frozen=True)
class VlmAnswer:
    """What the model said about one person (`error` set and nothing else when no answer came back)."""

    labels: LabelSpace
    categories: tuple[str, ...] = ()     # the chosen categories, in the label space's order
    dimensions: dict = field(default_factory=dict)  # name -> value, only the valid ones
    rationale: str = ""
    dropped: tuple[str, ...] = ()        # what was left out of the answer, and why
    error: str | None = None             # no answer came back: timeout, refused connection, HTTP error
    model: str = ""                      # the spec, without credentials
    frame: int | None = None             # the frame the person was asked about
    time: float | None = None            # that frame's time in the stream, seconds
    latency_s: float | None = None       # from the question to the answer (0 for a cached answer)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def at(self, **where) -> VlmAnswer:
        return replace(self, **where)

    def scores(self) -> np.ndarray:
        """(C,) 1 for each chosen category, 0 elsewhere: the answer as scores (evaluation, `PersonResult`)."""
        chosen = set(self.categories)
        return np.array([1.0 if c in chosen else 0.0 for c in self.labels.categories])

    def values(self) -> np.ndarray:
        """(D,) the continuous dimensions, NaN where the answer gave no valid value."""
        return np.array([self.dimensions.get(d.name, math.nan) for d in self.labels.dimensions], dtype=np.float64)

    def record(self) -> dict:
        """The JSON form of the answer (the person's `vlm` field in the JSONL, `emomon predict --json`)."""
        out = {"categories": list(self.categories),
               "vad": {d.name: self.dimensions.get(d.name) for d in self.labels.dimensions},
               "rationale": self.rationale, "frame": self.frame, "time": _round(self.time, 3),
               "latency_s": _round(self.latency_s, 3), "cached": self.cached, "model": self.model}
        if self.dropped:
            out["dropped"] = list(self.dropped)
        if self.error:
            out["error"] = self.error
        return out


def _round(value, digits):
    return None if value is None else round(float(value), digits)


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _objects(text: str):
    """Every JSON object in `text`, first to last (prose and ``` fences around them are skipped)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def _pick_object(text: str, labels: LabelSpace) -> dict | None:
    """The object that looks most like an answer (most known keys), the first one on a tie."""
    wanted = {_key(w) for w in ("categories", "rationale", "vad", *labels.dimension_names)}

    def hits(obj: dict) -> int:  # known keys, those of nested objects included (an answer beats its "vad" part)
        return sum((_key(str(k)) in wanted) + (hits(v) if isinstance(v, dict) else 0) for k, v in obj.items())

    best, best_hits = None, -1
    for obj in _objects(text):
        n = hits(obj)
        if n > best_hits:
            best, best_hits = obj, n
    return best


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*", value)
        return float(m.group(1)) if m else None
    return None


def _category_names(value) -> list[str] | None:
    if isinstance(value, str):
        return [v for v in re.split(r"[,;\n]", value) if v.strip()]
    if isinstance(value, dict):  # {"Happiness": true, "Fear": 0.1}: the ones marked present
        return [str(k) for k, v in value.items() if v is True or (_number(v) or 0) >= 0.5]
    if isinstance(value, list):
        return [str(v.get("name", v.get("category", ""))) if isinstance(v, dict) else str(v) for v in value]
    return None


def parse_answer(text: str, labels: LabelSpace, model: str = "") -> VlmAnswer:
    """The valid part of the model's text as a `VlmAnswer`; what was dropped is in `dropped` (and logged)."""
    obj = _pick_object(text or "", labels)
    if obj is None:
        excerpt = (text or "").strip().replace("\n", " ")[:80]
        reason = f"no JSON object in the answer ({excerpt!r})"
        log.info("VLM answer (%s): %s", model or "?", reason)
        return VlmAnswer(labels, dropped=(reason,), model=model)
    fields = {_key(str(k)): v for k, v in obj.items()}
    dropped: list[str] = []
    by_key = {_key(c): c for c in labels.categories}
    by_key.update({k: v for k, v in ALIASES.items() if v in labels.categories})
    chosen: set[str] = set()
    names = _category_names(fields.get("categories", fields.get("category", fields.get("emotions"))))
    if names is None:
        dropped.append("missing categories")
    for name in names or []:
        known = by_key.get(_key(name))
        if known is None:
            dropped.append(f"unknown category {name.strip()[:40]}")
        else:
            chosen.add(known)
    if not labels.multi_label and len(chosen) > 1:
        dropped.append(f"{len(chosen)} categories where one is asked for; kept the first")
        first = next(by_key[_key(n)] for n in names if by_key.get(_key(n)) in chosen)
        chosen = {first}
    nested = fields.get("vad") if isinstance(fields.get("vad"), dict) else {}
    nested = {_key(str(k)): v for k, v in nested.items()}
    dims: dict[str, float] = {}
    for d in labels.dimensions:
        raw = fields.get(_key(d.name), nested.get(_key(d.name)))
        value = _number(raw)
        if raw is None:
            dropped.append(f"missing {d.name}")
        elif value is None or not math.isfinite(value):
            dropped.append(f"{d.name} {str(raw)[:20]!r} is not a number")
        elif not d.low <= value <= d.high:
            dropped.append(f"{d.name} {value:g} outside {d.low:g}-{d.high:g}")
        else:
            dims[d.name] = value
    rationale = fields.get("rationale", fields.get("reason", fields.get("explanation", "")))
    rationale = " ".join(str(rationale).split())[:RATIONALE_CHARS] if rationale else ""
    if dropped:
        log.info("VLM answer (%s): dropped %s", model or "?", "; ".join(dropped))
    return VlmAnswer(labels, tuple(c for c in labels.categories if c in chosen), dims, rationale, tuple(dropped),
                     model=model)


def answer_from_record(data: dict, labels: LabelSpace) -> VlmAnswer:
    """The inverse of the cache's form (`AnswerCache`): categories, dimensions, rationale, dropped."""
    return VlmAnswer(labels, tuple(data.get("categories", ())), dict(data.get("dimensions", {})),
                     str(data.get("rationale", "")), tuple(data.get("dropped", ())), data.get("error"),
                     model=str(data.get("model", "")))
