"""The plan of one file: its header resolved against the mapping (per table for annotated CSV), and its default measurement."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ..errors import MappingError
from ..formats import annotated
from ..mapping import FieldType, MappingSpec, Plan, TagSpec, resolve
from ..read.source import CsvSource
from ..read.inputs import STDIN, is_descriptor_path
from .options import ConvertOptions


def default_measurement(item: str) -> str | None:
    """The file's name without its extensions (`gps.csv.gz` -> `gps`; a named FIFO's too); `stdin` for
    '-' and /dev/stdin; None for /dev/fd/N and /proc/PID/fd/N (`<(zcat x.gz)`), whose name (`63`)
    says nothing about the data: those need -m or a measurement column."""
    if item in (STDIN, "/dev/stdin"):
        return "stdin"
    if is_descriptor_path(item):
        return None
    name = Path(item).name
    return name.split(".", 1)[0] or name


def plan_for(source: CsvSource, item: str, mapping: MappingSpec, options: ConvertOptions) -> Plan:
    mapping = with_source_columns(mapping, source)
    measurement = default_measurement(item)
    if measurement is None and mapping.measurement is None and mapping.measurement_column is None:
        raise MappingError(f"{source.name}: the measurement cannot be named after this input: it is an open file "
                           f"descriptor (a process substitution such as <(zcat x.csv.gz)), not a file name; "
                           f"give -m NAME or --measurement-column COLUMN.")
    plan = resolve(mapping, source.header, source=source.name, default_measurement=measurement or "")
    if options.s2_level is not None:
        for key in ("lat", "lon"):
            fld = plan.field_by_key(key)
            if fld is None or fld.type is not FieldType.FLOAT:
                raise MappingError(
                    f"{source.name}: --s2-level needs float fields named 'lat' and 'lon' "
                    f"(e.g. --field lat=LATCOLUMN:float --field lon=LONCOLUMN:float, or --preset movebank)."
                )
    return plan


def parts_and_plans(source: CsvSource, item: str, mapping: MappingSpec,
                    options: ConvertOptions) -> Iterator[tuple[CsvSource, Plan]]:
    """The input's rows as they are read, with the plan for them: plain CSV is one part, annotated
    CSV a part per table (read lazily, so take each part's blocks before asking for the next part)."""
    if annotated.is_annotated(source, options.input_format):
        yield from annotated.sections(source, mapping=mapping, delimiter=options.delimiter,
                                      block_size=options.block_size)
    else:
        yield source, plan_for(source, item, mapping, options)


def with_source_columns(mapping: MappingSpec, source: CsvSource) -> MappingSpec:
    """What the file itself says about its columns: metadata lines are tags, types given by position
    are types by name (flags and the mapping's own types win)."""
    if source.column_types:
        mapping = replace(mapping, column_types={**source.column_types, **mapping.column_types})
    tag_columns = {tag.column for tag in mapping.tags}
    for key in source.metadata:
        if key in tag_columns:
            continue  # a tag column of that name: the reader gave it the metadata value, or not
        if key not in source.metadata_columns:
            raise MappingError(f"{source.name}: the metadata tag {key!r} has the name of a column that is not a "
                               f"tag column; make that column a tag, or rename one of them.")
        mapping = replace(mapping, tags=mapping.tags + (TagSpec(column=key),))
    return mapping
