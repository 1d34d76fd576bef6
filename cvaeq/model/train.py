"""Training an image model: the run's setup, the epoch loop, per-epoch
scoring, checkpoints and resume.

:func:`train` is what ``cvaeq train`` runs, for any registered image-model
family (:mod:`cvaeq.model.family`; ``TrainConfig.family``, default the causal
VAE). The family builds the model for the story's world; each step minimises
the model's ``loss(x, classes)`` (for the causal VAE, Pyro's
``Trace_ELBO().differentiable_loss`` on its model and guide, the objective
``pyro.infer.SVI`` steps) with a torch Adam optimizer over the one module, so
the optimizer's state can be checkpointed as plain tensors and the module
wrapped by DistributedDataParallel. The learning rate follows a cosine from
``lr`` down to ``lr / 20`` over the planned epochs, or over ``time_limit``
minutes if that is reached first.

A fraction ``uniform`` of the training images have factors drawn uniformly
from the world's whole grid, so the networks also learn the combinations the
story makes rare; the factor mechanisms are fitted from the story's part
only (:mod:`cvaeq.model.training_data`).

A world without a renderer (real labelled pictures, e.g. ``morphomnist``)
has no grid to resample: the run trains on its labelled files
(:mod:`cvaeq.model.labelled_data`; rows before the held-out test rows, the
first ``n`` of them), scores the held-out rows after every epoch, and fits
the factor mechanisms it can from the training rows' labels: the discrete
factors with discrete parents, and the laws of the continuous factors the
story leaves to be learned (``learn = true``, :func:`fit_learned_laws`),
which the checkpoint records (``meta["laws"]``); a continuous factor whose
law the story states keeps the story's.

After every epoch, rank 0 scores two held-out sets, a resample of the story
and images uniform over the grid (:func:`~cvaeq.model.validation.validation_scores`),
writes the checkpoint atomically and redraws the loss curve
(:mod:`cvaeq.model.history`). Resuming reloads weights, optimizer state,
epoch and history; the data come from the same story, size and seed, and
every epoch's shuffle and noise are seeded by (seed, epoch), so a resumed run
continues exactly where the checkpointed one would have.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, CvaeqError
from .checkpoint import load_checkpoint, save_checkpoint
from .cvae import ORIENTATION_LOSSES
from .denormals import flush_denormals
from .factors import fit_factor_logits
from .family import check_pixel_kind, default_family, get_family
from .history import epoch_ticks, loss_png_path, plot_history
from .training_data import eval_seed, load_training_data
from .validation import validation_scores

__all__ = [
    "TrainConfig",
    "train",
    "load_training_data",
    "validation_scores",
    "pick_device",
    "plot_history",
    "loss_png_path",
    "epoch_ticks",
]

#: TrainConfig fields that are options of the causal VAE, handed to its family's
#: ``build`` in ``arch`` when set (``cvaeq train --aux-weight/--orientation-loss``).
_MODEL_OPTIONS = ("aux_weight", "orientation_loss")


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the checkpoint)."""

    story: str = "default"
    n: int = 200_000
    epochs: int = 20
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0
    eval_n: int = 5_000
    uniform: float = 0.25  # fraction of training images drawn uniformly from the grid
    #: weight of the causal VAE's classifier term; None: the family's default (10)
    #: for a new run, the checkpoint's for --init and --resume
    aux_weight: float | None = None
    #: how q(orientation | X) is scored (cvaeq.model.cvae); None: "exact" for a
    #: new run, the checkpoint's own for a resumed one (a value given on resume changes it)
    orientation_loss: str | None = None
    device: str = "auto"
    time_limit: float | None = None  # minutes (of training, across resumes); at least one epoch runs
    #: the image-model family's architecture (``cvaeq train --arch``); the
    #: family's defaults, completed by the world's hints, fill the rest
    arch: dict = field(default_factory=dict)
    #: set by ``init=``: where the starting weights came from (file name, its
    #: epochs and training config); None for a run from random weights
    init: dict | None = None
    #: the registered image-model family that builds the model (None: the
    #: world's, :func:`~cvaeq.model.family.default_family`)
    family: str | None = None

    def validate(self) -> None:
        from ..limits import MAX_BATCH, MAX_EPOCHS, MAX_EVAL_IMAGES, MAX_IMAGES, MAX_SEED, check_count

        for name, bound in (
            ("n", MAX_IMAGES),
            ("epochs", MAX_EPOCHS),
            ("batch", MAX_BATCH),
            ("eval_n", MAX_EVAL_IMAGES),
        ):
            check_count(getattr(self, name), f"--{name.replace('_', '-')}", bound)
        check_count(self.seed, "--seed", MAX_SEED, low=0)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise CvaeqError(f"--lr must be a positive number, got {self.lr}")
        if self.aux_weight is not None and (
            isinstance(self.aux_weight, bool)
            or not isinstance(self.aux_weight, (int, float))
            or not (math.isfinite(self.aux_weight) and self.aux_weight >= 0)
        ):
            raise CvaeqError(f"--aux-weight must be a finite number >= 0, got {self.aux_weight}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise CvaeqError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 <= self.uniform < 1.0:
            raise CvaeqError(f"--uniform must be a fraction in [0, 1), got {self.uniform}")
        if self.orientation_loss is not None and self.orientation_loss not in ORIENTATION_LOSSES:
            raise CvaeqError(
                f"--orientation-loss must be one of {', '.join(ORIENTATION_LOSSES)}, got {self.orientation_loss!r}"
            )
        if self.time_limit is not None and not self.time_limit > 0:
            raise CvaeqError(f"--time-limit must be a positive number of minutes, got {self.time_limit}")
        if self.family is not None:
            get_family(self.family)  # unknown: a one-line error listing the registered families


def pick_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CvaeqError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(name)


@dataclass(eq=False)
class _Run:
    """What one training run holds between its phases."""

    config: TrainConfig
    out: Path
    story: Any
    model: Any
    say: Callable[[str], None]
    new: bool = False  # a run from random weights (not resumed, not --init)
    rank: int = 0
    processes: int = 1
    dist_ctx: Any = None
    start_epoch: int = 0
    history: list = field(default_factory=list)
    optim_state: dict | None = None
    factor_logits: dict | None = None
    #: the fitted laws of the story's learned continuous factors (fit_learned_laws), or None
    laws: dict | None = None
    device: torch.device = torch.device("cpu")
    images: np.ndarray | None = None  # the training images and classes (_load_data)
    classes: np.ndarray | None = None


def train(
    config: TrainConfig,
    out: str | Path,
    resume: str | Path | None = None,
    progress: bool = True,
    log=None,
    dist_ctx=None,
    init: str | Path | None = None,
    threads: int | None = None,
) -> Path:
    """Train (or resume) and checkpoint after every epoch; returns the checkpoint path.

    :param init: start a new run from this checkpoint's networks (its
        family, architecture and story; fresh data, optimizer, schedule and
        epoch count): fine-tuning on more or other data. Not with ``resume``.
    :param dist_ctx: a :class:`~cvaeq.model.distributed.DistContext` when run
        under torchrun; rank 0 evaluates and writes, all ranks train.
        Denormals are flushed to zero meanwhile (:mod:`cvaeq.model.denormals`).
    :param threads: torch's CPU threads for the run (None: as ``cvaeq train``
        picks them, :mod:`cvaeq.threads`; the caller's count is restored
        after). The trained numbers depend on the count (float32 sums are
        split among the threads), never on the machine's load.
    """
    if init is not None and resume is not None:
        raise CvaeqError("--init starts a new run from a checkpoint's networks, --resume continues one; give one")
    from contextlib import nullcontext

    from ..paths import output_lock

    out = Path(out)
    writes = dist_ctx is None or dist_ctx.rank == 0  # rank 0 alone writes
    from ..threads import threads_for

    with threads_for(threads), output_lock(out, loss_png_path(out)) if writes else nullcontext(), flush_denormals():
        run = _setup(config, out, resume, init, dist_ctx, log)
        if run.start_epoch >= config.epochs:
            run.say(f"{resume} already has {run.start_epoch} epochs (asked for {config.epochs}); nothing to do")
            return Path(out if resume is None else resume)
        held = _load_data(run, progress)
        _fit(run, held, progress)
        return run.out


def _setup(config: TrainConfig, out: Path, resume, init, dist_ctx, log) -> _Run:
    """The run's story and model: a resumed checkpoint's, an --init checkpoint's networks, or new ones."""
    rank = dist_ctx.rank if dist_ctx else 0

    def say(msg: str) -> None:
        if rank == 0:
            (log or (lambda m: print(m, file=sys.stderr)))(msg)

    if resume is not None:
        run = _resumed(config, out, resume, say)
    else:
        config.validate()
        run = _initial(config, out, init, say) if init is not None else _new(config, out, say)
    run.rank, run.dist_ctx = rank, dist_ctx
    run.processes = dist_ctx.world_size if dist_ctx else 1
    run.device = dist_ctx.device if dist_ctx else pick_device(config.device)
    if config.orientation_loss is not None and hasattr(run.model, "orientation_loss"):
        run.model.orientation_loss = config.orientation_loss  # a resumed run may change it
    return run


def _resumed(config: TrainConfig, out: Path, resume, say) -> _Run:
    ckpt = load_checkpoint(resume)
    saved = dict(ckpt.meta["train_config"])
    # The data and model must be the same; the length of the run may change.
    for key in ("story", "n", "seed", "batch", "aux_weight", "arch", "uniform", "init"):
        if key in saved:
            setattr(config, key, saved[key])
    config.family = ckpt.family
    if ckpt.optimizer_state is None:
        raise CheckpointError(f"{resume}: has no optimizer state (not written by `cvaeq train`); cannot resume")
    if config.orientation_loss is None:
        config.orientation_loss = getattr(ckpt.model, "orientation_loss", None)
    config.validate()
    say(f"resuming from {resume} at epoch {ckpt.epoch}")
    return _Run(
        config,
        out,
        ckpt.story,
        ckpt.model,
        say,
        start_epoch=ckpt.epoch,
        history=list(ckpt.meta["history"]),
        optim_state=ckpt.optimizer_state,
        factor_logits=ckpt.factor_logits,
        laws=ckpt.laws,
    )


def _options(config: TrainConfig) -> dict:
    """The model options set in ``config`` (``aux_weight``, ``orientation_loss``)."""
    return {k: getattr(config, k) for k in _MODEL_OPTIONS if getattr(config, k) is not None}


def _record_model(config: TrainConfig, model) -> None:
    """Write the built model's architecture and options back into ``config``."""
    arch = get_family(config.family).arch_of(model)
    config.arch = {k: v for k, v in arch.items() if k not in _MODEL_OPTIONS}
    for key in _MODEL_OPTIONS:
        if key in arch:
            setattr(config, key, arch[key])


def _new(config: TrainConfig, out: Path, say) -> _Run:
    from ..story import load_story

    story = load_story(config.story)
    torch.manual_seed(config.seed)
    config.family = config.family or default_family(story.world)
    family = get_family(config.family)
    check_pixel_kind(family, config.family, story.world)
    model = family.build(story.world, story.latent_dim, {**config.arch, **_options(config)})
    _record_model(config, model)
    return _Run(config, out, story, model, say, new=True)


def _initial(config: TrainConfig, out: Path, init, say) -> _Run:
    """The networks and story of checkpoint ``init`` for a new run; records it in ``config.init``."""
    from ..story import load_story

    ckpt = load_checkpoint(init)
    story = load_story(config.story)
    same = (
        story.world.name == ckpt.story.world.name
        and story.latent_dim == ckpt.story.latent_dim
        and set(story.tables) == set(ckpt.story.tables)  # a continuous factor has no table
        and all(story.parents(f) == ckpt.story.parents(f) for f in story.world.names)
        and all(np.array_equal(story.tables[f], ckpt.story.tables[f]) for f in story.tables)
    )
    if not same:
        raise CvaeqError(
            f"--init {init}: its story {ckpt.story.name!r} is not --story {config.story!r}; "
            "fine-tune on the story it was trained on"
        )
    model = ckpt.model
    for key, value in _options(config).items():
        if key == "aux_weight" and hasattr(model, key):
            setattr(model, key, float(value))
    config.family = ckpt.family
    _record_model(config, model)
    config.init = {"file": Path(init).name, "epochs": ckpt.epoch, "train_config": ckpt.meta.get("train_config")}
    say(f"starting from the networks of {init} ({ckpt.epoch} epochs)")
    return _Run(config, out, ckpt.story, model, say)


def _load_data(run: _Run, progress: bool) -> dict:
    """Put the training images and classes on ``run``, fit a new run's factor
    tables, and return the held-out sets (rank 0 only): ``{name: (images, classes)}``."""
    config, story = run.config, run.story
    if not story.world.has_renderer:
        return _load_labelled(run)
    if config.n // run.processes < config.batch:
        raise CvaeqError(
            f"--n {config.n} is smaller than one batch per process ({config.batch} x {run.processes}); "
            "lower --batch or raise --n"
        )
    images, classes, source, n_story = load_training_data(
        story, config.n, config.seed, progress and run.rank == 0, uniform=config.uniform
    )
    run.say(
        f"training data: {n_story} images of story {story.name!r} and {config.n - n_story} uniform over the "
        f"grid (seed {config.seed}, {source})"
    )
    if run.factor_logits is None:
        if n_story < 10:
            raise CvaeqError(f"only {n_story} training images follow the story; lower --uniform or raise --n")
        run.factor_logits = fit_factor_logits(classes[:n_story], story, seed=config.seed)
    run.images, run.classes = images, classes
    if run.rank != 0:
        return {}
    return {
        name: load_training_data(story, config.eval_n, eval_seed(config.seed), False, uniform=u, part="test")[:2]
        for name, u in (("eval", 0.0), ("eval_uniform", 1.0))
    }


def _load_labelled(run: _Run) -> dict:
    """:func:`_load_data` for a world without a renderer: its labelled files' training rows
    (the first ``n``), and its held-out test rows (the first ``eval_n``) to score."""
    from .labelled_data import labelled_split

    config, story = run.config, run.story
    (images, factors), held = labelled_split(story.world, n_train=config.n, n_test=config.eval_n)
    if len(images) // run.processes < config.batch:
        raise CvaeqError(
            f"{len(images)} training pictures of world {story.world.name!r} are fewer than one batch per "
            f"process ({config.batch} x {run.processes}); lower --batch"
        )
    run.say(
        f"training data: {len(images)} labelled pictures of world {story.world.name!r} ({story.world.data}); "
        f"held out: {len(held[0])} test pictures"
    )
    if run.new and hasattr(run.model, "standardise_factors"):
        run.model.standardise_factors(factors)  # a continuous factor's scale, from the training rows
    if run.factor_logits is None:
        run.factor_logits = fit_factor_logits(factors, story, seed=config.seed)
        run.laws = fit_learned_laws(factors, story)
        for f, law in run.laws.items():
            run.say(f"fitted law of {f}: {law_line(f, law)} ({len(factors)} training rows)")
    run.images, run.classes = images, factors
    return {"eval": held} if run.rank == 0 else {}


def fit_learned_laws(factors: np.ndarray, story) -> dict[str, dict[str, Any]]:
    """The laws of the continuous factors that ``story`` leaves to be learned (``learn =
    true``), fitted to the training rows' labels ``factors`` ``(N, F)`` in closed form
    (:func:`cvaeq.invertible.fit_laws`, keeping the form the story gives: its link, its
    frame): ``{factor: law table}``, which the checkpoint records as ``meta["laws"]``
    and a loaded model's SCM uses. ``{}`` when the story states every law.

    The caller passes the training rows only (the held-out test rows never reach a fit).
    A fit that fails (labels the stated form cannot give) is a CvaeqError naming the factor.
    """
    from ..invertible import LawError, fit_laws

    learned = list(getattr(story, "learned", {}) or {})
    if not learned:
        return {}
    try:
        return fit_laws(story, factors, only=learned)
    except LawError as e:
        raise CvaeqError(f"story {story.name!r}: {e}") from None


def law_line(factor: str, law: dict[str, Any]) -> str:
    """A fitted law in one line, as the formula it is:
    ``intensity = 64 + 191 * sigmoid(-4.96 + 1.99 * thickness + 0.499 * e), e ~ normal``.

    >>> law_line("t", {"parents": [], "link": "exp", "offset": 0.5, "gain": 1.0, "bias": 0.3,
    ...                "weights": {}, "scale": 0.25, "noise": "normal"})
    't = 0.5 + exp(0.3 + 0.25 * e), e ~ normal'
    """
    inner = [f"{law['bias']:.4g}"]
    for p, w in law.get("weights", {}).items():
        if isinstance(w, dict):
            inner.append(f"w_{p}[{p}] ({', '.join(f'{k}: {v:.3g}' for k, v in w.items())})")
        else:
            inner.append(f"{w:.4g} * {p}")
    inner.append(f"{law['scale']:.4g} * e")
    core = " + ".join(inner)
    core = core if law["link"] == "identity" else f"{law['link']}({core})"
    gain = "" if law["gain"] == 1 else f"{law['gain']:.4g} * "
    offset = "" if law["offset"] == 0 else f"{law['offset']:.4g} + "
    noise = law["noise"] if isinstance(law["noise"], str) else law["noise"].get("kind", "?")
    return f"{factor} = {offset}{gain}{core}, e ~ {noise}"


def _optimizer(run: _Run) -> torch.optim.Optimizer:
    """Adam over the model's parameters, with a resumed run's state on the device."""
    # the fused kernel: one pass over each parameter (about a tenth of a CPU step otherwise)
    opt = torch.optim.Adam(run.model.parameters(), lr=run.config.lr, fused=True)
    if run.optim_state is not None:
        try:
            opt.load_state_dict(run.optim_state)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
            raise CheckpointError(
                f"the checkpoint's optimizer state does not fit its model ({type(e).__name__}); "
                "it cannot be resumed: start a new run with --init"
            ) from None
        for st in opt.state.values():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    st[k] = v.to(run.device)
    return opt


def _fit(run: _Run, held: dict, progress: bool) -> None:
    """The epoch loop: train an epoch, then score, checkpoint and plot it (rank 0)."""
    from torch.utils.data import DistributedSampler

    from ..data.dataset import make_loader

    config, model = run.config, run.model
    model.to(run.device).train()
    net = run.dist_ctx.wrap(model) if run.dist_ctx is not None else model
    opt = _optimizer(run)
    assert run.images is not None and run.classes is not None  # _load_data gave them
    sampler: DistributedSampler = DistributedSampler(
        range(len(run.classes)),  # type: ignore[arg-type]  # any sized sequence: only its length is read
        num_replicas=run.processes,
        rank=run.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    if run.story.world.has_renderer:
        loader: Any = make_loader(
            run.images,
            run.classes,
            batch_size=config.batch,
            sampler=sampler,
            drop_last=True,
            pixel=run.story.world.pixel,
        )
    else:  # labelled pictures: the factors keep their dtype (float64 with a continuous factor)
        from .labelled_data import LabelledBatches

        loader = LabelledBatches(run.images, run.classes, config.batch, sampler)
    t_run = time.monotonic() - sum(h.get("seconds", 0.0) for h in run.history)  # time limits count earlier runs too
    last_epoch_s = run.history[-1].get("seconds", 0.0) if run.history else 0.0
    for epoch in range(run.start_epoch, config.epochs):
        if config.time_limit and epoch > 0 and (time.monotonic() - t_run + last_epoch_s) > 60 * config.time_limit:
            run.say(f"time limit of {config.time_limit:g} min reached; stopping after epoch {epoch}")
            break
        sampler.set_epoch(epoch)
        torch.manual_seed(int(np.random.SeedSequence([config.seed, epoch, run.rank]).generate_state(1)[0]))
        with warnings.catch_warnings():
            # a non-finite loss stops the run with one clear line (_check_finite), not Pyro's warning too
            warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
            train_elbo, seen, last_epoch_s = _train_epoch(run, net, opt, loader, epoch, t_run, progress)
        if run.dist_ctx is not None:
            run.dist_ctx.barrier()
        if run.rank == 0:
            _score_and_save(run, held, opt, epoch, train_elbo, seen, last_epoch_s)
        if run.dist_ctx is not None:
            run.dist_ctx.barrier()


def _step(run: _Run, net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The loss of one batch and its parts (through DDP's forward when distributed)."""
    if run.dist_ctx is None:
        return run.model.loss(x, y)
    loss = net(x, y)
    return loss, getattr(run.model, "_parts", None) or {"elbo_nats": float(loss.detach())}


def _train_epoch(run: _Run, net, opt, loader, epoch: int, t_run: float, progress: bool) -> tuple[float, int, float]:
    """One epoch of Adam steps; returns the mean training -ELBO, images seen and seconds."""
    from tqdm import tqdm

    config, processes = run.config, run.processes
    steps = len(loader)
    t0 = time.monotonic()
    total, seen = 0.0, 0
    bar = tqdm(
        loader,
        total=steps,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        unit="batch",
        file=sys.stderr,
        disable=not (progress and run.rank == 0),
        dynamic_ncols=True,
    )
    for i, (x, y) in enumerate(bar):
        for g in opt.param_groups:
            g["lr"] = _lr_at(config, epoch + i / steps, time.monotonic() - t_run)
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        loss, parts = _step(run, net, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # first: under DDP every rank joins the gradients' all-reduce, then all stop alike
        _check_finite(run, loss, parts, epoch, i)
        opt.step()
        total += parts["elbo_nats"] * len(y)
        seen += len(y)
        if i % 10 == 0 or i == steps - 1:
            rate = seen * processes / max(time.monotonic() - t0, 1e-9)
            left = ((steps - i - 1) + (config.epochs - epoch - 1) * steps) * config.batch * processes / rate
            if config.time_limit:
                left = min(left, max(60 * config.time_limit - (time.monotonic() - t_run), 0.0))
            extra = {"aux": f"{parts['aux_nll']:.3f}"} if "aux_nll" in parts else {}
            bar.set_postfix(
                elbo=f"{total / seen:.2f}", **extra, img_s=f"{rate:.0f}", eta=_fmt_time(left), refresh=False
            )
    bar.close()
    return total / seen, seen, time.monotonic() - t0


def _check_finite(run: _Run, loss: torch.Tensor, parts: dict, epoch: int, step: int) -> None:
    """Stop at the first non-finite loss, before the optimizer steps: a diverged
    run must not write NaN weights over the last good checkpoint."""
    value = parts.get("elbo_nats", 0.0)
    if math.isfinite(value) and bool(torch.isfinite(loss.detach())):
        return
    bad = float(loss.detach()) if not bool(torch.isfinite(loss.detach())) else value
    kept = f"{run.out} keeps its last good epoch" if run.out.exists() else f"nothing was written to {run.out}"
    raise CvaeqError(
        f"training diverged: the loss is {bad} at epoch {epoch + 1}, step {step + 1}; {kept}; "
        "lower --lr (or --aux-weight) and start again"
    )


def _score_and_save(run: _Run, held: dict, opt, epoch: int, train_elbo: float, seen: int, seconds: float) -> None:
    """Score the held-out sets, append the epoch to the history, write the checkpoint and the loss curve."""
    config = run.config
    evs = {
        name: validation_scores(run.model, images, classes, run.device, seed=config.seed, world=run.story.world)
        for name, (images, classes) in held.items()
    }
    ev, evu = evs["eval"], evs.get("eval_uniform")
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_elbo_nats": train_elbo,
        "images_per_s": seen * run.processes / seconds,
        "seconds": seconds,
        "processes": run.processes,
    }
    if config.orientation_loss is not None:
        record["orientation_loss"] = config.orientation_loss
    run.history.append({**record, "eval": ev, **({"eval_uniform": evu} if evu is not None else {})})
    assert run.factor_logits is not None  # fitted before the first epoch
    save_checkpoint(
        run.out,
        run.model,
        run.story,
        run.factor_logits,
        family=config.family,
        train_config=asdict(config),
        epoch=epoch + 1,
        history=run.history,
        optimizer=opt,
        data_seed=config.seed,
        laws=run.laws,
    )
    plot_history(run.history, loss_png_path(run.out))
    if evu is None:  # labelled pictures: the held-out test rows alone
        run.say(_labelled_line(epoch, train_elbo, ev, seen * run.processes / seconds, run.out))
        return
    acc = " ".join(f"{f}={a:.3f}" for f, a in evu["accuracy"].items())
    if "bits_per_dim" in evu:  # an 8-bit world: the likelihood in the literature's unit, and the L1 of the mean picture
        recon = (
            f"held-out {ev['bits_per_dim']:.4f} bits/dim (story), {evu['bits_per_dim']:.4f} (uniform grid); "
            f"uniform grid: recon L1 {evu['recon_l1']:.4f}"
        )
    else:
        recon = f"uniform grid: recon IoU {evu['recon_iou']:.3f}"
    run.say(
        f"epoch {epoch + 1}: train -ELBO {train_elbo:.2f}, held-out -ELBO {ev['elbo_nats']:.2f} nats/image "
        f"(story), {evu['elbo_nats']:.2f} (uniform grid); {recon}, "
        f"accuracy {acc}; {seen * run.processes / seconds:.0f} images/s -> {run.out}"
    )


def _labelled_line(epoch: int, train_elbo: float, ev: dict, rate: float, out: Path) -> str:
    """The epoch's line for a world of labelled pictures (its held-out test rows)."""
    acc = " ".join(f"{f}={a:.3f}" for f, a in ev["accuracy"].items())
    mae = " ".join(f"{f}={a:.3g}" for f, a in ev.get("mae", {}).items())
    return (
        f"epoch {epoch + 1}: train -ELBO {train_elbo:.2f}, held-out -ELBO {ev['elbo_nats']:.2f} nats/image, "
        f"{ev['bits_per_dim']:.4f} bits/dim; recon L1 {ev['recon_l1']:.4f}; accuracy {acc}"
        + (f"; MAE {mae}" if mae else "")
        + f"; {rate:.0f} images/s -> {out}"
    )


def _lr_at(config: TrainConfig, epoch: float, seconds: float = 0.0) -> float:
    """Cosine from ``lr`` to ``lr / 20``, over the planned epochs, or over the
    time limit if that comes first (so a time-limited run still anneals)."""
    frac = epoch / config.epochs
    if config.time_limit:
        frac = max(frac, seconds / (60 * config.time_limit))
    frac = min(frac, 1.0)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
