"""``cvaeq train``: train an image model (the causal VAE by default) and checkpoint it every epoch."""

from __future__ import annotations

import sys

import click

from ..limits import MAX_BATCH, MAX_EPOCHS, MAX_EVAL_IMAGES, MAX_IMAGES, MAX_SEED, MAX_THREADS
from .group import FilePath, main

__all__ = ["train_command"]


@main.command("train")
@click.option("--story", default="default", show_default=True, help="Story name or path to a story TOML file.")
@click.option(
    "--n",
    "n",
    type=click.IntRange(1, MAX_IMAGES),
    default=200_000,
    show_default=True,
    help="Training images (resampled from the story).",
)
@click.option(
    "--epochs",
    type=click.IntRange(1, MAX_EPOCHS),
    default=20,
    show_default=True,
    help="Epochs to train (in total, when resuming).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH),
    default=256,
    show_default=True,
    help="Batch size (per process when distributed).",
)
@click.option(
    "--lr", type=float, default=1e-3, show_default=True, help="Peak Adam learning rate (cosine decay to lr/20)."
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the data, the initialisation and the noise.",
)
@click.option(
    "--eval-n",
    type=click.IntRange(1, MAX_EVAL_IMAGES),
    default=5_000,
    show_default=True,
    help="Held-out images evaluated after each epoch.",
)
@click.option(
    "--uniform",
    type=float,
    default=0.25,
    show_default=True,
    help="Fraction of training images with factors uniform over the grid (not from the story).",
)
@click.option("--aux-weight", type=float, default=None, help="Weight of q(factors | X)'s classification term [10].")
@click.option(
    "--orientation-loss",
    type=click.Choice(["exact", "symmetric"]),
    default=None,
    help="Score q(orientation | X) against the exact class, or modulo the shape's symmetry "
    "[exact; on --resume, the checkpoint's].",
)
@click.option(
    "--family",
    default=None,
    help="Registered image-model family of a new run (see `cvaeq plugins`) [causal_vae; conv_causal_vae "
    "for a world with continuous factors; with --init or --resume, the checkpoint's].",
)
@click.option(
    "--arch",
    default=None,
    metavar="KEY=N,...",
    help="Architecture of a new run, checked by the family, e.g. dec_hidden=256,cell_hidden=32 "
    "(causal_vae: ArchConfig's fields; defaults in docs/model.md).",
)
@click.option("--device", default="auto", show_default=True, help="auto (GPU if any), cpu or cuda.")
@click.option("--time-limit", type=float, default=None, help="Minutes: start no epoch that would end after this.")
@click.option(
    "--out",
    type=FilePath(dir_okay=False),
    default="model.safetensors",
    show_default=True,
    help="Checkpoint to write (the loss curve goes beside it as <stem>.loss.png).",
)
@click.option("--resume", type=FilePath(dir_okay=False), default=None, help="Checkpoint to continue from.")
@click.option(
    "--init",
    "init",
    type=FilePath(dir_okay=False),
    default=None,
    help="Start a new run (fresh data, optimizer, schedule) from this checkpoint's networks: fine-tuning.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    default=None,
    help="CPU threads for torch [default: CVAEQ_THREADS, else the CPUs this process may use "
    "(affinity, cgroup quota), never the load (cvaeq.threads)]; the trained numbers depend on it.",
)
@click.option("--distributed", is_flag=True, help="Run as one process of a torchrun launch (DDP).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(
    story,
    n,
    epochs,
    batch,
    lr,
    seed,
    eval_n,
    uniform,
    aux_weight,
    orientation_loss,
    family,
    arch,
    device,
    time_limit,
    out,
    resume,
    init,
    threads,
    distributed,
    quiet,
):
    """Train an image model on images resampled from a story.

    A checkpoint (safetensors + JSON metadata) is written atomically after
    every epoch, so stopping at any moment keeps the last one; --resume
    continues from it (same data, optimizer state, epoch).
    """

    from ..errors import CvaeqError
    from ..model.family import parse_arch_option
    from ..model.train import TrainConfig

    if arch is not None and (init or resume):
        raise CvaeqError(
            f"--arch sets the networks of a new run; with --{'init' if init else 'resume'} "
            "the architecture is the checkpoint's: leave --arch out"
        )
    from ..threads import use_threads

    use_threads(threads)
    config = TrainConfig(
        story=story,
        n=n,
        epochs=epochs,
        batch=batch,
        lr=lr,
        seed=seed,
        eval_n=eval_n,
        uniform=uniform,
        aux_weight=aux_weight,
        orientation_loss=orientation_loss,
        family=family,
        device=device,
        time_limit=time_limit,
        arch=parse_arch_option(arch) if arch is not None else {},
    )
    _run(config, out, resume, init, threads, distributed, device, quiet)


def _run(config, out, resume, init, threads, distributed, device, quiet) -> None:
    """Train (under torchrun, one process of it), saying where the checkpoint is if interrupted."""
    from ..model.train import train

    ctx = None
    if distributed:
        from ..model.distributed import init_distributed

        ctx = init_distributed(device)
    try:
        path = train(config, out, resume=resume, progress=not quiet, dist_ctx=ctx, init=init, threads=threads)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted; the last complete epoch's checkpoint (if any) is {out}; continue with --resume {out}",
            err=True,
        )
        sys.exit(130)
    finally:
        if ctx is not None:
            ctx.close()
    if ctx is None or ctx.rank == 0:
        click.echo(str(path))
