"""Rebuild `trained_tiny.pt`: the tiny two-stream model trained on the synthetic planted-signal set.

Random weights make a model's outputs nearly the same for every person, so tests about outputs (reuse,
parity, batching, ordering, precision) use this checkpoint instead: its outputs depend on the input
(`tests/test_test_model.py` holds that). It is made through the same code path as `emomon train`:

    .venv/bin/python tests/assets/make_test_model.py      # about a minute on 2 CPU cores

and writes `trained_tiny.pt` plus `trained_tiny.json` (the command, commit, machine and the metrics on the
synthetic test split) beside this file.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "trained_tiny.pt"

SYNTHETIC = ["make-synthetic", "--persons", "1200", "--seed", "0"]
TRAIN = ["train", "--config", "clean", "--model", "two_stream_tiny", "--no-pretrained", "--epochs", "30",
         "--lr", "3e-3", "--seed", "0", "--device", "cpu", "--no-progress",
         "--set", "freeze_scene=false", "--set", "backbone_lr_scale=1.0", "--set", "weight_decay=0.0"]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from emomon.cli import main as emomon

    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "synthetic", Path(tmp) / "run"
        if emomon([*SYNTHETIC, "--out", str(data)]) != 0:
            return 1
        if emomon([*TRAIN, "--data", str(data), "--out", str(run)]) != 0:
            return 1
        shutil.copyfile(run / "best.pt", OUT)
        final = json.loads((run / "final.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    record = {"command": ["emomon", *SYNTHETIC, "--out", "DATA"], "train": ["emomon", *TRAIN, "--data", "DATA"],
              "commit": commit, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "python": platform.python_version(), "result": final}
    (HERE / "trained_tiny.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
