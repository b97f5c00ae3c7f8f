"""A settings file's text (mapping, Telegraf config, execd config, token file), read with a limit."""

from __future__ import annotations

import errno
from pathlib import Path

SETTINGS_FILE_LIMIT = 1 << 20  # mapping, Telegraf, execd and token files are a few KiB


def read_settings_text(path: str | Path) -> str:
    """A settings file's text, read at most SETTINGS_FILE_LIMIT bytes far: `--config /dev/zero`, or a
    CSV file given as the mapping, is refused instead of read whole. Raises OSError, whose strerror
    says what is wrong (the system's words, too large, not UTF-8)."""
    with open(path, "rb") as file:
        data = file.read(SETTINGS_FILE_LIMIT + 1)
    if len(data) > SETTINGS_FILE_LIMIT:
        raise OSError(errno.EFBIG, f"larger than {SETTINGS_FILE_LIMIT >> 20} MiB, so not a settings file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OSError(errno.EILSEQ, f"not UTF-8 text (byte {exc.start:,} is {data[exc.start:exc.start + 1]!r})") from None
