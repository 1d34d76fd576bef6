"""Training the causal VAE: data, the SVI loop, per-epoch evaluation,
checkpoints, resume and the loss-curve PNG.

:func:`train` is what ``cvaeq train`` runs. Each step minimises the
Trace_ELBO loss of :class:`~cvaeq.model.cvae.CausalVAE` (Pyro's
``Trace_ELBO().differentiable_loss`` on the model and guide, the same
objective ``pyro.infer.SVI`` steps) with a torch Adam optimizer over the one
module, so the optimizer's state can be checkpointed as plain tensors and
the module wrapped by DistributedDataParallel. The learning rate follows a
cosine from ``lr`` down to ``lr / 20`` over the planned epochs, or over
``time_limit`` minutes if that is reached first.

A fraction ``uniform`` of the training images have factors drawn uniformly
from the whole grid, so the networks also learn the combinations the story
makes rare; the factor mechanisms are fitted from the story's part only.

After every epoch, rank 0 evaluates two held-out sets, a resample of the
story and images uniform over the grid (ELBO per image, factor accuracy,
reconstruction IoU), writes the checkpoint atomically and
redraws the loss curve. Resuming reloads weights, optimizer state, epoch and
history; the data come from the same story, size and seed, and every epoch's
shuffle and noise are seeded by (seed, epoch), so a resumed run continues
exactly where the checkpointed one would have.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..worlds.dsprites.factors import FACTORS
from ..errors import CheckpointError, CvaeqError
from .checkpoint import load_checkpoint, save_checkpoint
from .denormals import flush_denormals
from .cvae import DEFAULT_AUX_WEIGHT, ORIENTATION_LOSSES, CausalVAE
from .factors import fit_factor_logits
from .networks import ArchConfig, onehot
from ..worlds.dsprites.symmetry import orientation_equivalence

__all__ = ["TrainConfig", "train", "load_training_data", "evaluate", "pick_device", "plot_history"]


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
    aux_weight: float = DEFAULT_AUX_WEIGHT
    #: how q(orientation | X) is scored (cvaeq.model.cvae); None: "exact" for a
    #: new run, the checkpoint's own for a resumed one (a value given on resume changes it)
    orientation_loss: str | None = None
    device: str = "auto"
    time_limit: float | None = None  # minutes (of training, across resumes); at least one epoch runs
    arch: dict = field(default_factory=dict)
    #: set by ``init=``: where the starting weights came from (file name, its
    #: epochs and training config); None for a run from random weights
    init: dict | None = None

    def validate(self) -> None:
        for name in ("n", "epochs", "batch", "eval_n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CvaeqError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")
        if self.seed < 0:
            raise CvaeqError(f"--seed must be >= 0, got {self.seed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise CvaeqError(f"--lr must be a positive number, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise CvaeqError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 <= self.uniform < 1.0:
            raise CvaeqError(f"--uniform must be a fraction in [0, 1), got {self.uniform}")
        if self.orientation_loss is not None and self.orientation_loss not in ORIENTATION_LOSSES:
            raise CvaeqError(f"--orientation-loss must be one of {', '.join(ORIENTATION_LOSSES)}, "
                             f"got {self.orientation_loss!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise CvaeqError(f"--time-limit must be a positive number of minutes, got {self.time_limit}")


def pick_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CvaeqError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(name)


def _eval_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def load_training_data(story, n: int, seed: int, progress: bool = True,
                       uniform: float = 0.0) -> tuple[np.ndarray, np.ndarray, str, int]:
    """uint8 images ``(n, 64, 64)``, classes ``(n, 5)``, where the images came
    from, and how many of the first rows follow the story.

    ``resample(story, n_story, seed)`` picks the first ``n_story = n - round(uniform * n)``
    factor tuples; the other ``round(uniform * n)`` are drawn uniformly from
    the whole grid (seeded by ``seed``), so that the networks also see the
    combinations the story makes rare (``cvaeq eval`` tests on the uniform
    grid). Images are read from the cached grid file when there is one
    (``cvaeq data build``), else rendered.
    """
    from tqdm import tqdm

    from ..worlds.dsprites.factors import LATENT_SIZES, indices_of
    from ..data.files import load_grid
    from ..data.resample import images_for, resample
    from ..paths import default_grid_path

    n_uniform = int(round(uniform * n))
    n_story = n - n_uniform
    parts = []
    if n_story:
        parts.append(resample(story, n_story, seed).classes)
    if n_uniform:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        parts.append(np.stack([rng.integers(0, k, n_uniform) for k in LATENT_SIZES[1:]], 1).astype(np.int64))
    classes = np.concatenate(parts)
    gpath = default_grid_path()
    grid = load_grid(gpath) if gpath.is_file() else None
    source = f"grid file {gpath}" if grid is not None else "rendered"
    images = np.empty((n, 64, 64), dtype=np.uint8)
    bar = tqdm(total=n, desc=f"images ({source})", unit="img", unit_scale=True, file=sys.stderr,
               disable=not progress, leave=False)
    start = 0
    with bar:
        for chunk in images_for(indices_of(classes), grid):
            images[start : start + len(chunk)] = chunk
            start += len(chunk)
            bar.update(len(chunk))
    return images, classes, source, n_story


@torch.no_grad()
def evaluate(model: CausalVAE, images: np.ndarray, classes: np.ndarray, device: torch.device,
             batch: int = 500, seed: int = 0) -> dict:
    """Held-out figures: ``elbo_nats`` (-ELBO of log p(X | factors), nats/image,
    one particle), ``aux_nll``, ``accuracy`` per factor of q(factors | X)
    (orientation modulo symmetry), ``orientation_exact`` (the exact orientation
    class, which rasterisation usually tells apart) and ``recon_iou`` (IoU of the decoded mean
    image at Z's posterior mean, thresholded at 0.5, with the input)."""
    was_training = model.training
    model.eval()
    equiv = orientation_equivalence()
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    n = len(classes)
    elbo = aux = inter = union = 0.0
    correct = {f: 0 for f in FACTORS}
    exact = 0
    for start in range(0, n, batch):
        x = torch.from_numpy(images[start : start + batch]).to(device).float()
        y = torch.from_numpy(classes[start : start + batch]).to(device)
        _, parts = model.loss(x, y)
        b = len(y)
        elbo += parts["elbo_nats"] * b
        aux += parts["aux_nll"] * b
        pred = {f: p.cpu().numpy() for f, p in model.last_predictions().items()}
        yc = classes[start : start + batch]
        for i, f in enumerate(FACTORS):
            if f == "orientation":
                ok = equiv[yc[:, 0], pred[f], yc[:, i]]
                exact += int((pred[f] == yc[:, i]).sum())
            else:
                ok = pred[f] == yc[:, i]
            correct[f] += int(ok.sum())
        loc, _ = model.z_params(model.features(x), onehot(y))
        rec = model.pixel_logits(y, loc) > 0
        xb = x > 0.5
        inter += float((rec & xb).sum())
        union += float((rec | xb).sum())
    torch.set_rng_state(gen_state)
    model.train(was_training)
    return {
        "elbo_nats": elbo / n,
        "aux_nll": aux / n,
        "accuracy": {f: correct[f] / n for f in FACTORS},
        "orientation_exact": exact / n,
        "recon_iou": inter / max(union, 1.0),
    }


def epoch_ticks(first: int, last: int) -> list[int]:
    """At most 11 round epoch numbers between ``first`` and ``last`` to label
    the loss curve's axis with (every 1, 2, 5, 10, 20, 50, ... epochs)."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if (last - first) / s <= 10)
    return list(range(math.ceil(first / step) * step, last + 1, step))


def plot_history(history: list[dict], out: Path) -> Path:
    """Draw train loss and held-out -ELBO per epoch as a PNG (Pillow only)."""
    from PIL import Image, ImageDraw

    from ..paths import atomic_path

    w, h, pad = 640, 400, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    series = {
        "train -ELBO": ([e["epoch"] for e in history], [e["train_elbo_nats"] for e in history], (31, 119, 180)),
        "held-out -ELBO": ([e["epoch"] for e in history], [e["eval"]["elbo_nats"] for e in history], (214, 39, 40)),
    }
    ys = [v for _, vs, _ in series.values() for v in vs if math.isfinite(v)] or [0.0, 1.0]
    xs = [e["epoch"] for e in history] or [1]
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)

    def px(x, y):
        return (pad + (x - x0) / (x1 - x0) * (w - 2 * pad), h - pad - (y - lo) / (hi - lo) * (h - 2 * pad))

    d.rectangle([pad, pad, w - pad, h - pad], outline="black")
    for k in range(5):
        yv = lo + (hi - lo) * k / 4
        _, yp = px(x0, yv)
        d.text((4, yp - 6), f"{yv:.1f}", fill="black")
    for xv in epoch_ticks(x0, x1):
        xp, yp = px(xv, lo)
        d.line([xp, yp, xp, yp + 4], fill="black")
        d.text((xp - 3 * len(str(xv)), yp + 6), str(xv), fill="black")
    d.text((w // 2 - 20, h - pad + 22), "epoch", fill="black")
    d.text((pad, 12), "nats per image (lower is better)", fill="black")
    for i, (name, (ex, ev, color)) in enumerate(series.items()):
        pts = [px(x, y) for x, y in zip(ex, ev) if math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
        d.text((w - pad - 150, pad + 8 + 14 * i), name, fill=color)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        img.save(f, format="PNG")
    return out


def _lr_at(config: TrainConfig, epoch: float, seconds: float = 0.0) -> float:
    """Cosine from ``lr`` to ``lr / 20``, over the planned epochs, or over the
    time limit if that comes first (so a time-limited run still anneals)."""
    frac = epoch / config.epochs
    if config.time_limit:
        frac = max(frac, seconds / (60 * config.time_limit))
    frac = min(frac, 1.0)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def train(config: TrainConfig, out: str | Path, resume: str | Path | None = None,
          progress: bool = True, log=None, dist_ctx=None, init: str | Path | None = None) -> Path:
    """Train (or resume) and checkpoint after every epoch; returns the checkpoint path.

    :param init: start a new run from this checkpoint's networks (its
        architecture and story; fresh data, optimizer, schedule and epoch
        count): fine-tuning on more or other data. Not with ``resume``.
    :param dist_ctx: a :class:`~cvaeq.model.distributed.DistContext` when run
        under torchrun; rank 0 evaluates and writes, all ranks train.
        Denormals are flushed to zero meanwhile (:mod:`cvaeq.model.denormals`).
    """
    if init is not None and resume is not None:
        raise CvaeqError("--init starts a new run from a checkpoint's networks, --resume continues one; give one")
    with flush_denormals():
        return _train(config, out, resume, progress, log, dist_ctx, init)


def _train(config: TrainConfig, out: str | Path, resume: str | Path | None, progress: bool, log, dist_ctx,
           init: str | Path | None = None) -> Path:
    from torch.utils.data import DistributedSampler
    from tqdm import tqdm

    from ..data.dataset import make_loader
    from ..story import load_story

    def say(msg: str) -> None:
        if rank == 0:
            (log or (lambda m: print(m, file=sys.stderr)))(msg)

    rank = dist_ctx.rank if dist_ctx else 0
    world = dist_ctx.world_size if dist_ctx else 1
    out = Path(out)
    start_epoch, history, optim_state = 0, [], None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        saved = dict(ckpt.meta["train_config"])
        # The data and model must be the same; the length of the run may change.
        for key in ("story", "n", "seed", "batch", "aux_weight", "arch", "uniform", "init"):
            if key in saved:
                setattr(config, key, saved[key])
        start_epoch, history, optim_state = ckpt.epoch, list(ckpt.meta["history"]), ckpt.optimizer_state
        story = ckpt.story
        model, factor_logits = ckpt.model, ckpt.factor_logits
        if config.orientation_loss is None:
            config.orientation_loss = model.orientation_loss
        if optim_state is None:
            raise CheckpointError(f"{resume}: has no optimizer state (not written by `cvaeq train`); cannot resume")
        say(f"resuming from {resume} at epoch {start_epoch}")
    if config.orientation_loss is None:
        config.orientation_loss = "exact"
    config.validate()
    device = dist_ctx.device if dist_ctx else pick_device(config.device)
    if init is not None:
        model, story = _initial_model(init, config, say)
        model.aux_weight = config.aux_weight
    elif resume is None:
        story = load_story(config.story)
        arch = ArchConfig.from_dict({**ArchConfig(latent_dim=story.latent_dim).to_dict(), **config.arch})
        config.arch = arch.to_dict()
        torch.manual_seed(config.seed)
        model = CausalVAE(arch, aux_weight=config.aux_weight, orientation_loss=config.orientation_loss)
    model.orientation_loss = config.orientation_loss  # a resumed run may change it
    if start_epoch >= config.epochs:
        say(f"{resume} already has {start_epoch} epochs (asked for {config.epochs}); nothing to do")
        return Path(resume)

    if config.n // world < config.batch:
        raise CvaeqError(f"--n {config.n} is smaller than one batch per process ({config.batch} x {world}); "
                         "lower --batch or raise --n")
    images, classes, source, n_story = load_training_data(story, config.n, config.seed, progress and rank == 0,
                                                          uniform=config.uniform)
    say(f"training data: {n_story} images of story {story.name!r} and {config.n - n_story} uniform over the grid "
        f"(seed {config.seed}, {source})")
    if resume is None:
        if n_story < 10:
            raise CvaeqError(f"only {n_story} training images follow the story; lower --uniform or raise --n")
        factor_logits = fit_factor_logits(classes[:n_story], story, seed=config.seed)
    if rank == 0:
        held = {name: load_training_data(story, config.eval_n, _eval_seed(config.seed), False, uniform=u)[:2]
                for name, u in (("eval", 0.0), ("eval_uniform", 1.0))}

    model.to(device).train()
    net = model
    if dist_ctx is not None:
        net = dist_ctx.wrap(model)
    # the fused kernel: one pass over each parameter (about a tenth of a CPU step otherwise)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    if optim_state is not None:
        opt.load_state_dict(optim_state)
        for st in opt.state.values():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    st[k] = v.to(device)
    sampler = DistributedSampler(range(config.n), num_replicas=world, rank=rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    loader = make_loader(images, classes, batch_size=config.batch, sampler=sampler, drop_last=True)
    steps = len(loader)
    t_run = time.monotonic() - sum(h["seconds"] for h in history)  # time limits count earlier runs too
    last_epoch_s = history[-1]["seconds"] if history else 0.0
    for epoch in range(start_epoch, config.epochs):
        if config.time_limit and epoch > 0 and (time.monotonic() - t_run + last_epoch_s) > 60 * config.time_limit:
            say(f"time limit of {config.time_limit:g} min reached; stopping after epoch {epoch}")
            break
        sampler.set_epoch(epoch)
        torch.manual_seed(int(np.random.SeedSequence([config.seed, epoch, rank]).generate_state(1)[0]))
        t0 = time.monotonic()
        total, seen = 0.0, 0
        bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   file=sys.stderr, disable=not (progress and rank == 0), dynamic_ncols=True)
        for i, (x, y) in enumerate(bar):
            for g in opt.param_groups:
                g["lr"] = _lr_at(config, epoch + i / steps, time.monotonic() - t_run)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = net(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += model._parts["elbo_nats"] * len(y)
            seen += len(y)
            if i % 10 == 0 or i == steps - 1:
                rate = seen * world / max(time.monotonic() - t0, 1e-9)
                left = (steps - i - 1) * config.batch * world / rate + (config.epochs - epoch - 1) * steps * config.batch * world / rate
                if config.time_limit:
                    left = min(left, max(60 * config.time_limit - (time.monotonic() - t_run), 0.0))
                bar.set_postfix(elbo=f"{total / seen:.2f}", aux=f"{model._parts['aux_nll']:.3f}",
                                img_s=f"{rate:.0f}", eta=_fmt_time(left), refresh=False)
        bar.close()
        epoch_s = time.monotonic() - t0
        last_epoch_s = epoch_s
        if dist_ctx is not None:
            dist_ctx.barrier()
        if rank == 0:
            evs = {name: evaluate(model, *data, device, seed=config.seed) for name, data in held.items()}
            ev, evu = evs["eval"], evs["eval_uniform"]
            history.append({
                "epoch": epoch + 1,
                "train_elbo_nats": total / seen,
                "images_per_s": seen * world / epoch_s,
                "seconds": epoch_s,
                "processes": world,
                "orientation_loss": config.orientation_loss,
                "eval": ev,
                "eval_uniform": evu,
            })
            save_checkpoint(out, model, story, factor_logits, train_config=asdict(config), epoch=epoch + 1,
                            history=history, optimizer=opt, data_seed=config.seed)
            plot_history(history, loss_png_path(out))
            acc = " ".join(f"{f}={a:.3f}" for f, a in evu["accuracy"].items())
            say(f"epoch {epoch + 1}: train -ELBO {total / seen:.2f}, held-out -ELBO {ev['elbo_nats']:.2f} nats/image "
                f"(story), {evu['elbo_nats']:.2f} (uniform grid); uniform grid: recon IoU {evu['recon_iou']:.3f}, "
                f"accuracy {acc}; {seen * world / epoch_s:.0f} images/s -> {out}")
        if dist_ctx is not None:
            dist_ctx.barrier()
    return out


def _initial_model(init: str | Path, config: TrainConfig, say) -> tuple[CausalVAE, object]:
    """The networks and story of checkpoint ``init`` for a new run; records it in ``config.init``."""
    from ..story import load_story

    ckpt = load_checkpoint(init)
    story = load_story(config.story)
    same = (story.latent_dim == ckpt.story.latent_dim
            and all(story.parents(f) == ckpt.story.parents(f) and np.array_equal(story.tables[f], ckpt.story.tables[f])
                    for f in FACTORS))
    if not same:
        raise CvaeqError(f"--init {init}: its story {ckpt.story.name!r} is not --story {config.story!r}; "
                         "fine-tune on the story it was trained on")
    model = ckpt.model
    config.arch = model.config.to_dict()
    config.init = {"file": Path(init).name, "epochs": ckpt.epoch, "train_config": ckpt.meta.get("train_config")}
    say(f"starting from the networks of {init} ({ckpt.epoch} epochs)")
    return model, ckpt.story


def loss_png_path(checkpoint: str | Path) -> Path:
    """The loss-curve PNG written beside a checkpoint: ``<stem>.loss.png``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".loss.png")


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
