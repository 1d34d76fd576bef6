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
