"""Turn a dashboard's InfluxQL into the exact queries Grafana would send to InfluxDB.

Grafana runs an InfluxQL panel query in two steps, and this module repeats both:
1. the browser replaces dashboard variables in the raw query with the "regex" format
   (public/app/plugins/datasource/influxdb/datasource.ts, applyVariables): a value is
   regex-escaped, several values become `(a|b)`, and a custom "All" value goes in as is;
2. the server replaces `$timeFilter` with `time >= <from>ms and time <= <to>ms` and
   `$__interval` with the interval formatted like Go's gtime.FormatInterval
   (pkg/tsdb/influxdb/models/query.go, Build).
Variable queries (SHOW TAG VALUES ...) go through step 1 only. `query_like_grafana` then
sends a query the way the backend's data source does (POST, the query in a form body).

A name that is neither a dashboard variable nor one of the macros above raises: Grafana
would send it unchanged and InfluxDB would fail on it, so a typo must not pass as a query.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

ALL = "$__all"
"""Selection meaning the variable's "All" option (Grafana's own internal value)."""

Selection = str | Sequence[str]

# $name, ${name}, ${name:format} and [[name]], as Grafana's template service reads them.
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")
# Grafana's escapeRegex: characters with a meaning in a regex, and `/`, which ends an
# InfluxQL regex literal.
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# Left alone by the browser, replaced by the server (step 2).
_SERVER_MACROS = {"timeFilter", "__interval", "__interval_ms", "interval"}


@dataclass(frozen=True)
class DashboardQuery:
    origin: str
    """Where the query lives: "variable individual" or "panel 3 (Fixes per day ...) A"."""
    template: str
    """The query as written in the dashboard JSON."""
    influxql: str
    """The query as InfluxDB receives it."""


def runnable_queries(
    dashboard: Mapping,
    *,
    selections: Mapping[str, Selection],
    time_from: datetime,
    time_to: datetime,
    interval_ms: int | None = None,
    max_data_points: int = 1000,
) -> list[DashboardQuery]:
    """Every variable query, then every panel target query, ready to send to InfluxDB.

    `selections` holds the picked value(s) of every variable (or ALL). Without an
    explicit `interval_ms`, $__interval is derived like Grafana does it from the time
    range and the panel's maximum number of data points.
    """
    if interval_ms is None:
        interval_ms = auto_interval_ms(time_from, time_to, max_data_points=max_data_points)
    variables = {variable["name"]: variable for variable in dashboard.get("templating", {}).get("list", [])}
    queries = [
        DashboardQuery(
            origin=f"variable {name}",
            template=query_text(variable),
            influxql=replace_variables(query_text(variable), variables, selections),
        )
        for name, variable in variables.items()
        if variable.get("type") == "query"
    ]
    for panel, target in panel_targets(dashboard):
        browser_side = replace_variables(target["query"], variables, selections)
        queries.append(DashboardQuery(
            origin=f"panel {panel['id']} ({panel.get('title', '')}) {target['refId']}",
            template=target["query"],
            influxql=replace_server_macros(browser_side, time_from, time_to, interval_ms),
        ))
    return queries


def panel_targets(dashboard: Mapping) -> list[tuple[dict, dict]]:
    """(panel, target) for every visible query target, rows' nested panels included."""
    found = []
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            found.extend((inner, target) for target in inner.get("targets", []) if not target.get("hide"))
    return found


def query_text(variable: Mapping) -> str:
    """A query variable's InfluxQL; newer Grafana saves it as {"query": ...}."""
    query = variable["query"]
    return query["query"] if isinstance(query, Mapping) else query


def replace_variables(query: str, variables: Mapping[str, Mapping], selections: Mapping[str, Selection]) -> str:
    """Step 1: dashboard variables, in Grafana's "regex" format."""

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name in _SERVER_MACROS:
            return match.group(0)
        if name not in variables:
            raise ValueError(f"{query!r} uses ${name}, which is no variable of this dashboard")
        if name not in selections:
            raise ValueError(f"no selection given for variable {name!r}")
        return format_selection(variables[name], selections[name], fmt=match.group(3) or "regex")

    return _VARIABLE.sub(substitute, query)


def format_selection(variable: Mapping, selection: Selection, *, fmt: str = "regex") -> str:
    if fmt not in ("regex", "raw"):
        raise NotImplementedError(f"variable format {fmt!r} (only regex and raw are used by InfluxQL dashboards)")
    if selection == ALL:
        if not variable.get("includeAll"):
            raise ValueError(f"variable {variable['name']!r} has no All option")
        if variable.get("allValue"):
            return variable["allValue"]  # a custom All value is inserted verbatim
        raise ValueError(f"variable {variable['name']!r}: All without allValue expands to every option; "
                         "pass the options as a list instead")
    values = [selection] if isinstance(selection, str) else list(selection)
    if len(values) > 1 and not variable.get("multi"):
        raise ValueError(f"variable {variable['name']!r} is single-value, got {values!r}")
    if fmt == "raw":
        return ",".join(values)
    escaped = [escape_regex(value) for value in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def escape_regex(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda match: "\\" + match.group(0), value)


def replace_server_macros(query: str, time_from: datetime, time_to: datetime, interval_ms: int) -> str:
    """Step 2: what Grafana's InfluxDB backend replaces, in the order it does."""
    interval = format_interval(interval_ms)
    query = query.replace("$timeFilter", time_filter(time_from, time_to))
    query = query.replace("$interval", interval)
    query = query.replace("$__interval_ms", str(interval_ms))
    return query.replace("$__interval", interval)


def time_filter(time_from: datetime, time_to: datetime) -> str:
    return f"time >= {epoch_ms(time_from)}ms and time <= {epoch_ms(time_to)}ms"


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; Grafana's time range is absolute (use UTC)")
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def auto_interval_ms(time_from: datetime, time_to: datetime, *, max_data_points: int, min_interval_ms: int = 1) -> int:
    """Grafana's rangeUtil.calculateInterval: range / data points, rounded to a nice step."""
    raw = (epoch_ms(time_to) - epoch_ms(time_from)) / max_data_points
    return max(round_interval_ms(raw), min_interval_ms)


# Grafana's rangeUtil.roundInterval: (upper bound of the raw interval, rounded interval), ms.
_ROUNDING = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)
_ONE_YEAR_MS = 31_536_000_000


def round_interval_ms(raw_ms: float) -> int:
    for upper, rounded in _ROUNDING:
        if raw_ms < upper:
            return rounded
    return _ONE_YEAR_MS


def format_interval(interval_ms: int) -> str:
    """Go's gtime.FormatInterval: the largest unit that fits, whole units only.

    It can yield "1y", which InfluxQL does not accept as a duration; Grafana sends it
    anyway, so this does too (only a time range of 1,000+ years gets there).
    """
    units = (("y", _ONE_YEAR_MS), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))
    for suffix, size in units:
        if interval_ms >= size:
            return f"{interval_ms // size}{suffix}"
    return f"{max(interval_ms, 1)}ms"


HTTP_TIMEOUT_S = 60.0


class GrafanaQueryError(RuntimeError):
    """InfluxDB refused a query or answered with an error; the message holds its words."""


def query_like_grafana(base_url: str, db: str, influxql: str, *, headers: Mapping[str, str]) -> list[dict]:
    """The series InfluxDB answers to one statement, asked as Grafana asks with httpMode POST.

    Grafana's backend (pkg/tsdb/influxdb/influxql/influxql.go, createRequest, Grafana 12)
    POSTs to URL/query with `db` and `epoch=ms` in the URL and the query as a form field
    `q` in the body (Content-type application/x-www-form-urlencoded); the data source's
    custom headers (httpHeaderName1/httpHeaderValue1: the InfluxDB 2 token) go with it.
    An error, in the HTTP status or in the statement's result, raises.
    """
    url = f"{base_url}/query?" + urllib.parse.urlencode({"db": db, "epoch": "ms"})
    body = urllib.parse.urlencode({"q": influxql}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={**headers, "Content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise GrafanaQueryError(f"/query answered {error.code} for {influxql!r}: "
                                f"{error.read().decode('utf-8', 'replace').strip()}") from None
    if "error" in answer:
        raise GrafanaQueryError(f"/query failed for {influxql!r}: {answer['error']}")
    (result,) = answer["results"]
    if "error" in result:
        raise GrafanaQueryError(f"/query statement failed for {influxql!r}: {result['error']}")
    return result.get("series", [])
