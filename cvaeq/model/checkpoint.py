"""Safe checkpoints: safetensors tensors plus JSON metadata, never pickle.

A checkpoint is one ``.safetensors`` file. Its tensors are the model's
weights (``model.<name>``), the fitted factor mechanisms (``factor.<name>``,
log-probability tables ``[*parent sizes, size]``; in a world with continuous
factors no table for a continuous factor or a discrete factor with a
continuous parent: a continuous factor's law is the story's, or the one the
run fitted, recorded in ``meta["laws"]``) and, for resuming, the
optimizer's state (``optim.<param index>.<key>``). The safetensors header's
string metadata holds:

* ``format`` = ``"cvaeq-checkpoint"`` and ``version`` = ``"1"``;
* ``meta``: JSON with the story's text, its world's name (``world``), the
  image-model family (``family``, :mod:`cvaeq.model.family`), the pictures'
  pixel kind (``pixel``: ``"binary"`` or ``"8bit"``) and ``channels``, the
  factors' parents, the architecture (``arch``, the family's ``arch_of``), the
  training config, the data seed, the epoch, the history of per-epoch figures
  and the optimizer's hyper-parameters; and, when the run fitted laws its
  story leaves to be learned (``learn = true``), ``laws``: ``{factor: law
  table}`` (:func:`cvaeq.invertible.fit_laws`; absent in files written
  before, and in runs whose story states every law);
* ``sha256``: a digest of every tensor (name, dtype, shape, bytes) and of
  ``meta``, so any edit to the file is detected.

Loading parses only JSON and raw tensor bytes, so it never runs code from the
file: it rebuilds the model with the recorded family's ``build(world,
latent_dim, arch)`` and checks every tensor's name and shape against the
built module before copying. Files written before worlds and families
(no ``world``/``family`` keys) load as dSprites causal VAEs, and files written
before 8-bit pictures (no ``pixel``/``channels``) as binary, one channel. A
file whose pixel kind or channels are not its world's, or whose family does
not decode that kind, is refused. A truncated, foreign or tampered file raises
:class:`~cvaeq.errors.CheckpointError`. Files are written atomically (temp
file, then rename): killing a writer never leaves a half-written checkpoint.

>>> import tempfile, pathlib
>>> from cvaeq.story import load_story
>>> from cvaeq.model.cvae import CausalVAE
>>> from cvaeq.model.networks import ArchConfig
>>> story = load_story("default")
>>> model = CausalVAE(ArchConfig(latent_dim=story.latent_dim))
>>> tables = {f: np.log(story.table(f)) for f in story.factors}  # normally fitted
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
>>> _ = save_checkpoint(path, model, story, tables, train_config={"n": 0}, epoch=0)
>>> ckpt = load_checkpoint(path)
>>> ckpt.story.latent_dim, ckpt.model.latent_dim, ckpt.meta["epoch"]
(6, 6, 0)
>>> ckpt.meta["world"], ckpt.family, ckpt.pixel, ckpt.channels
('dsprites', 'causal_vae', 'binary', 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import CheckpointError, CvaeqError, PluginError
from ..limits import MAX_CHECKPOINT_BYTES, checked_file, read_limited
from ..paths import atomic_path
from .family import DEFAULT_FAMILY, check_pixel_kind, get_family

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "export_checkpoint",
    "FORMAT",
    "VERSION",
]

#: Options of the causal VAE that files written before families kept at the top level of ``meta``.
_LEGACY_OPTIONS = ("aux_weight", "orientation_loss")

FORMAT = "cvaeq-checkpoint"
VERSION = 1
#: Most fitted laws ``meta["laws"]`` may hold (one per continuous factor; a world has a few).
MAX_LAWS = 256
#: Largest JSON header: a story (at most 1 MiB) and a history of up to MAX_EPOCHS epochs fit easily.
_MAX_HEADER = 64 * 1024 * 1024


@dataclass(eq=False)
class Checkpoint:
    """A loaded checkpoint.

    :ivar model: the image model (a :class:`~cvaeq.model.cvae.CausalVAE` for
        the ``causal_vae`` family), in eval mode, on the CPU (implements the image-model protocol,
        :mod:`cvaeq.image_model`: ``latent_dim``, ``decode_probs``, ``pixel_logits``, ``factor_logits``,
        ``z_posterior``).
    :ivar story: the :class:`~cvaeq.story.Story` it was trained on, with the laws the run
        fitted (:attr:`laws`) in place of those the story leaves to be learned
        (:meth:`~cvaeq.story.Story.with_laws`), so that its sampler follows them.
    :ivar factor_logits: ``{factor: float64 tensor [*parent sizes, size]}``,
        the fitted Gumbel-max logits (normalised log-probabilities), parents
        in the order ``story.parents(factor)`` (a continuous factor has none:
        its law is the story's, or the fitted one of :attr:`laws`).
    :ivar meta: the JSON metadata (``world``, ``family``, ``epoch``, ``history``, ``train_config``, ...).
    :ivar optimizer_state: a ``torch.optim.Adam.state_dict()``-shaped dict, or None.
    """

    model: Any
    story: Any
    factor_logits: dict[str, Any]  # a table per factor with one
    meta: dict
    optimizer_state: dict | None = None
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        """The image-model family's registered name."""
        return str(self.meta.get("family", DEFAULT_FAMILY))

    @property
    def pixel(self) -> str:
        """The pictures' pixel kind: ``"binary"`` (and files written before 8-bit pictures) or ``"8bit"``."""
        return str(self.meta.get("pixel", "binary"))

    @property
    def channels(self) -> int:
        """The pictures' channels: 1 (and files written before 8-bit pictures) or 3."""
        return int(self.meta.get("channels", 1))

    @property
    def epoch(self) -> int:
        """Epochs completed when it was saved."""
        return int(self.meta["epoch"])

    @property
    def laws(self) -> dict[str, dict[str, Any]] | None:
        """The laws fitted at training time, ``{continuous factor: law table}`` (what
        :func:`cvaeq.invertible.fit_laws` gives; checked against the story on load),
        or None when the run fitted none (the story's laws are the model's)."""
        laws = self.meta.get("laws")
        return None if laws is None else {f: dict(t) for f, t in laws.items()}


def _digest(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(meta_json.encode())
    return h.hexdigest()


def _optim_tensors(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    groups = json.loads(
        json.dumps(state["param_groups"], default=lambda o: list(o) if isinstance(o, tuple) else str(o))
    )
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optim_state(tensors: dict[str, torch.Tensor], info: dict) -> dict:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    for name, value in info.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


def save_checkpoint(
    path: str | os.PathLike,
    model: Any,
    story,
    factor_logits: dict[str, Any],
    *,
    family: str | None = None,
    train_config: dict,
    epoch: int,
    history: list | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    data_seed: int | None = None,
    laws: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path.

    :param model: the trained image model; its family's ``arch_of(model)`` is recorded.
    :param story: the :class:`~cvaeq.story.Story` (its text and world are stored).
    :param family: the model's registered family name (None: the model's
        ``family`` attribute, else :data:`~cvaeq.model.family.DEFAULT_FAMILY`).
    :param factor_logits: ``{factor: table}`` from :func:`~cvaeq.model.factors.fit_factor_logits`.
    :param optimizer: included so that training can resume with its state.
    :param laws: the laws fitted for the story's learned factors (``{factor: law table}``,
        :func:`cvaeq.invertible.fit_laws`), recorded as ``meta["laws"]``; None or empty: none.
    """
    family = family or getattr(model, "family", None) or DEFAULT_FAMILY
    arch = dict(get_family(family).arch_of(model))
    tensors, optim_info = _tensors_to_save(path, model, story, factor_logits, optimizer)
    meta = {
        "story_text": story.text,
        "story_name": story.name,
        "world": story.world.name,
        "family": family,
        "pixel": story.world.pixel,
        "channels": story.world.channels,
        "factor_parents": {f: list(story.parents(f)) for f in story.world.names},
        "arch": arch,
        # the causal VAE's options, also where files written before families kept them
        **{k: arch[k] for k in _LEGACY_OPTIONS if k in arch},
        "train_config": train_config,
        "data_seed": data_seed if data_seed is not None else train_config.get("seed"),
        "epoch": int(epoch),
        "history": history or [],
        "optimizer": optim_info,
        **({"laws": {f: dict(t) for f, t in laws.items()}} if laws else {}),
    }
    meta_json = json.dumps(meta, sort_keys=True)
    header = {"format": FORMAT, "version": str(VERSION), "meta": meta_json, "sha256": _digest(tensors, meta_json)}
    blob = st_save(tensors, metadata=header)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    return path


def _tensors_to_save(
    path, model: Any, story, factor_logits: dict[str, Any], optimizer: torch.optim.Optimizer | None
) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The checkpoint's tensors (the model's weights, every factor's table, the optimizer's state) and
    the optimizer's other state; weights that are not finite are a CheckpointError (nothing is written)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"{path}: not written: the weights {name!r} are not finite (training diverged); "
                "the file keeps what it held"
            )
        tensors[f"model.{name}"] = t.detach().cpu().contiguous()
    for f in story.world.names:
        if _has_table(story, f):
            tensors[f"factor.{f}"] = torch.as_tensor(np.asarray(factor_logits[f]), dtype=torch.float64).contiguous()
    optim_info = None
    if optimizer is not None:
        opt_t, optim_info = _optim_tensors(optimizer.state_dict())
        tensors.update(opt_t)
    return tensors, optim_info


def _has_table(story, factor: str) -> bool:
    """Whether ``factor``'s mechanism is a table (a discrete factor whose parents are all discrete)."""
    continuous = set(getattr(story.world, "continuous", ()))
    return factor not in continuous and not continuous.intersection(story.parents(factor))


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    blob = read_limited(
        path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError, f"train one with `cvaeq train --out {path}`"
    )
    foreign = f"{path}: not a cvaeq checkpoint (expected a .safetensors file written by `cvaeq train`)"
    if len(blob) < 8:
        raise CheckpointError(f"{path}: truncated checkpoint ({len(blob)} bytes); re-train or re-download it")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER:
        raise CheckpointError(foreign)
    if 8 + n > len(blob):
        raise CheckpointError(f"{path}: truncated checkpoint (header runs past the end); re-train or re-download it")
    try:
        header = json.loads(blob[8 : 8 + n])
        info = header.get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        raise CheckpointError(foreign) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(foreign)
    if info.get("version") != str(VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format version {info.get('version')!r}; this cvaeq reads version {VERSION}"
        )
    try:
        tensors = st_load(blob)
    except Exception:  # safetensors raises its own error type on any malformed payload
        raise CheckpointError(f"{path}: truncated or corrupt tensor data; re-train or re-download it") from None
    meta_json = info.get("meta", "")
    if not isinstance(meta_json, str) or _digest(tensors, meta_json) != info.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch: the file was modified after it was written; do not use it")
    try:
        meta = json.loads(meta_json)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path}: metadata is not valid JSON (or nested too deeply)") from None
    _check_meta(path, meta)
    return meta, tensors


def read_metadata(path: str | os.PathLike) -> dict:
    """A checkpoint's metadata (story text, world, family, arch, ...) from its header alone.

    Cheap (the tensors are not read) and unverified: for choosing a file, such
    as the shipped checkpoint of a story; :func:`load_checkpoint` verifies
    what it loads. Anything unreadable is a CheckpointError.
    """
    path = checked_file(path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError)
    foreign = f"{path}: not a cvaeq checkpoint (expected a .safetensors file written by `cvaeq train`)"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            (n,) = struct.unpack("<Q", head) if len(head) == 8 else (-1,)
            if not 0 < n <= min(_MAX_HEADER, size - 8):  # read what the file holds, never more
                raise CheckpointError(foreign)
            header = json.loads(f.read(n))
        meta = json.loads(header["__metadata__"]["meta"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise CheckpointError(foreign) from None
    if not isinstance(meta, dict):
        raise CheckpointError(foreign)
    return meta


def _is_int(v: Any, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _check_meta(path: Path, meta: Any) -> None:
    """Every metadata field of the right type and within sane bounds, before anything is built from it
    (the digest proves nothing: anyone can recompute it)."""
    from ..limits import MAX_EPOCHS, MAX_SEED, MAX_STORY_BYTES

    def bad(field: str, what: str) -> CheckpointError:
        return CheckpointError(f"{path}: metadata field {field!r} {what}; the file is corrupt or forged, do not use it")

    if not isinstance(meta, dict):
        raise bad("meta", "is not a JSON object")
    for key in ("story_text", "arch", "train_config", "epoch"):
        if key not in meta:
            raise bad(key, "is missing")
    if not isinstance(meta["story_text"], str) or len(meta["story_text"]) > MAX_STORY_BYTES:
        raise bad("story_text", f"is not a story's text of at most {MAX_STORY_BYTES:,} characters")
    for key in ("story_name", "world", "family"):
        if key in meta and not (isinstance(meta[key], str) and len(meta[key]) <= 256):
            raise bad(key, "is not a name")
    from ..world import PIXEL_KINDS

    if "pixel" in meta and meta["pixel"] not in PIXEL_KINDS:
        raise bad("pixel", f"is not a pixel kind ({', '.join(PIXEL_KINDS)})")
    if "channels" in meta and meta["channels"] not in (1, 3):
        raise bad("channels", "is not 1 or 3")
    for key in ("arch", "train_config", "factor_parents"):
        if key in meta and not isinstance(meta[key], dict):
            raise bad(key, "is not a JSON object")
    if not _is_int(meta["epoch"], 0, MAX_EPOCHS):
        raise bad("epoch", f"is not an integer from 0 to {MAX_EPOCHS:,}")
    if meta.get("data_seed") is not None and not _is_int(meta["data_seed"], 0, MAX_SEED):
        raise bad("data_seed", "is not a seed (an integer from 0 to 2**63 - 1)")
    history = meta.get("history", [])
    if not isinstance(history, list) or len(history) > MAX_EPOCHS:
        raise bad("history", f"is not a list of at most {MAX_EPOCHS:,} epochs")
    for h in history:
        if not isinstance(h, dict):
            raise bad("history", "has an epoch that is not a JSON object")
        seconds = h.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise bad("history", "has an epoch whose seconds are not a finite number >= 0")
    laws = meta.get("laws")
    if laws is not None and not (
        isinstance(laws, dict) and 0 < len(laws) <= MAX_LAWS and all(isinstance(t, dict) for t in laws.values())
    ):
        raise bad("laws", f"is not a table of at most {MAX_LAWS} fitted laws ({{factor: law table}})")
    optim = meta.get("optimizer")
    if optim is not None and not (
        isinstance(optim, dict)
        and isinstance(optim.get("param_groups"), list)
        and isinstance(optim.get("scalars", {}), dict)
    ):
        raise bad("optimizer", "is not an optimizer's state")


def _legacy_arch(meta: dict) -> dict:
    """``meta["arch"]`` of a file written before families: the causal VAE's
    ArchConfig alone, its options at the top level, switches added later off."""
    arch = {"centroid_correction": 0, "window": 0, **meta["arch"]}
    arch.setdefault("aux_weight", meta.get("aux_weight", 10.0))
    # files written before the option existed were trained modulo symmetry
    arch.setdefault("orientation_loss", meta.get("orientation_loss", "symmetric"))
    return arch


def _build_on_meta(family, world, latent_dim: int, arch: dict) -> dict[str, torch.Tensor]:
    """The state dict ``family.build`` would make, as meta tensors (shapes only, nothing allocated)."""
    rng = torch.get_rng_state()
    try:
        with torch.device("meta"):
            return family.build(world, latent_dim, arch).state_dict()
    finally:
        torch.set_rng_state(rng)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and verify a checkpoint; the model comes back in eval mode on the CPU."""
    from ..story import story_from_text

    path = Path(path)
    meta, tensors = _read(path)
    try:
        story = story_from_text(meta["story_text"], source=f"{path} (stored story)")
        world = story.world
        if meta.get("world", world.name) != world.name:
            raise CheckpointError(
                f"{path}: records world {meta['world']!r} but its story is about world "
                f"{world.name!r}; the file is inconsistent, re-train it"
            )
        pixel, channels = meta.get("pixel", "binary"), meta.get("channels", 1)
        if (pixel, channels) != (world.pixel, world.channels):
            raise CheckpointError(
                f"{path}: records {pixel} pictures of {channels} channel(s) but its world "
                f"{world.name!r} has {world.pixel} pictures of {world.channels}; the file is "
                "inconsistent, re-train it"
            )
        family_name = meta.get("family", DEFAULT_FAMILY)
        family = get_family(family_name)
        check_pixel_kind(family, family_name, world)
        arch = meta["arch"] if "family" in meta else _legacy_arch(meta)
        if not isinstance(arch, dict):
            raise CheckpointError(f"{path}: the recorded architecture is not a JSON object")
        weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        # the recorded architecture is built on the meta device (no memory) and checked against the
        # tensors actually in the file before the model is built for real
        expected = {k: tuple(v.shape) for k, v in _build_on_meta(family, world, story.latent_dim, arch).items()}
        if set(weights) != set(expected) or any(tuple(weights[k].shape) != expected[k] for k in expected):
            raise CheckpointError(f"{path}: the weights do not match the recorded architecture")
        model = family.build(world, story.latent_dim, arch)
        model.load_state_dict(weights)
        model.eval()
        factor_logits: dict[str, Any] = {}
        sizes = world.sizes
        for f in world.names:
            if not _has_table(story, f):
                continue
            t = tensors.get(f"factor.{f}")
            shape = tuple(sizes[p] for p in story.parents(f)) + (sizes[f],)
            if t is None or tuple(t.shape) != shape:
                raise CheckpointError(f"{path}: factor table for {f!r} is missing or not of shape {shape}")
            factor_logits[f] = t
        _check_laws(path, story, meta.get("laws"))
        story = story.with_laws(meta.get("laws"))  # the story as the model knows it: the fitted laws
        optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        optimizer_state = _optim_state(optim, meta["optimizer"]) if meta.get("optimizer") else None
        int(meta["epoch"])
    except (CheckpointError, PluginError):  # a plugin's family that broke is named as such
        raise
    except (CvaeqError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: inconsistent checkpoint metadata ({type(e).__name__}: {e})") from None
    return Checkpoint(model, story, factor_logits, meta, optimizer_state, path)


def _check_laws(path: Path, story, laws: dict | None) -> None:
    """Each recorded law a law of one of the story's continuous factors, reading that
    factor's parents, and a valid law table (:meth:`cvaeq.invertible.Law.from_dict`:
    bounded numbers, a known link and noise); anything else a CheckpointError."""
    if laws is None:
        return
    from ..invertible import Law, LawError, kind_of, law_contribution

    def bad(what: str) -> CheckpointError:
        return CheckpointError(
            f"{path}: metadata field 'laws' {what}; the file is corrupt or forged: do not use it, re-train the model"
        )

    for f, table in laws.items():
        if f not in story.world.continuous:
            raise bad(f"names {str(f)[:64]!r}, not a continuous factor of its story")
        parents = story.parents(f)
        if table.get("parents") != list(parents):
            raise bad(f"gives the law of {f!r} parents other than the story's {list(parents)}")
        try:
            law = Law.from_dict({k: v for k, v in table.items() if k != "parents"}, parents)
            for p in parents:  # each weight of its parent's form (a number, or a number per label)
                law_contribution(law, p, np.zeros(1, dtype=np.int64), kind_of(story.world.factor(p)))
        except LawError as e:
            raise bad(f"holds a bad law for {f!r} ({e})") from None


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint without its optimizer state (a third of the size), for
    shipping; it loads and answers queries the same, but cannot be resumed."""
    ckpt = load_checkpoint(src)
    meta = ckpt.meta
    return save_checkpoint(
        dst,
        ckpt.model,
        ckpt.story,
        ckpt.factor_logits,
        family=ckpt.family,
        train_config=meta["train_config"],
        epoch=ckpt.epoch,
        history=meta["history"],
        optimizer=None,
        data_seed=meta["data_seed"],
        laws=ckpt.laws,
    )
