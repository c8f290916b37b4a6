"""The videos of a corpus from what the user typed: paths, globs, folders and text files listing paths or URLs.

Each video gets a stable name, its result folder's: the file's stem, or the stem and a short hash of its
source where two videos of the corpus share a stem (`clip.mp4` in two folders).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from emomon.kernel import VIDEO_SUFFIXES, InputError

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class VideoItem:
    """One video of the corpus: where it is read from, and the name of its result folder."""

    source: str
    name: str


def is_url(text: str) -> bool:
    return "://" in text


def expand_inputs(specs: list[str]) -> list[VideoItem]:
    """Every video named by `specs`, in order, each once. A path typed on the command line that does not exist
    (or a glob or folder with no video) is the user's input error; a missing file inside a list file is the
    corpus's, recorded as that video's failure when it is processed."""
    sources: list[str] = []
    for spec in specs:
        sources += _expand(spec.strip(), listed=False)
    seen, unique = set(), []
    for source in sources:
        if source not in seen:
            seen.add(source)
            unique.append(source)
    if not unique:
        raise InputError("no videos to process: give video files, folders, globs or a list file")
    return name_videos(unique)


def _expand(spec: str, listed: bool) -> list[str]:
    if not spec:
        return []
    if is_url(spec):
        return [spec]
    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        if not found and not listed:
            raise InputError(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in the folder '{spec}'")
        return found
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES and not listed:
        return _read_list(path)
    if path.exists() or listed and not _GLOB_CHARS.search(spec):
        return [str(path.resolve())]  # a missing listed file fails as that video, with its reason
    if _GLOB_CHARS.search(spec):
        found = sorted(str(Path(p).resolve()) for p in glob.glob(os.path.expanduser(spec), recursive=True)
                       if Path(p).suffix.lower() in VIDEO_SUFFIXES and Path(p).is_file())
        if not found and not listed:
            raise InputError(f"the pattern '{spec}' matches no video files")
        return found
    raise InputError(f"no such video, folder or list file: '{spec}'")


def _read_list(path: Path) -> list[str]:
    """A text file of paths or URLs, one a line; blank lines and `#` comments are skipped, and relative paths
    are relative to the list's own folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list file '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    out = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not is_url(entry) and not Path(entry).expanduser().is_absolute():
            entry = str(path.parent / entry)
        out += _expand(entry, listed=True)
    return out


def _stem(source: str) -> str:
    tail = source.rstrip("/").rsplit("/", 1)[-1] if is_url(source) else Path(source).name
    stem = tail.split("?", 1)[0].rsplit(".", 1)[0] if "." in tail else tail
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "video"


def hashed_name(source: str) -> str:
    """The stem and a short hash of the whole source: unique where stems clash."""
    return f"{_stem(source)}-{hashlib.sha1(source.encode()).hexdigest()[:8]}"


def name_videos(sources: list[str]) -> list[VideoItem]:
    stems = [_stem(s) for s in sources]
    clash = {s for s in stems if stems.count(s) > 1}
    return [VideoItem(source, hashed_name(source) if stem in clash else stem) for source, stem in zip(sources, stems)]
