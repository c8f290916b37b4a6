"""What a run stores about the people in view, said once at its start (`emomon run` logs it).

Only the annotated video (and the live window, which stores nothing) holds images of people; JSONL, CSV and
the summary hold numbers. No output holds crops or raw frames.

    >>> from emomon.pipeline import OutputPaths, PrivacyConfig
    >>> print(storage_notice(OutputPaths(video="out.mp4", csv="out.csv"), PrivacyConfig("blur")))  # doctest: +ELLIPSIS
    stored: images of people in out.mp4 (annotated video, faces blurred); numbers only in out.csv (emotions, boxes); ...
"""

from __future__ import annotations

from emomon.pipeline.config import PrivacyConfig

_HIDDEN = {"blur": "faces blurred", "pixelate": "faces pixelated", "box": "faces covered"}


def storage_notice(outputs, privacy: PrivacyConfig, show: bool = False) -> str:
    """One line: which outputs will contain images of people and which only numbers (`outputs` as
    `OutputPaths`)."""
    faces = _HIDDEN.get(privacy.anonymize, "faces visible; --anonymize blur hides them")
    images = [f"{outputs.video} (annotated video, {faces})"] if outputs.video else []
    geometry = "emotions, boxes, body keypoints" if privacy.keypoints else "emotions, boxes; no keypoints"
    numbers = [f"{path} ({what})" for path, what in ((outputs.jsonl, geometry), (outputs.csv, "emotions, boxes"),
                                                       (outputs.summary, "per-track summary")) if path]
    parts = [f"images of people in {', '.join(images)}" if images else "no images of people",
             f"numbers only in {', '.join(numbers)}" if numbers else "",
             "no crops or raw frames",
             f"shown, not stored: the live window ({faces})" if show else ""]
    return "stored: " + "; ".join(p for p in parts if p)
