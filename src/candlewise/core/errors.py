"""Errors a user can cause and fix: they carry a hint and map to exit code 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input (config, symbol, file, data) that the user can fix.

    The CLI prints ``Error: <message>`` and, when given, ``Hint: <hint>``, then exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"
