# Two entry points (see README): `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv and install everything on first use; re-running is cheap.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Local wheels of these lie on the development machines; on a user's machine pip downloads them.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_ARGS ?=

.PHONY: demo test lint venv system-deps clean bench app gpu-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Debian packages the tests use for real parts: Chromium (browser tests), ffmpeg (fake webcam clip),
# GStreamer's RTSP server (network-source tests). Installed only when missing and when we may.
system-deps:
	@bash .ci/system-deps.sh

# The main job on the example images Ultralytics ships (bus.jpg, zidane.jpg): annotated frames + logs in out/.
ASSETS = $$($(PY) -c 'import ultralytics, pathlib; print(pathlib.Path(ultralytics.__file__).parent / "assets")')
demo: venv
	$(VENV)/bin/emomon run --source "$(ASSETS)" --output out/demo.mp4 --jsonl out/demo.jsonl \
		--csv out/demo.csv --summary out/demo_summary.json $(DEMO_ARGS)

# Quick CPU benchmark on the shared street clip, 3-6 min on 2 cores (full GPU run: BENCH_ARGS="--device cuda",
# no --quick). The committed result files and the commands that made them: benchmarks/results/README.md.
BENCH_ARGS ?= --quick
BENCH_OUT ?= out/bench
bench: venv
	$(VENV)/bin/emomon bench $(BENCH_ARGS) --source ../shared/data/street_crossing.mp4 \
		--detector-weights ../shared/weights/yolo11n-pose.pt --out $(BENCH_OUT)

# The GPU check (README "GPU check"): gpu/tensorrt tests, preprocessing, the full bench with --device cuda and 1-64
# streams, under 8 min, into benchmarks/results/gpu-check-<GPU name>/. No venv needed: on a bare GPU machine it
# installs the wheels ../shared/tools/gpu-kit.sh packed into .gpukit/. CPU run: GPU_CHECK_ARGS="--device cpu --budget-s 120".
GPU_CHECK_ARGS ?= --device cuda --budget-s 480
gpu-check:
	bash benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

# The web app on http://127.0.0.1:7860 (APP_ARGS="--emotion-model PATH --device cuda" etc.).
APP_ARGS ?=
app: venv
	$(VENV)/bin/emomon app $(APP_ARGS)

test: venv system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: venv
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
