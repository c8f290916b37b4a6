"""A typo fails before the slow work: a missing image before torch is imported, an unknown emotion model before
the detector loads. The error lines themselves are tested in tests/test_fault_matrix.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emomon.kernel import InputError
from emomon.pipeline import EmotionModelConfig, MonitorConfig, build_pipeline
from fusion.models.loading import check_model_spec

PROBE = """
import sys
from emomon.cli import main
code = main(sys.argv[1:])
print(code, 'torch' in sys.modules)
"""


def test_a_missing_image_fails_before_torch_is_imported(tmp_path):
    proc = subprocess.run([sys.executable, "-c", PROBE, "predict", str(tmp_path / "nope.jpg"), "--emotion-model",
                           "random:two_stream_tiny"], capture_output=True, text=True, timeout=120)
    assert "cannot read image" in proc.stderr
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr


def test_the_commands_flags_load_no_heavy_library():
    """Every command's flags (read from the dataclasses' defaults) come without supervision, SciPy or torch: a
    bad flag is one line in a moment, and `emomon --help` is quick."""
    probe = ("import sys; from emomon.cli import build_parser; build_parser(); "
             "print(*[m for m in ('supervision', 'scipy', 'torch', 'ultralytics') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_an_unknown_emotion_model_fails_before_the_detector_loads(tmp_path):
    config = MonitorConfig(model=EmotionModelConfig("no_such_model"))
    config.detector.weights = str(tmp_path / "no_such_detector.pt")  # loading it would fail with another error
    with pytest.raises(InputError, match="unknown emotion model 'no_such_model'"):
        build_pipeline(config)


@pytest.mark.parametrize("spec", ["zero-shot", "random", "random:two_stream_tiny", "two_stream_vitb16", "trained"])
def test_every_kind_of_model_spec_passes_the_early_check(spec, trained_model_path):
    check_model_spec(str(trained_model_path) if spec == "trained" else spec)
