"""Errors the library raises. The CLI turns each into one message and an exit status.

Every message says what is wrong, where (file, line, column, option) and how to fix it.
"""

from __future__ import annotations

import errno as errno_names

STDOUT_CLOSED = "stdout is closed (>&-); give -o FILE, or send the lines to a file or a pipe."


def os_error_text(exc: OSError) -> str:
    """`No space left on device (ENOSPC)`: the system's words and the name to search for."""
    name = errno_names.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text


class ConverterError(Exception):
    """Anything that stops a run before or while it converts. Exit status 1."""

    exit_code = 1


class MappingError(ConverterError):
    """The mapping (preset, TOML file or flags) is invalid or does not fit the CSV header."""


class InputError(ConverterError):
    """An input cannot be opened or read at all (missing, not CSV, bad compression)."""


class OutputError(ConverterError):
    """An output cannot be written: found before the run (a missing folder, an output that is an
    input), or during it (a full disk, an I/O error, a closed pipe: `errno` says which)."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class BadRowError(ConverterError):
    """--on-error fail met its first bad row. Exit status 4."""

    exit_code = 4
