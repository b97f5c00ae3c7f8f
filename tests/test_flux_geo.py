"""Flux `experimental/geo` over fixes written with `--s2-level 11`: the reason the `s2_cell_id` tag exists.

The real fishers file goes into a real InfluxDB 2 (v2.8.0, bucket `movebank` as the stack
onboards it) by csv2lp's direct write with `--s2-level 11`. The README's Flux query
("Querying by place with Flux", read from README.md, run as it is written) and the same
query with the README's box must return exactly the fixes that a plain computation over
the CSV puts inside the region, compared as sets of event ids.

What "inside" means is Flux's strict filter (influxdata/flux v0.196.1, the Flux of
InfluxDB v2.8.0: stdlib/experimental/geo/geo.flux filterRows -> strictFilter ->
ST_Contains, st.go and geo.go): a circle is an S2 cap around the centre whose angle is
radius / 6371.01 km, i.e. a great-circle distance <= radius on a sphere of that radius;
a box is an S2 rectangle, closed latitude and longitude intervals. Before that,
gridFilter keeps only the series whose s2_cell_id tag lies in the S2 cells covering the
region: a fix whose token csv2lp got wrong would be missing from the answer.

The regions are chosen to cut through the data, and no fix lies within a millimetre (or
1e-9 degree) of an edge, so that floating-point differences between S2's chord angles and
the haversine formula here cannot decide a case.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.data import FISHERS, REPO
from support.influxdb2 import BUCKET, InfluxDB2Server, require_influxd2

pytestmark = pytest.mark.influxdb2

README = REPO / "README.md"
# WGS-84 mean radius as Flux's geo package takes it (geo.go: earthRadiusKm).
EARTH_RADIUS_KM = 6371.01
EDGE_MARGIN_KM = 1e-6
EDGE_MARGIN_DEGREES = 1e-9
CLI_TIMEOUT_S = 300.0


# --- the README's query ------------------------------------------------------------------------


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Querying by place with Flux")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def readme_query() -> str:
    (query,) = re.findall(r"```flux\n(.*?)```", readme_section(), re.DOTALL)
    return query


def region_text(pattern: str, text: str) -> str:
    (found,) = re.findall(r"region: (\{" + pattern + r"[^}]*\})", text)
    return found


def region_numbers(record: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"(\w+): (-?\d+(?:\.\d+)?)", record)}


CIRCLE = region_text("lat: ", readme_query())
BOX = region_text("minLat: ", readme_section())


def query_for(region: str) -> str:
    """The README's query with `region` in place of its circle (the circle itself: unchanged)."""
    query = readme_query()
    assert query.count(CIRCLE) == 1
    return query.replace(CIRCLE, region)


# --- the plain computation over the CSV ----------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    event_id: int
    lat: float
    lon: float


def read_fixes(path: Path) -> list[Fix]:
    """Every record with coordinates (Python's csv module; the others have no place)."""
    with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
        return [Fix(int(row["event-id"]), float(row["location-lat"]), float(row["location-long"]))
                for row in csv.DictReader(handle) if row["location-lat"] and row["location-long"]]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of EARTH_RADIUS_KM."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def inside_circle(fixes: list[Fix], circle: dict[str, float]) -> set[int]:
    distances = {fix.event_id: great_circle_km(circle["lat"], circle["lon"], fix.lat, fix.lon) for fix in fixes}
    closest = min(abs(d - circle["radius"]) for d in distances.values())
    assert closest > EDGE_MARGIN_KM, f"a fix lies {closest * 1e6:.3f} mm from the circle's edge: move the circle"
    return {event_id for event_id, d in distances.items() if d <= circle["radius"]}


def inside_box(fixes: list[Fix], box: dict[str, float]) -> set[int]:
    edges = [abs(fix.lat - box[k]) for fix in fixes for k in ("minLat", "maxLat")]
    edges += [abs(fix.lon - box[k]) for fix in fixes for k in ("minLon", "maxLon")]
    assert min(edges) > EDGE_MARGIN_DEGREES, "a fix lies on the box's edge: move the box"
    return {fix.event_id for fix in fixes
            if box["minLat"] <= fix.lat <= box["maxLat"] and box["minLon"] <= fix.lon <= box["maxLon"]}


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Imported:
    server: InfluxDB2Server
    fixes: list[Fix]


@pytest.fixture(scope="module")
def imported(shared_movebank) -> Iterator[Imported]:
    """The fishers file written by `python -m converter ... --s2-level 11 --influx-url` into bucket movebank."""
    server = InfluxDB2Server(influxd=require_influxd2())
    try:
        server.start()
        assert server.bucket == BUCKET == "movebank"  # the README's bucket
        done = subprocess.run(
            [sys.executable, "-m", "converter", str(FISHERS), "--preset", "movebank", "--s2-level", "11",
             "--precision", "ms", "--influx-url", server.url, "--org", server.org, "--bucket", server.bucket],
            env={**os.environ, "INFLUX_TOKEN": server.token, "PYTHONPATH": str(REPO)},
            cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        assert "47,347 lines confirmed by" in done.stderr, done.stderr
        yield Imported(server, read_fixes(FISHERS))
    finally:
        server.close()


def event_ids(rows: list[dict]) -> list[int]:
    return [row["event_id"] for row in rows]


# --- the tests ------------------------------------------------------------------------------------


def test_the_readme_shows_a_circle_and_a_box() -> None:
    assert set(region_numbers(CIRCLE)) == {"lat", "lon", "radius"}
    assert set(region_numbers(BOX)) == {"minLat", "maxLat", "minLon", "maxLon"}
    assert 'import "experimental/geo"' in readme_query() and 'from(bucket: "movebank")' in readme_query()


@pytest.mark.parametrize("shape", ["circle", "box"])
def test_filter_rows_returns_exactly_the_fixes_inside_the_region(imported: Imported, shape: str) -> None:
    region = CIRCLE if shape == "circle" else BOX
    numbers = region_numbers(region)
    expected = inside_circle(imported.fixes, numbers) if shape == "circle" else inside_box(imported.fixes, numbers)
    # The region cuts through the data: many fixes inside, many outside.
    assert 1_000 < len(expected) < len(imported.fixes) - 1_000, len(expected)

    rows = imported.server.flux(query_for(region))

    found = event_ids(rows)
    assert len(found) == len(set(found)), "a fix came back twice"
    assert set(found) == expected, (f"{len(set(found) - expected)} fixes outside the region returned, "
                                    f"{len(expected - set(found))} inside missing")
    # Each row carries the fix's own coordinates, as in the CSV.
    by_id = {fix.event_id: fix for fix in imported.fixes}
    assert all((row["lat"], row["lon"]) == (by_id[row["event_id"]].lat, by_id[row["event_id"]].lon) for row in rows)
    print(f"\n{shape} {region}: {len(found):,} of {len(imported.fixes):,} fixes")


def test_without_strict_the_cells_alone_return_more_fixes_around_the_circle(imported: Imported) -> None:
    """The grid step alone (strict: false) returns whole cells: a superset, larger, of the strict answer.

    So the exact answers above are the cells' work and the strict filter's together, not an
    accident of a region that happens to fit the cells.
    """
    strict = set(event_ids(imported.server.flux(query_for(CIRCLE))))
    loose_region = CIRCLE + ", strict: false"
    loose = set(event_ids(imported.server.flux(query_for(loose_region))))
    assert strict < loose
    outside = loose - strict
    numbers = region_numbers(CIRCLE)
    by_id = {fix.event_id: fix for fix in imported.fixes}
    assert all(great_circle_km(numbers["lat"], numbers["lon"], by_id[i].lat, by_id[i].lon) > numbers["radius"]
               for i in outside)
