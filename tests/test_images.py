"""Reading --image: PNG and .npy files, factors, and every way they can be wrong."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cvaeq.worlds.dsprites.factors import parse_factors, FACTORS
from cvaeq.worlds.dsprites.render import render
from cvaeq.errors import DataError
from cvaeq.images import binarise, load_image

HEART = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"


def heart():
    c = parse_factors(HEART.split(","))
    return render(np.array([[c[f] for f in FACTORS]]))[0]


def test_factors_render_the_image():
    np.testing.assert_array_equal(load_image(HEART), heart())
    np.testing.assert_array_equal(load_image(HEART.replace(",", ", ")), heart())


@pytest.mark.parametrize(
    "mode, scale", [(m, s) for m in ("L", "RGB", "RGBA", "P") for s in (1, 255)] + [("1", 255)]
)
def test_png_in_any_black_and_white_mode(tmp_path, mode, scale):
    path = tmp_path / "h.png"
    Image.fromarray((heart() * scale).astype(np.uint8)).convert(mode).save(path)
    got = load_image(path)
    assert got.dtype == np.uint8 and got.shape == (64, 64)
    np.testing.assert_array_equal(got, heart())


@pytest.mark.parametrize("dtype, scale", [(bool, 1), (np.uint8, 1), (np.uint8, 255), (np.int64, 1), (np.float32, 1), (np.float64, 255)])
def test_npy_of_any_number_type(tmp_path, dtype, scale):
    path = tmp_path / "h.npy"
    np.save(path, (heart() * scale).astype(dtype))
    np.testing.assert_array_equal(load_image(str(path)), heart())


def png(tmp_path, array, mode=None):
    path = tmp_path / "x.png"
    img = Image.fromarray(array)
    (img.convert(mode) if mode else img).save(path)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "no such image file"),
        (lambda d: d / "missing.jpg", "no such image file"),
        (lambda d: d, "is a folder"),
        (lambda d: png(d, np.zeros((32, 32), np.uint8)), "the image is 32×32"),
        (lambda d: png(d, np.full((64, 64), 7, np.uint8)), "not black and white (values 7)"),
        (lambda d: png(d, np.dstack([heart() * 255, np.zeros((64, 64, 2), np.uint8)]).astype(np.uint8)), "has colours"),
        (lambda d: png(d, np.dstack([heart() * 255] * 3 + [heart() * 255]).astype(np.uint8)), "transparent"),
        (lambda d: (d / "x.png").write_bytes(b"not a png") and d / "x.png", "cannot read the PNG"),
        (lambda d: np.save(d / "x.npy", np.zeros((64, 64, 1))) or d / "x.npy", "the image is 64×64×1"),
        (lambda d: np.save(d / "x.npy", np.full((64, 64), 0.5)) or d / "x.npy", "not black and white"),
        (lambda d: np.save(d / "x.npy", np.full((64, 64), np.nan)) or d / "x.npy", "NaN"),
        (lambda d: np.save(d / "x.npy", np.array([{"a": 1}], dtype=object)) or d / "x.npy", "not a plain .npy"),
        (lambda d: (d / "x.npy").write_bytes(b"junk") and d / "x.npy", "not a plain .npy"),
        (lambda d: (d / "x.gif").write_bytes(b"GIF89a") and d / "x.gif", "unsupported image type '.gif'"),
    ],
)
def test_bad_files_are_data_errors_that_say_what_is_wrong(tmp_path, make, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_image(make(tmp_path))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("shape=circle,scale=1,orientation=0,posX=0.5,posY=0.5", "unknown shape 'circle'"),
        ("shape=heart,scale=1,orientation=0,posX=0.5", "missing factor(s): posY"),
        ("shape=heart,scale=3,orientation=0,posX=0.5,posY=0.5", "scale=3 is off the domain"),
        ("", "empty image name"),
    ],
)
def test_bad_factors_are_data_errors(spec, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_image(spec)


def test_a_png_that_is_not_a_png(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(heart() * 255).save(path, format="BMP")
    with pytest.raises(DataError, match="not a PNG file"):
        load_image(path)


def test_binarise_keeps_both_conventions_apart():
    assert binarise(np.eye(64) * 255).sum() == 64
    with pytest.raises(DataError, match="values 0, 1, 255"):
        binarise(np.where(np.eye(64, dtype=bool), 255, np.eye(64, k=1)))


def test_docstring_examples():
    import doctest

    import cvaeq.images

    result = doctest.testmod(cvaeq.images)
    assert result.attempted > 0 and result.failed == 0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_any_black_and_white_image_round_trips_through_png_and_npy(seed, density):
    """What cvaeq writes (viz.save_image, np.save) it reads back unchanged."""
    import tempfile

    from cvaeq.viz import save_image

    image = (np.random.default_rng(seed).random((64, 64)) < density).astype(np.uint8)
    with tempfile.TemporaryDirectory() as d:
        np.testing.assert_array_equal(load_image(save_image(image, f"{d}/x.png")), image)
        np.save(f"{d}/x.npy", image.astype(bool))
        np.testing.assert_array_equal(load_image(f"{d}/x.npy"), image)


def _png_header_only(tmp_path, width, height):
    """A PNG whose header claims ``width``×``height`` pixels (a decompression bomb's first bytes)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    body += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(body)
    return path


@pytest.mark.parametrize("size", [(10_000, 10_000), (100_000, 100_000), (65, 64)])
def test_a_huge_png_is_refused_from_its_header_without_warnings(tmp_path, size, recwarn):
    path = _png_header_only(tmp_path, *size)
    with pytest.raises(DataError, match="the image is|cannot read the PNG"):
        load_image(path)
    assert not recwarn.list  # PIL's DecompressionBombWarning is not printed


def test_a_npy_header_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    import io

    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    path = tmp_path / "huge.npy"
    path.write_bytes(f.getvalue() + b"\x00" * 64)
    with pytest.raises(DataError, match="the image is 1000000×1000000"):
        load_image(path)


@pytest.mark.parametrize("value", ["١", "1_0", "nan", "infinity", "0x1", "½", "1e309"])
def test_factor_numbers_are_ascii_decimals(value):
    with pytest.raises(DataError, match="takes a number|off the domain"):
        load_image(f"shape=heart,scale={value},orientation=0,posX=0.5,posY=0.5")


def _png_with(tmp_path, array, mode, **save):
    path = tmp_path / "t.png"
    Image.fromarray(array).convert(mode).save(path, **save)
    return path


@pytest.mark.parametrize("mode, key", [("L", 0), ("L", 255), ("1", 0), ("RGB", (0, 0, 0)), ("P", 0),
                                       ("I;16", 0)])
def test_a_png_with_a_transparency_key_that_it_uses_is_refused(tmp_path, mode, key):
    # tRNS: every pixel of one grey level (or colour) is drawn see-through, as an alpha channel would
    path = _png_with(tmp_path, heart() * 255, mode, transparency=key)
    with pytest.raises(DataError, match="the PNG is transparent in places; give an opaque black-and-white image"):
        load_image(path)


def test_a_png_whose_transparency_key_no_pixel_has_is_opaque(tmp_path):
    path = _png_with(tmp_path, heart() * 255, "L", transparency=7)
    np.testing.assert_array_equal(load_image(path), heart())


def test_a_palette_png_without_its_palette_is_refused(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(row.tolist()) for row in heart())  # palette indices 0/1, no PLTE chunk
    path = tmp_path / "noplte.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 3, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match="a palette image without its palette"):
        load_image(path)


@pytest.mark.parametrize("spec, message", [
    ([[0, 1], [1, 0]], "got list; .*np.asarray"),
    (b"x.png", "got bytes"),
    (42, "got int"),
    (None, "got NoneType"),
])
def test_an_image_of_another_type_is_a_data_error(spec, message):
    with pytest.raises(DataError, match=f"the image must be a file name, factors text or a numpy array, {message}"):
        load_image(spec)


# ------------------------------------------------- grey and colour (8-bit) worlds


@pytest.fixture
def swatch():
    """The tiny 8-bit RGB world of tests/eightbit.py, registered for one test."""
    from cvaeq.plugins import get_plugin_manager

    from .eightbit import WORLD, SwatchPlugin

    plugin = SwatchPlugin()
    get_plugin_manager().register(plugin, name="swatch-world")
    try:
        yield WORLD
    finally:
        get_plugin_manager().unregister(plugin)


def _grey_world():
    from cvaeq.world import Factor, World

    def render(classes):
        return np.stack([np.full((5, 6), 40 * int(c[0]), np.uint8) for c in classes])

    return World("greyish", (Factor("level", values=[0, 1, 2]),), image_shape=(5, 6), render=render, pixel="8bit")


def _picture(seed=0, shape=(3, 8, 8)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_an_rgb_png_gives_the_worlds_levels_byte_for_byte(tmp_path, swatch):
    picture = _picture()
    path = tmp_path / "p.png"
    Image.fromarray(picture.transpose(1, 2, 0), "RGB").save(path)
    got = load_image(path, swatch)
    assert got.dtype == np.uint8 and got.shape == (3, 8, 8)
    np.testing.assert_array_equal(got, picture)


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_opaque_rgba_and_palette_pngs_are_their_colours(tmp_path, swatch, mode):
    picture = np.repeat(np.repeat(np.array([[[10, 200], [90, 255]]], np.uint8), 4, 1), 4, 2)  # few colours
    picture = np.concatenate([picture, picture[:, ::-1], picture[:, :, ::-1]])
    path = tmp_path / "p.png"
    rgb = picture.transpose(1, 2, 0)
    if mode == "P":  # a palette of exactly the picture's colours, pixels as indices
        colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
        im = Image.fromarray(index.reshape(8, 8).astype(np.uint8), "P")
        im.putpalette(colours.astype(np.uint8).ravel().tolist())
    else:
        im = Image.fromarray(rgb, "RGB").convert(mode)
    im.save(path)
    np.testing.assert_array_equal(load_image(path, swatch), picture)


def test_a_grey_png_in_a_colour_world_has_three_equal_channels(tmp_path, swatch):
    grey = _picture(shape=(8, 8))
    path = tmp_path / "g.png"
    Image.fromarray(grey, "L").save(path)
    np.testing.assert_array_equal(load_image(path, swatch), np.stack([grey] * 3))


def test_a_grey_world_takes_grey_pngs_and_rgb_ones_whose_channels_agree(tmp_path):
    world = _grey_world()
    grey = _picture(shape=(5, 6))
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(tmp_path / "rgb.png")
    colour = np.stack([grey, grey, 255 - grey], -1)
    Image.fromarray(colour, "RGB").save(tmp_path / "c.png")
    for name in ("g.png", "rgb.png"):
        got = load_image(tmp_path / name, world)
        assert got.shape == (5, 6) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, grey)
    with pytest.raises(DataError, match="the PNG has colours; this world's pictures are grey"):
        load_image(tmp_path / "c.png", world)


def test_8bit_pngs_that_cannot_be_read_without_guessing_are_refused(tmp_path, swatch):
    rgba = np.concatenate([_picture().transpose(1, 2, 0), np.full((8, 8, 1), 255, np.uint8)], -1)
    rgba[2, 3, 3] = 100
    Image.fromarray(rgba, "RGBA").save(tmp_path / "see-through.png")
    with pytest.raises(DataError, match="transparent in places; give an opaque picture"):
        load_image(tmp_path / "see-through.png", swatch)
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match="16 bits per channel"):
        load_image(tmp_path / "deep.png", swatch)
    # 48-bit colour, which PIL would read as 8-bit RGB without a word: refused from its header
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(8 * 6) for _ in range(8))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))  # 16 bits, colour
    (tmp_path / "rgb48.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(rows))
                                        + chunk(b"IEND", b""))
    with pytest.raises(DataError, match="16 bits per channel"):
        load_image(tmp_path / "rgb48.png", swatch)
    Image.fromarray(_picture(shape=(9, 8, 3)), "RGB").save(tmp_path / "big.png")
    with pytest.raises(DataError, match="the image is 9×8; this world needs a colour \\(RGB\\) 8×8 picture"):
        load_image(tmp_path / "big.png", swatch)


@pytest.mark.parametrize("size", [(10_000, 10_000), (65, 64)])
def test_a_huge_png_is_refused_from_its_header_in_an_8bit_world(tmp_path, swatch, size, recwarn):
    with pytest.raises(DataError, match="the image is|cannot read the PNG"):
        load_image(_png_header_only(tmp_path, *size), swatch)
    assert not recwarn.list


def test_8bit_arrays_and_npy_files_channels_first_or_last(tmp_path, swatch):
    picture = _picture()
    np.testing.assert_array_equal(load_image(picture, swatch), picture)
    np.testing.assert_array_equal(load_image(picture.transpose(1, 2, 0).astype(np.int64), swatch), picture)
    np.save(tmp_path / "p.npy", picture.transpose(1, 2, 0))
    np.testing.assert_array_equal(load_image(tmp_path / "p.npy", swatch), picture)
    with pytest.raises(DataError, match="dtype float64; give integer levels 0..255 \\(np.rint"):
        load_image(picture / 255.0, swatch)
    with pytest.raises(DataError, match="levels 300..300 are off 0..255"):
        load_image(np.full((3, 8, 8), 300), swatch)
    with pytest.raises(DataError, match="the image is 8×8; this world needs levels of shape 3×8×8"):
        load_image(np.zeros((8, 8), np.uint8), swatch)


def test_an_8bit_npy_header_claiming_a_huge_shape_is_refused_before_reading(tmp_path, swatch):
    import io

    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 3)})
    (tmp_path / "huge.npy").write_bytes(f.getvalue() + b"\x00" * 64)
    with pytest.raises(DataError, match="the image is 1000000×1000000×3; this world needs levels"):
        load_image(tmp_path / "huge.npy", swatch)


def test_factors_render_an_8bit_world(swatch):
    from .eightbit import render as swatch_render

    got = load_image("hue=blue,size=6", swatch)
    np.testing.assert_array_equal(got, swatch_render(np.array([[2, 2]]))[0])
    assert got.dtype == np.uint8 and got.shape == (3, 8, 8)


def test_data_show_writes_an_8bit_worlds_picture_as_its_levels(tmp_path, swatch):
    from cvaeq.data.grid import show_image

    from .eightbit import render as swatch_render

    path = show_image(["hue=green", "size=2"], tmp_path / "g.png", world="swatch")
    with Image.open(path) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im).transpose(2, 0, 1), swatch_render(np.array([[1, 0]]))[0])
    np.testing.assert_array_equal(load_image(path, swatch), swatch_render(np.array([[1, 0]]))[0])
