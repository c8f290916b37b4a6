"""The cameras of `emomon serve --ray`, from a YAML file:

    cameras:
      - name: entrance                 # letters, digits, '-', '_': names the camera's actor and status entry
        source: rtsp://10.0.0.5/live   # anything `emomon run --source` takes
        output: out/entrance.jsonl     # the camera's JSONL (one line per frame, lost/restored events)
        csv: out/entrance.csv          # optional
        reconnect_attempts: 10         # optional; default: the command's --reconnect-attempts (forever)
        vid_stride: 2                  # optional: every N-th frame

Relative paths (sources that are files, outputs) are relative to the YAML file's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from emomon.kernel import InputError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class CameraConfig:
    name: str
    source: str
    output: str
    csv: str | None = None
    reconnect_attempts: int | None = None
    vid_stride: int = 1


def load_cameras(path: str | os.PathLike) -> list[CameraConfig]:
    """The cameras of a YAML file; every mistake is one InputError line naming the camera and the field."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the cameras file '{path}': {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"the cameras file '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    entries = data.get("cameras") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise InputError(f"the cameras file '{path}' lists no cameras (a 'cameras:' list of name/source/output)")
    known = {f.name for f in fields(CameraConfig)}
    cameras, names = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"{path}: camera {number}"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not a mapping of name, source, output")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for required in ("name", "source", "output"):
            if entry.get(required) in (None, ""):
                raise InputError(f"{where}: '{required}' is missing")
        name = str(entry["name"])
        if not _NAME.match(name):
            raise InputError(f"{where}: the name '{name}' may hold only letters, digits, '-' and '_'")
        if name in names:
            raise InputError(f"{where}: the name '{name}' is used twice")
        names.add(name)
        outputs = [_local(path, entry["output"])] + ([_local(path, entry["csv"])] if entry.get("csv") else [])
        if len(set(outputs)) < len(outputs) or any(o in _all_outputs(cameras) for o in outputs):
            raise InputError(f"{where}: its output is also another output")
        attempts, stride = entry.get("reconnect_attempts"), entry.get("vid_stride", 1)
        if attempts is not None and (not isinstance(attempts, int) or attempts < 0):
            raise InputError(f"{where}: reconnect_attempts must be an integer >= 0")
        if not isinstance(stride, int) or stride < 1:
            raise InputError(f"{where}: vid_stride must be an integer >= 1")
        cameras.append(CameraConfig(name, _source(path, entry["source"]), outputs[0],
                                    outputs[1] if len(outputs) > 1 else None, attempts, stride))
    return cameras


def _all_outputs(cameras: list[CameraConfig]) -> set[str]:
    return {o for c in cameras for o in (c.output, c.csv) if o}


def _local(yaml_path: Path, value) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (yaml_path.parent / p).resolve())


def _source(yaml_path: Path, value) -> str:
    text = str(value).strip()
    if "://" in text or text.isdigit() or text.startswith("/dev/"):
        return text
    return _local(yaml_path, text)
