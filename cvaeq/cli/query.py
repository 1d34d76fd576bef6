"""``cvaeq query``: a thin command over :func:`cvaeq.query.answer.ask`."""

from __future__ import annotations

from pathlib import Path

import click

from ..limits import MAX_SEED, MAX_THREADS
from .group import FilePath, main

__all__ = ["query"]

DEFAULT_OUT = Path("cvaeq-out")


@main.command()
@click.argument("text", metavar="QUERY")
@click.option(
    "--image",
    metavar="PATH|FACTORS",
    default=None,
    help="The image bound to img: a black-and-white .png or .npy file of the world's image size "
    "(dSprites: 64x64), or factors "
    "like shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5.",
)
@click.option(
    "--samples", type=click.IntRange(min=1), default=None, help="Particles (default 1000; 100 when X is a target)."
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Random seed: the same seed gives the same answer, byte for byte.",
)
@click.option(
    "--model",
    "model",
    metavar="CKPT",
    default=None,
    help="A checkpoint from cvaeq train (default: the shipped checkpoint if installed).",
)
@click.option(
    "--story",
    default=None,
    metavar="NAME|PATH",
    help="Answer with a story's true tables (factor queries); for queries about X, "
    "with the model shipped for that story (default, pendulum).",
)
@click.option(
    "--out",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder for the PNGs when X is a target (default: ./{DEFAULT_OUT}).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    default=None,
    help="CPU threads for torch [default: CVAEQ_THREADS, else the CPUs this process may use "
    "(affinity, cgroup quota), never the load (cvaeq.threads)]; 1 is fastest on a busy machine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def query(
    text: str,
    image: str | None,
    samples: int | None,
    seed: int,
    model: str | None,
    story: str | None,
    out: Path | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Answer a causal query: a table, --json, or PNGs when X is the target.

    QUERY is e.g. "P(shape | do(scale=1))", or "P(X | do(shape=square), X=img)"
    with --image (the language: docs/queries.md; this command: docs/cli.md).
    """
    from ..query.answer import ask
    from ..threads import use_threads

    use_threads(threads)
    answer = ask(
        text,
        image=image,
        model=model,
        story=story,
        samples=samples,
        seed=seed,
        out=out if out is not None else DEFAULT_OUT,
        threads=threads,
    )
    click.echo(answer.to_json() if as_json else answer.to_table())
