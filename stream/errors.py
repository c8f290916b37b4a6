"""The one error type stream raises on purpose, so the CLI can map bad sources to exit code 2."""

from emomon.kernel import InputError


class SourceError(InputError):
    """A source cannot be opened or read: missing file, undecodable video, no images, unreachable URL.

    The message is one line naming the source and what went wrong.
    """
