"""What the page shows, computed from pipeline results: tables, timelines, the model banner. No Gradio here."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from emomon.pipeline.results import FrameResult
from fusion import ABAW, EMOTIC, EMOTIC_CATEGORIES, RANDOM_WARNING, VAD_NAMES, PersonResult

PERSON_COLUMNS = ["#", "top emotions", "valence", "arousal", "dominance", "score", "box"]
TRACK_COLUMNS = ["track", "dominant", "mean top emotions", "valence", "arousal", "dominance", "frames",
                 "seen (s)"]
LIVE_COLUMNS = ["track", "top emotions", "V", "A", "D"]
SESSION_COLUMNS = ["track", "dominant", "frames", "last (s)"]
EMOTION_PLOT = ("time (s)", "probability", "emotion")
VAD_PLOT = ("time (s)", "value (1-10)", "dimension")


def hide_paths(text: str, folders: Iterable[str | Path]) -> str:
    """`text` with every path inside one of `folders` (where the server keeps uploads and results) cut to its
    file name, so the page never shows the server's folders: '/tmp/gradio/ab12.../clip.mp4' -> 'clip.mp4'."""
    names = {str(f).rstrip("/") for f in folders if f} | {str(Path(f).resolve()) for f in folders if f}
    for folder in sorted((n for n in names if len(n) > 1), key=len, reverse=True):
        text = re.sub(re.escape(folder) + r"(?:/[^\s'\"/]+)*/([^\s'\"/]+)", r"\1", text)
    return text


def aligned_persons(result: FrameResult) -> list[PersonResult | None]:
    """The overlay wants one entry per detection; some detections may have no emotions."""
    return result.aligned()


def top_text(top: list, k: int | None = None) -> str:
    return " · ".join(f"{name} {p:.0%}" for name, p in top[:k])


def vad3(p: PersonResult) -> list[float]:
    """Valence, arousal, dominance by name from the person's label space (NaN where it has no such dimension,
    e.g. ABAW's valence/arousal-only temporal models)."""
    dims = dict(zip(p.labels.dimension_names, map(float, p.vad)))
    return [dims.get(name, float("nan")) for name in VAD_NAMES]


def persons_table(persons: list[PersonResult], numbers: list[int] | None = None, top_k: int = 3) -> pd.DataFrame:
    """One row per person of a photo (numbered as in the annotated image)."""
    rows = []
    for i, p in enumerate(persons):
        v, a, d = (round(x, 2) for x in vad3(p))
        rows.append([f"#{numbers[i] if numbers else i + 1}", top_text(p.top(top_k)), v, a, d,
                     round(float(p.score if p.score is not None else 1.0), 2),
                     ", ".join(f"{v:.0f}" for v in p.box)])
    return pd.DataFrame(rows, columns=PERSON_COLUMNS)


def explanations(summary: dict) -> dict[int, str]:
    """Each track's latest VLM answer in words (`--vlm`; the summary's `tracks[].vlm.last`), e.g.
    'Happiness, Excitement: smiling with raised arms (frame 120)'."""
    out = {}
    for t in summary.get("tracks", []):
        last = (t.get("vlm") or {}).get("last")
        if last:
            named = ", ".join(last["categories"]) or "no category"
            out[t["track_id"]] = f"{named}: {last['rationale'] or '(no rationale)'} (frame {last['frame']})"
    return out


def live_table(persons: list[PersonResult], top_k: int = 3, explain: dict[int, str] | None = None) -> pd.DataFrame:
    """The persons in the current webcam frame; with `explain` (a VLM is on) each track's latest explanation."""
    rows = [["—" if p.track_id is None else f"#{p.track_id}", top_text(p.top(top_k)),
             *(round(x, 1) for x in vad3(p))]
            + ([] if explain is None else [explain.get(p.track_id, "waiting for the VLM")])
            for p in sorted(persons, key=lambda p: (p.track_id is None, p.track_id or 0))]
    return pd.DataFrame(rows, columns=LIVE_COLUMNS + ([] if explain is None else ["explanation"]))


def session_table(summary: dict) -> pd.DataFrame:
    """The webcam session's tracks so far: dominant emotion, frames seen, the longest-seen first."""
    rows = [[f"#{t['track_id']}", t["dominant_emotion"], t["frames"], round(t["last_time"], 1)]
            for t in summary.get("tracks", [])]
    return pd.DataFrame(rows, columns=SESSION_COLUMNS)


def tracks_table(summary: dict) -> pd.DataFrame:
    """One row per track of a run summary (`RunSummary.to_dict()`), the longest-seen first."""
    rows = []
    for t in summary.get("tracks", []):
        vad = t["mean_vad"]
        rows.append([f"#{t['track_id']}", t["dominant_emotion"], top_text(t["mean_top"]),
                     *(round(vad[n], 2) if vad.get(n) is not None else None for n in VAD_NAMES),
                     t["frames"], f"{t['first_time']:.1f}–{t['last_time']:.1f}"])
    explain = explanations(summary)
    if explain:  # a VLM answered (`--vlm`): its latest explanation per track
        for row, t in zip(rows, summary.get("tracks", [])):
            row.append(explain.get(t["track_id"], ""))
    return pd.DataFrame(rows, columns=TRACK_COLUMNS + (["explanation"] if explain else []))


class Timeline:
    """Per-track emotions and VAD over time, collected frame by frame."""

    def __init__(self):
        self.times: list[float] = []
        self.ids: list[int] = []
        self.values: list[np.ndarray] = []   # 26 probabilities + 3 VAD values per person-frame
        self.boxes: list[tuple[float, ...]] = []  # each person-frame's box, to point the person out in the video
        self.labels = EMOTIC  # the label space of the persons added (one model per run)

    def add(self, time_s: float, persons: list[PersonResult]) -> None:
        for p in persons:
            if p.track_id is None:
                continue
            self.times.append(float(time_s))
            self.ids.append(int(p.track_id))
            self.values.append(np.concatenate([p.probs, p.vad]).astype(np.float32))
            self.labels = p.labels
            self.boxes.append(tuple(round(float(v), 1) for v in p.box))

    def track_boxes(self, track_id: int | None) -> str:
        """JSON [[time, x1, y1, x2, y2], ...] of one track: the page draws it over the playing video."""
        if track_id is None:
            return "[]"
        rows = [[round(t, 3), *b] for t, i, b in zip(self.times, self.ids, self.boxes) if i == int(track_id)]
        return json.dumps(rows)

    def tracks(self) -> list[tuple[int, int]]:
        """(track id, frames seen), the longest-seen first."""
        return sorted(Counter(self.ids).items(), key=lambda kv: (-kv[1], kv[0]))

    def frames(self, track_id: int | None, top_n: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Long-format frames for line plots: the track's top-N emotions (by mean) and its VAD over time."""
        ids = np.asarray(self.ids)
        if track_id is None or not len(ids) or not (ids == int(track_id)).any():
            return (pd.DataFrame({c: [] for c in EMOTION_PLOT}), pd.DataFrame({c: [] for c in VAD_PLOT}))
        mask = ids == int(track_id)
        t = np.asarray(self.times)[mask]
        values = np.stack(self.values)[mask]
        names, dims = self.labels.categories, self.labels.dimension_names
        n = len(names)
        order = np.argsort(-values[:, :n].mean(axis=0), kind="stable")[:max(1, top_n)]
        emotions = pd.DataFrame({
            EMOTION_PLOT[0]: np.tile(t, len(order)),
            EMOTION_PLOT[1]: np.concatenate([values[:, j] for j in order]),
            EMOTION_PLOT[2]: np.repeat([names[j] for j in order], len(t)),
        })
        vad = pd.DataFrame({
            VAD_PLOT[0]: np.tile(t, len(dims)),
            VAD_PLOT[1]: np.concatenate([values[:, n + j] for j in range(len(dims))]),
            VAD_PLOT[2]: np.repeat(list(dims), len(t)),
        })
        return emotions, vad


def track_choices(timeline: Timeline, summary: dict | None = None) -> list[tuple[str, int]]:
    """Dropdown entries "#3 · Peace · 45 frames" -> 3, the longest-seen track first."""
    dominant = {t["track_id"]: t["dominant_emotion"] for t in (summary or {}).get("tracks", [])}
    return [(f"#{tid} · {dominant.get(tid, '?')} · {n} frame{'s' * (n != 1)}", tid) for tid, n in timeline.tracks()]


_BANNER = ('<div id="{id}" style="border-radius:6px;padding:4px 10px;margin:0;border:1px solid {border};'
           'background:{bg};color:{fg};font-size:13px;line-height:1.3">{body}</div>')


def strip_folders(text: str) -> str:
    """Every absolute path in `text` cut to its file name: visitors never see the server's folders."""
    return re.sub(r"(?<![\w.])(?:[A-Za-z]:)?(?:[/\\][^\s/\\,;:()'\"]+)+[/\\]([^\s/\\,;:()'\"]+)", r"\1", text)


def model_label(spec: str) -> str:
    """What the model dropdown shows for `spec`: a checkpoint by its file name, never its server folder."""
    return strip_folders(spec) if ("/" in spec or "\\" in spec) else spec


def emotion_colors() -> dict[str, str]:
    """A fixed colour per emotion and per V/A/D dimension, so a timeline's legend never mixes up tracks."""
    import colorsys

    colors = {}
    names = list(dict.fromkeys([*EMOTIC_CATEGORIES, *ABAW.categories]))  # + ABAW's Neutral, Disgust, Other
    for i, name in enumerate(names):  # hues spread by the golden angle, two lightnesses
        r, g, b = colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.42 if i % 2 else 0.55, 0.75)
        colors[name] = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    colors.update({"valence": "#16a34a", "arousal": "#ea580c", "dominance": "#2563eb"})
    return colors


def stable_numbers(boxes: np.ndarray, previous: list[tuple[int, list[float]]] | None,
                   min_iou: float = 0.5) -> list[int]:
    """Person numbers for `boxes` that survive a re-run: a box overlapping one numbered before (IoU >=
    `min_iou`, best pairs first) keeps that number; the rest are numbered left to right after the highest."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    numbers: list[int | None] = [None] * len(boxes)
    if previous:
        old = np.asarray([b for _, b in previous], np.float64).reshape(-1, 4)
        x1 = np.maximum(boxes[:, None, 0], old[None, :, 0])
        y1 = np.maximum(boxes[:, None, 1], old[None, :, 1])
        x2 = np.minimum(boxes[:, None, 2], old[None, :, 2])
        y2 = np.minimum(boxes[:, None, 3], old[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
        iou = inter / np.maximum(area(boxes)[:, None] + area(old)[None, :] - inter, 1e-9)
        used_new, used_old = set(), set()
        for i, j in sorted(np.argwhere(iou >= min_iou).tolist(), key=lambda ij: -iou[ij[0], ij[1]]):
            if i not in used_new and j not in used_old:
                numbers[i] = previous[j][0]
                used_new.add(i)
                used_old.add(j)
    nxt = max([n for n, _ in previous or []] + [0]) + 1
    for i in sorted((i for i, n in enumerate(numbers) if n is None), key=lambda i: boxes[i, 0]):
        numbers[i] = nxt
        nxt += 1
    return numbers  # type: ignore[return-value]


def person_detail(number: int, person: PersonResult, top_k: int = 5) -> str:
    """A selected person in words: full top-k and V/A/D with what the scale means."""
    v, a, d = (float(x) for x in person.vad)
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{p:.0%}</td></tr>" for n, p in person.top(top_k))
    return (f'<div class="person-detail"><b>Person #{number}</b><table>{rows}</table>'
            f"<div>valence {v:.1f} · arousal {a:.1f} · dominance {d:.1f} "
            "<span style=\"opacity:.75\">(1-10; 5.5 is neutral)</span></div></div>")


VAD_KEY = ("Labels: **#number top emotion %**; with few persons, panels show the top emotions and "
           "**V**alence, **A**rousal, **D**ominance (1-10, bar centre = 5.5 neutral). Select a person in the "
           "table for all values.")


def model_banner(kind: str, description: str, detector: str) -> str:
    """The line that says plainly which emotion model is loaded; random weights get a red WARNING banner."""
    desc, det = html.escape(strip_folders(description)), html.escape(strip_folders(detector))
    if kind == "random":
        body = (f"<b>WARNING: {html.escape(RANDOM_WARNING)}.</b> Emotion model: {desc}. "
                f"Person detector: {det}.")
        return _BANNER.format(id="model-banner", border="#b91c1c", bg="#fee2e2", fg="#7f1d1d", body=body)
    what = {"zero-shot": "zero-shot CLIP (not trained on EMOTIC: scores are similarities to text descriptions "
                         "of the 26 categories)",
            "checkpoint": "trained checkpoint",
            "pretrained": "pretrained towers with an untrained head"}.get(kind, kind)
    body = f"<b>Emotion model:</b> {what} — {desc}. <b>Person detector:</b> {det}."
    if kind == "pretrained":
        return _BANNER.format(id="model-banner", border="#b45309", bg="#fef3c7", fg="#78350f",
                              body="<b>WARNING:</b> " + body)
    return _BANNER.format(id="model-banner", border="#1d4ed8", bg="#dbeafe", fg="#1e3a8a", body=body)
