"""Reading the image a query is about: a PNG, a ``.npy`` array, or factors.

``--image`` on the command line (and ``image=`` in :func:`cvaeq.query.ask`)
takes one of, for the images of a world (the story's; default dSprites, 64×64):

* a ``.png`` file of the world's image size, black and white (grey levels
  only 0 and 255, or only 0 and 1; grey, RGB with equal channels, palette or
  1-bit modes; an alpha channel must be fully opaque);
* a ``.npy`` file: an array of that size of 0/1 or 0/255 (bool, integer or
  float), read without unpickling;
* the image's factors, e.g. ``shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5``
  (every factor of the world, values snapped to the grid as in queries),
  rendered by the world's renderer.

The result is always an ``(H, W)`` uint8 array of 0/1. Anything else is a
:class:`~cvaeq.errors.DataError` saying what was wrong.

>>> img = load_image("shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5")
>>> img.shape, img.dtype, sorted(set(img.ravel().tolist())) == [0, 1]
((64, 64), dtype('uint8'), True)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .world import World, get_world

__all__ = ["load_image", "binarise", "image_from_factors", "looks_like_factors"]

_FORMS = "a .png or .npy file, or factors like NAME=VALUE,... naming every factor of the world"


def looks_like_factors(spec: str) -> bool:
    """Whether ``spec`` is written as factors (``name=value,...``) rather than a path."""
    return "=" in spec and not Path(spec).exists()


def image_from_factors(spec: str, world: World | str | None = None) -> np.ndarray:
    """The image ``world`` renders for ``"shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"``."""
    world = get_world(world)
    items = [s.strip() for s in spec.replace(";", ",").split(",") if s.strip()]
    classes = world.parse_factors(items)
    return world.render_checked(world.row(classes))[0].astype(np.uint8)


def binarise(array: np.ndarray, source: str = "image", shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    """An ``shape`` uint8 0/1 copy of a black-and-white array (0/1 or 0/255).

    >>> binarise(np.full((64, 64), 255, dtype=np.uint8)).max()
    np.uint8(1)
    """
    a = np.asarray(array)
    if a.shape != tuple(shape):
        raise DataError(
            f"{source}: the image is {'×'.join(map(str, a.shape)) or 'a scalar'}; "
            f"cvaeq needs a {shape[0]}×{shape[1]} black-and-white image"
        )
    if a.dtype == bool:
        return a.astype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DataError(f"{source}: the image has dtype {a.dtype}; give numbers 0/1 or 0/255")
    if np.issubdtype(a.dtype, np.floating) and not bool(np.isfinite(a).all()):
        raise DataError(f"{source}: the image has NaN or infinite values; give numbers 0/1 or 0/255")
    values = set(np.unique(a).tolist())
    if values <= {0, 1}:
        return (a == 1).astype(np.uint8)
    if values <= {0, 255}:
        return (a == 255).astype(np.uint8)
    shown = ", ".join(f"{v:g}" for v in sorted(values)[:5]) + (", ..." if len(values) > 5 else "")
    raise DataError(
        f"{source}: the image is not black and white (values {shown}); "
        "cvaeq needs pixels that are all 0/1 or all 0/255"
    )


def _read_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise DataError(f"{path}: not a PNG file (it is {im.format}); give {_FORMS}")
            if im.mode == "P":
                im = im.convert("RGBA")
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the PNG ({e}); give {_FORMS}") from None
    if a.ndim == 3:
        channels = a.shape[2]
        if channels in (2, 4):
            if not bool((a[..., -1] == a[..., -1].max()).all()) or a[..., -1].max() not in (1, 255, 65535):
                raise DataError(f"{path}: the PNG is transparent in places; give an opaque black-and-white image")
            a = a[..., :-1]
        if not bool((a == a[..., :1]).all()):
            raise DataError(f"{path}: the PNG has colours; cvaeq needs a black-and-white image (0/255)")
        a = a[..., 0]
    return binarise(a, str(path), shape)


def _read_npy(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: not a plain .npy array ({e}); save it with np.save") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the .npy file ({e}); give {_FORMS}") from None
    if not isinstance(a, np.ndarray):
        raise DataError(f"{path}: holds several arrays; give one {shape[0]}×{shape[1]} array in a .npy file")
    return binarise(a, str(path), shape)


def load_image(spec: str | os.PathLike | np.ndarray, world: World | str | None = None) -> np.ndarray:
    """The ``(H, W)`` uint8 0/1 image of ``world`` (default dSprites) named by ``spec``
    (see the module doc).

    An array is checked and binarised as a file's would be.
    """
    world = get_world(world)
    shape = world.image_shape
    if isinstance(spec, np.ndarray):
        return binarise(spec, "the image array", shape)
    text = os.fspath(spec)
    path = Path(text)
    if looks_like_factors(text):
        return image_from_factors(text, world)
    if not text.strip():
        raise DataError(f"empty image name; give {_FORMS}")
    if path.is_dir():
        raise DataError(f"{text}: is a folder; give {_FORMS}")
    suffix = path.suffix.lower()
    if suffix not in (".png", ".npy"):
        if not path.exists():
            raise DataError(f"{text}: no such image file; give {_FORMS}")
        raise DataError(f"{text}: unsupported image type {suffix or '(no extension)'!r}; give {_FORMS}")
    if not path.is_file():
        raise DataError(f"{text}: no such file; give {_FORMS}")
    return _read_png(path, shape) if suffix == ".png" else _read_npy(path, shape)
