"""Reading the image a query is about: a PNG, a ``.npy`` array, or factors.

``--image`` on the command line (and ``image=`` in :func:`cvaeq.query.ask`)
takes one of, for the images of a world (the story's; default dSprites, 64×64).
In a binary world (every built-in world but ``colour_pendulum``):

* a ``.png`` file of the world's image size, black and white (grey levels
  only 0 and 255, or only 0 and 1; grey, RGB with equal channels, palette or
  1-bit modes; an alpha channel, or a transparency key (tRNS), must leave
  every pixel opaque; a palette image must carry its palette);
* a ``.npy`` file: an array of that size of 0/1 or 0/255 (bool, integer or
  float), read without unpickling;
* the image's factors, e.g. ``shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5``
  (every factor of the world, values snapped to the grid as in queries),
  rendered by the world's renderer.

The result is always an ``(H, W)`` uint8 array of 0/1.

In an 8-bit world (``pixel = "8bit"``: grey, ``C = 1``, or colour, ``C = 3``)
the result is the world's ``image_shape`` of uint8 levels 0..255, from:

* a ``.png`` file of the world's ``H×W``: 8-bit grey (``L``) or colour
  (``RGB``). Conversions that lose nothing are made: a grey PNG in a colour
  world is the colour picture with three equal channels; an ``RGB`` PNG whose
  channels are equal is grey in a grey world (one with colours is refused, not
  turned grey by some weighting of our choosing); a palette PNG is its
  colours; 1-bit PNGs are 0/255; an alpha channel (or tRNS key) is allowed
  only where every pixel is opaque (what a see-through pixel would be over
  depends on a background cvaeq cannot know). A 16-bit PNG is refused: give
  8 bits per channel (``convert`` it first), as its levels are what the
  model's likelihood is about;
* a ``.npy`` file or an array: integers 0..255 of shape ``(C, H, W)`` (also
  ``(H, W, C)`` as PIL and matplotlib hold pictures, and ``(H, W)`` in a grey
  world); floats are refused (say which levels you mean:
  ``np.rint(a * 255).astype(np.uint8)`` for values in [0, 1]);
* the picture's factors, rendered by the world's renderer.

Either way the size is decided from the file's header before its pixels are
decoded. Anything else is a :class:`~cvaeq.errors.DataError` saying what was
wrong.

>>> img = load_image("shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5")
>>> img.shape, img.dtype, sorted(set(img.ravel().tolist())) == [0, 1]
((64, 64), dtype('uint8'), True)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .limits import MAX_IMAGE_BYTES, read_limited
from .world import World, get_world

__all__ = ["load_image", "binarise", "as_levels", "decode_png", "image_from_factors", "looks_like_factors"]

_FORMS = "a .png or .npy file, or factors like NAME=VALUE,... naming every factor of the world"


def looks_like_factors(spec: str) -> bool:
    """Whether ``spec`` is written as factors (``name=value,...``) rather than a path."""
    if "=" not in spec:
        return False
    try:
        return not Path(spec).exists()
    except (OSError, ValueError):  # too long or a NUL byte: not a file name, so factors
        return True


def image_from_factors(spec: str, world: World | str | None = None) -> np.ndarray:
    """The image ``world`` renders for ``"shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"``."""
    world = get_world(world)
    if not world.has_renderer:
        from .data.renderless import require_renderer

        require_renderer(
            world,
            "cannot draw the evidence from factors",
            f"give the picture as a .png or .npy file (`cvaeq data show --world {world.name} --index N --out "
            "x.png` writes one from its files)",
        )
    items = [s.strip() for s in spec.replace(";", ",").split(",") if s.strip()]
    classes = world.parse_factors(items)
    return world.render_checked(world.row(classes))[0].astype(np.uint8)


def binarise(array: np.ndarray, source: str = "image", shape: tuple[int, ...] = (64, 64)) -> np.ndarray:
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
        f"{source}: the image is not black and white (values {shown}); cvaeq needs pixels that are all 0/1 or all 0/255"
    )


def _read_png(path: Path, shape: tuple[int, ...], pixel: str = "binary") -> np.ndarray:
    blob = read_limited(path, "image", MAX_IMAGE_BYTES, DataError, f"give {_FORMS}")
    return decode_png(blob, shape, str(path), pixel)


def decode_png(
    blob: bytes, shape: tuple[int, ...] = (64, 64), source: str = "the PNG", pixel: str = "binary"
) -> np.ndarray:
    """The ``shape`` uint8 image of the PNG file's bytes ``blob`` (0/1 in a binary
    world, levels 0..255 of ``(C, H, W)`` or ``(H, W)`` when ``pixel="8bit"``),
    checked as a ``--image`` PNG file is (the web explorer's uploads come this
    way: bytes, never a file name); ``source`` names it in errors.

    >>> from cvaeq.viz import png_bytes
    >>> decode_png(png_bytes(np.full((64, 64), 255, np.uint8))).sum()
    np.uint64(4096)
    """
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not isinstance(blob, (bytes, bytearray)) or len(blob) > MAX_IMAGE_BYTES:
        raise DataError(f"{source}: give the bytes of a PNG file of at most {MAX_IMAGE_BYTES:,} bytes")
    if pixel == "8bit":
        return _decode_png_levels(blob, tuple(shape), source)
    try:
        with warnings.catch_warnings():
            # the size is decided from the header below, before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(blob), formats=["PNG"])
        with im:
            if (im.height, im.width) != tuple(shape):
                raise DataError(
                    f"{source}: the image is {im.height}×{im.width}; "
                    f"cvaeq needs a {shape[0]}×{shape[1]} black-and-white image"
                )
            if im.mode in ("P", "PA") and im.palette is None:
                raise DataError(
                    f"{source}: the PNG is a palette image without its palette (no PLTE chunk); "
                    "save it again as a black-and-white PNG"
                )
            if im.mode == "P" or "transparency" in im.info:
                # a palette's colours, or a transparency key (tRNS: one grey level or colour
                # drawn see-through), as an alpha channel the check below reads
                im = im.convert("RGBA")  # type: ignore[assignment]  # an Image, read like the file
            a = np.asarray(im)
    except UnidentifiedImageError:
        raise DataError(f"{source}: cannot read the PNG (not a PNG file); give {_FORMS}") from None
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise DataError(f"{source}: cannot read the PNG ({e}); give {_FORMS}") from None
    if a.ndim == 3:
        channels = a.shape[2]
        if channels in (2, 4):
            if not bool((a[..., -1] == a[..., -1].max()).all()) or a[..., -1].max() not in (1, 255, 65535):
                raise DataError(f"{source}: the PNG is transparent in places; give an opaque black-and-white image")
            a = a[..., :-1]
        if not bool((a == a[..., :1]).all()):
            raise DataError(f"{source}: the PNG has colours; cvaeq needs a black-and-white image (0/255)")
        a = a[..., 0]
    return binarise(a, source, shape)


def _hw(shape: tuple[int, ...]) -> str:
    return f"{shape[-2]}×{shape[-1]}"


def _decode_png_levels(blob: bytes, shape: tuple[int, ...], source: str) -> np.ndarray:
    """An 8-bit world's picture from PNG bytes (the rules are in the module doc)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    channels = shape[0] if len(shape) == 3 else 1
    want = "a colour (RGB)" if channels == 3 else "a grey"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(blob), formats=["PNG"])
        with im:
            if (im.height, im.width) != tuple(shape[-2:]):  # from the header, before decoding
                raise DataError(
                    f"{source}: the image is {im.height}×{im.width}; this world needs {want} {_hw(shape)} picture"
                )
            if im.mode in ("P", "PA") and im.palette is None:
                raise DataError(
                    f"{source}: the PNG is a palette image without its palette (no PLTE chunk); "
                    "save it again as a grey or RGB PNG"
                )
            # 16 bits per channel: PIL reads grey ones as "I;16" and cuts colour ones to 8 bits unasked;
            # the header's bit depth (byte 24: after the signature and IHDR's length, type, width, height) says
            if im.mode.startswith("I") or im.mode == "F" or (len(blob) > 24 and blob[24] == 16):
                raise DataError(f"{source}: the PNG has 16 bits per channel; give an 8-bit grey or RGB PNG")
            opened: Image.Image = im
            if im.mode == "P" or "transparency" in im.info:
                opened = im.convert("RGBA")
            elif im.mode == "1":
                opened = im.convert("L")
            elif im.mode not in ("L", "LA", "RGB", "RGBA"):
                opened = im.convert("RGBA")
            a = np.asarray(opened)
    except UnidentifiedImageError:
        raise DataError(f"{source}: cannot read the PNG (not a PNG file); give {_FORMS}") from None
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise DataError(f"{source}: cannot read the PNG ({e}); give {_FORMS}") from None
    a = a[..., None] if a.ndim == 2 else a
    if a.shape[2] in (2, 4):
        if not bool((a[..., -1] == 255).all()):
            raise DataError(f"{source}: the PNG is transparent in places; give an opaque picture")
        a = a[..., :-1]
    if a.shape[2] == 3 and channels == 1:
        if not bool((a == a[..., :1]).all()):
            raise DataError(f"{source}: the PNG has colours; this world's pictures are grey (give a grey PNG)")
        a = a[..., :1]
    if a.shape[2] == 1 and channels == 3:
        a = np.repeat(a, 3, axis=2)  # a grey picture is the colour picture with equal channels
    out = np.ascontiguousarray(np.moveaxis(a, 2, 0)).astype(np.uint8)
    return out.reshape(shape)


def _layout(got: tuple[int, ...], shape: tuple[int, ...], source: str) -> str:
    """How an array of shape ``got`` holds an 8-bit picture of ``shape``: ``"chw"`` or
    ``"hwc"`` (channels last); anything else is a DataError (decided from shapes alone)."""
    channels = shape[0] if len(shape) == 3 else 1
    hw = tuple(shape[-2:])
    if got == shape or (channels == 1 and got in (hw, (1, *hw))):
        return "chw"
    if got == (*hw, channels):
        return "hwc"
    raise DataError(
        f"{source}: the image is {'×'.join(map(str, got)) or 'a scalar'}; this world needs "
        f"levels of shape {'×'.join(map(str, shape))}"
        + (f" (or {hw[0]}×{hw[1]}×{channels})" if len(shape) == 3 else "")
    )


def as_levels(array: np.ndarray, source: str = "image", shape: tuple[int, ...] = (3, 64, 64)) -> np.ndarray:
    """An 8-bit world's picture: uint8 levels of ``shape`` from an integer array
    of levels 0..255 (``(C, H, W)``, or ``(H, W, C)``, or ``(H, W)`` when C = 1).

    >>> as_levels(np.full((4, 4, 3), 200), shape=(3, 4, 4)).shape
    (3, 4, 4)
    """
    a = np.asarray(array)
    shape = tuple(shape)
    layout = _layout(tuple(a.shape), shape, source)
    if layout == "hwc":
        a = np.moveaxis(a, 2, 0)
    a = a.reshape(shape)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        floats = np.issubdtype(a.dtype, np.floating)
        hint = " (np.rint(a * 255).astype(np.uint8) for values in [0, 1])" if floats else ""
        raise DataError(f"{source}: the image has dtype {a.dtype}; give integer levels 0..255{hint}")
    if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
        raise DataError(f"{source}: levels {int(a.min())}..{int(a.max())} are off 0..255")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _read_npy(path: Path, shape: tuple[int, ...], pixel: str = "binary") -> np.ndarray:
    import io

    blob = read_limited(path, "image", MAX_IMAGE_BYTES, DataError, f"give {_FORMS}")
    f = io.BytesIO(blob)
    try:
        if blob[:6] != b"\x93NUMPY":
            raise DataError(f"{path}: not a plain .npy array (no .npy header); save it with np.save")
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        claimed, _, dtype = read_header(f)
        if dtype.hasobject:
            raise DataError(f"{path}: not a plain .npy array (it holds Python objects); give numbers 0/1 or 0/255")
        if pixel == "8bit":  # decided from the header, before reading the data
            _layout(tuple(claimed), tuple(shape), str(path))
        elif tuple(claimed) != tuple(shape):
            raise DataError(
                f"{path}: the image is {'×'.join(map(str, claimed)) or 'a scalar'}; "
                f"cvaeq needs a {shape[0]}×{shape[1]} black-and-white image"
            )
        f.seek(0)
        a = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a plain .npy array ({e}); save it with np.save") from None
    if pixel == "8bit":
        return as_levels(a, str(path), shape)
    return binarise(a, str(path), shape)


def load_image(spec: str | os.PathLike | np.ndarray, world: World | str | None = None) -> np.ndarray:
    """The uint8 image of ``world`` (default dSprites) named by ``spec`` (see the
    module doc): ``(H, W)`` 0/1 in a binary world, ``image_shape`` levels in an
    8-bit one.

    An array is checked (and binarised) as a file's would be.
    """
    world = get_world(world)
    shape = world.image_shape
    pixel = world.pixel
    if isinstance(spec, np.ndarray):
        if pixel == "8bit":
            return as_levels(spec, "the image array", shape)
        return binarise(spec, "the image array", shape)
    if not isinstance(spec, (str, os.PathLike)):
        raise DataError(
            f"the image must be a file name, factors text or a numpy array, got {type(spec).__name__}; "
            f"give {_FORMS}" + (" (np.asarray() turns a list into an array)" if isinstance(spec, (list, tuple)) else "")
        )
    text = os.fspath(spec)
    if not isinstance(text, str):  # a PathLike of bytes
        raise DataError(f"the image's file name must be text, got {type(text).__name__}; give {_FORMS}")
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
    return _read_png(path, shape, pixel) if suffix == ".png" else _read_npy(path, shape, pixel)
