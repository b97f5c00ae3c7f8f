"""A deterministic Movebank-shaped CSV generator for the benchmarks.

    python -m benchmarks.generate OUT.csv --rows 10000000 [--seed 7] [--bad-fraction 0.01]
    python -m benchmarks.generate OUT.csv --target-bytes 2G

The file has the header of the shared fishers export (`fishers-new-york.csv.gz`) and its
shapes, measured on that file: about 30 % failed fixes (empty `location-long`/`-lat`,
in runs of ~4 rows, with a long `eobs:used-time-to-get-fix`), `behavioural-classification`
filled in ~9 % of rows with four words, thirteen `eobs:*` and sensor columns that are
always empty, eight individuals of uneven size one after the other, each track in time order
with ~2-minute fixes and the export's millisecond jitter (`.000`, `.999`, `.998`, `.001`),
strings quoted and numbers bare, exactly as Movebank writes them.

The same (rows, seed, bad fraction) always gives the same bytes: every chunk of
CHUNK_ROWS rows draws from its own generator seeded with (seed, chunk number). Rows are
built as whole Arrow string arrays and written chunk by chunk, so a 2 GB file never sits
in memory.

`--bad-fraction F` turns that share of rows into bad rows, the kinds a converter must
quarantine (cycled at random): an unparseable coordinate, an impossible timestamp, and a
ragged row (one cell short).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = (
    "event-id,visible,timestamp,location-long,location-lat,behavioural-classification,"
    "eobs:battery-voltage,eobs:fix-battery-voltage,eobs:horizontal-accuracy-estimate,"
    "eobs:key-bin-checksum,eobs:speed-accuracy-estimate,eobs:start-timestamp,eobs:status,"
    "eobs:temperature,eobs:type-of-fix,eobs:used-time-to-get-fix,ground-speed,heading,"
    "height-above-ellipsoid,manually-marked-outlier,sensor-type,individual-taxon-canonical-name,"
    "tag-local-identifier,individual-local-identifier,study-name"
)
COLUMNS = HEADER.split(",")

CHUNK_ROWS = 65_536
FIRST_EVENT_ID = 170_635_808

# The fishers study: its individuals, their tags and their share of the rows.
INDIVIDUALS = ("F1", "F2", "F3", "M1", "M2", "M3", "M4", "M5")
TAGS = ("1072", "1465", "1466", "74", "1078", "1469", "1016", "1587")
ROW_SHARES = np.array([2795, 4689, 3383, 1990, 3573, 5013, 10846, 15058], dtype=np.float64)
HOME_LAT = (42.795, 42.752, 42.733, 42.742, 42.769, 42.730, 42.841, 42.830)
HOME_LON = (-73.86, -73.88, -73.90, -73.85, -73.87, -73.80, -73.91, -73.42)
TRACK_START_MS = 1_233_446_400_000  # 2009-02-01 00:00:00 UTC; each track starts 30 days later
TRACK_SPACING_MS = 30 * 86_400_000

SENSOR, TAXON, STUDY = "gps", "Martes pennanti", "Martes pennanti LaPoint New York"
BEHAVIOURS = ("traveling", "active", "resting", "hunting")
BEHAVIOUR_WEIGHTS = np.array([450, 867, 394, 2656], dtype=np.float64)
BEHAVIOUR_SHARE = 0.092

# Failed fixes come in runs (mean 3.8 rows) and make up 30.5 % of the rows.
FAILED_RUN_MEAN = 3.8
FAILED_SHARE = 0.305
OK_RUN_MEAN = FAILED_RUN_MEAN * (1 - FAILED_SHARE) / FAILED_SHARE

WALK_STEP_DEG = 0.0008   # std of one fix-to-fix step, as in the fishers tracks
WALK_RANGE_DEG = 0.07    # a track is reflected back into home +/- this range
# The always-empty columns, as text: nine eobs:* cells before used-time-to-get-fix, and
# ground-speed, heading, height-above-ellipsoid, manually-marked-outlier after it.
EMPTY_EOBS = "," * 8
EMPTY_SENSORS = "," * 3

BAD_KINDS = ("coordinate", "timestamp", "ragged")


@dataclass
class Generated:
    path: Path
    rows: int
    bad_rows: int
    bytes: int


@dataclass
class _Track:
    """Where an individual's track is at the end of the previous chunk."""

    time_ms: int
    walk_lat: float = 0.0
    walk_lon: float = 0.0


def _quoted(values) -> list[str]:
    return [f'"{v}"' for v in values]


def _track_bounds(rows: int) -> np.ndarray:
    """First row of each individual (and `rows` at the end): uneven shares, one after the other."""
    cumulative = np.cumsum(ROW_SHARES) / ROW_SHARES.sum()
    return np.concatenate([[0], np.floor(cumulative * rows).astype(np.int64)])


def _failed_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """Alternating runs of good and failed fixes with geometric lengths."""
    runs = max(8, int(n / (OK_RUN_MEAN + FAILED_RUN_MEAN) * 2.5) + 8)
    mask = np.empty(0, dtype=bool)
    while mask.size < n:
        ok = rng.geometric(1 / OK_RUN_MEAN, runs)
        failed = rng.geometric(1 / FAILED_RUN_MEAN, runs)
        lengths = np.column_stack([ok, failed]).ravel()
        states = np.tile([False, True], runs)
        mask = np.concatenate([mask, np.repeat(states, lengths)])
    return mask[:n]


def _reflect(x: np.ndarray, limit: float) -> np.ndarray:
    """Fold a random walk back into [-limit, limit] (a triangle wave), keeping it continuous."""
    period = 4 * limit
    y = np.mod(x + limit, period)
    return np.where(y < 2 * limit, y - limit, 3 * limit - y)


def _intervals_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fix-to-fix gaps: mostly ~2 minutes, some 10-15 minutes, a few up to an hour."""
    kind = rng.random(n)
    seconds = np.where(kind < 0.75, rng.uniform(100, 126, n),
                       np.where(kind < 0.95, rng.uniform(500, 900, n), rng.uniform(900, 3600, n)))
    return np.round(seconds).astype(np.int64) * 1000


def _jitter_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """The export's millisecond noise: .000 (46 %), else .999, .998 or .001 (one second early/late)."""
    return rng.choice(np.array([0, -1, -2, 1]), size=n, p=[0.46, 0.18, 0.18, 0.18])


def _format_float(values: np.ndarray, nulls: np.ndarray) -> pa.Array:
    # Arrow writes the shortest round-trip text; 7 decimals as in Movebank's export.
    return pc.cast(pa.array(np.round(values, 7), mask=nulls), pa.string())


class MovebankGenerator:
    def __init__(self, rows: int, *, seed: int = 7, bad_fraction: float = 0.0) -> None:
        if rows < 0:
            raise ValueError(f"rows must be >= 0, got {rows}")
        if not 0.0 <= bad_fraction <= 1.0:
            raise ValueError(f"bad_fraction must be within 0..1, got {bad_fraction}")
        self.rows = rows
        self.seed = seed
        self.bad_fraction = bad_fraction
        self.bad_rows = 0
        self._bounds = _track_bounds(rows)
        self._tracks = [_Track(TRACK_START_MS + i * TRACK_SPACING_MS) for i in range(len(INDIVIDUALS))]
        self._quoted_tags = pa.array(_quoted(TAGS))
        self._quoted_individuals = pa.array(_quoted(INDIVIDUALS))
        self._quoted_behaviours = pa.array(_quoted(BEHAVIOURS))
        self._tail = f'"{SENSOR}","{TAXON}"'

    def chunks(self):
        """Yield the file's bytes: the header line, then one bytes object per chunk of rows."""
        yield (HEADER + "\n").encode()
        for number, start in enumerate(range(0, self.rows, CHUNK_ROWS)):
            stop = min(start + CHUNK_ROWS, self.rows)
            yield self._chunk(number, start, stop)

    def _chunk(self, number: int, start: int, stop: int) -> bytes:
        n = stop - start
        rng = np.random.default_rng([self.seed, number])
        row = np.arange(start, stop, dtype=np.int64)
        individual = np.searchsorted(self._bounds, row, side="right") - 1

        failed = _failed_mask(rng, n)
        steps = _intervals_ms(rng, n)
        jitter = _jitter_ms(rng, n)
        step_lat = rng.normal(0, WALK_STEP_DEG, n)
        step_lon = rng.normal(0, WALK_STEP_DEG * 1.3, n)
        used_ok = np.clip(np.exp(rng.normal(2.7, 0.9, n)), 3, 121).astype(np.int64)
        used_failed = rng.choice(np.array([100, 110, 120]), size=n)
        behaviour_on = rng.random(n) < BEHAVIOUR_SHARE
        behaviour = rng.choice(len(BEHAVIOURS), size=n, p=BEHAVIOUR_WEIGHTS / BEHAVIOUR_WEIGHTS.sum())

        time_ms = np.empty(n, dtype=np.int64)
        lat = np.empty(n)
        lon = np.empty(n)
        # A chunk spans at most a few individuals: continue each one's track from its state.
        for ind in np.unique(individual):
            sel = np.flatnonzero(individual == ind)
            track = self._tracks[ind]
            times = track.time_ms + np.cumsum(steps[sel])
            walk_lat = track.walk_lat + np.cumsum(step_lat[sel])
            walk_lon = track.walk_lon + np.cumsum(step_lon[sel])
            track.time_ms, track.walk_lat, track.walk_lon = int(times[-1]), float(walk_lat[-1]), float(walk_lon[-1])
            time_ms[sel] = times
            lat[sel] = HOME_LAT[ind] + _reflect(walk_lat, WALK_RANGE_DEG)
            lon[sel] = HOME_LON[ind] + _reflect(walk_lon, WALK_RANGE_DEG)

        event_id = pc.cast(pa.array(FIRST_EVENT_ID + row), pa.string())
        timestamp = pc.cast(pa.array(time_ms + jitter, pa.timestamp("ms")), pa.string())
        lon_text = _format_float(lon, failed)
        lat_text = _format_float(lat, failed)
        behaviour_text = self._quoted_behaviours.take(pa.array(behaviour, mask=~behaviour_on))
        used = pc.cast(pa.array(np.where(failed, used_failed, used_ok)), pa.string())
        tag = self._quoted_tags.take(pa.array(individual))
        who = self._quoted_individuals.take(pa.array(individual))

        ragged = np.zeros(n, dtype=bool)
        if self.bad_fraction > 0:
            bad = rng.random(n) < self.bad_fraction
            kind = rng.integers(0, len(BAD_KINDS), n)
            self.bad_rows += int(bad.sum())
            bad_coordinate = bad & (kind == 0)
            bad_time = bad & (kind == 1)
            ragged = bad & (kind == 2)
            lat_text = pc.if_else(pa.array(bad_coordinate), pa.scalar("42.79x5"), lat_text)
            timestamp = pc.if_else(pa.array(bad_time), pa.scalar("2011-02-30 25:61:00.000"), timestamp)

        cells = [event_id, pa.scalar("true"), timestamp, lon_text, lat_text, behaviour_text,
                 pa.scalar(EMPTY_EOBS), used, pa.scalar(EMPTY_SENSORS), pa.scalar(self._tail), tag, who]
        # Null cells (failed fixes, no behaviour) become empty text between the commas.
        lines = pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")
        full = pc.binary_join_element_wise(lines, pa.scalar(f'"{STUDY}"\n'), ",")
        if ragged.any():
            short = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
            full = pc.if_else(pa.array(ragged), short, full)
        return _string_bytes(full)


def _string_bytes(lines: pa.Array) -> bytes:
    """The concatenated values of a string array (each already ends in a newline)."""
    if len(lines) == 0:
        return b""
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return data.slice(int(bounds[0]), int(bounds[-1] - bounds[0])).to_pybytes()


def bytes_per_row(seed: int = 7) -> float:
    """The average size of a generated row, from one chunk."""
    sample = MovebankGenerator(CHUNK_ROWS, seed=seed)
    body = b"".join(list(sample.chunks())[1:])
    return len(body) / CHUNK_ROWS


def rows_for_bytes(target: int, seed: int = 7) -> int:
    return max(1, int(target / bytes_per_row(seed)))


def generate(path: str | Path, rows: int, *, seed: int = 7, bad_fraction: float = 0.0) -> Generated:
    """Write `rows` Movebank-shaped rows to `path` (written to a temp name, renamed when complete)."""
    path = Path(path)
    generator = MovebankGenerator(rows, seed=seed, bad_fraction=bad_fraction)
    partial = path.with_name(path.name + ".partial")
    size = 0
    with open(partial, "wb") as out:
        for chunk in generator.chunks():
            out.write(chunk)
            size += len(chunk)
    partial.replace(path)
    return Generated(path, rows, generator.bad_rows, size)


def repeat_file(source_rows: bytes, header: bytes, times: int, path: str | Path) -> Path:
    """`header` once, then the data rows `times` over (fishers x 20)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(header)
        for _ in range(times):
            out.write(source_rows)
    partial.replace(path)
    return path


def _size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int)
    size.add_argument("--target-bytes", type=_size, help="about this many bytes, e.g. 2G")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bad-fraction", type=float, default=0.0)
    args = parser.parse_args(argv)
    rows = args.rows if args.rows is not None else rows_for_bytes(args.target_bytes, args.seed)
    made = generate(args.output, rows, seed=args.seed, bad_fraction=args.bad_fraction)
    print(f"{made.path}: {made.rows:,} rows ({made.bad_rows:,} bad), {made.bytes:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
