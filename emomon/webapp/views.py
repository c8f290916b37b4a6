"""What the page shows, computed from pipeline results: tables, timelines, the model banner. No Gradio here."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from emomon.pipeline.results import FrameResult
from fusion import EMOTIC_CATEGORIES, RANDOM_WARNING, VAD_NAMES, PersonResult

PERSON_COLUMNS = ["person", "top emotions", "valence", "arousal", "dominance", "score", "box x1, y1, x2, y2"]
TRACK_COLUMNS = ["track", "dominant", "mean top emotions", "valence", "arousal", "dominance", "frames",
                 "seen (s)"]
LIVE_COLUMNS = ["track", "top emotions", "V", "A", "D"]
SESSION_COLUMNS = ["track", "dominant emotion", "frames", "last (s)"]
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


def persons_table(persons: list[PersonResult], numbers: list[int] | None = None, top_k: int = 3) -> pd.DataFrame:
    """One row per person of a photo (numbered as in the annotated image)."""
    rows = []
    for i, p in enumerate(persons):
        v, a, d = (round(float(x), 2) for x in p.vad)
        rows.append([f"#{numbers[i] if numbers else i + 1}", top_text(p.top(top_k)), v, a, d,
                     round(float(p.score if p.score is not None else 1.0), 2),
                     ", ".join(f"{v:.0f}" for v in p.box)])
    return pd.DataFrame(rows, columns=PERSON_COLUMNS)


def live_table(persons: list[PersonResult], top_k: int = 3) -> pd.DataFrame:
    """The persons in the current webcam frame."""
    rows = [["—" if p.track_id is None else f"#{p.track_id}", top_text(p.top(top_k)),
             *(round(float(x), 1) for x in p.vad)]
            for p in sorted(persons, key=lambda p: (p.track_id is None, p.track_id or 0))]
    return pd.DataFrame(rows, columns=LIVE_COLUMNS)


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
                     round(vad["valence"], 2), round(vad["arousal"], 2), round(vad["dominance"], 2),
                     t["frames"], f"{t['first_time']:.1f}–{t['last_time']:.1f}"])
    return pd.DataFrame(rows, columns=TRACK_COLUMNS)


class Timeline:
    """Per-track emotions and VAD over time, collected frame by frame."""

    def __init__(self):
        self.times: list[float] = []
        self.ids: list[int] = []
        self.values: list[np.ndarray] = []   # 26 probabilities + 3 VAD values per person-frame

    def add(self, time_s: float, persons: list[PersonResult]) -> None:
        for p in persons:
            if p.track_id is None:
                continue
            self.times.append(float(time_s))
            self.ids.append(int(p.track_id))
            self.values.append(np.concatenate([p.probs, p.vad]).astype(np.float32))

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
        n = len(EMOTIC_CATEGORIES)
        order = np.argsort(-values[:, :n].mean(axis=0), kind="stable")[:max(1, top_n)]
        emotions = pd.DataFrame({
            EMOTION_PLOT[0]: np.tile(t, len(order)),
            EMOTION_PLOT[1]: np.concatenate([values[:, j] for j in order]),
            EMOTION_PLOT[2]: np.repeat([EMOTIC_CATEGORIES[j] for j in order], len(t)),
        })
        vad = pd.DataFrame({
            VAD_PLOT[0]: np.tile(t, len(VAD_NAMES)),
            VAD_PLOT[1]: np.concatenate([values[:, n + j] for j in range(len(VAD_NAMES))]),
            VAD_PLOT[2]: np.repeat(list(VAD_NAMES), len(t)),
        })
        return emotions, vad


def track_choices(timeline: Timeline, summary: dict | None = None) -> list[tuple[str, int]]:
    """Dropdown entries "#3 · Peace · 45 frames" -> 3, the longest-seen track first."""
    dominant = {t["track_id"]: t["dominant_emotion"] for t in (summary or {}).get("tracks", [])}
    return [(f"#{tid} · {dominant.get(tid, '?')} · {n} frame{'s' * (n != 1)}", tid) for tid, n in timeline.tracks()]


_BANNER = ('<div id="{id}" style="border-radius:8px;padding:10px 14px;margin:2px 0;border:1px solid {border};'
           'background:{bg};color:{fg};font-size:15px;line-height:1.45">{body}</div>')


def model_banner(kind: str, description: str, detector: str) -> str:
    """The line that says plainly which emotion model is loaded; random weights get a red WARNING banner."""
    desc, det = html.escape(description), html.escape(detector)
    if kind == "random":
        body = (f"<b>WARNING: {html.escape(RANDOM_WARNING)}.</b><br>Emotion model: {desc}. "
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
