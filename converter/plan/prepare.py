"""Everything checked before the first row of any file: outputs, inputs read once, every header."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from ..books.summary import RunSummary
from ..errors import ConverterError, InputError
from ..formats import annotated
from ..mapping import MappingSpec
from ..read.inputs import STDIN, expand_inputs, is_stream, open_source
from .file_plan import plan_for
from .options import ConvertOptions, OnError
from .outputs import WriteGuard


@dataclass(frozen=True)
class Prepared:
    """A run's inputs expanded and checked, and the paths it writes claimed: what convert() needs to
    start reading. `prepare` makes it; the CLI opens its output only after that."""

    items: list[str]
    writes: WriteGuard


def prepare(inputs: Sequence[str], *, mapping: MappingSpec, options: ConvertOptions,
            outputs: Sequence[tuple[str, str | None]] = (), lines_to_stdout: bool = False) -> Prepared:
    """Everything that can be known before the first row is read, checked in this order: the inputs
    (globs expanded, none given twice), every path the run writes (`outputs`, as (option, path), then
    the rejects file; plan/outputs.py), then each file's header against the mapping (check_headers).

    A ConverterError raised after the paths were checked carries an empty `.summary`: the caller
    may write its --summary-json then, not before (that path could be an input)."""
    items = expand_inputs(inputs)
    refuse_repeated_inputs(items)
    writes = WriteGuard([item for item in items if item != STDIN])
    if lines_to_stdout:
        writes.claim_stdout()
    for option, path in outputs:
        if path is not None and path != "-":
            writes.claim(option, path)
        elif path == "-":
            writes.claim_stdout()
    if options.on_error is OnError.QUARANTINE:
        writes.claim("--rejects", options.rejects_path,
                     fix="give --rejects FILE in another place, or --on-error skip to only count bad rows")
    try:
        check_headers(items, mapping, options)
    except ConverterError as exc:
        exc.summary = RunSummary()  # type: ignore[attr-defined]
        raise
    return Prepared(items, writes)


def refuse_repeated_inputs(items: Sequence[str]) -> None:
    """One input given twice (`x.csv x.csv`, `x.csv ./x.csv`, a glob and a name that match the same
    file) would convert its rows twice: every point a duplicate. Refused, by what the file is."""
    if items.count(STDIN) > 1:
        raise ConverterError("'-' (stdin) can be given only once.")
    seen: dict[tuple[int, int], str] = {}
    for item in items:
        if item == STDIN:
            continue
        try:
            info = os.stat(item)
        except OSError:
            continue  # opening it says what is wrong
        key = (info.st_dev, info.st_ino)
        if key in seen:
            also = "" if seen[key] == item else f" (also as {seen[key]})"
            raise InputError(f"{item}: given twice{also}; each input is converted once per run, twice would write "
                             f"every row twice: give it once.")
        seen[key] = item


def check_inputs(inputs: Sequence[str], mapping: MappingSpec, options: ConvertOptions) -> list[str]:
    """Expand globs, refuse an input given twice, and check the mapping against every file's header
    before any row is read (check_headers)."""
    items = expand_inputs(inputs)
    refuse_repeated_inputs(items)
    check_headers(items, mapping, options)
    return items


def check_headers(items: Sequence[str], mapping: MappingSpec, options: ConvertOptions) -> None:
    """The mapping against the header of every input (each file is opened, its header read, closed).

    Inputs that can be read only once (stdin, a FIFO, `<(zcat x.gz)`) are left out here: reading
    their header now would take it away from the conversion. Theirs is checked when they are
    opened for it, before their first row."""
    for item in items:
        if is_stream(item):
            continue
        source = open_source(item, delimiter=options.delimiter, block_size=options.block_size, settings=options.read,
                             max_expansion=options.max_expansion, max_columns=options.max_columns)
        try:
            if annotated.is_annotated(source, options.input_format):  # its first table's annotations and header
                annotated.check(source, mapping=mapping, delimiter=options.delimiter, block_size=options.block_size)
            else:
                plan_for(source, item, mapping, options)
        finally:
            source.close()
