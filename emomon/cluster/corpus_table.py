"""The corpus table: one row per track of every finished video (video, track, frames, dominant emotion, mean
VAD), built from the videos' own summaries, so it always agrees with the result folders. CSV and Parquet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from emomon.kernel import InputError, atomic_write

log = logging.getLogger(__name__)

TABLE_CSV, TABLE_PARQUET = "tracks.csv", "tracks.parquet"
BASE_COLUMNS = ["video", "source", "track_id", "frames", "first_time", "last_time", "dominant_emotion"]


def track_rows(out_dir: Path, entries: list[dict]) -> list[dict]:
    """A row per track of the `done` entries, in the order given; the mean of each continuous dimension (VAD
    for EMOTIC) as `mean_<name>`."""
    rows = []
    for entry in entries:
        summary_file = out_dir / entry["name"] / "summary.json"
        try:
            tracks = json.loads(summary_file.read_text(encoding="utf-8")).get("tracks", [])
        except (OSError, ValueError) as exc:
            log.warning("corpus table: skipped '%s': %s", summary_file, exc)
            continue
        for track in tracks:
            rows.append({"video": entry["name"], "source": entry["source"], "track_id": track["track_id"],
                         "frames": track["frames"], "first_time": track.get("first_time"),
                         "last_time": track.get("last_time"), "dominant_emotion": track["dominant_emotion"],
                         **{f"mean_{name}": value for name, value in track.get("mean_vad", {}).items()}})
    return rows


def write_table(out_dir: Path, entries: list[dict]) -> dict[str, str]:
    """tracks.csv and tracks.parquet in `out_dir` (each whole or absent); their paths by format."""
    import pandas as pd

    rows = track_rows(out_dir, entries)
    extra = sorted({k for row in rows for k in row} - set(BASE_COLUMNS))
    table = pd.DataFrame(rows, columns=BASE_COLUMNS + extra)
    table["track_id"] = table["track_id"].astype("int64")
    table["frames"] = table["frames"].astype("int64")
    written = {}
    for fmt, name in (("csv", TABLE_CSV), ("parquet", TABLE_PARQUET)):
        path = out_dir / name
        with atomic_write(path) as tmp:
            try:
                if fmt == "csv":
                    table.to_csv(tmp, index=False)
                else:
                    table.to_parquet(tmp, index=False)
            except OSError as exc:
                raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
        written[fmt] = str(path)
    return written
