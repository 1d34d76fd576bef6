"""``cvaeq data build | show | resample | import``: thin commands over :mod:`cvaeq.data`.

Each works on one world: ``--world NAME`` (default ``dsprites``) for ``build``,
``show`` and ``import``; ``resample`` takes the world its story names. A
world without a renderer (``morphomnist``) has no grid to build or resample:
those say so in one line; ``show --index N`` shows its labelled pictures and
``import`` converts them.
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
    """Render, show and resample a world's grid of images (default: dSprites); import labelled pictures."""


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
@click.argument("factors", nargs=-1)
@click.option("--world", "world_name", metavar="NAME", default=None, help=WORLD_HELP)
@click.option(
    "--index",
    type=click.IntRange(0, MAX_IMAGES - 1),
    default=None,
    help="Show the labelled picture at this row index of the files instead (a world without a renderer: "
    "its only pictures; morphomnist rows 0-7999, 7000-7999 held out).",
)
@click.option(
    "--source",
    type=FilePath(path_type=Path),
    default=None,
    help="With --index: the labelled files (a Morpho-MNIST folder, a folder of PNGs with factors.csv, or a "
    "`data import` .npz; default: the world's shipped files).",
)
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    required=True,
    help="PNG file to write (the world's image size: black and white, or grey/RGB levels).",
)
def show(factors: tuple[str, ...], world_name: str | None, index: int | None, source: Path | None, out: Path) -> None:
    """Write the image named by FACTORS, e.g. shape=heart scale=1 orientation=0 posX=0.5 posY=0.5,
    or (--index N) a real labelled picture from the files.

    Every factor of the world, each once. Categorical factors take a label
    (shape=heart); numeric ones a value (dSprites: as in latents_values, scale
    0.5-1, orientation in radians, positions 0-1), snapped to the nearest grid
    value. A world without a renderer (morphomnist) cannot draw a picture
    from factors: show one of its labelled pictures with --index; the second
    line printed gives its factors.
    """
    from ..data.grid import show_image
    from ..errors import CvaeqError
    from ..world import get_world

    world = get_world(world_name)
    if index is not None:
        from ..data.labelled import show_picture

        if factors:
            raise CvaeqError("give FACTORS (a drawn picture) or --index N (a picture from the files), not both")
        path, named = show_picture(index, out, world, source)
        click.echo(path)
        click.echo(" ".join(f"{k}={v}" for k, v in named.items()))
        return
    if source is not None:
        raise CvaeqError("--source names labelled files to show a picture of: give --index N with it")
    if not factors:
        raise CvaeqError(
            "give the picture's FACTORS (e.g. shape=heart scale=1 ...)"
            if world.has_renderer
            else f"world {world.name!r} has no renderer: show one of its pictures with --index N"
        )
    click.echo(show_image(list(factors), out, world=world))


@data.command(name="import")
@click.argument("source", required=False, type=FilePath(path_type=Path))
@click.option("--world", "world_name", metavar="NAME", required=True, help="The world the pictures are of.")
@click.option(
    "--prefix",
    default=None,
    metavar="NAME",
    help="The Morpho-MNIST set (t10k, train) when the folder holds several.",
)
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    required=True,
    help="The .npz to write (the project's data-file layout; written atomically).",
)
def import_(source: Path | None, world_name: str, prefix: str | None, out: Path) -> None:
    """Read labelled pictures and write them as one checked .npz.

    SOURCE: a Morpho-MNIST folder (PREFIX-images-idx3-ubyte[.gz],
    PREFIX-labels-idx1-ubyte[.gz], PREFIX-morpho.csv) or its table's path, or
    a folder of PNG files with a factors.csv (first column the file names,
    then the world's factors by name). Default: the world's shipped files.
    Prints the file written, then the number of pictures in each part.
    """
    from ..data.files import write_labelled
    from ..data.labelled import load_labelled
    from ..limits import checked_output
    from ..world import get_world

    world = get_world(world_name)
    checked_output(out, "labelled pictures (.npz)")  # before reading
    pics = load_labelled(source, world, prefix)
    click.echo(write_labelled(out, pics))
    test = int(held_out_count(pics))
    click.echo(f"{len(pics):,} pictures of world {world.name} ({len(pics) - test:,} train, {test:,} test)")


def held_out_count(pics) -> int:
    """How many of the pictures are in the held-out test part."""
    from ..data.labelled import held_out_mask

    return int(held_out_mask(pics.world, pics.rows).sum())


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

    if world_name is not None:
        from ..data.renderless import require_renderer

        require_renderer(
            get_world(world_name),
            "cannot resample",
            f"its pictures are its labelled files: `cvaeq data import --world {world_name} --out FILE.npz`",
        )
    if story is None:
        world = get_world(world_name)
        if world.default_story is None:
            raise CvaeqError(f"world {world.name!r} has no default story; pass --story NAME|PATH")
        story = world.default_story
    loaded = load_story(story)
    from ..data.renderless import require_renderer

    require_renderer(
        loaded.world,
        "cannot resample",
        f"its pictures are its labelled files: `cvaeq data import --world {loaded.world.name} --out FILE.npz`",
    )
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
