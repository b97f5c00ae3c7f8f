"""csv2lp execd: the Telegraf inputs.execd plugin's options; the loop is converter/execd/."""

from __future__ import annotations

import sys

import click

from ..mapping import Precision
from .common import _fail_usage


@click.command("execd")
@click.option("--config", "config_path", metavar="TOML", type=click.Path(dir_okay=False),
              help="execd settings: [spool], [convert], [flow], [pacing] (see telegraf/csv2lp.toml).")
@click.option("--spool", "spool_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="The folder to watch, instead of [spool] dir; done/, rejects/ and error/ go inside it.")
@click.option("--preset", metavar="NAME", help="A shipped mapping (movebank), instead of [convert].")
@click.option("--mapping", "mapping_path", metavar="TOML", type=click.Path(dir_okay=False),
              help="A mapping file (as `convert --config`), instead of [convert].")
@click.option("-p", "--precision", type=click.Choice([p.value for p in Precision]),
              help="Timestamp precision (default ns); Telegraf's influx_timestamp_precision must match.")
@click.option("--s2-level", type=click.IntRange(0, 30), metavar="N", help="Add an s2_cell_id tag at level N.")
def execd_command(config_path: str | None, spool_dir: str | None, preset: str | None, mapping_path: str | None,
                  precision: str | None, s2_level: int | None) -> None:
    """Run under Telegraf's inputs.execd: convert CSV files dropped into a spool folder.

    Prints line protocol on stdout as fast as Telegraf's output drains, reading Telegraf's
    own buffer numbers ([flow]: its [[inputs.internal]] served by [[outputs.prometheus_client]]
    on loopback), or at the fixed pace of [pacing] without them; not throttled at all when
    stdout is a file or a terminal. Logs to stderr with E!/W!/I!/D! prefixes, and stops
    (exit 0) when stdin closes or on SIGTERM. Drop files by renaming them into the spool:
    they are taken at once. See telegraf/README.md.

    \b
    Examples:
      csv2lp execd --config /etc/csv2lp/csv2lp.toml
      csv2lp execd --spool ./spool --preset movebank > out.lp    (Ctrl-D stops it)
    """
    from .. import execd

    if preset and mapping_path:
        _fail_usage("--preset and --mapping cannot be combined.")
    if config_path is None and spool_dir is None:
        _fail_usage("give --config FILE (the execd settings), or at least --spool DIR.")
    overrides = execd.SettingsOverrides(spool_dir=spool_dir, preset=preset, mapping=mapping_path,
                                        precision=precision, s2_level=s2_level)
    sys.exit(execd.run(config_path, overrides))
