"""``cvaeq data build | show | resample``: thin commands over :mod:`cvaeq.data`."""

from __future__ import annotations

from pathlib import Path

import click

from . import main

__all__ = ["data"]


@main.group()
def data() -> None:
    """Render, show and resample the dSprites grid."""


@data.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the grid (default: $CVAEQ_HOME/dsprites_rendered_64x64.npz).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes rendering in parallel (default 1; try the number of idle cores).")
def build(out: Path | None, workers: int | None) -> None:
    """Render all 737,280 dSprites images to an .npz in the real file's layout."""
    from ..data.grid import build_grid

    click.echo(build_grid(out, workers=workers))


@data.command()
@click.argument("factors", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write (64x64, black and white).")
def show(factors: tuple[str, ...], out: Path) -> None:
    """Write the image named by FACTORS, e.g. shape=heart scale=1 orientation=0 posX=0.5 posY=0.5.

    Values are as in latents_values (scale 0.5-1, orientation in radians,
    positions 0-1) and snap to the nearest grid value.
    """
    from ..data.grid import show_image

    click.echo(show_image(list(factors), out))


@data.command()
@click.option("--story", default="default", show_default=True, help="A story name or a path to a story TOML file.")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of images to draw.")
@click.option("--seed", type=click.IntRange(min=0), required=True, help="Random seed (same seed, same file).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .npz (default: $CVAEQ_HOME/resampled-STORY-nN-sSEED.npz).")
@click.option("--npz", "grid", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Grid file to take images from (default: the cached grid if any, else render them).")
def resample(story: str, n: int, seed: int, out: Path | None, grid: Path | None) -> None:
    """Draw N factor tuples from a causal story and write their grid images."""
    from ..data.resample import resample as draw
    from ..data.resample import save_resampled
    from ..paths import home

    drawn = draw(story, n, seed)
    out = out or home() / f"resampled-{drawn.story_name}-n{n}-s{seed}.npz"
    click.echo(save_resampled(drawn, out, grid=grid))
