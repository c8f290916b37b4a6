"""The kernel: what every emomon package may import, and nothing else does the same job.

Standard library only (no numpy, no torch), so importing it is instant and can never pull in a layer above.

The import rule, held by `tests/test_layers.py` (which also reads `import_module("...")` strings):

    layer 0  emomon.kernel (and the `emomon` package itself, which re-exports it)
    layer 1  stream, detector, fusion          -> the kernel only (never each other)
    layer 2  emomon.pipeline                   -> layers 0-1 (the glue: per-frame pipeline, outputs, runner)
    layer 3  training, benchmarks, emomon.cluster -> layers 0-2 (libraries; their commands live in the CLI;
                                                  they never import each other)
    layer 4  emomon.cli, emomon.commands, emomon.webapp, app -> anything below

A module never imports a layer above its own, and no two modules import each other (directly or around a
loop).
"""

from emomon.kernel.cache import cache_dir, cache_root
from emomon.kernel.errors import EmomonError, InputError
from emomon.kernel.files import (
    atomic_write,
    ensure_parent,
    exclusive_lock,
    finite_json,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from emomon.kernel.logs import quiet_loggers, setup_logging
from emomon.kernel.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, output_fps
from emomon.kernel.text import first_line
from emomon.kernel.timestamps import file_stamp, parse_utc, utc_iso, utc_now
from emomon.kernel.version import __version__

__all__ = [
    "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "EmomonError", "InputError", "__version__", "atomic_write", "cache_dir",
    "cache_root", "ensure_parent", "exclusive_lock", "finite_json", "first_line", "output_fps", "quiet_loggers",
    "setup_logging", "sha256_file", "write_json_atomic", "write_text_atomic", "file_stamp", "parse_utc", "utc_iso",
    "utc_now",
]
