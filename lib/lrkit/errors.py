"""The one family of errors that mean "bad input or a missing asset", not a bug.

The command line prints these as one line naming the problem and the fix; anything else (a shape error, CUDA out
of memory, a KeyError in the kit) is a bug and shows its traceback. Library code raises a subclass that also
derives from the builtin it replaces (``FileNotFoundError``, ``RuntimeError``, ...), so callers that catch the
builtin keep working.
"""

from __future__ import annotations

__all__ = ["UserError", "DeviceUnavailable", "UnknownName"]


class UserError(Exception):
    """Bad input or a missing file/dataset/weight: the message says what and how to fix it."""


class DeviceUnavailable(UserError, RuntimeError):
    """A CUDA device was asked for where none is visible."""


class UnknownName(UserError, KeyError):
    """A name (metric, weight file, preset) the kit does not know; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError's str() quotes its message; this is a sentence
        return str(self.args[0]) if self.args else ""
