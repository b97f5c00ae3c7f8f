"""Settings of `csv2lp execd`: the TOML file (telegraf/csv2lp.toml), checked strictly once at start,
and the command-line overrides. Every error names the file and the key."""

from __future__ import annotations

import re
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..encode.encoder import DEFAULT_MAX_STRING_BYTES
from ..errors import ConverterError
from ..mapping import MappingSpec, Precision, load_mapping_file, load_preset, read_settings_text
from ..plan.outputs import same_file
from .gates import FlowSettings
from .pacing import Pace, derive_pace
from .spool import matches
from ..plan.options import ConvertOptions
from ..read.settings import DELIMITER_RULE, delimiter_problem
from ..read.expansion import DEFAULT_MAX_EXPANSION
from ..read.source import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_COLUMNS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_PATTERNS = ("*.csv", "*.csv.gz", "*.csv.bz2", "*.csv.zst")


@dataclass(frozen=True)
class SpoolSettings:
    dir: Path
    patterns: tuple[str, ...]
    poll_seconds: float
    done_dir: Path
    rejects_dir: Path
    error_dir: Path
    state_file: Path


@dataclass(frozen=True)
class ExecdSettings:
    spool: SpoolSettings
    mapping: MappingSpec
    mapping_name: str  # for the start-up log line
    options: ConvertOptions
    pace: Pace
    flow: FlowSettings
    replay_lines: int | None  # None: cover what the gate lets Telegraf's buffer hold (flow.py)
    config_path: str | None = None  # named in the log where a message points at a setting

    @property
    def batch_lines(self) -> int:
        """Lines per write and checkpoint: [flow]'s under flow control, else the fixed pace's."""
        return self.flow.batch_lines if self.flow.url else self.pace.batch_lines


@dataclass(frozen=True)
class SettingsOverrides:
    """Command-line options; None means "as in the config file"."""

    spool_dir: str | None = None
    preset: str | None = None
    mapping: str | None = None
    precision: str | None = None
    s2_level: int | None = None


# Telegraf's own defaults for [pacing]: without a config file the pace suits a stock agent.
_KEYS: dict[str, dict[str, Any]] = {
    "spool": {"dir": None, "patterns": list(DEFAULT_PATTERNS), "poll_seconds": 2.0, "done_dir": None,
              "rejects_dir": None, "error_dir": None, "state_file": None},
    "convert": {"preset": None, "mapping": None, "precision": "ns", "s2_level": None, "delimiter": ",",
                "max_string_bytes": DEFAULT_MAX_STRING_BYTES, "block_size": DEFAULT_BLOCK_SIZE,
                "max_expansion": DEFAULT_MAX_EXPANSION, "max_columns": DEFAULT_MAX_COLUMNS},
    "pacing": {"metric_batch_size": 1000, "metric_buffer_limit": 10000, "flush_interval_seconds": 10.0,
               "outage_seconds": 30.0, "lines_per_second": None, "batch_lines": None, "replay_lines": None},
    # No url by default: flow control needs the route in telegraf.conf ([[inputs.internal]] ->
    # [[outputs.prometheus_client]]); telegraf/csv2lp.toml sets it.
    "flow": {"telegraf_metrics_url": "", "max_buffer_fill": 0.5, "outputs": [], "batch_lines": 5000,
             "reserve_lines": 5000, "poll_seconds": 0.1, "wait_seconds": 10.0, "coordination_dir": None},
}
DEFAULT_REPLAY_LINES = 5000  # on the fixed pace, when replay_lines is not set
_NUMBER = (int, float)


def load_settings(config_path: str | None, overrides: SettingsOverrides = SettingsOverrides()) -> ExecdSettings:
    """Read and check every setting once, before anything is touched. Raise ConverterError naming the key."""
    where = config_path or "the command line"
    document: dict[str, Any] = {}
    base = Path.cwd()
    if config_path is not None:
        try:
            document = tomllib.loads(read_settings_text(config_path))
        except OSError as exc:
            raise ConverterError(f"{config_path}: cannot read the execd config: {exc.strerror or exc}.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConverterError(f"{config_path}: not valid TOML: {exc}.") from None
        base = Path(config_path).resolve().parent
    tables = _check_keys(document, where)

    def get(table: str, key: str, kinds: tuple[type, ...] | type) -> Any:
        value = tables[table].get(key, _KEYS[table][key])
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ConverterError(f"{where}: [{table}] {key} = {value!r} has the wrong type.")
        return value

    def path(table: str, key: str, default: Path | None) -> Path:
        value = get(table, key, str)
        if value is None:
            if default is None:
                raise ConverterError(f"{where}: [{table}] {key} is missing: the folder to watch.")
            return default
        return (base / value) if not Path(value).is_absolute() else Path(value)

    spool_dir = Path(overrides.spool_dir).resolve() if overrides.spool_dir else path("spool", "dir", None)
    patterns = get("spool", "patterns", list)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ConverterError(f"{where}: [spool] patterns must be a non-empty list of globs, e.g. [\"*.csv\"].")
    poll_seconds = float(get("spool", "poll_seconds", _NUMBER))
    if poll_seconds <= 0:
        raise ConverterError(f"{where}: [spool] poll_seconds must be > 0.")
    spool_settings = SpoolSettings(
        dir=spool_dir,
        patterns=tuple(patterns),
        poll_seconds=poll_seconds,
        done_dir=path("spool", "done_dir", spool_dir / "done"),
        rejects_dir=path("spool", "rejects_dir", spool_dir / "rejects"),
        error_dir=path("spool", "error_dir", spool_dir / "error"),
        state_file=path("spool", "state_file", spool_dir / ".csv2lp-state.json"),
    )
    _check_spool_paths(spool_settings, where)

    preset = overrides.preset or (None if overrides.mapping else get("convert", "preset", str))
    mapping_file = overrides.mapping or (None if overrides.preset else get("convert", "mapping", str))
    if preset and mapping_file:
        raise ConverterError(f"{where}: [convert] preset and mapping cannot both be set; choose one.")
    if mapping_file and not overrides.mapping and not Path(mapping_file).is_absolute():
        mapping_file = str(base / mapping_file)
    if not preset and not mapping_file:
        raise ConverterError(f"{where}: [convert] needs preset = \"movebank\" or mapping = \"FILE.toml\".")
    try:
        mapping = load_preset(preset) if preset else load_mapping_file(mapping_file)  # type: ignore[arg-type]
    except ConverterError as exc:
        raise ConverterError(f"{where}: [convert] {exc}") from None

    precision = overrides.precision or get("convert", "precision", str)
    if precision not in {p.value for p in Precision}:
        raise ConverterError(f"{where}: [convert] precision = {precision!r}; use ns, us, ms or s.")
    s2_level = overrides.s2_level if overrides.s2_level is not None else get("convert", "s2_level", int)
    if s2_level is not None and not 0 <= s2_level <= 30:
        raise ConverterError(f"{where}: [convert] s2_level must be between 0 and 30.")
    delimiter = get("convert", "delimiter", str)
    if delimiter == "tab":
        delimiter = "\t"
    if delimiter_problem(delimiter):
        raise ConverterError(f"{where}: [convert] delimiter = {delimiter!r}: give {DELIMITER_RULE}.")
    block_size = get("convert", "block_size", int)
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise ConverterError(f"{where}: [convert] block_size = {block_size!r}: give bytes from {MIN_BLOCK_SIZE:,} "
                             f"(64 KiB) to {MAX_BLOCK_SIZE:,} (1 GiB); the longest row must fit in a block "
                             f"(default {DEFAULT_BLOCK_SIZE:,}, 2 MiB).")
    max_string_bytes = get("convert", "max_string_bytes", int)
    if max_string_bytes < 0:
        raise ConverterError(f"{where}: [convert] max_string_bytes must be >= 0 (0: no limit).")
    max_expansion = get("convert", "max_expansion", int)
    if max_expansion < 0:
        raise ConverterError(f"{where}: [convert] max_expansion must be >= 0 (0: no limit).")
    max_columns = get("convert", "max_columns", int)
    if max_columns < 0:
        raise ConverterError(f"{where}: [convert] max_columns must be >= 0 (0: no limit).")
    options = ConvertOptions(precision=Precision(precision), s2_level=s2_level, delimiter=delimiter,
                             max_string_bytes=max_string_bytes or None, block_size=block_size,
                             max_expansion=max_expansion, max_columns=max_columns)

    lines_per_second = get("pacing", "lines_per_second", _NUMBER)
    try:
        pace = derive_pace(
            metric_batch_size=get("pacing", "metric_batch_size", int),
            metric_buffer_limit=get("pacing", "metric_buffer_limit", int),
            flush_interval_seconds=float(get("pacing", "flush_interval_seconds", _NUMBER)),
            outage_seconds=float(get("pacing", "outage_seconds", _NUMBER)),
            lines_per_second=None if lines_per_second is None else float(lines_per_second),
            batch_lines=get("pacing", "batch_lines", int),
        )
    except ConverterError as exc:
        raise ConverterError(f"{where}: {exc}") from None
    replay_lines = get("pacing", "replay_lines", int)
    if replay_lines is not None and replay_lines < 0:
        raise ConverterError(f"{where}: [pacing] replay_lines must be >= 0.")
    name = f"preset {preset}" if preset else f"mapping {mapping_file}"
    return ExecdSettings(spool_settings, mapping, name, options, pace, _flow_settings(get, where, base),
                         replay_lines, config_path)


def default_coordination_dir(url: str) -> Path:
    """One folder per Telegraf page, in the temp folder every [[inputs.execd]] of one Telegraf shares."""
    parts = urllib.parse.urlsplit(url)
    name = re.sub(r"[^A-Za-z0-9.]+", "-", f"{parts.hostname or 'telegraf'}-{parts.port or 80}")
    return Path(tempfile.gettempdir()) / f"csv2lp-flow-{name}"


def _flow_settings(get: Any, where: str, base: Path) -> FlowSettings:
    url = get("flow", "telegraf_metrics_url", str)
    if url and not url.startswith("http://"):
        raise ConverterError(f"{where}: [flow] telegraf_metrics_url = {url!r}: give the http:// address of the "
                             f"[[outputs.prometheus_client]] that serves Telegraf's internal_write numbers, or \"\" "
                             f"for the fixed pace of [pacing].")
    max_fill = float(get("flow", "max_buffer_fill", _NUMBER))
    if not 0 < max_fill <= 0.9:
        raise ConverterError(f"{where}: [flow] max_buffer_fill must be more than 0 and at most 0.9 (a share of "
                             f"Telegraf's metric_buffer_limit).")
    outputs = get("flow", "outputs", list)
    if not all(isinstance(o, str) and o for o in outputs):
        raise ConverterError(f"{where}: [flow] outputs must be a list of output names or aliases, e.g. "
                             f"[\"influxdb_v2\"].")
    numbers = {key: get("flow", key, int) for key in ("batch_lines", "reserve_lines")}
    if numbers["batch_lines"] < 1 or numbers["reserve_lines"] < 0:
        raise ConverterError(f"{where}: [flow] batch_lines must be >= 1 and reserve_lines >= 0.")
    seconds = {key: float(get("flow", key, _NUMBER)) for key in ("poll_seconds", "wait_seconds")}
    if seconds["poll_seconds"] <= 0 or seconds["wait_seconds"] < 0:
        raise ConverterError(f"{where}: [flow] poll_seconds must be > 0 and wait_seconds >= 0.")
    folder = get("flow", "coordination_dir", str)
    if folder is None:
        folder = str(default_coordination_dir(url)) if url else ""
    elif folder and not Path(folder).is_absolute():
        folder = str(base / folder)
    return FlowSettings(url=url, max_fill=max_fill, outputs=tuple(outputs), batch_lines=numbers["batch_lines"],
                        reserve_lines=numbers["reserve_lines"], poll_seconds=seconds["poll_seconds"],
                        wait_seconds=seconds["wait_seconds"], coordination_dir=folder)


def _check_spool_paths(spool: SpoolSettings, where: str) -> None:
    """Folders the loop writes that would feed it again: done/, rejects/ or error/ being the spool
    itself (moved files and rejects files picked up as new input, over and over), or a state file
    the spool's patterns match."""
    for key in ("done_dir", "rejects_dir", "error_dir"):
        folder = getattr(spool, key)
        if same_file(str(folder), str(spool.dir)):
            raise ConverterError(f"{where}: [spool] {key} = {folder} is the spool folder itself: what goes there "
                                 f"would be picked up again as a new file; give it a folder of its own, "
                                 f"e.g. {spool.dir / key.removesuffix('_dir')}.")
    state = spool.state_file
    if same_file(str(state.parent), str(spool.dir)) and matches(state.name, spool.patterns):
        raise ConverterError(f"{where}: [spool] state_file = {state} is a name the spool's patterns match: it would "
                             f"be read as a CSV file; give it a name starting with '.' or put it elsewhere.")
    for key in ("dir", "done_dir", "rejects_dir", "error_dir", "state_file"):
        path = getattr(spool, key)
        try:
            path.exists()  # a name too long for the system, a loop of links: said here, not as a traceback
        except OSError as exc:
            raise ConverterError(f"{where}: [spool] {key} = {str(path)[:200]}: {exc.strerror or exc}.") from None
        blocker = file_in_the_way(path if key == "state_file" else path / "x")
        if blocker is not None:
            raise ConverterError(f"{where}: [spool] {key} = {path}: {blocker} is a file, not a folder, so nothing "
                                 f"can be created under it; give a path in a folder.")
    if state.is_dir():
        raise ConverterError(f"{where}: [spool] state_file = {state} is a folder; give a file name.")


def file_in_the_way(path: Path) -> Path | None:
    """The first folder on `path`'s way that exists and is not a folder (a regular file), if any:
    mkdir would fail there with a bare "File exists" or "Not a directory"."""
    for folder in reversed(path.parents):
        if folder.exists() and not folder.is_dir():
            return folder
    return None


def _check_keys(document: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for table, content in document.items():
        if table not in _KEYS or not isinstance(content, dict):
            raise ConverterError(f"{where}: unknown section [{table}]; the sections are [spool], [convert], [flow] "
                                 f"and [pacing].")
        for key in content:
            if key not in _KEYS[table]:
                known = ", ".join(_KEYS[table])
                raise ConverterError(f"{where}: unknown setting [{table}] {key}; the settings there are {known}.")
        tables[table] = dict(content)
    for table in _KEYS:
        tables.setdefault(table, {})
    return tables


# The convert options the reader's messages name, as csv2lp.toml spells them: execd has no
# command-line options for them, so its log names the setting a user can change.
_CONVERT_KEYS = {"--block-size": "block_size", "--max-expansion": "max_expansion", "--delimiter": "delimiter",
                 "--max-string-bytes": "max_string_bytes", "--max-columns": "max_columns"}


def in_config_terms(message: str, config_path: str | None) -> str:
    """`message` with the convert options it names spelt as csv2lp.toml's [convert] keys."""
    where = f" of {config_path}" if config_path else " of the execd config"
    for option, key in _CONVERT_KEYS.items():
        message = re.sub(rf"{option}\b(?:\s*\(execd: [^)]*\))?", f"{key} in [convert]{where}", message)
    # resolve.delimiter_hint's "give -d ';'": the setting, as the file spells it.
    return re.sub(r"give -d ('.'|tab)", lambda m: f'set delimiter = "{m.group(1).strip(chr(39))}" in [convert]{where}',
                  message)
