"""open_clip, imported without transformers.

At import, open_clip tries `import transformers` for its Hugging Face text towers and CoCa's text generation,
which emomon's CLIP models never use, and falls back cleanly when that import fails. Where transformers is
installed (the `vlm` extra brings it; many ML environments have it) the attempt cost about 1.4 s of every
`emomon run` start on a 2-core CPU (`python -X importtime`). So open_clip is imported with transformers hidden,
unless something in the process has already imported transformers, which then stays fully usable.
"""

from __future__ import annotations

import importlib
import sys
import threading

_lock = threading.Lock()


def open_clip_module():
    """The `open_clip` module (imported once, without transformers if transformers is not loaded yet)."""
    if "open_clip" in sys.modules or "transformers" in sys.modules:
        return importlib.import_module("open_clip")
    with _lock:
        hide = "transformers" not in sys.modules
        if hide:
            sys.modules["transformers"] = None  # `import transformers` raises ImportError meanwhile
        try:
            return importlib.import_module("open_clip")
        finally:
            if hide and "transformers" in sys.modules and sys.modules["transformers"] is None:
                del sys.modules["transformers"]  # a later `import transformers` (the VLM backend) works as usual
