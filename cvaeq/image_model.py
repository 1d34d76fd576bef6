"""The image-model seam: what an image model must give, what it may give, and
the one adapter through which cvaeq calls it.

An image-model family (:mod:`cvaeq.model.family`, the ``register_image_models``
hook) builds models that the engine, evaluation, the explorer and training's
held-out figures call only through this module. Nothing else in cvaeq tests
for a member of one implementation.

**Required** (:func:`missing_members` names what a model lacks):

* :class:`ImageModel`: ``latent_dim``, the encoders ``factor_logits(x)``
  (q(factors | X), the engine's proposal for unknown factors) and
  ``z_posterior(x, classes)`` (q(Z | X, factors));
* one decoder of p(X | factors, Z): for binary pictures :class:`PixelLogits`
  (``pixel_logits``, Bernoulli logits; preferred: a confident pixel keeps a
  finite likelihood) or :class:`PixelProbs` (``decode_probs``,
  probabilities); when a model has both, ``decode_probs`` must be
  ``sigmoid(pixel_logits)``, and the logits are used everywhere. For 8-bit
  pictures (a model with ``pixel = "8bit"``) :class:`PixelLevels`
  (``pixel_levels``, the discretised logistic's ``(loc, log_scale)`` of
  :mod:`cvaeq.levels`).

**Optional** (a model without them works everywhere, at its own speed):

* :class:`SplitEncoder`: ``features(x)``, ``factor_logits_of(features)`` and
  ``z_posterior_of(features, classes)``, the encoders split into shared image
  features and two heads, so that an image's features are computed once for
  both encoders (an image query asks q(factors | X), then q(Z | X, factors));
* :class:`PixelPrecision`: ``pixel_dtype``, the precision of the image
  mechanism's pixel arithmetic (default float32);
* :class:`LevelBlocks` (8-bit): ``level_blocks(classes, z)``, the decoder's
  ``(loc, log_scale)`` in the order it computes them, with the permutation
  ``to_level_blocks(x)`` / ``from_level_blocks(blocks)`` between that order
  and the picture's; the image mechanism then does its per-pixel arithmetic
  in the decoder's order and puts only its uint8 answers back in the
  picture's (two float copies of every decoding saved: about a tenth of an
  image counterfactual's time on the 64×64×3 colour world, docs/engine.md);
* :class:`FactorNormals`: ``factor_normals(x) -> {factor: (loc [S],
  log_scale [S])}`` (and, with the split encoder, ``factor_normals_of(features)``):
  q(factor | X) of each **continuous** factor, a Normal in the factor's own
  units; needed (for the continuous factors) where a world has them and the
  engine must propose them from a picture. ``factor_logits`` then gives the
  categorical factors only.

Shapes: ``classes`` are ``int64 [S, F]`` in the world's factor order
(``world.names``), or ``float64 [S, F]`` in a world with continuous factors
(their values; the categorical columns hold their exact classes,
:func:`factor_matrix`); images are float ``[S, *image_shape]`` of the world's
``image_shape`` (0/1 for binary worlds, levels / 255 for 8-bit ones); ``z``
is ``[S, latent_dim]``.

A new pixel kind declares its decoder here as a Protocol beside these
(:class:`PixelLevels` is the 8-bit one), and adds it to :data:`DECODERS` and
the adapter's :meth:`~ImageModelAdapter.probs_of`: the one place that knows
the decoder paths.

**The adapter.** :class:`ImageModelAdapter` decides once, when it is built,
which decoder a model is called through (:attr:`~ImageModelAdapter.decoder`)
and whether its encoders are split; a plugin's model is wrapped in
:class:`~cvaeq.mechanisms.checked.CheckedImageModel` there, the boundary
where it enters. Its :meth:`~ImageModelAdapter.encode` reads a batch of
images once and returns an :class:`Encoding`, a value the caller hands on
(the proposal asks its ``factor_logits()``, then its ``z_posterior(classes)``):
nothing is remembered between calls (the one opt-in exception,
``repeat_last_decode``, is for an adapter that lives for one evaluation).

>>> import torch
>>> class Tiny:  # the required members only, with the decoder as probabilities
...     latent_dim = 1
...     def decode_probs(self, classes, z):
...         return torch.full((len(classes), 2, 2), 0.75)
...     def factor_logits(self, x):
...         return {"a": x.reshape(len(x), -1)[:, :2]}
...     def z_posterior(self, x, classes):
...         return torch.zeros(len(x), 1), torch.ones(len(x), 1)
>>> missing_members(Tiny()) is None
True
>>> m = ImageModelAdapter(Tiny(), (2, 2))
>>> m.decoder, m.split
('probs', False)
>>> m.pixel_probs(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1))[0, 0].tolist()
[0.75, 0.75]
>>> x = torch.tensor([[[0., 1.], [0., 0.]]] * 2 + [[[1., 0.], [0., 0.]]])
>>> enc = m.encode(x)  # three rows, two distinct images: q(factors | X) reads two
>>> enc.distinct, enc.factor_logits()["a"].tolist()
(2, [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .errors import CvaeqError, MechanismError, plugin_error

__all__ = [
    "ImageModel",
    "PixelLogits",
    "PixelProbs",
    "PixelLevels",
    "SplitEncoder",
    "PixelPrecision",
    "LevelBlocks",
    "FactorNormals",
    "ImageModelAdapter",
    "BlockOrder",
    "block_order",
    "Encoding",
    "factor_matrix",
    "missing_members",
    "adapt",
]


@runtime_checkable
class ImageModel(Protocol):
    """The members every image model gives (besides one decoder, :class:`PixelLogits`
    or :class:`PixelProbs`)."""

    latent_dim: int

    def factor_logits(self, x: Tensor) -> dict[str, Tensor]:
        """q(factors | X): ``{factor: logits [S, size]}`` for every factor of the world."""
        ...

    def z_posterior(self, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        """q(Z | X, factors): ``(loc, scale)``, each ``[S, latent_dim]``."""
        ...


@runtime_checkable
class PixelLogits(Protocol):
    """The decoder as Bernoulli logits (preferred)."""

    def pixel_logits(self, classes: Tensor, z: Tensor) -> Tensor:
        """``[S, H, W]`` Bernoulli logits of p(X | factors, Z)."""
        ...


@runtime_checkable
class PixelProbs(Protocol):
    """The decoder as Bernoulli probabilities."""

    def decode_probs(self, classes: Tensor, z: Tensor) -> Tensor:
        """``[S, H, W]`` Bernoulli pixel probabilities of p(X | factors, Z)."""
        ...


@runtime_checkable
class PixelLevels(Protocol):
    """The decoder of 8-bit pictures (a model whose ``pixel`` is ``"8bit"``)."""

    pixel: str

    def pixel_levels(self, classes: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(loc, log_scale)``, each float ``[S, *image_shape]``, loc on the [0, 1]
        scale: the discretised logistic of every pixel and channel (:mod:`cvaeq.levels`)."""
        ...


@runtime_checkable
class FactorNormals(Protocol):
    """q(continuous factors | X): a Normal in each continuous factor's units (optional; see the module doc)."""

    def factor_normals(self, x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """``{factor: (loc [S], log_scale [S])}`` for the images ``x [S, ...]``."""
        ...


@runtime_checkable
class SplitEncoder(Protocol):
    """Optional: both encoders as heads on shared image features.

    ``factor_logits_of(features(x))`` must equal ``factor_logits(x)`` and
    ``z_posterior_of(features(x), classes)`` must equal ``z_posterior(x, classes)``.
    """

    def features(self, x: Tensor) -> Tensor:
        """``[S, ...]`` features of images ``[S, H, W]``, shared by both heads."""
        ...

    def factor_logits_of(self, features: Tensor) -> dict[str, Tensor]:
        """q(factors | X) from :meth:`features`."""
        ...

    def z_posterior_of(self, features: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        """q(Z | X, factors) from :meth:`features` and the classes."""
        ...


@runtime_checkable
class PixelPrecision(Protocol):
    """Optional: the precision of the image mechanism's pixel arithmetic."""

    pixel_dtype: torch.dtype


@runtime_checkable
class LevelBlocks(Protocol):
    """Optional, 8-bit: the decoder's answer in its own order, and the permutation to the picture's.

    ``from_level_blocks(level_blocks(classes, z)[i])`` must equal
    ``pixel_levels(classes, z)[i]`` exactly (the same numbers, moved), and
    ``to_level_blocks`` must be its inverse; the adapter checks once that the
    two are inverse permutations of a picture's pixel-channels."""

    def level_blocks(self, classes: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(loc, log_scale)``, each float ``[S, *blocks]`` with as many values as a picture."""
        ...

    def to_level_blocks(self, x: Tensor) -> Tensor:
        """Pictures ``[S, *image_shape]`` (any dtype) in :meth:`level_blocks`' order, ``[S, *blocks]``."""
        ...

    def from_level_blocks(self, blocks: Tensor) -> Tensor:
        """``[S, *blocks]`` back in the pictures' order, ``[S, *image_shape]``."""
        ...


#: The binary decoders, in the order the adapter prefers them: (member, ``decoder`` name).
DECODERS = (("pixel_logits", "logits"), ("decode_probs", "probs"))
#: The 8-bit decoder: (member, ``decoder`` name).
LEVELS_DECODER = ("pixel_levels", "levels")


def pixel_of(model: object) -> str:
    """The pixel kind a model decodes: its ``pixel`` attribute, else ``"binary"``."""
    return str(getattr(model, "pixel", "binary"))


def _has(model: object, member: str) -> bool:
    return callable(getattr(model, member, None))


def missing_members(image_model: object) -> str | None:
    """What ``image_model`` lacks of the required members, as ``"name()"``
    (the decoder may be ``pixel_logits`` or ``decode_probs``; an 8-bit
    model's is ``pixel_levels``), or None."""
    if pixel_of(image_model) == "8bit":
        if not _has(image_model, LEVELS_DECODER[0]):
            return "pixel_levels()"
    elif not any(_has(image_model, m) for m, _ in DECODERS):
        return "pixel_logits() or decode_probs()"
    for member in ("factor_logits", "z_posterior"):
        if not _has(image_model, member):
            return f"{member}()"
    if not hasattr(image_model, "latent_dim"):
        return "latent_dim"
    return None


def consecutive_runs(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(new, run)``: which rows of ``x`` start a run of identical consecutive
    images, and each row's run index."""
    flat = x.reshape(x.shape[0], -1)
    new = torch.ones(x.shape[0], dtype=torch.bool)
    new[1:] = (flat[1:] != flat[:-1]).any(1)
    return new, torch.cumsum(new.long(), 0) - 1


def factor_matrix(values: Mapping[str, Tensor], factors: Sequence[str], num: int | None = None) -> Tensor:
    """The factors as the decoder takes them, ``[S, F]`` in ``factors`` order:
    int64 classes, or float64 when a factor is continuous (a float column; the
    categorical columns then hold their exact classes as whole numbers).

    >>> factor_matrix({"a": torch.tensor([1, 2]), "b": torch.tensor([0, 0])}, ["a", "b"]).dtype
    torch.int64
    >>> factor_matrix({"a": torch.tensor([1, 2]), "t": torch.tensor([2.5, 3.0], dtype=torch.float64)}, ["a", "t"])
    tensor([[1.0000, 2.5000],
            [2.0000, 3.0000]], dtype=torch.float64)
    """
    cols = [values[f] for f in factors]
    if num is not None:
        cols = [c.expand(num) for c in cols]
    if not cols:
        return torch.zeros(num or 0, 0, dtype=torch.long)
    if any(c.is_floating_point() for c in cols):
        return torch.stack([c.double() for c in cols], -1)
    return torch.stack([c.long() for c in cols], -1)


class Encoding:
    """A batch of images ``x [S, H, W]`` as the encoders read it: each run of
    identical consecutive images once (an evidence image given to every
    particle, stride 0, is one run without a look at its pixels).

    With a split encoder the image features are computed once, on the
    distinct images, and both heads read them; without, ``factor_logits``
    reads the distinct images and ``z_posterior`` every row. Answers have one
    row per row of ``x``.

    :param factor_logits: q(factors | X) (or None: the model has none).
    :param z_posterior: q(Z | X, factors) (or None).
    :param split: a :class:`SplitEncoder` to read the features with (or None).
    :param factor_normals: q(continuous factors | X), ``x -> {factor: (loc, log_scale)}``
        (or None: the model has none; a split encoder's ``factor_normals_of`` is used when it has one).
    """

    def __init__(
        self,
        x: Tensor,
        *,
        factor_logits: Callable | None = None,
        z_posterior: Callable | None = None,
        split: SplitEncoder | None = None,
        factor_normals: Callable | None = None,
    ) -> None:
        self.x = x
        self._factor_logits, self._z_posterior, self._split = factor_logits, z_posterior, split
        self._factor_normals = factor_normals
        n = x.shape[0]
        #: ``None`` (every row distinct), ``"one"`` (one image in every row) or each row's run index
        self._run: Tensor | str | None = None
        self._distinct = x
        if n > 1 and x.stride(0) == 0:
            self._run, self._distinct = "one", x[:1]
        elif n > 1:
            new, run = consecutive_runs(x)
            if not bool(new.all()):
                self._run, self._distinct = run, x[new]
        self._features: Tensor | None = None

    @property
    def distinct(self) -> int:
        """How many distinct images (runs) the encoders read."""
        return int(self._distinct.shape[0])

    def _spread(self, t: Tensor) -> Tensor:
        """Rows of the distinct images spread to one per row of ``x``."""
        if self._run is None:
            return t
        if isinstance(self._run, str):
            return t.expand(self.x.shape[0], *t.shape[1:])
        return t[self._run]

    def features(self) -> Tensor:
        """The split encoder's features of the distinct images (computed on first use)."""
        if self._features is None:
            if self._split is None:
                raise MechanismError("this encoding has no split encoder: the model gives no features()")
            self._features = self._split.features(self._distinct)
        return self._features

    def factor_logits(self) -> dict[str, Tensor]:
        """q(factors | X): ``{factor: logits [S, size]}`` (rows of one image may be one expanded row)."""
        if self._split is not None:
            logits = self._split.factor_logits_of(self.features())
        elif self._factor_logits is not None:
            logits = self._factor_logits(self._distinct)
        else:
            raise MechanismError("the image model gives no q(factors | X) (factor_logits)")
        return {f: self._spread(v) for f, v in logits.items()}

    def factor_normals(self) -> dict[str, tuple[Tensor, Tensor]]:
        """q(continuous factors | X): ``{factor: (loc [S], log_scale [S])}``, a Normal in the factor's units."""
        if self._split is not None and callable(getattr(self._split, "factor_normals_of", None)):
            normals = self._split.factor_normals_of(self.features())  # type: ignore[attr-defined]
        elif self._factor_normals is not None:
            normals = self._factor_normals(self._distinct)
        else:
            raise MechanismError("the image model gives no q(continuous factors | X) (factor_normals)")
        return {f: (self._spread(loc), self._spread(log_scale)) for f, (loc, log_scale) in normals.items()}

    def z_posterior(self, classes: Tensor) -> tuple[Tensor, Tensor]:
        """q(Z | X, factors): ``(loc, scale)`` ``[S, latent_dim]`` for ``classes [S, F]``
        (float64 when the world has continuous factors, :func:`factor_matrix`)."""
        if self._split is not None:
            return self._split.z_posterior_of(self._spread(self.features()), classes)
        if self._z_posterior is None:
            raise MechanismError("the image model gives no q(Z | X, factors) (z_posterior)")
        return self._z_posterior(self.x, classes)


class ImageModelAdapter:
    """An image model as cvaeq calls it: the decoder path and the encoders' split decided once.

    :param model: an object with the required members (:func:`missing_members`);
        a plugin's (or a user's) model is checked in use
        (:class:`~cvaeq.mechanisms.checked.CheckedImageModel`).
    :param shape: the world's ``image_shape`` (what the checks expect).
    :param pixel_dtype: the image mechanism's pixel precision (None: the
        model's ``pixel_dtype``, else float32).
    :param repeat_last_decode: hand back the last decoder output when asked
        again for equal ``(classes, z)`` (compared by value against copies, so
        a tensor changed in place is not fooled). For an adapter that lives
        for one computation over fixed weights: ``cvaeq eval`` builds one per
        call, whose decoder chain decodes the very particles its abduction's
        likelihood has just decoded. Off by default: the adapter then keeps
        nothing between calls.
    :raises MechanismError: a required member is missing.
    """

    model: Any

    def __init__(
        self,
        model: Any,
        shape: tuple[int, ...],
        *,
        pixel_dtype: torch.dtype | None = None,
        repeat_last_decode: bool = False,
    ) -> None:
        if isinstance(model, ImageModelAdapter):
            model = model.model  # the other adapter's model (a plugin's already checked)
        missing = missing_members(model)
        if missing:
            raise MechanismError(f"the image model has no {missing}; it must implement cvaeq.image_model.ImageModel")
        from .mechanisms.checked import CheckedImageModel, is_builtin

        #: the model as called (a plugin's wrapped in its checks)
        self.model = model if is_builtin(model) else CheckedImageModel(model, shape)
        self.shape = tuple(shape)
        self.latent_dim = int(model.latent_dim)
        #: the pixel kind decoded: ``"binary"`` or ``"8bit"``
        self.pixel = pixel_of(model)
        #: ``"logits"`` (``pixel_logits``), ``"probs"`` (``decode_probs``) or, for
        #: 8-bit pictures, ``"levels"`` (``pixel_levels``): what :meth:`decode` gives
        member, self.decoder = (
            LEVELS_DECODER if self.pixel == "8bit" else next((m, name) for m, name in DECODERS if _has(model, m))
        )
        self._decode = getattr(self.model, member)
        #: whether the encoders are read through :class:`SplitEncoder`
        self.split = all(_has(model, m) for m in ("features", "factor_logits_of", "z_posterior_of"))
        self.pixel_dtype = pixel_dtype or getattr(model, "pixel_dtype", None) or torch.float32
        self.repeat_last_decode = repeat_last_decode
        self._last: tuple[Tensor, Tensor, Any, bool] | None = None  # (classes, z, decoded, in blocks), swapped whole
        self._weights: tuple[Tensor, ...] | None = None  # the model's tensors (weights_state)
        #: the 8-bit decoder's own order (:class:`LevelBlocks`), or None: the picture's
        self.blocks = block_order(self.model, self.shape) if self.pixel == "8bit" else None

    def __repr__(self) -> str:
        return f"ImageModelAdapter({self.model!r}, decoder={self.decoder!r}, split={self.split})"

    def decode(self, classes: Tensor, z: Tensor) -> Any:
        """What the decoder gives, ``[S, *image_shape]``: logits (``decoder == "logits"``),
        probabilities, or an 8-bit decoder's ``(loc, log_scale)``."""
        last = self._repeated(classes, z)
        if last is not None:
            out, in_blocks = last
            return tuple(self.blocks.back(t) for t in out) if in_blocks and self.blocks is not None else out
        out = self._decode(classes, z)
        self._remember(classes, z, out, False)
        return out

    def decode_blocks(self, classes: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """An 8-bit decoder's ``(loc, log_scale)`` in :attr:`blocks`' order (the picture's when None)."""
        if self.blocks is None:
            return self.decode(classes, z)
        last = self._repeated(classes, z)
        if last is not None:
            out, in_blocks = last
            return out if in_blocks else (self.blocks.to(out[0]), self.blocks.to(out[1]))
        out = self.model.level_blocks(classes, z)
        self._remember(classes, z, out, True)
        return out

    def _repeated(self, classes: Tensor, z: Tensor) -> tuple[Any, bool] | None:
        """``(decoded, in the decoder's order)`` of the last decoding when it was of these very
        ``classes`` and ``z`` (with ``repeat_last_decode``), else None."""
        last = self._last
        if (
            last is not None
            and last[0].shape == classes.shape
            and last[1].shape == z.shape
            and last[1].dtype == z.dtype
            and torch.equal(last[0], classes)
            and torch.equal(last[1], z)
        ):
            return last[2], last[3]
        return None

    def _remember(self, classes: Tensor, z: Tensor, out: Any, in_blocks: bool) -> None:
        if self.repeat_last_decode:
            self._last = (classes.clone(), z.clone(), out, in_blocks)

    def weights_state(self) -> tuple | None:
        """The model's weights as they stand, as a key: torch's count of in-place changes of each
        parameter and buffer the model had when the adapter was built (a training step or
        ``load_state_dict`` changes it; a parameter replaced by a new tensor is not seen), or None
        for a model that is not a torch module (its weights cannot be told apart). What a cache of
        results computed from the model's answers is keyed by."""
        if self._weights is None:
            model = getattr(self.model, "inner", self.model)
            if not isinstance(model, torch.nn.Module):
                return None
            self._weights = (*model.parameters(), *model.buffers())
        return tuple(t._version for t in self._weights)

    def probs_of(self, decoded: Any) -> Tensor:
        """Pixel probabilities of what :meth:`decode` gave (the logits' sigmoid, in their
        precision); for 8-bit pictures the mean picture on the [0, 1] scale."""
        if self.decoder == "levels":
            from .levels import mean_unit

            return mean_unit(*decoded)
        return torch.sigmoid(decoded) if self.decoder == "logits" else decoded

    def pixel_probs(self, classes: Tensor, z: Tensor) -> Tensor:
        """``[S, H, W]`` Bernoulli pixel probabilities of p(X | factors, Z)."""
        return self.probs_of(self.decode(classes, z))

    def pixels_on(self, classes: Tensor, z: Tensor) -> Tensor:
        """``[S, H, W]`` bool: the pixels of the decoded mean image above one half
        (a positive logit, exactly, when the decoder gives logits)."""
        decoded = self.decode(classes, z)
        if self.decoder == "levels":
            return self.probs_of(decoded) > 0.5
        return decoded > 0 if self.decoder == "logits" else decoded > 0.5

    def factor_logits(self, x: Tensor) -> dict[str, Tensor]:
        """q(factors | X) of every row of ``x`` (the model's own call)."""
        return self.model.factor_logits(x)

    def factor_normals(self, x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """q(continuous factors | X) of every row (the model's own call), where it has one."""
        fn = getattr(self.model, "factor_normals", None)
        if fn is None:
            raise MechanismError("the image model gives no q(continuous factors | X) (factor_normals)")
        return fn(x)

    def z_posterior(self, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        """q(Z | X, factors) of every row (the model's own call)."""
        return self.model.z_posterior(x, classes)

    def encode(self, x: Tensor) -> Encoding:
        """The images ``x`` read once for both encoders (:class:`Encoding`)."""
        return Encoding(
            x,
            factor_logits=self.model.factor_logits,
            z_posterior=self.model.z_posterior,
            split=self.model if self.split else None,
            factor_normals=getattr(self.model, "factor_normals", None),
        )


class BlockOrder:
    """A permutation of a picture's pixel-channels: ``to(x)`` puts pictures ``[S, *image_shape]``
    in the decoder's order ``[S, *shape]``, ``back(t)`` puts them back (:class:`LevelBlocks`).

    >>> import torch
    >>> flip = BlockOrder(lambda x: x.flip(-1), lambda t: t.flip(-1), (2, 2))
    >>> flip.shape, flip.to(torch.arange(4).reshape(1, 2, 2)).tolist()
    ((2, 2), [[[1, 0], [3, 2]]])
    """

    def __init__(self, to: Callable[[Tensor], Tensor], back: Callable[[Tensor], Tensor], image_shape: Sequence[int]):
        self.to, self.back = to, back
        #: one picture's shape in the decoder's order
        self.shape = tuple(int(v) for v in to(torch.zeros(1, *image_shape, dtype=torch.uint8)).shape[1:])


def block_order(model: Any, shape: tuple[int, ...]) -> BlockOrder | None:
    """The :class:`BlockOrder` of an 8-bit model with :class:`LevelBlocks`, or None (the picture's
    order) for a model without it; checked once: ``to_level_blocks`` must move a picture's
    pixel-channels without losing or repeating any, and ``from_level_blocks`` put them back."""
    if not all(_has(model, m) for m in ("level_blocks", "to_level_blocks", "from_level_blocks")):
        return None
    n = math.prod(shape)
    picture = torch.arange(n, dtype=torch.float64).reshape(1, *shape)
    try:
        blocks = model.to_level_blocks(picture)
        moved = isinstance(blocks, Tensor) and blocks.numel() == n and blocks.shape[0] == 1
        ok = moved and torch.equal(blocks.reshape(-1).sort().values, picture.reshape(-1))
        ok = ok and torch.equal(model.from_level_blocks(blocks), picture)
    except Exception as e:  # a plugin's bug, said in one line
        what = f"to_level_blocks/from_level_blocks raised {type(e).__name__}: {str(e)[:200]}"
        raise _model_error(model, what) from None
    if not ok:
        raise _model_error(
            model,
            "to_level_blocks and from_level_blocks must be inverse permutations of a picture's "
            f"{n} pixel-channels (cvaeq.image_model.LevelBlocks)",
        )
    return BlockOrder(model.to_level_blocks, model.from_level_blocks, shape)


def _model_error(model: Any, what: str) -> CvaeqError:
    """What a model broke: a PluginError naming a plugin's model (checked, it knows ``who`` made
    it), else a MechanismError."""
    who = getattr(model, "who", None)
    return plugin_error(who, what) if isinstance(who, str) else MechanismError(f"the image model's {what}")


def adapt(model: Any, shape: tuple[int, ...], **kwargs: Any) -> ImageModelAdapter:
    """``model`` as an :class:`ImageModelAdapter` (itself when it is one and no option is given)."""
    if isinstance(model, ImageModelAdapter) and not kwargs:
        return model
    return ImageModelAdapter(model, shape, **kwargs)
