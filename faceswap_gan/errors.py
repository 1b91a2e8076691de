"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class FaceswapError(Exception):
    """A problem with the user's input or environment, worded for the user.

    Raise it with a message that says what is wrong and, where possible, what to do.
    The CLI prints ``error: <message>`` and exits with status 1; no traceback.
    """
