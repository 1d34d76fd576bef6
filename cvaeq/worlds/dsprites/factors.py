"""The dSprites world: its factors, their grid values, and image indexing.

The real dataset's latents are (color, shape, scale, orientation, posX, posY)
with sizes (1, 3, 6, 40, 32, 32); an image's index in the 737,280-image grid
is ``dot(classes, BASES)`` with posY varying fastest. cvaeq names the five
factors that vary; color is always 0 (white) and kept only in file layouts.

>>> index_of({"shape": 2, "scale": 5, "orientation": 0, "posX": 16, "posY": 16})
696848
>>> classes_of(696848)["shape"]
2
>>> snap("scale", 0.97)
5
>>> label("shape", 2)
'heart'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ...errors import DataError

__all__ = [
    "FACTORS",
    "SHAPES",
    "SIZES",
    "VALUES",
    "LATENT_NAMES",
    "LATENT_SIZES",
    "BASES",
    "N_IMAGES",
    "IMAGE_SIZE",
    "index_of",
    "indices_of",
    "classes_of",
    "classes_array_of",
    "values_of",
    "snap",
    "label",
    "parse_value",
    "parse_factors",
]

FACTORS: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
LATENT_NAMES: tuple[str, ...] = ("color",) + FACTORS
LATENT_SIZES: tuple[int, ...] = (1, 3, 6, 40, 32, 32)
SIZES: dict[str, int] = dict(zip(FACTORS, LATENT_SIZES[1:]))
#: Grid values exactly as in the real file's ``latents_values``.
VALUES: dict[str, np.ndarray] = {
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "posX": np.linspace(0.0, 1.0, 32),
    "posY": np.linspace(0.0, 1.0, 32),
}
BASES: np.ndarray = np.concatenate([np.cumprod(LATENT_SIZES[::-1])[::-1][1:], [1]]).astype(np.int64)
N_IMAGES: int = int(np.prod(LATENT_SIZES))
IMAGE_SIZE: int = 64


def indices_of(classes: np.ndarray) -> np.ndarray:
    """Grid indices of an ``(N, 5)`` array of factor classes (FACTORS order)."""
    classes = np.asarray(classes, dtype=np.int64)
    if classes.ndim != 2 or classes.shape[1] != len(FACTORS):
        raise DataError(f"expected factor classes of shape (N, 5), got {classes.shape}")
    return classes @ BASES[1:]


def index_of(classes: Mapping[str, int]) -> int:
    """Grid index of one image named by its factor classes."""
    return int(indices_of(np.array([[classes[f] for f in FACTORS]]))[0])


def classes_array_of(indices: np.ndarray) -> np.ndarray:
    """``(N, 5)`` factor classes of grid indices (inverse of :func:`indices_of`)."""
    indices = np.asarray(indices, dtype=np.int64)
    return (indices[:, None] // BASES[1:]) % np.array(LATENT_SIZES[1:])


def classes_of(index: int) -> dict[str, int]:
    """Factor classes of one grid index."""
    return dict(zip(FACTORS, (int(c) for c in classes_array_of(np.array([index]))[0])))


def values_of(classes: np.ndarray) -> np.ndarray:
    """``(N, 5)`` latents_values (float64) of ``(N, 5)`` factor classes."""
    classes = np.asarray(classes, dtype=np.int64)
    return np.stack([VALUES[f][classes[:, i]] for i, f in enumerate(FACTORS)], axis=1)


def snap(factor: str, value: float) -> int:
    """Class of the grid value nearest ``value``; off the domain is a DataError.

    A value counts as on the domain if it lies within half a grid step of the
    first or last grid value.
    """
    if factor not in SIZES:
        raise DataError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")
    grid = VALUES[factor]
    step = grid[1] - grid[0]
    if not np.isfinite(value) or value < grid[0] - step / 2 or value > grid[-1] + step / 2:
        raise DataError(f"{factor}={value:g} is off the domain; allowed: {grid[0]:g} to {grid[-1]:g}")
    return int(np.argmin(np.abs(grid - value)))


def label(factor: str, cls: int) -> str:
    """A class written as in the query language: shapes by name, numbers as values."""
    if factor == "shape":
        return SHAPES[cls]
    return f"{VALUES[factor][cls]:.6g}"


def parse_value(factor: str, text: str) -> int:
    """Class of a value written by a user: a shape name, or a number snapped to the grid."""
    if factor not in SIZES:
        raise DataError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")
    text = text.strip()
    if factor == "shape":
        if text in SHAPES:
            return SHAPES.index(text)
        raise DataError(f"unknown shape {text!r}; allowed: {', '.join(SHAPES)}")
    try:
        number = float(text)
    except ValueError:
        raise DataError(f"{factor} takes a number, got {text!r}") from None
    return snap(factor, number)


def parse_factors(items: Sequence[str]) -> dict[str, int]:
    """Classes from ``name=value`` items (all five factors), as on the command line.

    >>> parse_factors(["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"])["posX"]
    15
    """
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise DataError(f"expected name=value, got {item!r}")
        name = name.strip()
        if name in out:
            raise DataError(f"factor {name!r} given twice")
        out[name] = parse_value(name, value)
    missing = [f for f in FACTORS if f not in out]
    if missing:
        raise DataError(f"missing factor(s): {', '.join(missing)}; give all of {', '.join(FACTORS)}")
    return out
