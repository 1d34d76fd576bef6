"""``cvaeq plugins``: the installed plugins, and which one supplied each world,
image-model family, mechanism, image mechanism and story."""

from __future__ import annotations

import json

import click

from ..plugins import describe_plugins
from .group import main

__all__ = ["plugins_command"]

_SECTIONS = (
    ("world", "worlds"),
    ("image model", "image_models"),
    ("mechanism", "mechanisms"),
    ("image mechanism", "image_mechanisms"),
    ("story", "stories"),
)


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plugins_command(as_json: bool) -> None:
    """List every world, image-model family, mechanism family, image mechanism and story
    with the plugin that supplied it."""
    info = describe_plugins()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for title, key in _SECTIONS:
        entries = info[key]
        width = max([len(title), *map(len, entries)])
        click.echo(f"{title:<{width}}  plugin")
        for name, plugin in entries.items():
            click.echo(f"{name:<{width}}  {plugin}")
        click.echo()
    click.echo("plugins: " + ", ".join(p["name"] for p in info["plugins"]))
