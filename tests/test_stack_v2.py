"""The compose stack minus Docker and Grafana: spool -> Telegraf running `csv2lp execd` -> InfluxDB 2.

What docker-compose.yml runs, with the same files, outside containers: a real InfluxDB 2
(influxd v2.8.0, onboarded with the DOCKER_INFLUXDB_INIT_* values, as the image's first
boot does), a real Telegraf v1.39.3 with telegraf/telegraf.conf AS SHIPPED, its INFLUX_*
variables resolved from docker-compose.yml exactly as compose resolves them from .env,
and csv2lp execd with telegraf/csv2lp.toml. Only what cannot be the same outside a
container is changed, each by a named edit that must find its line (support/shipped_configs.py):

- the execd command: `csv2lp` in the image's PATH becomes this checkout's interpreter
  running `-m converter` (with PYTHONPATH), and the config path a temp copy;
- the container's paths (/var/spool/csv2lp, /var/lib/csv2lp) become temp folders;
- INFLUX_URL's host `influxdb` (the compose service name) becomes the test server;
- the flow-control port 9274 (prometheus_client's `listen` and csv2lp's
  `telegraf_metrics_url`, changed together) becomes a free loopback port, so that two
  stacks on one machine do not meet.

A file is dropped as the README says (copied under a hidden name, renamed in). It must
land exactly: the points per series counted by the server (Flux) and every value of
every point (InfluxQL through the bucket's DBRP mapping, which Grafana reads) equal what
the independent reference reader (tests/support/movebank_reference.py) makes of the CSV.
Telegraf's own numbers (inputs.internal, tagged csv2lp = "flow") must reach csv2lp and
never the bucket, and Telegraf must report 0 metrics dropped, read here from its
/metrics page.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import shipped_configs
from support.data import FISHERS, REPO, SAMPLE
from support.influxdb import free_loopback_port
from support.influxdb2 import BUCKET, INFLUXD2_VERSION, InfluxDB2Server
from support.movebank_reference import Reference, Series, typed
from support.stack import wait_for_count
from support.telegraf import BUFFER_OVERFLOW_PATTERN, StartTelegraf, wait_until

yaml = pytest.importorskip("yaml", reason="PyYAML reads docker-compose.yml (pip install pyyaml)")

pytestmark = [pytest.mark.telegraf, pytest.mark.influxdb2]

COMPOSE = REPO / "docker-compose.yml"
TELEGRAF_CONF = shipped_configs.SHIPPED_TELEGRAF
CSV2LP_TOML = shipped_configs.SHIPPED_CSV2LP
MEASUREMENT = "movebank"
CONTAINER_CONFIG = "/etc/csv2lp/csv2lp.toml"  # telegraf/Dockerfile's copy of csv2lp.toml
COMPOSE_INFLUX_URL = "http://influxdb:8086"
ARRIVAL_TIMEOUT_S = 180.0
METRICS_TIMEOUT_S = 120.0
# Acknowledged points counted by the server; short after that: re-checked (support/influxdb2.py).
COUNT_TIMEOUT_S = 60.0


# --- the shipped files, changed only where a container differs ----------------------------------


def stack_telegraf_conf(config: Path, flow_port: int) -> str:
    return shipped_configs.telegraf_conf(metrics_port=flow_port, csv2lp_toml=config).text


def stack_csv2lp_toml(root: Path, flow_port: int) -> str:
    # done_dir, rejects_dir and error_dir stay under the spool, as under the spool mount.
    return shipped_configs.csv2lp_toml(spool=root / "spool", state_file=root / "state" / "state.json",
                                       metrics_port=flow_port).text


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?\-][^}]*)?\}")


def compose_environment(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    """A service's `environment` in docker-compose.yml with every ${NAME...} taken from `dotenv`.

    What compose does with .env (tests/test_stack_compose.py checks the file with compose
    itself); a variable missing from `dotenv` fails, as `${NAME:?...}` makes compose fail.
    """
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"][service]["environment"]

    def value_of(match: re.Match[str]) -> str:
        assert match.group(1) in dotenv, f"docker-compose.yml needs {match.group(1)} from .env"
        return dotenv[match.group(1)]

    return {name: _INTERPOLATION.sub(value_of, str(value)) for name, value in raw.items()}


def dotenv_for(server: InfluxDB2Server) -> dict[str, str]:
    """.env as a user fills it in (.env.example's names): the server's DOCKER_INFLUXDB_INIT_* values."""
    init = {name: value for name, value in server.compose_env().items() if name.startswith("DOCKER_INFLUXDB_INIT_")}
    return {**init, "GRAFANA_ADMIN_USER": "admin", "GRAFANA_ADMIN_PASSWORD": "unused-here"}


class Stack:
    """The shipped configs in a temp folder, run by a real Telegraf against `server`."""

    def __init__(self, server: InfluxDB2Server, root: Path, start_telegraf: StartTelegraf) -> None:
        self.server = server
        self.spool = root / "spool"
        # telegraf/Dockerfile makes these two folders; csv2lp makes done/, rejects/ and error/.
        self.spool.mkdir(parents=True)
        (root / "state").mkdir()
        self.flow_port = free_loopback_port()
        config = root / "csv2lp.toml"
        config.write_text(stack_csv2lp_toml(root, self.flow_port), encoding="utf-8")
        self.environment = compose_environment("telegraf", dotenv_for(server))
        assert self.environment["INFLUX_URL"] == COMPOSE_INFLUX_URL
        self.environment["INFLUX_URL"] = server.url  # the one host name that exists only inside compose
        self.telegraf = start_telegraf(stack_telegraf_conf(config, self.flow_port),
                                       env={**self.environment, "PYTHONPATH": str(REPO)},
                                       max_lifetime=ARRIVAL_TIMEOUT_S + 120)

    def drop(self, source: Path) -> None:
        """The README's drop: copy under a hidden name, then rename into the spool."""
        hidden = self.spool / f".{source.name}.part"
        shutil.copyfile(source, hidden)
        hidden.rename(self.spool / source.name)

    def done(self) -> list[str]:
        folder = self.spool / "done"
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []

    def telegraf_numbers(self) -> list[tuple[str, dict[str, str], float]]:
        """Every sample of Telegraf's /metrics page: (name, labels, value), read here with a regex.

        None at all while prometheus_client is not listening yet (Telegraf still starting).
        """
        url = f"http://127.0.0.1:{self.flow_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, ConnectionError):
            return []
        samples = []
        for match in re.finditer(r"^(\w+)\{([^}]*)\} (\S+)(?: -?\d+)?$", text, re.MULTILINE):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples.append((match.group(1), labels, float(match.group(3))))
        return samples

    def output_number(self, name: str, output: str = "influxdb_v2") -> float | None:
        values = [value for sample, labels, value in self.telegraf_numbers()
                  if sample == f"internal_write_{name}" and labels.get("output") == output]
        assert len(values) <= 1, values
        return values[0] if values else None


@pytest.fixture
def stack(private_influxdb2: InfluxDB2Server, tmp_path: Path, start_telegraf: StartTelegraf) -> Stack:
    return Stack(private_influxdb2, tmp_path, start_telegraf)


# --- what the bucket holds ---------------------------------------------------------------------------


def stored_points(server: InfluxDB2Server, reference: Reference) -> dict[Series, dict[int, str]]:
    """Every point in the bucket as the reference writes them: {series: {time ns: canonical fields}}.

    InfluxQL through the DBRP mapping (/query?db=BUCKET), GROUP BY * so that tags come apart
    from fields; a null is a field the point lacks. JSON writes 42.0 as 42: values are typed
    by the reference's field kinds, which the field-type check below proves the server holds.
    """
    results = server.influxql(f'SELECT * FROM "{MEASUREMENT}" GROUP BY *', BUCKET)
    points: dict[Series, dict[int, str]] = {}
    for result in results:
        for found in result.get("series", []):
            series = tuple(sorted((k, v) for k, v in found.get("tags", {}).items() if v))
            columns = found["columns"]
            for values in found["values"]:
                fields = sorted((column, typed(reference.kinds.get(column), value))
                                for column, value in zip(columns[1:], values[1:]) if value is not None)
                points.setdefault(series, {})[values[0]] = ",".join(f"{key}={value!r}" for key, value in fields)
    return points


def differences(expected: dict[Series, dict[int, str]], got: dict[Series, dict[int, str]]) -> list[str]:
    problems = []
    for series in sorted(expected.keys() | got.keys()):
        want, have = expected.get(series, {}), got.get(series, {})
        for time_ns in sorted(want.keys() | have.keys()):
            if want.get(time_ns) != have.get(time_ns):
                problems.append(f"{dict(series)} at {time_ns}: expected {want.get(time_ns)}, got {have.get(time_ns)}")
    return problems


# --- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [SAMPLE, FISHERS], ids=["sample", "fishers"])
def test_a_dropped_file_lands_exactly_through_the_shipped_stack(stack: Stack, source: Path, request) -> None:
    if source == FISHERS:
        request.getfixturevalue("shared_movebank")
    reference = Reference().add_file(source)
    began = time.monotonic()
    stack.drop(source)

    wait_until(lambda: stack.done() == [source.name], ARRIVAL_TIMEOUT_S, f"{source.name} in done/", poll=0.2)
    # Telegraf's own count of what its influxdb_v2 output wrote (at most 250 ms old): every
    # row once, and nothing else, since the tagdrop keeps its own numbers out of that output.
    wait_until(lambda: (stack.output_number("metrics_written") or 0) >= reference.rows, METRICS_TIMEOUT_S,
               f"{reference.rows:,} metrics written by outputs.influxdb_v2", poll=0.2)
    seconds = time.monotonic() - began
    server = stack.server

    wait_for_count(server, BUCKET, reference.rows, COUNT_TIMEOUT_S)
    counted = server.count_per_series(BUCKET)
    assert counted == {(MEASUREMENT, series): n for series, n in reference.per_series().items()}
    # One type per field, the reference's (an empty column makes no field at all).
    types = server.field_types(MEASUREMENT, BUCKET)
    assert types == {key: reference.kinds.get(key) for key in types}
    problems = differences(reference.points, stored_points(server, reference))
    assert not problems, f"{len(problems)} points differ, first 10:\n" + "\n".join(problems[:10])

    assert stack.output_number("metrics_written") == reference.rows  # read again: nothing more came
    assert stack.output_number("metrics_dropped") == 0
    assert stack.output_number("buffer_size") == 0
    log = stack.telegraf.log_text()
    assert not re.search(BUFFER_OVERFLOW_PATTERN, log)
    assert re.search(rf"I! \[inputs\.execd\] {re.escape(source.name)}: done", log)
    assert not re.search(r" E! ", log), [line for line in log.splitlines() if " E! " in line]
    # csv2lp paced itself on Telegraf's numbers, never on the fixed fallback pace.
    assert re.search(rf"I! \[inputs\.execd\] flow control: Telegraf's buffer numbers from "
                     rf"http://127\.0\.0\.1:{stack.flow_port}/metrics; watching influxdb_v2 ", log)
    assert "falling back to the fixed pace" not in log
    assert stack.telegraf.stop() == 0
    print(f"\n{source.name}: {reference.rows:,} rows landed in {seconds:.1f} s after the drop")


def test_telegrafs_own_numbers_reach_csv2lp_and_never_the_bucket(stack: Stack) -> None:
    reference = Reference().add_file(SAMPLE)
    stack.drop(SAMPLE)
    wait_until(lambda: stack.done() == [SAMPLE.name], ARRIVAL_TIMEOUT_S, f"{SAMPLE.name} in done/", poll=0.2)
    wait_until(lambda: (stack.output_number("metrics_written") or 0) >= reference.rows, METRICS_TIMEOUT_S,
               "the sample written by outputs.influxdb_v2", poll=0.2)
    # Several 250 ms reports of inputs.internal have been made by now: had the tagdrop let
    # them through, outputs.influxdb_v2 would have written them into the bucket.
    time.sleep(2.0)

    internal = [(name, labels) for name, labels, _ in stack.telegraf_numbers() if name.startswith("internal_write_")]
    outputs = {labels["output"] for _, labels in internal}
    assert outputs == {"influxdb_v2", "prometheus_client"}, outputs
    assert all(labels.get("csv2lp") == "flow" for _, labels in internal), internal

    server = stack.server
    (measurements,) = server.influxql("SHOW MEASUREMENTS", BUCKET)
    assert [row[0] for row in measurements["series"][0]["values"]] == [MEASUREMENT]
    (tag_keys,) = server.influxql(f'SHOW TAG KEYS FROM "{MEASUREMENT}"', BUCKET)
    assert "csv2lp" not in {row[0] for row in tag_keys["series"][0]["values"]}
    wait_for_count(server, BUCKET, reference.rows, COUNT_TIMEOUT_S)
    assert sum(server.count_per_series(BUCKET).values()) == reference.rows
    assert stack.output_number("metrics_written") == reference.rows
    assert stack.output_number("metrics_dropped") == 0
    assert stack.telegraf.stop() == 0


def test_the_stack_changes_only_what_a_container_makes_different(tmp_path: Path) -> None:
    """The edits above against the shipped text: everything else is byte for byte the same."""
    config = tmp_path / "csv2lp.toml"
    shipped = TELEGRAF_CONF.read_text(encoding="utf-8").splitlines()
    changed = stack_telegraf_conf(config, 40_001).splitlines()
    assert [(a, b) for a, b in zip(shipped, changed) if a != b] == [
        (f'  command = ["csv2lp", "execd", "--config", "{CONTAINER_CONFIG}"]',
         f'  command = ["{sys.executable}", "-m", "converter", "execd", "--config", "{config}"]'),
        ('  listen = "127.0.0.1:9274"', '  listen = "127.0.0.1:40001"'),
    ]
    shipped = CSV2LP_TOML.read_text(encoding="utf-8").splitlines()
    changed = stack_csv2lp_toml(tmp_path, 40_001).splitlines()
    assert [b for a, b in zip(shipped, changed) if a != b] == [
        f'  dir = "{tmp_path}/spool"',
        f'  done_dir = "{tmp_path}/spool/done"',
        f'  rejects_dir = "{tmp_path}/spool/rejects"',
        f'  error_dir = "{tmp_path}/spool/error"',
        f'  state_file = "{tmp_path}/state/state.json"',
        '  telegraf_metrics_url = "http://127.0.0.1:40001/metrics"',
    ]
    dotenv = {"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": "T", "DOCKER_INFLUXDB_INIT_ORG": "O",
              "DOCKER_INFLUXDB_INIT_BUCKET": "B"}
    assert compose_environment("telegraf", dotenv) == {
        "INFLUX_URL": COMPOSE_INFLUX_URL, "INFLUX_TOKEN": "T", "INFLUX_ORG": "O", "INFLUX_BUCKET": "B",
    }



def test_the_readme_says_which_influxdb2_the_tests_prove_and_why_compose_pins_another() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Full stack")
    section = text[start:text.index("\n## ", start + 1)]
    image = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["influxdb"]["image"]
    assert f"The InfluxDB 2 the tests prove is **{INFLUXD2_VERSION}**" in section
    assert f"`docker-compose.yml` pins `{image}` because" in section
    assert "`.ci/install-influxd2`" in section and "not served by the\nGo module proxy" in section
