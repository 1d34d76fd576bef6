"""``cvaeq data build | show | resample``: thin commands over :mod:`cvaeq.data`.

Each works on one world: ``--world NAME`` (default ``dsprites``) for ``build``
and ``show``; ``resample`` takes the world its story names.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..limits import MAX_IMAGES, MAX_SEED, MAX_WORKERS
from .group import FilePath, main

__all__ = ["data"]

WORLD_HELP = "The world (default: dsprites; `cvaeq plugins` lists the installed ones)."


@main.group()
def data() -> None:
    """Render, show and resample a world's grid of images (default: dSprites)."""


@data.command()
@click.option("--world", "world_name", metavar="NAME", default=None, help=WORLD_HELP)
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the grid (default: $CVAEQ_HOME/dsprites_rendered_64x64.npz for dSprites, "
    "$CVAEQ_HOME/WORLD_rendered.npz for another world).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    default=None,
    help="Processes rendering in parallel (default 1; try the number of idle cores).",
)
def build(world_name: str | None, out: Path | None, workers: int | None) -> None:
    """Render every image of a world's grid (dSprites: 737,280) to an .npz in the real file's layout."""
    from ..data.grid import build_grid
    from ..world import get_world

    click.echo(build_grid(out, workers=workers, world=get_world(world_name)))


@data.command()
@click.argument("factors", nargs=-1, required=True)
@click.option("--world", "world_name", metavar="NAME", default=None, help=WORLD_HELP)
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    required=True,
    help="PNG file to write (the world's image size, black and white).",
)
def show(factors: tuple[str, ...], world_name: str | None, out: Path) -> None:
    """Write the image named by FACTORS, e.g. shape=heart scale=1 orientation=0 posX=0.5 posY=0.5.

    Every factor of the world, each once. Categorical factors take a label
    (shape=heart); numeric ones a value (dSprites: as in latents_values, scale
    0.5-1, orientation in radians, positions 0-1), snapped to the nearest grid
    value.
    """
    from ..data.grid import show_image
    from ..world import get_world

    click.echo(show_image(list(factors), out, world=get_world(world_name)))


@data.command()
@click.option(
    "--story",
    default=None,
    metavar="NAME|PATH",
    help="A story name or a path to a story TOML file (default: the world's default story).",
)
@click.option(
    "--world",
    "world_name",
    metavar="NAME",
    default=None,
    help="The world whose default story to draw from, when --story is not given (default: dsprites).",
)
@click.option("--n", "n", type=click.IntRange(1, MAX_IMAGES), required=True, help="Number of images to draw.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), required=True, help="Random seed (same seed, same file).")
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="Output .npz (default: $CVAEQ_HOME/resampled-STORY-nN-sSEED.npz).",
)
@click.option(
    "--npz",
    "grid",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="Grid file to take images from (default: the world's cached grid if any, else render them).",
)
def resample(story: str | None, world_name: str | None, n: int, seed: int, out: Path | None, grid: Path | None) -> None:
    """Draw N factor tuples from a causal story and write their grid images."""
    from ..data.resample import resample as draw
    from ..data.resample import save_resampled
    from ..errors import CvaeqError
    from ..paths import cache_path
    from ..story import load_story, safe_name
    from ..world import get_world

    if story is None:
        world = get_world(world_name)
        if world.default_story is None:
            raise CvaeqError(f"world {world.name!r} has no default story; pass --story NAME|PATH")
        story = world.default_story
    loaded = load_story(story)
    if world_name is not None and loaded.world.name != world_name:
        raise CvaeqError(
            f"story {loaded.name!r} is about world {loaded.world.name!r}, not --world {world_name}; "
            "leave out --world or pick a story of that world"
        )
    if out is not None:
        from ..limits import checked_output

        checked_output(out, "resampled .npz")  # before drawing
    drawn = draw(loaded, n, seed)
    out = out or cache_path(f"resampled-{safe_name(drawn.story_name)}-n{n}-s{seed}.npz")
    click.echo(save_resampled(drawn, out, grid=grid))
