"""``cvaeq plugins``: the installed plugins, and which one supplied each mechanism and story."""

from __future__ import annotations

import json

import click

from ..plugins import describe_plugins
from . import main

__all__ = ["plugins_command"]


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plugins_command(as_json: bool) -> None:
    """List every mechanism family and story with the plugin that supplied it."""
    info = describe_plugins()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for title, entries in (("mechanism", info["mechanisms"]), ("story", info["stories"])):
        width = max([len(title), *map(len, entries)])
        click.echo(f"{title:<{width}}  plugin")
        for name, plugin in entries.items():
            click.echo(f"{name:<{width}}  {plugin}")
        click.echo()
    click.echo("plugins: " + ", ".join(p["name"] for p in info["plugins"]))
