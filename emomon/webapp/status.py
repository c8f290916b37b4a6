"""The page's status lines: one line by the buttons that says what happens now, in plain words.

Errors are one red line, shown once, replaced by the next status (no stacked toasts); progress is a bar
with frames, speed and the time left. HTML only, no Gradio here.
"""

from __future__ import annotations

import html

_LINE = '<div class="emomon-status {kind}" role="{role}">{body}</div>'


def error(text: str) -> str:
    """A red status line (role=alert, so screen readers say it once)."""
    return _LINE.format(kind="error", role="alert", body=html.escape(text))


def note(text: str, strong: str = "") -> str:
    """A plain status line; `strong` comes first, in bold."""
    lead = f"<b>{html.escape(strong)}</b> " if strong else ""
    return _LINE.format(kind="note", role="status", body=lead + html.escape(text))


def duration(seconds: float | None) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'; '?' when unknown."""
    if seconds is None:
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress(done: int, total: int | None, rate: float, remaining: float | None, persons: int,
             name: str = "") -> str:
    """'clip.mp4: frame 120 / 240 · 2.1 frames/s · about 57 s left' over a bar."""
    frac = min(1.0, done / total) if total else None
    parts = [(f"{name}: " if name else "") + f"frame {done}" + (f" / {total}" if total else ""),
             f"{rate:.1f} frames/s" if rate > 0 else "measuring speed",
             f"about {duration(remaining)} left" if remaining is not None else "",
             f"{persons} person{'s' * (persons != 1)} in frame"]
    text = " · ".join(p for p in parts if p)
    bar = ("" if frac is None else f'<div class="emomon-bar"><div style="width:{100 * frac:.1f}%"></div></div>')
    return _LINE.format(kind="progress", role="status", body=f"<b>Processing:</b> {html.escape(text)}{bar}")


def waiting(ahead: int) -> str:
    return note(f"Waiting for {ahead} video{'s' * (ahead != 1)} ahead of yours; it starts by itself.",
                "Queued.")


def estimate(frames: int | None, seconds_per_frame: float | None, what: str) -> str:
    """Before a run: how much work `what` is and, once this server has measured its speed, how long."""
    if not frames:
        return note(f"{what}: length unknown; the time left shows once it runs.", "Ready.")
    if seconds_per_frame:
        return note(f"{what}: {frames} frames, about {duration(frames * seconds_per_frame)} at this server's "
                    f"measured {1 / seconds_per_frame:.1f} frames/s.", "Ready.")
    return note(f"{what}: {frames} frames; the time left shows after the first frames.", "Ready.")


CSS = """
.emomon-status { font-size: 15px; line-height: 1.4; padding: 6px 10px; border-radius: 6px; }
.emomon-status.error { color: #7f1d1d; background: #fee2e2; border: 1px solid #b91c1c; font-weight: 600; }
.emomon-status.note, .emomon-status.progress { background: var(--block-background-fill); }
.emomon-bar { height: 8px; background: #d1d5db; border-radius: 4px; margin-top: 4px; overflow: hidden; }
.emomon-bar > div { height: 100%; background: #2563eb; }
"""
