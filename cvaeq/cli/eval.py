"""``cvaeq eval``: score a trained model against the rendered world's ground truth."""

from __future__ import annotations

import json
import os
import time

import click

from ..limits import MAX_EVAL_IMAGES, MAX_PARTICLES, MAX_SEED, MAX_THREADS, MAX_TV_PARTICLES
from .group import FilePath, main

__all__ = ["eval_command", "summary", "summary_levels"]


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def summary(r: dict) -> str:
    """A readable table of :func:`cvaeq.evaluation.evaluate`'s result."""
    if r.get("pixel") == "8bit":
        return summary_levels(r)
    factors = list(r["factor_accuracy"])  # the world's factor names, in its order
    width = max([12] + [len(f) + 2 for f in factors])

    def row(title: str, values: dict) -> str:
        return f"{title:16}" + "".join(f"{_fmt(values[f]):>{width}}" for f in factors)

    cf = r["counterfactual"]
    lines = [
        f"model      {r['model']}   (world {r['world']})",
        f"images     {r['n']} (uniform over the world's grid), {r['samples']} particles each, seed {r['seed']}",
        "",
        f"NLL        {_fmt(r['nll_nats'])} nats/image   (-ELBO {_fmt(r['elbo_nats'])})",
        f"NLL | f    {_fmt(r['nll_given_factors_nats'])} nats/image   (-ELBO {_fmt(r['elbo_given_factors_nats'])}; "
        "the true factors given)",
        f"recon IoU  {_fmt(r['recon_iou'])}",
        "",
        f"{'':16}" + "".join(f"{f:>{width}}" for f in factors),
        row("accuracy", r["factor_accuracy"]),
        row("cf IoU", cf["iou"]),
        row("  (story, K)", cf["iou_story"]),
        row("cf soft IoU", cf["soft_iou"]),
        row("cf L1 to truth", cf["l1_truth"]),
        row("effectiveness", cf["effectiveness"]),
        row("reversibility", cf["reversibility_by_factor"]),
        row("  (story)", cf["reversibility_story"]),
        "",
        f"cf IoU mean {_fmt(cf['iou_mean'])} (story, K: {_fmt(cf['iou_story_mean'])})"
        f"   composition 1: {_fmt(cf['composition']['1'])}"
        f"  10: {_fmt(cf['composition']['10'])}   (decoder 1: {_fmt(cf['composition_decoder']['1'])}"
        f"  10: {_fmt(cf['composition_decoder']['10'])})   reversibility {_fmt(cf['reversibility'])}",
        f"cf L1 mean {_fmt(cf['l1_truth_mean'])}   composition L1 1: {_fmt(cf['composition_l1']['1'])}"
        f"  10: {_fmt(cf['composition_l1']['10'])}   (decoder 1: {_fmt(cf['composition_decoder_l1']['1'])}"
        f"  10: {_fmt(cf['composition_decoder_l1']['10'])})",
        f"TV         interventional {_fmt(r['tv']['interventional'])}   "
        f"counterfactual {_fmt(r['tv']['counterfactual'])}   ({r['tv']['queries']} queries)",
    ]
    return "\n".join(lines)


def summary_levels(r: dict) -> str:
    """The table of an 8-bit world's result (docs/evaluation.md, "The metrics of 8-bit worlds")."""
    factors = list(r["factor_accuracy"])
    width = max([12] + [len(f) + 2 for f in factors])

    def row(title: str, values: dict, fmt=_fmt) -> str:
        return f"{title:16}" + "".join(f"{fmt(values[f]):>{width}}" for f in factors)

    def db(x) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    cf, bits = r["counterfactual"], r["bits_per_dim"]
    lines = [
        f"model      {r['model']}   (world {r['world']}, 8-bit pictures)",
        f"images     {r['n']} (uniform over the world's grid), {r['samples']} particles each, seed {r['seed']}",
        "",
        f"NLL        {_fmt(bits['nll'])} bits/dim   (-ELBO {_fmt(bits['elbo'])}; {_fmt(r['nll_nats'])} nats/picture)",
        f"NLL | f    {_fmt(bits['nll_given_factors'])} bits/dim   (the true factors given)",
        f"recon L1   {_fmt(r['recon_l1'])}",
        "",
        f"{'':16}" + "".join(f"{f:>{width}}" for f in factors),
        row("accuracy", r["factor_accuracy"]),
        row("cf L1 to truth", cf["l1"]),
        row("  (story, K)", cf["l1_story"]),
        row("cf PSNR (dB)", cf["psnr"], db),
        row("  (story, K)", cf["psnr_story"], db),
        row("effectiveness", cf["effectiveness"]),
        "",
        f"cf L1 mean {_fmt(cf['l1_mean'])}   cf PSNR mean {db(cf['psnr_mean'])} dB",
        f"composition (bytes that differ) 1: {_fmt(cf['composition']['1'])}  10: {_fmt(cf['composition']['10'])}"
        f"   decoder L1 1: {_fmt(cf['composition_decoder_l1']['1'])}  10: {_fmt(cf['composition_decoder_l1']['10'])}"
        f"   (PSNR {db(cf['composition_decoder_psnr']['1'])} / {db(cf['composition_decoder_psnr']['10'])} dB)",
        f"TV         interventional {_fmt(r['tv']['interventional'])}   "
        f"counterfactual {_fmt(r['tv']['counterfactual'])}   ({r['tv']['queries']} queries)",
    ]
    return "\n".join(lines)


def _shipped_for(story: str, model) -> str:
    """The checkpoint shipped for ``story``; a one-line error when there is none or --model is given too."""
    from ..errors import CvaeqError
    from ..loading import shipped_checkpoint
    from ..story import load_story

    if model is not None:
        raise CvaeqError("give --model or --story, not both: a checkpoint carries the story it was trained on")
    loaded = load_story(story)
    path = shipped_checkpoint(loaded)
    if path is None:
        raise CvaeqError(
            f"no checkpoint is shipped for story {loaded.name!r}; train one with "
            f"`cvaeq train --story {story}` and pass it with --model"
        )
    return str(path)


@main.command("eval")
@click.option(
    "--model",
    "model",
    type=FilePath(dir_okay=False),
    default=None,
    help="Checkpoint to evaluate, of any registered image-model family [default: the shipped one].",
)
@click.option(
    "--story",
    default=None,
    metavar="NAME|PATH",
    help="Evaluate the checkpoint shipped for this story (default, pendulum, colour_pendulum) instead of --model.",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(1, MAX_EVAL_IMAGES),
    default=200,
    show_default=True,
    help="Test images, drawn uniformly from the full grid of the model's world.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the images, interventions and particles.",
)
@click.option(
    "--samples",
    type=click.IntRange(1, MAX_PARTICLES),
    default=100,
    show_default=True,
    help="Particles per image (proposal draws for the NLL; counterfactual particles); "
    "the default is what `cvaeq query` answers an image query with.",
)
@click.option(
    "--tv-particles",
    type=click.IntRange(1, MAX_TV_PARTICLES),
    default=20_000,
    show_default=True,
    help="Particles per counterfactual query of the TV score.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    default=None,
    help="CPU threads for torch [default: CVAEQ_THREADS, else the CPUs this process may use "
    "(affinity, cgroup quota), never the load (cvaeq.threads)]; 1 is fastest on a busy machine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(model, story, n, seed, samples, tv_particles, threads, as_json, quiet):
    """Score a model: likelihood, factor accuracy, counterfactuals against the
    true (rendered) counterfactuals (IoU, L1), axiomatic soundness
    (effectiveness, composition, reversibility), and TV to the story.

    Under torchrun (``torchrun --nproc-per-node N -m cvaeq -- eval ...``; the
    ``--`` keeps torchrun from taking ``--n`` for one of its own options) each
    process scores its share of the test images and rank 0 prints the same
    result as one process would."""
    from ..evaluation import evaluate, model_to_score
    from ..threads import use_threads

    use_threads(threads)
    if story is not None:
        model = _shipped_for(story, model)
    mech = model_to_score(model)  # a bad path fails here: one line, exit 2
    ctx = None
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:  # one process of a torchrun launch
        from ..model.distributed import init_distributed

        ctx = init_distributed("cpu")  # evaluation runs on the CPU: gloo
    started = time.perf_counter()
    try:
        result = evaluate(
            mech,
            n=n,
            seed=seed,
            samples=samples,
            tv_particles=tv_particles,
            progress=not quiet and (ctx is None or ctx.rank == 0),
            dist_ctx=ctx,
            threads=threads,
        )
    finally:
        if ctx is not None:
            ctx.close()
    seconds = time.perf_counter() - started
    if result is None:  # not rank 0: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        click.echo(summary(result))
    if not quiet:
        click.echo(f"evaluated {n} images in {seconds:.1f} s ({seconds / n:.2f} s/image)", err=True)
