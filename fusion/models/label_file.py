"""User-defined zero-shot labels (`--labels FILE`), EmoCLIP style: each label is a written description, and a
compound label is the mean of its components' text embeddings.

    - name: Calm
      description: a relaxed, peaceful person at ease
    - name: Tense
      description: a stressed person with a tight, nervous posture
    - name: Calm but alert
      components: [Calm, Tense]

Components may name any label of the file (compounds of compounds too); a loop, an unknown component, an
empty description, a duplicate name or an unknown key is one clear `LabelFileError` naming the file and entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from emomon.kernel import InputError


class LabelFileError(InputError):
    """A `--labels` file that cannot be read or does not describe a label set."""


@dataclass(frozen=True)
class Label:
    name: str
    description: str | None = None          # the text CLIP embeds
    components: tuple[str, ...] = ()        # or: the labels whose embeddings are averaged


@dataclass(frozen=True)
class LabelSet:
    labels: tuple[Label, ...]
    source: str = ""                        # the file it came from (for messages and the model's description)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def weights(self, name: str) -> dict[str, float]:
        """Described label -> weight in `name`'s embedding: a compound is the mean of its components, each of
        which is itself such a mean (so nested compounds keep each component's equal share)."""
        label = self._by_name()[name]
        if label.description:
            return {name: 1.0}
        out: dict[str, float] = {}
        for c in label.components:
            for leaf, w in self.weights(c).items():
                out[leaf] = out.get(leaf, 0.0) + w / len(label.components)
        return out

    def described(self) -> list[Label]:
        return [label for label in self.labels if label.description]

    def to_list(self) -> list[dict]:
        return [{"name": lb.name, **({"description": lb.description} if lb.description else {}),
                 **({"components": list(lb.components)} if lb.components else {})} for lb in self.labels]

    def _by_name(self) -> dict[str, Label]:
        return {label.name: label for label in self.labels}


KEYS = {"name", "description", "components"}


def parse_label_set(data, source: str = "<labels>") -> LabelSet:
    """A label set from parsed YAML (a list of mappings); every problem is a LabelFileError."""
    def fail(message: str):
        raise LabelFileError(f"label file '{source}': {message}")

    if not isinstance(data, list) or not data:
        fail("expected a non-empty list of labels ('- name: ...' entries)")
    labels: list[Label] = []
    seen: set[str] = set()
    for i, entry in enumerate(data, 1):
        if not isinstance(entry, dict):
            fail(f"entry {i} is not a mapping with name and description or components")
        if extra := sorted(set(map(str, entry)) - KEYS):
            fail(f"entry {i} has unknown key(s) {extra}; keys are name, description, components")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            fail(f"entry {i} has no name")
        name = name.strip()
        if name in seen:
            fail(f"duplicate label name '{name}'")
        seen.add(name)
        desc, comps = entry.get("description"), entry.get("components")
        if "description" in entry and (not isinstance(desc, str) or not desc.strip()):
            fail(f"label '{name}' has an empty description")
        if comps is not None and (not isinstance(comps, list) or not comps
                                  or not all(isinstance(c, str) and c.strip() for c in comps)):
            fail(f"label '{name}': components must be a non-empty list of label names")
        if (desc is None) == (comps is None):
            fail(f"label '{name}' needs either a description or components (not both)")
        labels.append(Label(name, desc.strip() if desc else None, tuple(c.strip() for c in comps or ())))
    by_name = {label.name: label for label in labels}
    for label in labels:
        for c in label.components:
            if c not in by_name:
                fail(f"label '{label.name}' has unknown component '{c}' (labels: {', '.join(by_name)})")
    _check_loops(labels, by_name, fail)
    return LabelSet(tuple(labels), source)


def _check_loops(labels, by_name, fail) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            fail(f"compound labels form a loop: {' -> '.join(path + [name])}")
        state[name] = 1
        for c in by_name[name].components:
            visit(c, path + [name])
        state[name] = 2

    for label in labels:
        visit(label.name, [])


def read_label_file(path: str | os.PathLike) -> LabelSet:
    """Read and check a `--labels` YAML file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"cannot read label file '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise LabelFileError(f"label file '{path}' is not valid YAML{where}: "
                             f"{getattr(exc, 'problem', None) or exc}") from None
    return parse_label_set(data, str(path))
