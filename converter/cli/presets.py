"""csv2lp presets: the shipped mappings."""

from __future__ import annotations

import click


@click.command("presets")
def presets_command() -> None:
    """List the shipped mapping presets.

    \b
    Example:
      csv2lp presets
    """
    from importlib import resources

    for entry in sorted(resources.files("converter.presets").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            click.echo(entry.name[:-5])
