"""open_clip is imported without transformers (fusion.models.openclip): that import cost about 1.4 s of every
start where transformers is installed, as it is with the `vlm` extra. A fresh process tells, since a test
process may have imported transformers already. The CLIP models still build, and transformers still imports
afterwards for whoever needs it (the VLM backend)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("transformers")  # the dev install has it (the vlm extra); without it there is nothing to hide

SCRIPT = """
import sys
from fusion.models import create_model
model = create_model("two_stream_tiny", pretrained=False)
assert "open_clip" in sys.modules, "the model was built with open_clip"
print("transformers" in sys.modules)
import transformers
print(transformers.__name__)
"""


def test_open_clip_comes_without_transformers_and_transformers_still_imports():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "transformers"]
