"""Why a VLM gave no answer. The stream's slow path and the evaluation catch these and go on; a command that
cannot go on without answers ends with one line and exit code 2, like any unreachable input (a camera, a file)."""

from emomon.kernel import InputError


class VlmError(InputError):
    """The VLM could not answer: the server refused, timed out, failed or sent something that is not a reply."""


class VlmUnavailable(VlmError):
    """Nothing answered: a refused connection, a timeout or a 5xx, after every retry."""
