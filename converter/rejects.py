"""The rejects file: every rejected row with its file, physical line, reason and original cells.

Columns: `file,line,reason,value,` then the input's own header. Cells are written back
byte for byte (undecodable bytes included, through surrogateescape), so a fixed row can be
pasted back into the source. Inputs with another header get a file of their own
(`rejects.2.csv`, ...). The file is created only when a row is rejected. This is the error
path, so plain Python per rejected row is fine here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

LEAD_COLUMNS = ["file", "line", "reason", "value"]


def _text(cell: bytes | None) -> str:
    return "" if cell is None else cell.decode("utf-8", errors="surrogateescape")


class RejectsWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writers: dict[tuple[str, ...], tuple[io.TextIOWrapper, "csv._writer"]] = {}
        self.paths: list[str] = []

    def _writer_for(self, header: tuple[str, ...]):
        if header not in self._writers:
            n = len(self._writers) + 1
            path = self.path if n == 1 else self.path.with_name(f"{self.path.stem}.{n}{self.path.suffix}")
            stream = open(path, "w", encoding="utf-8", errors="surrogateescape", newline="")
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(LEAD_COLUMNS + list(header))
            self._writers[header] = (stream, writer)
            self.paths.append(str(path))
        return self._writers[header][1]

    def write(self, header: Sequence[str], file: str, line: int, reason: str, value: bytes | None,
              cells: Sequence[bytes | None]) -> None:
        writer = self._writer_for(tuple(header))
        writer.writerow([file, line, reason, _text(value), *(_text(c) for c in cells)])

    def write_raw(self, header: Sequence[str], file: str, line: int, reason: str, text: str, delimiter: str) -> None:
        """A row Arrow could not split: its cells as Python's csv module splits them."""
        cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        writer = self._writer_for(tuple(header))
        writer.writerow([file, line, reason, "", *cells])

    def close(self) -> None:
        for stream, _ in self._writers.values():
            stream.close()
