"""emomon: a streaming video emotion monitor.

The command-line interface (`emomon ...`) and the glue that joins the packages `stream`, `detector`,
`fusion`, `training` and `benchmarks` into the product live here.
"""

from emomon.errors import EmomonError, InputError

__version__ = "0.1.0"
__all__ = ["EmomonError", "InputError", "__version__"]
