"""Worlds: the factors, the image and the renderer, as data handed to the core.

A :class:`World` declares what a family of images is made of: its factors
(categorical with labels, numeric with a grid of values, or continuous on an
interval, in a fixed order), the image's shape, and a **renderer** from factor
classes to images, which is the ground truth of every counterfactual. A world
of real labelled pictures has no renderer (``render=None``): its pictures come
from files (``data``), and its counterfactuals have no known true picture, but
under ``do()`` of a factor it redraws in its own pictures (``redraw``:
Morpho-MNIST's intensity). Optionally: a loader for a real dataset file, the
name of its default story, hints for the image model that suits it, and the
classes of a factor that draw the same image.

The core (stories, the SCM, the engine, the query language, data files,
training, evaluation, the CLI) reads every factor name, size, value and label
from a world; it imports no world. Worlds are contributed through the
``register_worlds`` hook (:mod:`cvaeq.hookspecs`); :func:`get_world` finds
one by name. dSprites is the built-in world ``"dsprites"``.

>>> import numpy as np
>>> w = World("toy", (Factor("colour", labels=("red", "blue")), Factor("x", values=[0.0, 0.5, 1.0])),
...           image_shape=(2, 3), render=lambda c: np.zeros((len(c), 2, 3), np.uint8))
>>> w.names, w.sizes["x"], w.n_images
(('colour', 'x'), 3, 6)
>>> w.label("x", 1), w.parse_value("colour", "blue"), w.parse_value("x", "0.9")
('0.5', 1, 2)
>>> w.indices_of(np.array([[1, 2]])).tolist(), w.classes_array_of(np.array([5])).tolist()
([5], [[1, 2]])

A continuous factor takes any number in ``[low, high]``; its values are
float64 (numpy ``(N,)``, torch ``[S]``) where a grid factor's are int64 classes:

>>> t = Factor("thickness", low=0.0, high=10.0, unit="px")
>>> t.continuous, t.numeric, t.parse("2.3"), t.label(2.3)
(True, True, 2.3, '2.3')
>>> digits = World("digits", (Factor("digit", labels=tuple("0123456789")), t), image_shape=(28, 28), pixel="8bit")
>>> digits.has_renderer, digits.continuous, digits.discrete, digits.sizes
(False, ('thickness',), ('digit',), {'digit': 10})
>>> digits.check_factors(np.array([[7, 2.5]])).dtype
dtype('float64')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, PluginError, plugin_error
from .plugin_manager import collect, skipped

__all__ = [
    "Factor",
    "Law",
    "World",
    "get_world",
    "get_worlds",
    "get_world_plugins",
    "DEFAULT_WORLD",
    "MAX_FACTORS",
    "MAX_FACTOR_SIZE",
]

#: The world of a story or checkpoint that names none (every file written before worlds).
DEFAULT_WORLD = "dsprites"
#: Most factors a world may declare, and most classes per factor (a sanity bound).
MAX_FACTORS = 64
MAX_FACTOR_SIZE = 100_000
#: The pixel kinds a world may have, each with the largest value its renderer draws.
PIXEL_KINDS = {"binary": 1, "8bit": 255}


@dataclass(frozen=True, eq=False)
class Factor:
    """One factor of a world: categorical (``labels``) or numeric (``values``).

    :param name: the factor's name, as written in stories and queries.
    :param labels: a categorical factor's class names, in class order.
    :param values: a numeric factor's grid (strictly increasing), or, with
        ``labels``, the numbers a data file records for each class.
    :param unit: a numeric factor's unit, named in errors (e.g. ``"radians"``).
    :param low, high: a **continuous** factor's interval (give both, and no
        labels or values): it takes any number ``low <= v <= high``, has no
        classes, and its values are float64.
    """

    name: str
    labels: tuple[str, ...] | None = None
    values: np.ndarray | None = None
    unit: str = ""
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise DataError(f"factor name {self.name!r} must be an identifier (letters, digits, _)")
        if self.low is not None or self.high is not None:
            self._init_continuous()
            return
        if self.labels is None and self.values is None:
            raise DataError(
                f"factor {self.name!r}: give labels (categorical), values (numeric grid) or low and high (continuous)"
            )
        if self.labels is not None:
            labels = tuple(str(s) for s in self.labels)
            if len(set(labels)) != len(labels) or not labels:
                raise DataError(f"factor {self.name!r}: labels must be distinct and at least one")
            object.__setattr__(self, "labels", labels)
        if self.values is not None:
            values = np.asarray(self.values, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(values)) or len(values) == 0:
                raise DataError(f"factor {self.name!r}: values must be finite numbers")
            if self.labels is None and len(values) > 1 and not np.all(np.diff(values) > 0):
                raise DataError(f"factor {self.name!r}: a numeric grid must be strictly increasing")
            if self.labels is not None and len(values) != len(self.labels):
                raise DataError(f"factor {self.name!r}: {len(values)} values for {len(self.labels)} labels")
            object.__setattr__(self, "values", values)
        if not 1 <= self.size <= MAX_FACTOR_SIZE:  # (a continuous factor returned above)
            raise DataError(f"factor {self.name!r} has {self.size} classes; at most {MAX_FACTOR_SIZE}")

    def _init_continuous(self) -> None:
        if self.labels is not None or self.values is not None:
            raise DataError(f"factor {self.name!r}: a continuous factor (low, high) has no labels or values")
        try:
            low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(f"factor {self.name!r}: low and high must both be numbers") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise DataError(f"factor {self.name!r}: low and high must be finite numbers with low < high")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def continuous(self) -> bool:
        """True for a factor that takes any number in ``[low, high]`` (float64 values, no classes)."""
        return self.low is not None

    @property
    def size(self) -> int:
        """Number of classes (a continuous factor has none: a DataError)."""
        if self.continuous:
            raise DataError(f"factor {self.name!r} is continuous ({self.domain}): it has no classes")
        return len(self.labels) if self.labels is not None else len(self._numbers)

    @property
    def _numbers(self) -> np.ndarray:
        """A numeric factor's grid (``values``, never None when ``labels`` is)."""
        assert self.values is not None, "a factor has labels or values"
        return self.values

    @property
    def numeric(self) -> bool:
        """True for a factor on a grid of numbers (it has an expectation)."""
        return self.labels is None

    @property
    def grid(self) -> np.ndarray:
        """The numbers of the classes: the grid, or a categorical factor's recorded values (else 0, 1, ...)."""
        if self.continuous:
            raise DataError(f"factor {self.name!r} is continuous ({self.domain}): it has no grid")
        return self.values if self.values is not None else np.arange(self.size, dtype=np.float64)

    @property
    def domain(self) -> str:
        """What values the factor takes, in words: its labels, or its range and unit."""
        if self.labels is not None:
            return ", ".join(self.labels)
        unit = f" {self.unit}" if self.unit else ""
        if self.continuous:
            return f"any number from {self.low:g} to {self.high:g}{unit}"
        return f"{self._numbers[0]:g} to {self._numbers[-1]:g}{unit}"

    def label(self, cls: float) -> str:
        """A class (or a continuous value) as written in the query language:
        a name, or a number (6 significant digits)."""
        if self.continuous:
            return f"{float(cls):.6g}"
        cls = int(cls)
        if self.labels is not None:
            return self.labels[cls]
        return f"{self._numbers[cls]:.6g}"

    def snap(self, value: float) -> int:
        """Class of the grid value nearest ``value``; off the domain (beyond half
        a grid step past either end) is a DataError. A continuous factor has no
        classes: its value is :meth:`checked` instead."""
        if self.continuous:
            raise DataError(f"{self.name} is continuous: it has no grid to snap to")
        if self.labels is not None:
            raise DataError(f"{self.name} takes a name ({', '.join(self.labels)}), not a number")
        grid = self._numbers
        half = (grid[1] - grid[0]) / 2 if len(grid) > 1 else 0.5
        if not math.isfinite(value) or value < grid[0] - half or value > grid[-1] + half:
            raise DataError(f"{self.name}={value:g} is off the domain; allowed: {self.domain}")
        return int(np.argmin(np.abs(grid - value)))

    def checked(self, value: float) -> float:
        """A continuous factor's ``value`` as a float in ``[low, high]``; a DataError otherwise."""
        if not self.continuous:
            raise DataError(f"{self.name} is not continuous; its values are classes ({self.domain})")
        value = float(value)
        if not (math.isfinite(value) and self.low <= value <= self.high):  # type: ignore[operator]
            raise DataError(f"{self.name}={value:g} is off the domain; allowed: {self.domain}")
        return value

    def parse(self, text: str) -> int | float:
        """A value written by a user: the class of a label, or of a number
        snapped to the grid; a continuous factor's number itself (a float)."""
        text = str(text).strip()
        if self.labels is not None:
            if text in self.labels:
                return self.labels.index(text)
            raise DataError(f"unknown {self.name} {text!r}; allowed: {', '.join(self.labels)}")
        # ASCII decimals only, as documented: float() would also take "١", "1_0", "nan" and "infinity"
        if not re.fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", text):
            raise DataError(f"{self.name} takes a number (ASCII digits, e.g. 0.5 or 1e-1), got {text!r}")
        if self.continuous:
            return self.checked(float(text))
        return self.snap(float(text))


@dataclass(frozen=True)
class Law:
    """A law of a world: a deterministic number computed from some factors' values.

    Stories use a law as the centre of a normal (``[factors.F.normal]`` with
    ``law = "NAME"``): the factor follows the law up to the story's noise.
    The pendulum's shadow follows the projection of the rod by the light.

    :param args: the factors whose values (grid numbers) the law reads, in the
        order ``fn`` takes them; in a story they must be parents of the factor.
    :param fn: ``fn(*values) -> float``.
    :param doc: one line saying what it computes, for errors and docs.

    >>> Law(("x",), lambda x: 2 * x, "twice x").fn(1.5)
    3.0
    """

    args: tuple[str, ...]
    fn: Callable[..., float]
    doc: str = ""


@dataclass(frozen=True, eq=False)
class World:
    """A world: named factors, an image shape and the renderer that is its truth.

    :param name: the world's name (``--world NAME``, ``world = "NAME"`` in stories).
    :param factors: the factors, in the column order of every ``classes`` array.
    :param image_shape: ``(H, W)`` of one-channel images, or ``(C, H, W)``
        with C = 1 (grey) or 3 (RGB); ``(H, W)`` means C = 1.
    :param render: ``render(classes int64 (N, F)) -> uint8 (N, *image_shape)``
        images: deterministic, the ground truth of every counterfactual.
        Binary worlds draw 0/1; 8-bit worlds draw levels 0..255. ``None`` for
        a world of real labelled pictures (:attr:`has_renderer` is False): it
        has no true counterfactual, and every place that reads the truth says
        so. A world with a continuous factor has no grid to render and must
        have ``render=None``.
    :param pixel: the pixel kind: ``"binary"`` (0/1 pixels, the Bernoulli
        image mechanism) or ``"8bit"`` (levels 0..255 per pixel and channel,
        the discretised-logistic mechanism of :mod:`cvaeq.levels`).
    :param default_story: the registered story used when none is named.
    :param model_arch: hints for image-model families, e.g. the causal VAE's
        ``{"window": 1, "window_factors": ["posY", "posX"]}`` for a world
        whose objects are placed by two position factors. Families read what
        they know and ignore the rest.
    :param equivalent: ``{factor: (given, table)}``: ``table[g, k, j]`` is True
        when classes ``k`` and ``j`` of ``factor`` draw the same image given
        class ``g`` of factor ``given`` (a square turned by 90 degrees).
        Classifiers are scored modulo it.
    :param load_real: optional ``load_real(path) -> (images, classes)`` for a
        real dataset file of this world.
    :param file_constants: leading constant columns ``(name, value)`` of this
        world's data-file layout (dSprites files keep a ``color`` column).
    :param description: one line saying what the world is, for people (no
        command prints it today).
    :param laws: ``{name: Law}``: deterministic functions of factor values
        that stories may use as a factor's mean (the shadow's projection).
    :param data: a renderer-less world's labelled pictures shipped with it:
        the folder its loader (:mod:`cvaeq.data.labelled`) reads.
    :param test_rows: the row indices of its labelled pictures held out for
        testing (never trained on), e.g. ``range(7000, 8000)``; None: the
        last tenth of the rows (:func:`cvaeq.data.labelled.held_out_mask`).
    :param redraw: ``{factor: redraw(pictures uint8 (N, *image_shape), values (N,)) -> uint8
        pictures}`` for a world without a renderer that knows exactly how one factor was
        put into its pictures (the step of the data's own making that set it: Morpho-MNIST
        scales a digit's grey levels to its ``intensity``): the same pictures as that step
        would have drawn them with the factor set to ``values``, all else kept. Where no
        other factor depends on it, that is the true counterfactual picture under
        ``do(factor)``, which ``cvaeq eval`` compares with the model's; and the
        predictors that read counterfactuals also train on such pictures, off the data's
        correlations (:mod:`cvaeq.evaluation.predictors`). Use :meth:`redraw_checked`.
    """

    name: str
    factors: tuple[Factor, ...]
    image_shape: tuple[int, ...]
    render: Callable[[np.ndarray], np.ndarray] | None = None
    pixel: str = "binary"
    default_story: str | None = None
    model_arch: Mapping[str, Any] = field(default_factory=dict)
    equivalent: Mapping[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    load_real: Callable[[Path], tuple[np.ndarray, np.ndarray]] | None = None
    file_constants: tuple[tuple[str, float], ...] = ()
    description: str = ""
    laws: Mapping[str, Law] = field(default_factory=dict)
    data: Path | None = None
    test_rows: range | None = None
    redraw: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = field(default_factory=dict)
    # set by __post_init__ (a frozen dataclass: through object.__setattr__)
    _by_name: dict[str, Factor] = field(init=False, repr=False)
    _sizes: np.ndarray = field(init=False, repr=False)
    _bases: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", self.name):
            raise DataError(f"a world's name must be a plain name (letters, digits, _ or -), got {self.name!r}")
        factors = tuple(self.factors)
        if not 1 <= len(factors) <= MAX_FACTORS or not all(isinstance(f, Factor) for f in factors):
            raise DataError(f"world {self.name!r}: give 1 to {MAX_FACTORS} Factor objects")
        names = [f.name for f in factors]
        if len(set(names)) != len(names):
            raise DataError(f"world {self.name!r}: a factor name is used twice")
        reserved = {"X", "Z", "img"} & set(names)
        if reserved:
            raise DataError(
                f"world {self.name!r}: factor name {sorted(reserved)[0]!r} is reserved (image, latent, binding)"
            )
        object.__setattr__(self, "factors", factors)
        shape = tuple(int(v) for v in self.image_shape)
        plausible = len(shape) in (2, 3) and all(1 <= v <= 4096 for v in shape[-2:])
        if not plausible or (len(shape) == 3 and shape[0] not in (1, 3)):
            raise DataError(
                f"world {self.name!r}: image_shape {self.image_shape} is not a plausible (H, W) "
                "or (C, H, W) with C = 1 or 3"
            )
        object.__setattr__(self, "image_shape", shape)
        if self.pixel not in PIXEL_KINDS:
            raise DataError(f"world {self.name!r}: pixel {self.pixel!r} is not one of {', '.join(PIXEL_KINDS)}")
        if self.render is not None and not callable(self.render):
            raise DataError(f"world {self.name!r}: render must be callable, or None for a world of labelled files")
        if self.render is not None and any(f.continuous for f in factors):
            raise DataError(
                f"world {self.name!r}: a world with a continuous factor has no grid to render; give render=None "
                "and its labelled pictures as data"
            )
        if self.test_rows is not None and not (isinstance(self.test_rows, range) and self.test_rows.step == 1):
            raise DataError(f"world {self.name!r}: test_rows must be a range of row indices (e.g. range(7000, 8000))")
        for key, fn in dict(self.redraw).items():
            if key not in names or not callable(fn):
                raise DataError(f"world {self.name!r}: redraw must map this world's factors to functions, got {key!r}")
        for law_name, law in dict(self.laws).items():
            if not isinstance(law, Law) or not callable(law.fn) or not all(a in names for a in law.args):
                raise DataError(f"world {self.name!r}: law {law_name!r} must be a Law over this world's factors")
        object.__setattr__(self, "_by_name", {f.name: f for f in factors})
        sizes = np.array([0 if f.continuous else f.size for f in factors], dtype=np.int64)
        object.__setattr__(self, "_bases", np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64))
        object.__setattr__(self, "_sizes", sizes)

    def __repr__(self) -> str:
        return f"World({self.name!r}, factors={list(self.names)}, image_shape={self.image_shape})"

    @property
    def channels(self) -> int:
        """Colour channels of its pictures: 1 (binary or grey) or 3 (RGB)."""
        return self.image_shape[0] if len(self.image_shape) == 3 else 1

    @property
    def has_renderer(self) -> bool:
        """Whether its pictures are drawn by a renderer (so every counterfactual
        has a true picture) rather than read from labelled files."""
        return self.render is not None

    @property
    def no_renderer(self) -> str:
        """The sentence for a world without a renderer wherever a picture would be drawn from factors
        (:meth:`render_checked`; :func:`cvaeq.data.renderless.no_truth`, every other such place)."""
        return (
            f"world {self.name!r} has no renderer: its pictures are real labelled files, so no picture can be "
            "drawn from factors, and a counterfactual has a known true picture only where the world redraws "
            "its intervened factor"
        )

    def redraw_checked(self, factor: str, pictures: np.ndarray, values) -> np.ndarray:
        """:attr:`redraw` of ``factor`` on ``pictures`` ``(N, *image_shape)`` uint8 at ``values`` ``(N,)``
        (a continuous factor's numbers, a discrete one's classes; checked in the factor's domain), its
        output checked: the same shape, uint8. Anything else is a one-line DataError."""
        fn = self.redraw.get(factor)
        if fn is None:
            raise DataError(
                f"world {self.name!r} cannot redraw {factor!r} in a picture; it redraws {sorted(self.redraw)}"
            )
        pictures = np.asarray(pictures)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        fac = self.factor(factor)
        if fac.continuous:
            off = ~np.isfinite(values) | (values < fac.low) | (values > fac.high)
        else:  # classes
            off = ~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= fac.size)
        if off.any():
            raise DataError(f"{factor}={values[off][0]:g} is off the domain; allowed: {fac.domain}")
        if pictures.dtype != np.uint8 or pictures.shape != (len(values), *self.image_shape):
            raise DataError(
                f"world {self.name!r}: redraw takes {len(values)} uint8 pictures of shape {self.image_shape}, "
                f"got {pictures.dtype} {pictures.shape}"
            )
        from .errors import call_plugin

        out = np.asarray(call_plugin(self._plugin_error, "redraw", fn, pictures, values))
        if out.dtype != np.uint8 or out.shape != pictures.shape:
            raise DataError(
                f"world {self.name!r}: redraw of {factor!r} gave {out.dtype} {out.shape}, "
                f"not the pictures' uint8 {pictures.shape}"
            )
        return out

    @property
    def max_level(self) -> int:
        """The largest pixel value its renderer draws: 1 (binary) or 255 (8-bit)."""
        return PIXEL_KINDS[self.pixel]

    # ------------------------------------------------------------- the factors

    @property
    def names(self) -> tuple[str, ...]:
        """Factor names, in column order."""
        return tuple(f.name for f in self.factors)

    @property
    def sizes(self) -> dict[str, int]:
        """``{factor: number of classes}`` of its discrete factors (a continuous one has no classes)."""
        return {f.name: f.size for f in self.factors if not f.continuous}

    @property
    def continuous(self) -> tuple[str, ...]:
        """Names of its continuous factors (float64 values), in column order."""
        return tuple(f.name for f in self.factors if f.continuous)

    @property
    def discrete(self) -> tuple[str, ...]:
        """Names of its factors with classes (categorical or on a grid), in column order."""
        return tuple(f.name for f in self.factors if not f.continuous)

    @property
    def values(self) -> dict[str, np.ndarray]:
        """``{factor: numbers of its classes}`` (:attr:`Factor.grid`) of its discrete factors."""
        return {f.name: f.grid for f in self.factors if not f.continuous}

    @property
    def numeric(self) -> tuple[str, ...]:
        """Names of the numeric factors (those with an expectation)."""
        return tuple(f.name for f in self.factors if f.numeric)

    def factor(self, name: str) -> Factor:
        """The factor called ``name``; unknown names are a DataError listing this world's."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise DataError(f"unknown factor {name!r}; world {self.name!r} has {', '.join(self.names)}") from None

    def index(self, name: str) -> int:
        """Column of factor ``name`` in a classes array."""
        return self.names.index(self.factor(name).name)

    def label(self, name: str, cls: float) -> str:
        """Class ``cls`` (a continuous factor: the value) of factor ``name`` as written in queries."""
        return self.factor(name).label(cls)

    def snap(self, name: str, value: float) -> int:
        """Class of the grid value of numeric factor ``name`` nearest ``value``."""
        return self.factor(name).snap(value)

    def parse_value(self, name: str, text: str) -> int | float:
        """Class of ``text`` (a label or a number) for factor ``name``; a continuous factor's number."""
        return self.factor(name).parse(text)

    def parse_factors(self, items: Sequence[str]) -> dict[str, Any]:
        """Classes (continuous: values) from ``name=value`` items naming every factor once, as on the command line."""
        out: dict[str, Any] = {}  # int classes; floats for continuous factors
        for item in items:
            name, sep, value = str(item).partition("=")
            if not sep:
                raise DataError(f"expected name=value, got {item!r}")
            name = name.strip()
            if name in out:
                raise DataError(f"factor {name!r} given twice")
            out[name] = self.parse_value(name, value)
        missing = [f for f in self.names if f not in out]
        if missing:
            raise DataError(f"missing factor(s): {', '.join(missing)}; give all of {', '.join(self.names)}")
        return out

    def row(self, classes: Mapping[str, float]) -> np.ndarray:
        """``(1, F)`` array of a ``{factor: class or value}`` mapping: int64
        classes, or float64 where the world has a continuous factor."""
        if self.continuous:
            return self.check_factors(np.array([[float(classes[f]) for f in self.names]], dtype=np.float64))
        return np.array([[int(classes[f]) for f in self.names]], dtype=np.int64)

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """``(N, F)`` factor values checked: float64 where the world has a
        continuous factor (its discrete columns whole classes in range, its
        continuous ones in ``[low, high]``), else :meth:`check_classes`'s int64."""
        if not self.continuous:
            return self.check_classes(factors)
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or factors.shape[1] != len(self.factors):
            raise DataError(
                f"expected factor values of shape (N, {len(self.factors)}) in the order "
                f"{', '.join(self.names)}; got shape {factors.shape}"
            )
        for i, f in enumerate(self.factors):
            col = factors[:, i]
            if f.continuous:
                bad = ~np.isfinite(col) | (col < f.low) | (col > f.high)
                if bad.any():
                    raise DataError(f"{f.name}={col[bad][0]:g} is off the domain; allowed: {f.domain}")
            elif ((col != np.round(col)) | (col < 0) | (col >= f.size) | ~np.isfinite(col)).any():
                raise DataError(f"{f.name} classes must be whole numbers in [0, {f.size})")
        return factors

    # ------------------------------------------------------------ the grid

    def _grid_only(self) -> None:
        if self.continuous:
            raise DataError(
                f"world {self.name!r} has continuous factors ({', '.join(self.continuous)}): it has no grid of images"
            )

    @property
    def n_images(self) -> int:
        """Images in the full grid (the product of the factor sizes)."""
        self._grid_only()
        return int(np.prod(self._sizes))

    @property
    def bases(self) -> np.ndarray:
        """Index bases: an image's grid index is ``classes @ bases`` (last factor fastest)."""
        self._grid_only()
        return self._bases

    def check_classes(self, classes: np.ndarray) -> np.ndarray:
        """``classes`` as int64 ``(N, F)``, each in range; a DataError otherwise."""
        self._grid_only()
        classes = np.asarray(classes)
        if classes.ndim != 2 or classes.shape[1] != len(self.factors):
            raise DataError(
                f"expected factor classes of shape (N, {len(self.factors)}) in the order "
                f"{', '.join(self.names)}; got shape {classes.shape}"
            )
        classes = classes.astype(np.int64, copy=False)
        if classes.size and ((classes < 0).any() or (classes >= self._sizes).any()):
            bad = int(np.argmax(((classes < 0) | (classes >= self._sizes)).any(0)))
            raise DataError(f"{self.names[bad]} classes must lie in [0, {self._sizes[bad]})")
        return classes

    def indices_of(self, classes: np.ndarray) -> np.ndarray:
        """Grid indices of an ``(N, F)`` classes array."""
        return self.check_classes(classes) @ self._bases

    def classes_array_of(self, indices: np.ndarray) -> np.ndarray:
        """``(N, F)`` classes of grid indices (inverse of :meth:`indices_of`)."""
        self._grid_only()
        indices = np.asarray(indices, dtype=np.int64)
        return (indices[:, None] // self._bases) % self._sizes

    def values_of(self, classes: np.ndarray) -> np.ndarray:
        """``(N, F)`` float64 numbers of ``(N, F)`` classes (a continuous column is its value)."""
        if self.continuous:
            values = self.check_factors(classes)
            cols = [
                values[:, i] if f.continuous else f.grid[values[:, i].astype(np.int64)]
                for i, f in enumerate(self.factors)
            ]
            return np.stack(cols, axis=1)
        classes = np.asarray(classes, dtype=np.int64)
        return np.stack([f.grid[classes[:, i]] for i, f in enumerate(self.factors)], axis=1)

    def render_checked(self, classes: np.ndarray) -> np.ndarray:
        """``render(classes)``, its input and output checked: uint8 ``(N, *image_shape)``.

        The renderer is a plugin's code and its images are stored, trained on
        and scored against, so what it returns is checked here, where it
        enters: the shape, a number or bool dtype, and every pixel exactly 0 or
        1 in a binary world (not 0/255, 0.5, -1 or NaN), uint8 in an 8-bit one. A renderer that raises or returns
        anything else is a :class:`~cvaeq.errors.PluginError` naming the world
        and its plugin.
        """
        from .errors import call_plugin

        if self.render is None:
            raise DataError(self.no_renderer)
        classes = self.check_classes(classes)
        images = np.asarray(call_plugin(self._plugin_error, "render", self.render, classes))
        if images.shape != (len(classes), *self.image_shape):
            raise self._plugin_error(f"render gave shape {images.shape}, expected {(len(classes), *self.image_shape)}")
        if self.pixel == "8bit":
            if images.dtype != np.uint8:
                raise self._plugin_error(f"render gave {images.dtype} images; an 8-bit world draws uint8 levels 0..255")
            return images
        if images.dtype != np.bool_:
            if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
                raise self._plugin_error(f"render gave {images.dtype} images, not numbers 0/1")
            if np.issubdtype(images.dtype, np.unsignedinteger):  # one pass, no temporary (the common case)
                clean = images.size == 0 or int(images.max()) <= 1
            else:
                clean = not bool(((images != 0) & (images != 1)).any())  # NaN is neither
            if not clean:
                bad = (images != 0) & (images != 1)  # NaN is neither
                shown = ", ".join(f"{v:g}" for v in np.unique(images[bad])[:4].tolist())
                raise self._plugin_error(
                    f"render gave pixel values {shown}; a renderer draws 0/1 images (uint8 0 and 1, not 0/255)"
                )
        return images.astype(np.uint8, copy=False)

    def _plugin_error(self, what: str):
        """A PluginError about this world's renderer, naming the plugin that registered it."""
        try:
            plugin = get_world_plugins().get(self.name)
        except Exception:  # the registry itself is broken: name the world alone
            plugin = None
        who = f"plugin {plugin!r} (world {self.name!r})" if plugin else f"world {self.name!r}"
        return plugin_error(who, what)


def _check_world(world: Any) -> str | None:
    return None if isinstance(world, World) else f"is {type(world).__name__}, not a cvaeq.world.World"


def get_worlds() -> dict[str, World]:
    """Registered worlds by name."""
    return {name: world for name, (world, _) in collect("register_worlds", "world", _check_world).items()}


def get_world_plugins() -> dict[str, str]:
    """Registered world names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in collect("register_worlds", "world", _check_world).items()}


def get_world(world: str | World | None = None) -> World:
    """A world by name (None: :data:`DEFAULT_WORLD`), or the world given.

    Unknown names are a DataError listing the registered worlds.

    >>> get_world().name
    'dsprites'
    """
    if isinstance(world, World):
        return world
    name = DEFAULT_WORLD if world is None else world
    worlds = get_worlds()
    if name not in worlds and isinstance(name, str) and skipped("world", name):
        raise PluginError(f"world {name!r} is not available: {skipped('world', name)}")
    if name not in worlds:
        raise DataError(
            f"unknown world {name!r}; known: {', '.join(sorted(worlds))} (install the plugin that provides it, "
            "see `cvaeq plugins`)"
        )
    return worlds[name]
