"""Anti-causal predictors: small CNNs that read a world's factors back from its pictures.

Where a world has no renderer there is no true counterfactual picture, and the
literature scores a counterfactual by reading it (Monteiro et al., ICLR 2023;
Melistas et al., NeurIPS 2024): an independent predictor per factor,
trained on real pictures, says whether ``do(thickness = 4)`` gave a picture
whose stroke is 4 px thick. cvaeq trains its own:

* a **classifier** per categorical (or grid) factor, trained with
  cross-entropy (modulo the classes the world draws alike, ``world.equivalent``:
  a square's orientation is read modulo a quarter turn), scored by accuracy;
* a **regressor** per continuous factor, trained with squared error on the
  standardised value, scored by the mean absolute error in the factor's units.

**Conditioning.** A continuous factor's regressor also takes the values of
its children in the story's graph (Morpho-MNIST: thickness given the
intensity), as Melistas et al.'s predictors do (their ``anticausal_graph``):
a child that changes the same pixels (intensity sets the stroke's grey level,
which is what makes a stroke look thicker or thinner once blurred) must be
known to read the parent off them. A categorical factor's classifier reads
the picture alone: its class is drawn by the picture, and a classifier given
children the story makes depend on it (dSprites: scale and posX on shape)
could read the class off them instead of off the counterfactual picture,
scoring a counterfactual that changed nothing.

**Data.** They are trained on the pictures the model trains on and scored on
held-out ones: the **floor** is their accuracy / MAE on real held-out
pictures with their true labels, the best a counterfactual can be read as.
A world with a renderer: pictures of factors drawn from the story
(:data:`TRAIN_PICTURES`, and :data:`TEST_PICTURES` held out, drawn with other
seeds); a world of labelled files: the train and held-out test parts of its
labelled pictures (:func:`cvaeq.data.labelled.training_parts`; Morpho-MNIST:
rows 0-6999 and 7000-7999, the model's parts too), or, for a world with its
own reader, ``world.load_real(world.data)`` with ``world.test_rows`` (else the
last eighth of the rows) held out.

**Off the data's correlations.** Trained on real pictures alone, a predictor
learns the data's correlations along with the factor: Morpho-MNIST's
thickness and intensity move together (correlation 0.91), and predictors
trained on its digits for five epochs read the *true* counterfactual under
``do(intensity)`` (the digit's grey levels rescaled by the data's own maker,
``World.redraw``) with an intensity MAE of 15.6 grey levels and a thickness
MAE of 0.41 px, against 6.8 and 0.14 on real digits: a perfect model would
"miss" by the instrument's fault. Where the world redraws a factor, each
training picture is therefore shown once more with that factor set to the
value of another training row (a seeded shuffle of the column: the factor's
own marginal), labelled with it; the held-out floor stays on real pictures.
Then the same predictors read the true ``do(intensity)`` counterfactuals
within 1.2 times their floor (``benchmarks/morphomnist_predictors.py``;
docs/evaluation.md, "Predictors that read counterfactuals").

**Files.** Saved as safetensors (tensors and a JSON header; never a pickle)
under the cache folder (:func:`cache_dir`) keyed by a hash of everything that
decides them (the training and held-out pictures and labels, the
architecture, the seed, the epochs): changed data are a new key, so a stale
file is never read. The same seed gives the same predictors on this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, DataError
from .bootstrap import mean_interval
from .metrics import factor_correct, given_factor

__all__ = [
    "Predictors",
    "train_predictors",
    "predictors_for",
    "training_pictures",
    "redrawn",
    "cache_dir",
    "ARCH_VERSION",
    "TRAIN_PICTURES",
    "TEST_PICTURES",
    "EPOCHS",
]

#: Changes whenever the networks or their training change: a cached file of another version is not used.
ARCH_VERSION = 2
#: Pictures drawn from the story to train on, in a world with a renderer, and held out for the floor.
TRAIN_PICTURES = 6000
TEST_PICTURES = 1000
#: Passes over the training pictures.
EPOCHS = 5
BATCH = 64
LR = 2e-3


def cache_dir() -> Path:
    """Where trained predictors are kept: ``$CVAEQ_CACHE/predictors``, else
    ``$XDG_CACHE_HOME/cvaeq/predictors``, else ``~/.cache/cvaeq/predictors``."""
    root = os.environ.get("CVAEQ_CACHE")
    if root:
        return Path(root) / "predictors"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cvaeq" / "predictors"


class _Net(nn.Module):
    """A small CNN: three convolutions (stride 2 while the picture is 8 px or more across: all three
    for 28 and 64 px pictures) shared by every factor, and a two-layer head per
    factor (a classifier's logits or a regressor's value; a conditioned head also takes its
    children's values). One trunk for all factors costs a fifth of five networks to train."""

    def __init__(self, channels: int, shape: tuple[int, int], heads: Mapping[str, tuple[int, int]]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        side, width = min(shape), channels
        for out in (16, 32, 32):  # stride 2 while the picture is at least 8 px across, then stride 1
            conv = nn.Conv2d(width, out, 4, 2, 1) if side >= 8 else nn.Conv2d(width, out, 3, 1, 1)
            side = side // 2 if side >= 8 else side
            layers += [conv, nn.ReLU()]
            width = out
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            feats = self.trunk(torch.zeros(1, channels, *shape)).shape[1]
        self.heads = nn.ModuleDict(
            {
                f: nn.Sequential(nn.Linear(feats + cond, 128), nn.ReLU(), nn.Linear(128, out))
                for f, (cond, out) in heads.items()
            }
        )

    def forward(self, x: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.trunk(x)
        return {f: head(torch.cat([h, cond[f]], 1) if cond[f].shape[1] else h) for f, head in self.heads.items()}


def _children(story, factor: str) -> tuple[str, ...]:
    names = story.world.names
    return tuple(f for f in names if factor in story.parents(f))


@dataclass
class _Reader:
    """How one factor's head is fed and read."""

    factor: str
    continuous: bool
    conditions: tuple[str, ...]
    mean: float = 0.0  # a continuous factor's standardisation (training data)
    sd: float = 1.0


class Predictors:
    """The trained predictors of one world: :meth:`read` pictures, :attr:`floor` their held-out score."""

    def __init__(self, world, net, readers: dict[str, _Reader], cond_stats: dict, floor: dict, meta: dict) -> None:
        self.world = world
        self.net = net
        self.readers = readers
        self.cond_stats = cond_stats  # {continuous factor: (mean, sd)} for conditioning inputs
        #: ``{factor: accuracy or MAE}`` on real held-out pictures, ``floor_ci`` its interval, ``floor_n`` its n.
        self.floor = floor["value"]
        self.floor_ci = floor["ci"]
        self.floor_n = floor["n"]
        self.meta = meta

    def _cond(self, names: tuple[str, ...], values: Mapping[str, np.ndarray], n: int) -> torch.Tensor:
        cols = []
        for c in names:
            v = np.asarray(values[c], dtype=np.float64).reshape(-1)
            if len(v) != n:
                raise ValueError(f"{len(v)} values of {c} for {n} pictures")
            if self.world.factor(c).continuous:
                m, s = self.cond_stats[c]
                cols.append(torch.from_numpy((v - m) / s).float()[:, None])
            else:
                cols.append(nn.functional.one_hot(torch.from_numpy(v.astype(np.int64)), self.world.sizes[c]).float())
        return torch.cat(cols, 1) if cols else torch.zeros(n, 0)

    def _conds(self, values: Mapping[str, np.ndarray], n: int) -> dict[str, torch.Tensor]:
        out = {}
        for f, r in self.readers.items():
            missing = [c for c in r.conditions if c not in values]
            if missing:
                raise ValueError(f"the {f} predictor reads {', '.join(missing)} too; give their values")
            out[f] = self._cond(r.conditions, values, n)
        return out

    def read(self, pictures, conditions: Mapping[str, np.ndarray] | None = None, batch: int = 512) -> dict:
        """``{factor: (N,)}`` what the predictors read: int64 classes, float64 values of continuous factors.

        :param pictures: ``(N, H, W)`` or ``(N, C, H, W)`` in the world's levels (0/1, or 0..255).
        :param conditions: ``{child: (N,)}`` values of the children a continuous factor's
            regressor is conditioned on (:meth:`conditions_of`).
        """
        x = _as_input(pictures, self.world)
        cond = self._conds(conditions or {}, len(x))
        parts: dict[str, list] = {f: [] for f in self.readers}
        with torch.no_grad():
            for i in range(0, len(x), batch):
                y = self.net(x[i : i + batch], {f: c[i : i + batch] for f, c in cond.items()})
                for f in parts:
                    parts[f].append(y[f])
        out = {}
        for f, r in self.readers.items():
            y = torch.cat(parts[f]) if parts[f] else torch.zeros(0, 1)
            out[f] = y[:, 0].double().numpy() * r.sd + r.mean if r.continuous else y.argmax(1).numpy().astype(np.int64)
        return out

    def conditions_of(self, factor: str) -> tuple[str, ...]:
        """The factors whose values the predictor of ``factor`` takes beside the picture."""
        return self.readers[factor].conditions

    def score(self, factor: str, read: np.ndarray, target: np.ndarray, given=None) -> np.ndarray:
        """Per picture: 1/0 correct (categorical, modulo the world's look-alike classes) or the absolute error."""
        if self.readers[factor].continuous:
            return np.abs(np.asarray(read, np.float64) - np.asarray(target, np.float64))
        return factor_correct(self.world, factor, read, np.asarray(target).astype(np.int64), given).astype(np.float64)

    def save(self, path: str | os.PathLike) -> None:
        """Write the predictors as safetensors (written beside, then moved over: never half a file)."""
        from safetensors.torch import save_file

        tensors = {k: v.contiguous() for k, v in self.net.state_dict().items()}
        meta = {
            **self.meta,
            "readers": {
                f: {"continuous": r.continuous, "conditions": list(r.conditions), "mean": r.mean, "sd": r.sd}
                for f, r in self.readers.items()
            },
            "cond_stats": self.cond_stats,
            "floor": {"value": self.floor, "ci": self.floor_ci, "n": self.floor_n},
        }
        path = Path(path)
        if path.exists() and not path.is_file():
            raise DataError(f"{path} exists and is not a regular file; not replacing it")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".predictors-", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"cvaeq_predictors": json.dumps(meta, sort_keys=True)})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, world) -> Predictors:
        """Read predictors saved by :meth:`save` (safetensors only); a foreign or damaged file is a CheckpointError."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                meta = json.loads(header["cvaeq_predictors"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle is not a dict)
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as e:
            raise CheckpointError(f"{path}: not a cvaeq predictors file ({e})") from None
        try:
            if meta["world"] != world.name or meta["arch"] != ARCH_VERSION:
                raise CheckpointError(f"{path}: predictors of world {meta['world']!r}, version {meta['arch']}")
            readers = {
                f: _Reader(f, spec["continuous"], tuple(spec["conditions"]), spec["mean"], spec["sd"])
                for f, spec in meta["readers"].items()
            }
            net = _net_for(world, readers)
            net.load_state_dict(tensors)
            net.eval()
            stats = {k: tuple(v) for k, v in meta["cond_stats"].items()}
            return cls(world, net, readers, stats, meta["floor"], meta)
        except (KeyError, TypeError, ValueError, RuntimeError, DataError) as e:
            raise CheckpointError(f"{path}: not a cvaeq predictors file ({e})") from None


def _as_input(pictures, world) -> torch.Tensor:
    """Pictures in the world's levels as float32 ``[N, C, H, W]`` on [0, 1]."""
    x = torch.as_tensor(np.asarray(pictures)).float() / float(world.max_level)
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or tuple(x.shape[1:]) != (world.channels, *world.image_shape[-2:]):
        raise DataError(f"pictures of shape {tuple(x.shape[1:])}; world {world.name!r} has {world.image_shape}")
    return x


def _cond_width(world, conditions: tuple[str, ...]) -> int:
    return sum(1 if world.factor(c).continuous else world.sizes[c] for c in conditions)


def _net_for(world, readers: Mapping[str, _Reader]) -> _Net:
    heads = {f: (_cond_width(world, r.conditions), 1 if r.continuous else world.sizes[f]) for f, r in readers.items()}
    return _Net(world.channels, tuple(world.image_shape[-2:]), heads)


def _loss(world, factor: str, logits: torch.Tensor, target: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, modulo the classes the world draws alike: ``-log`` of the probability of any class
    equivalent to the true one (a square's orientation turned by a quarter is not a mistake)."""
    logp = logits.log_softmax(1)
    entry = world.equivalent.get(factor)
    if entry is None or given is None:
        return nn.functional.nll_loss(logp, target)
    table = torch.as_tensor(np.asarray(entry[1], dtype=bool))
    mask = table[given, :, target]  # [B, K]: classes drawn like the true one
    return -(logp.masked_fill(~mask, float("-inf")).logsumexp(1)).mean()


def training_pictures(story, seed: int = 0, n_train: int = TRAIN_PICTURES, n_test: int = TEST_PICTURES):
    """``((train pictures, train values), (test pictures, test values))``: values ``(N, F)`` float64
    in the world's factor order (classes of discrete factors as whole numbers).

    A world with a renderer: factors drawn from the story (two seeded streams) and rendered.
    A world of labelled files: the train and test parts of :func:`cvaeq.data.labelled.training_parts`
    (Morpho-MNIST: rows 0-6999 and 7000-7999); a world with its own reader, ``world.load_real(world.data)``
    with ``world.test_rows`` held out (without them, the last eighth of the rows).
    """
    world = story.world
    if world.has_renderer:
        tr = story.sample(n_train, np.random.default_rng([seed, 0x7A1]))
        te = story.sample(n_test, np.random.default_rng([seed, 0x7E5]))
        return (world.render_checked(tr), tr.astype(np.float64)), (world.render_checked(te), te.astype(np.float64))
    if world.load_real is None:  # the shared reader of labelled files (cvaeq.data.labelled) and its parts
        try:
            from ..data.labelled import training_parts
        except ImportError:
            raise DataError(
                f"world {world.name!r} has neither a renderer nor a reader of its labelled pictures; "
                "predictors need pictures"
            ) from None
        parts = training_parts(world)
        tr, te = ((np.asarray(x), np.asarray(v, dtype=np.float64)) for x, v in (parts["train"], parts["test"]))
        return redrawn(world, tr, seed), te
    images, values = world.load_real(world.data)
    images, values = np.asarray(images), np.asarray(values, dtype=np.float64)
    held = getattr(world, "test_rows", None)  # the rows the world holds out, else its last eighth
    test = np.zeros(len(images), bool)
    if held is not None:
        test[[i for i in held if i < len(images)]] = True
    else:
        test[len(images) - len(images) // 8 :] = True
    if test.all() or not test.any():
        raise DataError(f"world {world.name!r}: {len(images)} labelled pictures are too few to hold some out")
    return redrawn(world, (images[~test], values[~test]), seed), (images[test], values[test])


def redrawn(world, train: tuple[np.ndarray, np.ndarray], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``train`` (pictures, values ``(N, F)``) followed, for each factor the world redraws
    (``World.redraw``), by every picture redrawn with that factor set to another row's value
    (a shuffle of the column seeded by ``seed``), labelled with it: pictures off the data's
    correlations (module docstring). Unchanged for a world that redraws nothing."""
    images, values = train
    parts_x, parts_v = [images], [values]
    for f in world.redraw:
        col = world.index(f)
        new = values[np.random.default_rng([seed, 0x2ED, col]).permutation(len(values)), col]
        v = values.copy()
        v[:, col] = new
        parts_x.append(world.redraw_checked(f, images, new))
        parts_v.append(v)
    if len(parts_x) == 1:
        return images, values
    return np.concatenate(parts_x), np.concatenate(parts_v)


def _key(story, train, test, seed: int, epochs: int) -> str:
    h = hashlib.sha256()
    world = story.world
    spec = {
        "arch": ARCH_VERSION,
        "seed": seed,
        "epochs": epochs,
        "world": world.name,
        "factors": [(f.name, f.continuous, None if f.continuous else f.size) for f in world.factors],
        "graph": {f: list(story.parents(f)) for f in world.names},
    }
    h.update(json.dumps(spec, sort_keys=True).encode())
    for a in (*train, *test):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def train_predictors(story, train, test, *, seed: int = 0, epochs: int = EPOCHS, progress: bool = True) -> Predictors:
    """Train one predictor per factor of ``story.world`` on ``train = (pictures, values)`` and
    measure the floor on ``test`` (the same layout; :func:`training_pictures`)."""
    world = story.world
    names = world.names
    x_tr, v_tr = _as_input(train[0], world), np.asarray(train[1], dtype=np.float64)
    if v_tr.shape != (len(x_tr), len(names)):
        raise DataError(f"{v_tr.shape} training values for {len(x_tr)} pictures of {len(names)} factors")
    if len(x_tr) < 2:
        raise DataError("predictors need at least two training pictures")
    cond_stats = {
        f: (float(v_tr[:, i].mean()), float(v_tr[:, i].std() or 1.0))
        for i, f in enumerate(names)
        if world.factor(f).continuous
    }
    readers = _readers(story, cond_stats)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.default_rng([seed, 0x9E7]).integers(2**31)))
        net = _net_for(world, readers)
    pred = Predictors(world, net, readers, cond_stats, {"value": {}, "ci": {}, "n": 0}, {})
    _fit(pred, x_tr, v_tr, seed, epochs, progress)
    pred.meta = {
        "world": world.name,
        "arch": ARCH_VERSION,
        "seed": seed,
        "epochs": epochs,
        "n_train": int(len(x_tr)),
        "n_test": int(len(test[0])),
    }
    value, ci = _floor(pred, story, test, seed)
    pred.floor, pred.floor_ci, pred.floor_n = value, ci, int(len(test[0]))
    return pred


def _readers(story, cond_stats: Mapping[str, tuple[float, float]]) -> dict[str, _Reader]:
    """Each factor's head: a classifier reading the picture alone, or a regressor given its children."""
    readers = {}
    for f in story.world.names:
        continuous = story.world.factor(f).continuous
        r = _Reader(f, continuous, _children(story, f) if continuous else ())
        if continuous:
            r.mean, r.sd = cond_stats[f]
        readers[f] = r
    return readers


def _fit(pred: Predictors, x_tr: torch.Tensor, v_tr: np.ndarray, seed: int, epochs: int, progress: bool) -> None:
    """Adam on the sum of the heads' losses, in seeded batches; a progress bar over the steps."""
    from tqdm import tqdm

    world, net, names = pred.world, pred.net, pred.world.names
    cond = pred._conds({c: v_tr[:, i] for i, c in enumerate(names)}, len(x_tr))
    targets, givens = {}, {}
    for i, f in enumerate(names):
        r = pred.readers[f]
        y = v_tr[:, i]
        targets[f] = (
            torch.from_numpy((y - r.mean) / r.sd).float() if r.continuous else torch.from_numpy(y.astype(np.int64))
        )
        g = given_factor(world, f)
        givens[f] = None if g is None else torch.from_numpy(v_tr[:, names.index(g)].astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, 0x5EED]).integers(2**31)))
    per_epoch = (len(x_tr) + BATCH - 1) // BATCH
    net.train()
    with tqdm(total=epochs * per_epoch, desc="predictors", unit="step", disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(x_tr), generator=gen)
            for lo in range(0, len(x_tr), BATCH):
                idx = order[lo : lo + BATCH]
                out = net(x_tr[idx], {f: c[idx] for f, c in cond.items()})
                loss = torch.zeros(())
                for f, r in pred.readers.items():
                    if r.continuous:
                        loss = loss + nn.functional.mse_loss(out[f][:, 0], targets[f][idx])
                    else:
                        given = givens[f]
                        loss = loss + _loss(world, f, out[f], targets[f][idx], None if given is None else given[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update(1)
    net.eval()


def _floor(pred: Predictors, story, test, seed: int) -> tuple[dict, dict]:
    """The predictors' accuracy / MAE on real held-out pictures with their true labels, and its interval."""
    world, names = story.world, story.world.names
    images, values = test
    values = np.asarray(values, dtype=np.float64)
    cond = {c: values[:, names.index(c)] for c in names}
    read = pred.read(images, cond)
    value, ci = {}, {}
    for i, f in enumerate(names):
        g = given_factor(world, f)
        given = None if g is None else values[:, names.index(g)].astype(np.int64)
        s = pred.score(f, read[f], values[:, i], given)
        value[f] = float(s.mean())
        iv = mean_interval(s, seed=seed)
        ci[f] = None if iv is None else [iv[0], iv[1]]
    return value, ci


def predictors_for(
    story,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    data=None,
    cache: bool = True,
    progress: bool = True,
    directory: str | os.PathLike | None = None,
) -> Predictors:
    """The predictors of ``story``'s world: read from the cache when trained before on the same
    pictures (:func:`cache_dir`), else trained now (and kept there).

    :param data: ``(train, test)`` as :func:`training_pictures` returns (default: that).
    :param directory: the cache folder (default :func:`cache_dir`).
    """
    train, test = data if data is not None else training_pictures(story, seed)
    key = _key(story, train, test, seed, epochs)
    path = Path(directory or cache_dir()) / f"{story.world.name}-{key}.safetensors"
    if cache and path.is_file():
        try:
            return Predictors.load(path, story.world)
        except CheckpointError:
            pass  # damaged or foreign: trained again and written over (a regular file)
    pred = train_predictors(story, train, test, seed=seed, epochs=epochs, progress=progress)
    pred.meta["key"] = key
    if cache:
        # a cache that cannot be written (or a non-file in its place, left alone) costs a retraining, nothing else
        with contextlib.suppress(OSError, DataError):
            pred.save(path)
    return pred
