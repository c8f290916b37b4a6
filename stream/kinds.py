"""What kind of source a spec names, and whether it is live (drop frames) or finite (never drop)."""

import enum
import os
import re
from pathlib import Path

from emomon.kernel import IMAGE_SUFFIXES, VIDEO_SUFFIXES

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
_GLOB_CHARS = re.compile(r"[*?\[]")


class SourceKind(enum.Enum):
    WEBCAM = "webcam"
    FILE = "file"
    NETWORK = "network"
    IMAGE = "image"
    IMAGES = "images"


def is_live(kind: SourceKind) -> bool:
    """Live sources produce frames at their own pace: the reader keeps the newest and drops the rest."""
    return kind in (SourceKind.WEBCAM, SourceKind.NETWORK)


def is_url(spec: str) -> bool:
    return spec.lower().startswith(URL_SCHEMES)


def detect_kind(spec: str | int | os.PathLike) -> SourceKind:
    """Classify a spec without opening it; whether it exists is checked when it is opened."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return SourceKind.WEBCAM
    text = os.fspath(spec)
    if text.strip().isdigit() or text.startswith("/dev/video"):
        return SourceKind.WEBCAM
    if is_url(text):
        suffix = Path(text.split("?", 1)[0]).suffix.lower()
        return SourceKind.FILE if suffix in VIDEO_SUFFIXES else SourceKind.NETWORK  # a remote file: no drops
    path = Path(text)
    if path.is_dir() or (_GLOB_CHARS.search(text) and not path.exists()):
        return SourceKind.IMAGES
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceKind.IMAGE
    return SourceKind.FILE


def redact_url(text: str) -> str:
    """Hide the password in rtsp://user:password@host so it never reaches logs or error messages."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", text)
