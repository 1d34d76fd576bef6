"""``cvaeq eval``: score a trained model against the rendered world's ground truth (or, for a
world without a renderer, with the figures that need none), every figure with its interval."""

from __future__ import annotations

import json
import os
import time

import click

from ..limits import MAX_EVAL_IMAGES, MAX_PARTICLES, MAX_SEED, MAX_THREADS, MAX_TV_PARTICLES
from .group import FilePath, main

__all__ = ["eval_command", "summary", "summary_levels", "summary_truthfree"]


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _with_ci(x, ci, fmt=_fmt) -> str:
    """A figure and its interval, ``0.9810 [0.9620, 0.9950]`` (the figure alone where it has none)."""
    return fmt(x) if not ci else f"{fmt(x)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def _ci(r: dict, *path: str):
    """The interval of the figure at ``path`` in ``r['ci']`` (None where the result has none: an old one)."""
    node = r.get("ci")
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _intervals_line(r: dict) -> str:
    about = r.get("ci_about")
    if not about:
        return ""
    tv = about.get("n_tv")
    queries = f" (TV: of its {tv['interventional']} + {tv['counterfactual']} queries)" if tv else ""
    floor = f"; the floor: of its n = {about['n_floor']} held-out pictures" if "n_floor" in about else ""
    return (
        f"[lo, hi]   {about['level']:.0%} {about['method']} intervals: {about['resamples']} resamples of the "
        f"n = {about['n']} test pictures{queries}{floor}"
    )


def summary(r: dict) -> str:
    """A readable table of :func:`cvaeq.evaluation.evaluate`'s result."""
    if r.get("renderer") is False:
        return summary_truthfree(r)
    if r.get("pixel") == "8bit":
        return summary_levels(r)
    factors = list(r["factor_accuracy"])  # the world's factor names, in its order
    width = max([12 if "ci" not in r else 26] + [len(f) + 2 for f in factors])

    def row(title: str, values: dict, *path: str) -> str:
        return f"{title:16}" + "".join(f"{_with_ci(values[f], _ci(r, *path, f)):>{width}}" for f in factors)

    def fig(*path: str) -> str:
        node = r
        for key in path:
            node = node[key]
        return _with_ci(node, _ci(r, *path))

    cf = r["counterfactual"]
    lines = [
        f"model      {r['model']}   (world {r['world']})",
        f"images     {r['n']} (uniform over the world's grid), {r['samples']} particles each, seed {r['seed']}",
        "",
        f"NLL        {fig('nll_nats')} nats/image   (-ELBO {fig('elbo_nats')})",
        f"NLL | f    {fig('nll_given_factors_nats')} nats/image   (-ELBO {fig('elbo_given_factors_nats')}; "
        "the true factors given)",
        f"recon IoU  {fig('recon_iou')}",
        "",
        f"{'':16}" + "".join(f"{f:>{width}}" for f in factors),
        row("accuracy", r["factor_accuracy"], "factor_accuracy"),
        row("cf IoU", cf["iou"], "counterfactual", "iou"),
        row("  (story, K)", cf["iou_story"], "counterfactual", "iou_story"),
        row("cf soft IoU", cf["soft_iou"], "counterfactual", "soft_iou"),
        row("cf L1 to truth", cf["l1_truth"], "counterfactual", "l1_truth"),
        row("effectiveness", cf["effectiveness"], "counterfactual", "effectiveness"),
        _rendered_row(cf, row),
        row("reversibility", cf["reversibility_by_factor"], "counterfactual", "reversibility_by_factor"),
        row("  (story)", cf["reversibility_story"], "counterfactual", "reversibility_story"),
        *_proxy_rows(r, row),
        "",
        f"cf IoU mean {fig('counterfactual', 'iou_mean')} (story, K: {fig('counterfactual', 'iou_story_mean')})",
        f"composition 1: {fig('counterfactual', 'composition', '1')}"
        f"  10: {fig('counterfactual', 'composition', '10')}"
        f"   (decoder 1: {fig('counterfactual', 'composition_decoder', '1')}"
        f"  10: {fig('counterfactual', 'composition_decoder', '10')})",
        f"reversibility {fig('counterfactual', 'reversibility')}",
        f"cf L1 mean {fig('counterfactual', 'l1_truth_mean')}",
        f"composition L1 1: {fig('counterfactual', 'composition_l1', '1')}"
        f"  10: {fig('counterfactual', 'composition_l1', '10')}"
        f"   (decoder 1: {fig('counterfactual', 'composition_decoder_l1', '1')}"
        f"  10: {fig('counterfactual', 'composition_decoder_l1', '10')})",
        f"TV         interventional {fig('tv', 'interventional')}   "
        f"counterfactual {fig('tv', 'counterfactual')}   ({r['tv']['queries']} queries)",
        *_proxy_lines(r),
        _intervals_line(r),
    ]
    return "\n".join(line for line in lines if line is not None)


def _rendered_row(cf: dict, row) -> str | None:
    """Effectiveness read by the renderer (a result written before it was reported has none)."""
    if "effectiveness_rendered" not in cf:
        return None
    return row("  (renderer)", cf["effectiveness_rendered"], "counterfactual", "effectiveness_rendered")


def summary_levels(r: dict) -> str:
    """The table of an 8-bit world's result (docs/evaluation.md, "The metrics of 8-bit worlds")."""
    factors = list(r["factor_accuracy"])
    width = max([12 if "ci" not in r else 26] + [len(f) + 2 for f in factors])

    def db(x) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    def row(title: str, values: dict, *path: str, fmt=_fmt) -> str:
        return f"{title:16}" + "".join(f"{_with_ci(values[f], _ci(r, *path, f), fmt):>{width}}" for f in factors)

    def fig(*path: str, fmt=_fmt) -> str:
        node = r
        for key in path:
            node = node[key]
        return _with_ci(node, _ci(r, *path), fmt)

    cf = r["counterfactual"]
    lines = [
        f"model      {r['model']}   (world {r['world']}, 8-bit pictures)",
        f"images     {r['n']} (uniform over the world's grid), {r['samples']} particles each, seed {r['seed']}",
        "",
        f"NLL        {fig('bits_per_dim', 'nll')} bits/dim   (-ELBO {fig('bits_per_dim', 'elbo')}; "
        f"{fig('nll_nats')} nats/picture)",
        f"NLL | f    {fig('bits_per_dim', 'nll_given_factors')} bits/dim   (the true factors given)",
        f"recon L1   {fig('recon_l1')}",
        "",
        f"{'':16}" + "".join(f"{f:>{width}}" for f in factors),
        row("accuracy", r["factor_accuracy"], "factor_accuracy"),
        row("cf L1 to truth", cf["l1"], "counterfactual", "l1"),
        row("  (story, K)", cf["l1_story"], "counterfactual", "l1_story"),
        row("cf PSNR (dB)", cf["psnr"], "counterfactual", "psnr", fmt=db),
        row("  (story, K)", cf["psnr_story"], "counterfactual", "psnr_story", fmt=db),
        row("effectiveness", cf["effectiveness"], "counterfactual", "effectiveness"),
        _rendered_row(cf, row),
        *_proxy_rows(r, row),
        "",
        f"cf L1 mean {fig('counterfactual', 'l1_mean')}   cf PSNR mean {fig('counterfactual', 'psnr_mean', fmt=db)} dB",
        f"composition (bytes that differ) 1: {fig('counterfactual', 'composition', '1')}"
        f"  10: {fig('counterfactual', 'composition', '10')}",
        f"composition, decoder L1 1: {fig('counterfactual', 'composition_decoder_l1', '1')}"
        f"  10: {fig('counterfactual', 'composition_decoder_l1', '10')}"
        f"   (PSNR {fig('counterfactual', 'composition_decoder_psnr', '1', fmt=db)}"
        f" / {fig('counterfactual', 'composition_decoder_psnr', '10', fmt=db)} dB)",
        f"TV         interventional {fig('tv', 'interventional')}   "
        f"counterfactual {fig('tv', 'counterfactual')}   ({r['tv']['queries']} queries)",
        *_proxy_lines(r),
        _intervals_line(r),
    ]
    return "\n".join(line for line in lines if line is not None)


def summary_truthfree(r: dict) -> str:
    """The table of a world without a renderer: the truth-free figures only, and why (docs/evaluation.md)."""
    tf = r["truthfree"]
    factors = list(tf["effectiveness"])  # the world's factors, in its order (sorted by a JSON round trip)
    measure = tf["measure"]

    def fig(*path: str) -> str:
        node = r
        for key in path:
            node = node[key]
        return _with_ci(node, _ci(r, *path))

    tables: list[tuple[str, ...]] = [
        ("truthfree", key, f) for key in ("effectiveness", "effectiveness_picture_only") if key in tf for f in factors
    ]
    tables += [("truthfree", "exact", f, "effectiveness_truth") for f in tf.get("exact", {})]
    tables += [("truthfree", "floor"), ("truthfree", "reversibility_l1"), ("truthfree", "proposal")]
    width = 2 + max([len(f"{f} ({measure[f]})") for f in factors] + [len(fig(*t, f)) for t in tables for f in factors])
    title = 2 + max(22, *(len(f"picture alone: do({f})") for f in factors))

    def row(name: str, *path: str) -> str:
        return f"{name:{title}}" + "".join(f"{fig(*path, f):>{width}}" for f in factors)

    about = tf["predictors"]
    lines = [
        f"model      {r['model']}   (world {r['world']}, {r['pixel']} pictures)",
        f"no truth   {r['truth']}",
        f"images     {r['n']} held-out labelled pictures, {r['samples']} particles each, seed {r['seed']}",
        f"evidence   {r.get('evidence', 'the picture alone')}",
        "",
        f"NLL        {fig('truthfree', 'bits_per_dim')} bits/dim   ({fig('truthfree', 'nll_nats')} nats/picture)",
        "",
        "effectiveness: cvaeq's predictors read every counterfactual picture under do(row) against each factor's "
        "counterfactual value in the SCM",
        f"{'':{title}}" + "".join(f"{f + ' (' + measure[f] + ')':>{width}}" for f in factors),
        *[row(f"do({f})", "truthfree", "effectiveness", f) for f in factors],
        *_picture_only_rows(tf, factors, row),
        row("floor (real held out)", "truthfree", "floor"),
        *_exact_rows(tf, row, fig),
        row("reversibility L1", "truthfree", "reversibility_l1"),
        row("proposal's posterior", "truthfree", "proposal"),
        f"factor proposal q(factors | X): ESS {fig('truthfree', 'proposal', 'ess_fraction')} of the particles "
        "(raw weights); its posterior above: P(the label) for a class, |posterior mean - label| for a number",
        "",
        f"composition L1, engine 1: {fig('truthfree', 'composition_l1', '1')}"
        f"  10: {fig('truthfree', 'composition_l1', '10')}",
        f"composition L1, decoder 1: {fig('truthfree', 'composition_decoder_l1', '1')}"
        f"  10: {fig('truthfree', 'composition_decoder_l1', '10')}",
        f"reversibility L1 mean {fig('truthfree', 'reversibility_l1_mean')}",
        f"predictors: trained on {about['trained_on']} labelled pictures, floor on {about['held_out']} held out "
        f"(n = {r['ci_about'].get('n_floor')}); conditioned on "
        + (", ".join(f"{f}: {', '.join(c)}" for f, c in about["conditioned_on"].items() if c) or "nothing"),
        "",
        "targets",
        *[f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {_fmt(t['value'])}" for t in r["targets"]],
        _intervals_line(r),
    ]
    return "\n".join(lines)


def _picture_only_rows(tf: dict, factors: list, row) -> list[str]:
    """The effectiveness with the picture alone as evidence (the labelled protocol's second matrix)."""
    if "effectiveness_picture_only" not in tf:
        return []
    return [row(f"picture alone: do({f})", "truthfree", "effectiveness_picture_only", f) for f in factors]


def _exact_rows(tf: dict, row, fig) -> list[str]:
    """Under do() of a factor the world redraws exactly: the predictors on the true counterfactual
    pictures, and the model's mean picture's L1 to them."""
    out = []
    for f in tf.get("exact", {}):
        out.append(row(f"do({f}), true picture", "truthfree", "exact", f, "effectiveness_truth"))
        out.append(
            f"  do({f}): the true counterfactual is the world's own redrawing; L1 of the model's mean "
            f"picture to it {fig('truthfree', 'exact', f, 'l1')}"
        )
    return out


def _proxy_rows(r: dict, row) -> list[str]:
    """The predictors' effectiveness beside the true figures (``--proxies``), as table rows."""
    p = r.get("proxies")
    if not p:
        return []
    return [
        row("eff. predictors", p["effectiveness"], "proxies", "effectiveness"),
        row("  (on the truth)", p["effectiveness_truth"], "proxies", "effectiveness_truth"),
        row("  (floor)", p["floor"], "proxies", "floor"),
    ]


def _proxy_lines(r: dict) -> list[str]:
    p = r.get("proxies")
    if not p:
        return []
    return [
        "eff. predictors: cvaeq's anti-causal predictors read the model's counterfactuals (accuracy; MAE for a "
        "continuous factor); on the truth: the same predictors read the true counterfactual pictures; floor: "
        f"the predictors on real held-out pictures ({p['about']})"
    ]


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
    help="Evaluate the checkpoint shipped for this story (default, pendulum, colour_pendulum, morphomnist) "
    "instead of --model.",
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
@click.option(
    "--proxies",
    is_flag=True,
    help="On a world with a renderer, also the figures that need none: cvaeq's anti-causal predictors read the "
    "model's and the true counterfactuals (trained once, about a minute, then read from the cache). "
    "A world without a renderer always gets these, and only these.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(model, story, n, seed, samples, tv_particles, threads, proxies, as_json, quiet):
    """Score a model: likelihood, factor accuracy, counterfactuals against the
    true (rendered) counterfactuals (IoU, L1), axiomatic soundness
    (effectiveness, composition, reversibility), and TV to the story; every
    figure with its 95% bootstrap interval over the test pictures. A world
    without a renderer has no true counterfactual: it gets the figures that
    need none (cvaeq's anti-causal predictors beside their floor, composition,
    reversibility, bits/dim, pass/fail targets), and only those.

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
            proxies=proxies,
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
