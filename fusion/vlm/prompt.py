"""The question put to a vision-language model, and the JSON schema of the answer, from a label space.

The prompt follows the VLM-on-EMOTIC setup (design notes, paper 4): the frame with the target person boxed,
the question "how does the person in the box feel?", the label space's categories (with EMOTIC's written
descriptions) and its continuous dimensions on their own scale, the answer as one JSON object. The schema goes
to servers that take `response_format: json_schema` (guided decoding); others get the same text and are parsed
leniently (`fusion.vlm.answer`).

    >>> from fusion.models.labels import EMOTIC
    >>> prompt = build_prompt(EMOTIC)
    >>> "Doubt/Confusion" in prompt.text, prompt.schema["required"]
    (True, ['categories', 'valence', 'arousal', 'dominance', 'rationale'])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from fusion.models.categories import CATEGORY_DESCRIPTIONS
from fusion.models.labels import EMOTIC, LabelSpace

PROMPT_VERSION = 1  # bump when the wording changes: it is part of every cache key

SYSTEM = ("You are an expert annotator of emotions in images. You judge how a person's emotions appear from their "
          "body, face, actions and the scene around them, and you answer with one JSON object only.")

# What the low and high ends mean (EMOTIC's annotation guide), so the numbers are on the annotators' scale.
DIMENSION_HINTS = {"valence": "from very negative to very positive",
                   "arousal": "from calm, sleepy to agitated, ready to act",
                   "dominance": "from controlled by the situation to in control of it"}


@dataclass(frozen=True)
class Prompt:
    system: str
    text: str     # the user turn that goes with the image(s)
    schema: dict  # JSON schema of the answer
    crop: bool    # a second image (the person's crop) follows the frame

    @property
    def digest(self) -> str:
        """Identifies the question exactly (system, user text, schema, images sent): part of the cache key."""
        blob = json.dumps([PROMPT_VERSION, self.system, self.text, self.schema, self.crop], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """What evaluation results record, so a number can be traced to the exact question."""
        return {"version": PROMPT_VERSION, "digest": self.digest, "system": self.system, "user": self.text,
                "images": ["frame with the person's box drawn"] + (["the person's crop"] if self.crop else []),
                "schema": self.schema}


def answer_schema(labels: LabelSpace) -> dict:
    """categories: a subset of the label space (enum); each dimension a number in its range; a rationale."""
    props: dict = {"categories": {"type": "array", "items": {"type": "string", "enum": list(labels.categories)},
                                  "uniqueItems": True}}
    for d in labels.dimensions:
        props[d.name] = {"type": "number", "minimum": d.low, "maximum": d.high}
    props["rationale"] = {"type": "string", "maxLength": 300}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def build_prompt(labels: LabelSpace = EMOTIC, crop: bool = False) -> Prompt:
    described = labels.categories == EMOTIC.categories
    names = "\n".join(f"- {c}: {CATEGORY_DESCRIPTIONS[c]}" if described else f"- {c}" for c in labels.categories)
    pick = ("all categories that apply (usually one to four)" if labels.multi_label
            else "the one category that applies best")
    dims = "\n".join(f'- "{d.name}": a number from {d.low:g} to {d.high:g} ({d.neutral:g} is neutral'
                     f'{", " + DIMENSION_HINTS[d.name] if d.name in DIMENSION_HINTS else ""})'
                     for d in labels.dimensions)
    example = {"categories": [labels.categories[0]], **{d.name: d.neutral for d in labels.dimensions},
               "rationale": "one short sentence"}
    images = ("The first image is the whole scene with the person marked by a red box; the second image is that "
              "person cut out." if crop else "The image shows a scene with one person marked by a red box.")
    text = (f"{images}\nHow does the person in the red box feel? Judge only that person, using the whole scene as "
            f"context.\n\nChoose {pick} from this list, spelled exactly as written:\n{names}\n\n"
            f"Rate these continuous dimensions:\n{dims}\n\n"
            f'Give a one-sentence "rationale" naming what you see that shows it.\n'
            f"Answer with one JSON object and nothing else, for example:\n{json.dumps(example)}")
    return Prompt(SYSTEM, text, answer_schema(labels), crop)
