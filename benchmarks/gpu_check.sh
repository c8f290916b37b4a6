#!/usr/bin/env bash
# `make gpu-check`: the GPU check on a machine that may have PyTorch but none of our other dependencies.
# Installs the wheels ../shared/tools/gpu-kit.sh packed into .gpukit/whl (only when something is missing),
# gives the tests the media packed beside them when ../shared is absent, then runs benchmarks/gpu_check.py
# with the arguments given here (default: --device cuda --budget-s 480). Results: the folder it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
export YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if ! "$py" -c 'import ultralytics, open_clip, lap, supervision' 2>/dev/null; then
  if ! ls .gpukit/whl/*.whl >/dev/null 2>&1; then
    echo "error: ultralytics/open_clip/lap/supervision are missing and .gpukit/whl holds no wheels" \
         "(run ../shared/tools/gpu-kit.sh where pip can download, and carry .gpukit)" >&2
    exit 2
  fi
  "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpukit/whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
# tests find the media in ../shared; on a machine where only .gpukit travelled, put it there
if [ ! -d ../shared ] && [ -f .gpukit/street_crossing.mp4 ]; then
  if mkdir -p ../shared/data ../shared/weights 2>/dev/null; then
    cp .gpukit/*.mp4 .gpukit/*.jpg ../shared/data/ 2>/dev/null || true
    cp .gpukit/*.pt ../shared/weights/ 2>/dev/null || true
  else
    echo "note: cannot create ../shared; the tests that need the media skip (the bench reads .gpukit/)" >&2
  fi
fi
[ $# -eq 0 ] && set -- --device cuda --budget-s 480
exec "$py" -m benchmarks.gpu_check "$@"
