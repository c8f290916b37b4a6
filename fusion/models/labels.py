"""Label spaces: what a model predicts, declared by the model rather than assumed to be EMOTIC.

A `LabelSpace` names the categories (multi-label sigmoids or one softmax distribution) and the continuous
dimensions with their ranges. Outputs (JSON records, CSV columns, overlay bars, summary, app) follow the
declaration of the model that produced a result, so EMOTIC models and ABAW-style temporal models need no
special case downstream.

    >>> ABAW.categories[:3], [d.name for d in ABAW.dimensions], ABAW.dimensions[0].unit(0.0)
    (('Neutral', 'Anger', 'Disgust'), ['valence', 'arousal'], 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

from emomon.kernel import InputError
from fusion.models.categories import EMOTIC_CATEGORIES, VAD_MAX, VAD_MIN, VAD_NAMES


@dataclass(frozen=True)
class Dimension:
    """A continuous output (valence, arousal, ...) and the range its values live in."""

    name: str
    low: float
    high: float

    def unit(self, value: float) -> float:
        """`value` mapped to 0..1 over the range (not clipped), e.g. for drawing a bar."""
        return (float(value) - self.low) / (self.high - self.low)

    @property
    def neutral(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class LabelSpace:
    """Categories and continuous dimensions of a model's outputs."""

    name: str
    categories: tuple[str, ...]
    dimensions: tuple[Dimension, ...]
    multi_label: bool = True   # independent sigmoids (EMOTIC) or one distribution (ABAW expressions, zero-shot)

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def to_dict(self) -> dict:
        return {"name": self.name, "categories": list(self.categories), "multi_label": self.multi_label,
                "dimensions": [[d.name, d.low, d.high] for d in self.dimensions]}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSpace:
        """The inverse of `to_dict` (checkpoints); a malformed declaration is an InputError."""
        try:
            space = cls(str(data["name"]), tuple(str(c) for c in data["categories"]),
                        tuple(Dimension(str(n), float(lo), float(hi)) for n, lo, hi in data["dimensions"]),
                        bool(data.get("multi_label", True)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed label space declaration ({type(exc).__name__}: {exc})") from None
        known = LABEL_SPACES.get(space.name)
        return known if known == space else space


EMOTIC = LabelSpace("emotic", EMOTIC_CATEGORIES, tuple(Dimension(n, VAD_MIN, VAD_MAX) for n in VAD_NAMES))

# Aff-Wild2 / ABAW: 8 expressions (EXPR_Classification_Challenge order, one per frame) + valence/arousal on [-1, 1].
ABAW_EXPRESSIONS: tuple[str, ...] = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
                                     "Other")
ABAW = LabelSpace("abaw", ABAW_EXPRESSIONS, (Dimension("valence", -1.0, 1.0), Dimension("arousal", -1.0, 1.0)),
                  multi_label=False)

LABEL_SPACES: dict[str, LabelSpace] = {s.name: s for s in (EMOTIC, ABAW)}


def label_space(name: str) -> LabelSpace:
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise InputError(f"unknown label space '{name}': choose one of {', '.join(LABEL_SPACES)}") from None
