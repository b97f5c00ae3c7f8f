"""Movebank-shaped CSV of any size, generated deterministically (numpy + pyarrow, no Python per row).

The columns and value formats of a real e-obs GPS export (see ../shared/data/movebank):
text timestamps with milliseconds in UTC, about a third of the fixes without a location
(empty lat/long), mostly empty outlier flags, a string status column, integer sensor
columns. Rows are sorted by individual and then time, as Movebank exports them, and
every (individual, timestamp) is unique, so each row is one distinct point in InfluxDB.

    python tests/support/movebank_gen.py 1000000 big.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

HEADER = (
    "event-id", "visible", "timestamp", "location-long", "location-lat",
    "eobs:battery-voltage", "eobs:horizontal-accuracy-estimate", "eobs:status", "eobs:temperature",
    "eobs:type-of-fix", "eobs:used-time-to-get-fix", "ground-speed", "heading", "height-above-ellipsoid",
    "manually-marked-outlier", "sensor-type", "individual-taxon-canonical-name", "tag-local-identifier",
    "individual-local-identifier", "study-name",
)  # fmt: skip
STUDY = "Generated Martes pennanti, csv2lp tests"
TAXON = "Martes pennanti"
START_MS = 1_297_445_400_000  # 2011-02-11 17:30:00 UTC, the first fix of the real fishers study
FIX_EVERY_MS = 600_000  # one fix attempt every 10 minutes per animal


def individual_name(index: int) -> str:
    return f"G{index + 1:02d}"


def generate(rows: int, path: Path, *, individuals: int = 20, seed: int = 7) -> Path:
    """Write `rows` data rows (plus the header) to `path` (plain CSV; a .gz name compresses)."""
    rng = np.random.default_rng(seed)
    animal = np.repeat(np.arange(individuals), -(-rows // individuals))[:rows]
    nth = np.arange(rows) - np.searchsorted(animal, animal)  # index of the fix within its animal
    millis = START_MS + animal * 7_919 + nth * FIX_EVERY_MS + rng.integers(0, 1000, rows)
    located = rng.random(rows) >= 0.3
    lat = np.round(42.6 + animal * 0.01 + rng.normal(0, 0.02, rows), 7)
    lon = np.round(-73.9 + animal * 0.01 + rng.normal(0, 0.02, rows), 7)

    def text(values: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
        if values.dtype.kind == "f":
            values = values + 0.0  # rounding small negatives gives -0.0, written "-0": no export has that
        array = pc.cast(pa.array(values), pa.string())
        return array if keep is None else pc.if_else(pa.array(keep), array, pa.scalar(None, pa.string()))

    def constant(value: str) -> pa.Array:
        return pa.array(np.full(rows, value, dtype=object), pa.string())

    times = np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms")
    columns = {
        "event-id": text(2_000_000_000 + np.arange(rows)),
        "visible": pa.array(np.where(rng.random(rows) < 0.99, "true", "false"), pa.string()),
        "timestamp": pc.replace_substring(pa.array(times, pa.string()), "T", " "),
        "location-long": text(lon, located),
        "location-lat": text(lat, located),
        "eobs:battery-voltage": text(rng.integers(3500, 4200, rows)),
        "eobs:horizontal-accuracy-estimate": text(np.round(rng.uniform(2, 60, rows), 2), located),
        "eobs:status": pa.array(np.where(located, "A", "D"), pa.string()),
        "eobs:temperature": text(np.round(rng.normal(5, 8, rows), 1)),
        "eobs:type-of-fix": text(np.where(located, 3, 0)),
        "eobs:used-time-to-get-fix": text(rng.integers(5, 120, rows)),
        "ground-speed": text(np.round(rng.exponential(0.5, rows), 2), located),
        "heading": text(np.round(rng.uniform(0, 360, rows), 2), located),
        "height-above-ellipsoid": text(np.round(rng.normal(150, 30, rows), 1), located),
        "manually-marked-outlier": pa.array(np.where(rng.random(rows) < 0.001, "true", None), pa.string()),
        "sensor-type": constant("gps"),
        "individual-taxon-canonical-name": constant(TAXON),
        "tag-local-identifier": text(1000 + animal),
        "individual-local-identifier": pa.array([individual_name(i) for i in range(individuals)])
        .take(pa.array(animal)),
        "study-name": constant(STUDY),
    }
    table = pa.table([columns[name] for name in HEADER], names=list(HEADER))
    sink = pa.CompressedOutputStream(str(path), "gzip") if str(path).endswith(".gz") else pa.OSFile(str(path), "wb")
    with sink:
        pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(quoting_style="needed", batch_size=65536))
    return path


if __name__ == "__main__":  # pragma: no cover
    generate(int(sys.argv[1]), Path(sys.argv[2]))
