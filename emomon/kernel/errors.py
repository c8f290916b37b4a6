"""Error types shared by every package, so the CLI can map them to exit codes.

Library code raises; only the CLI decides how to exit (bad input -> 2, anything else -> 1).
"""


class EmomonError(Exception):
    """Base class of every error emomon raises on purpose."""


class InputError(EmomonError, ValueError):
    """Bad input from the user: a missing or unreadable file, a bad option, a corrupt checkpoint.

    The message is one line that says what is wrong and how to fix it.
    """
