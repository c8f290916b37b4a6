"""emomon: a streaming video emotion monitor.

Three rooms: `emomon.kernel` (the bottom layer every package may import), `emomon.pipeline` (the glue that
joins stream, detector and fusion) and, on top, the CLI (`emomon.cli`, `emomon.commands`) and the web app
(`emomon.webapp`). The import rule between them and the packages `stream`, `detector`, `fusion`, `training`
and `benchmarks` is written in `emomon.kernel`'s docstring.
"""

from emomon.kernel import EmomonError, InputError, __version__

__all__ = ["EmomonError", "InputError", "__version__"]
