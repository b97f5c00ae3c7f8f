"""The series the encoder hands a Kafka sink (pipeline._write) are each line's own key.

The Kafka sink keys messages by series; when the pipeline has the encoder's series codes
and strings it passes them (write_series_lines) and the sink skips scanning the bytes. That
shortcut is right only if every line starts with its series string and a space: checked
here through the real pipeline on several mappings (tags from a preset, no tags, a
measurement column, an S2 tag, --duplicates nudge and error), and the messages cut from the
encoder's series equal the messages cut from the lines' own keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from converter.books.duplicates import DuplicateMode
from converter.mapping import MappingSpec, load_preset
from converter.mapping import MappingOverrides, parse_field_flag, parse_tag_flag
from converter.pipeline import convert
from converter.plan.options import ConvertOptions, OnError
from converter.sinks.kafka import messages_of
from converter.sinks.kafka.messages import series_of_strings
from support.movebank_gen import generate


class SeriesSink:
    """A sink that takes the encoder's series, as KafkaSink does, and keeps every block."""

    def __init__(self) -> None:
        self.bytes_written = 0
        self.blocks: list[tuple[pa.Array, np.ndarray, pa.Array]] = []
        self.plain_blocks = 0

    def write_series_lines(self, lines, codes, strings) -> int:
        self.blocks.append((lines, codes, strings))
        return len(lines)

    def write_lines(self, lines) -> int:
        self.plain_blocks += 1
        return len(lines)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    path = generate(30_000, tmp_path_factory.mktemp("series") / "fishers.csv")
    text = path.read_text().splitlines(keepends=True)
    # Some rows twice, so that --duplicates nudge and error change the block's lines.
    path.write_text("".join(text + text[1:200]))
    return path


def _mappings() -> dict[str, MappingSpec]:
    movebank = load_preset("movebank")
    plain = MappingSpec().overridden_by(MappingOverrides(
        measurement="fix", fields=(parse_field_flag("lat=location-lat:float"),),
        time_column="timestamp"))
    by_column = MappingSpec().overridden_by(MappingOverrides(
        measurement_column="sensor-type", tags=(parse_tag_flag("individual-local-identifier"),),
        fields=(parse_field_flag("lat=location-lat:float"),), time_column="timestamp"))
    tagged = plain.overridden_by(MappingOverrides(tags=(parse_tag_flag("individual-local-identifier"),)))
    return {"movebank": movebank, "no tags": plain, "measurement column": by_column, "one tag": tagged}


CASES = [(name, DuplicateMode.WARN, None) for name in _mappings()] + [
    ("movebank", DuplicateMode.NUDGE, None), ("movebank", DuplicateMode.ERROR, None), ("movebank", DuplicateMode.WARN, 9)]


@pytest.mark.parametrize(("mapping", "duplicates", "s2_level"), CASES)
def test_every_line_starts_with_the_series_the_encoder_gives_it(csv, tmp_path, mapping, duplicates, s2_level):
    sink = SeriesSink()
    options = ConvertOptions(on_error=OnError.SKIP, duplicates=duplicates, s2_level=s2_level)
    summary = convert([str(csv)], mapping=_mappings()[mapping], options=options, sink=sink)
    assert summary.lines_written > 0 and sink.plain_blocks == 0
    assert sum(len(lines) for lines, _, _ in sink.blocks) == summary.lines_written
    for lines, codes, strings in sink.blocks:
        keys = strings.to_pylist()
        for line, code in zip(lines.to_pylist(), codes.tolist()):
            assert line.startswith(keys[code] + " "), (line[:80], keys[code][:80])
        own = [(m.key, m.value) for m in messages_of(lines, max_lines=100, max_bytes=100_000)]
        given = [(m.key, m.value) for m in messages_of(lines, max_lines=100, max_bytes=100_000,
                                                        series=series_of_strings(codes, strings))]
        assert sorted(given) == sorted(own)
