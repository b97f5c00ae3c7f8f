"""strptime patterns and time zones, tried when the options are read.

A pattern that cannot read back a time written with it, or a zone Arrow's time zone
database does not know, would reject every row of every file, one by one, with the same
reason. They are tried here with the Arrow functions the converter itself calls
(timestamps.py: pc.strptime, pc.assume_timezone), so that what passes here is what works
there, and what fails is refused before the first row is read.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MappingError
from .spec import EPOCH_UNITS, ISO_FORMATS

# Every field different (day 3, month 2, hour 4...), so that no directive can pass by luck.
SAMPLE_TEXT = "2001-02-03 04:05:06 UTC"
_SAMPLE = pa.array([981173106], pa.timestamp("s", "UTC"))


def strptime_problem(pattern: str) -> str | None:
    """Why `pattern` can never read a time, or None when it can. Seconds as timestamps.py checks
    them (its round trip is at second resolution, as strftime writes %S of nanoseconds with a fraction)."""
    try:
        written = pc.strftime(_SAMPLE, format=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return f"is not a pattern Arrow can use ({exc})"
    read_back = pc.strptime(written, format=pattern, unit="ns", error_is_null=True)
    if read_back[0].is_valid:
        return None
    return (f"can never read a time: {SAMPLE_TEXT} written with it is {written[0].as_py()!r}, which it does not "
            f"read back (a directive Arrow's strptime does not have, such as %f or %s?)")


def timezone_problem(zone: str) -> str | None:
    """Why `zone` cannot localize times, or None when it can (UTC in any case needs no database)."""
    if zone.upper() == "UTC":
        return None  # timestamps.py leaves such times as they are
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("ns")), timezone=zone)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return "is not a time zone in Arrow's time zone database"
    return None


TIME_FORMAT_FIX = (f"use one of {', '.join(ISO_FORMATS + tuple(EPOCH_UNITS))} or a strptime pattern such as "
                   f"'%d/%m/%Y %H:%M:%S'")
TIMEZONE_FIX = "use an IANA name such as Europe/Berlin or America/New_York, an offset such as +02:00, or UTC"


def check_time_format(fmt: str, *, where: str = "time format") -> None:
    """A named format, or a strptime pattern that can read a time (time_settings.py). `where` names
    the setting in the message: `time format`, `gps.toml: [time] format`."""
    if fmt in ISO_FORMATS or fmt in EPOCH_UNITS:
        return
    problem = strptime_problem(fmt) if "%" in fmt else "is not known"
    if problem is not None:
        raise MappingError(f"{where} {fmt!r} {problem}; {TIME_FORMAT_FIX}.")


def check_timezone(zone: str, *, where: str = "time zone") -> None:
    problem = timezone_problem(zone)
    if problem is not None:
        raise MappingError(f"{where} {zone!r} {problem}; {TIMEZONE_FIX}.")
