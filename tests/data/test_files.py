"""Loading grid files: the real layout, no unpickling, clear errors, uint8 batches."""

import operator
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from cvaeq.data.dataset import make_loader
from cvaeq.worlds.dsprites.factors import N_IMAGES, indices_of
from cvaeq.data.files import layout_arrays, load_grid, read_metadata, write_images
from cvaeq.worlds.dsprites.render import render
from cvaeq.errors import DataError


class _Tripwire:
    """Unpickling this raises ZeroDivisionError: proof that a loader unpickled."""

    def __reduce__(self):
        return (operator.truediv, (1, 0))


def _real_layout(path, n=300, seed=0, compressed=True, **override):
    """A small file laid out like dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz,
    with a pickled ``metadata`` entry that must never be unpickled."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(N_IMAGES, size=n, replace=False))
    from cvaeq.worlds.dsprites.factors import classes_array_of

    classes = classes_array_of(indices)
    lc, lv = layout_arrays(classes)
    arrays = {
        "imgs": render(classes),
        "latents_classes": lc,
        "latents_values": lv,
        "metadata": np.array(_Tripwire(), dtype=object),
    }
    arrays.update(override)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return classes, arrays["imgs"]


@pytest.mark.parametrize("compressed", [True, False])
def test_real_layout_loads_without_unpickling(tmp_path, compressed):
    path = tmp_path / "real.npz"
    classes, imgs = _real_layout(path, compressed=compressed)
    with np.load(path, allow_pickle=True) as z, pytest.raises(ZeroDivisionError):
        z["metadata"]  # the file really holds a pickle that would run on load
    grid = load_grid(path)  # would raise ZeroDivisionError had it unpickled
    assert len(grid) == len(classes)
    np.testing.assert_array_equal(grid.classes, classes)
    np.testing.assert_array_equal(grid.indices, indices_of(classes))
    order = np.random.default_rng(1).permutation(len(classes))[:50]
    got = grid.images_at(indices_of(classes[order]))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, imgs[order])
    assert grid.metadata == {}


def test_default_path_is_the_real_file_when_cached(tmp_path):
    from cvaeq.paths import REAL_FILENAME, home

    classes, _ = _real_layout(home() / REAL_FILENAME, n=20)
    assert load_grid().path.name == REAL_FILENAME
    assert len(load_grid()) == 20


def test_missing_file_says_how_to_get_one():
    with pytest.raises(DataError, match=r"cvaeq data build.*--npz"):
        load_grid()


def test_written_file_round_trips_and_memory_maps(tmp_path):
    classes = np.array([[2, 5, 0, 16, 16], [0, 0, 39, 31, 0], [1, 2, 3, 4, 5]])
    path = write_images(tmp_path / "w.npz", render(classes), classes, metadata={"story": "x"})
    grid = load_grid(path)
    assert isinstance(grid._imgs, np.memmap)  # uncompressed images are not read into memory
    np.testing.assert_array_equal(grid.rows(np.array([2, 0])), render(classes[[2, 0]]))
    assert read_metadata(path) == {"story": "x", "world": "dsprites"} == grid.metadata
    with np.load(path, allow_pickle=False) as z:
        assert z["latents_classes"].dtype == np.int64 and z["latents_classes"].shape == (3, 6)
        assert z["latents_values"].dtype == np.float64


def test_same_arrays_give_same_bytes(tmp_path):
    classes = np.array([[1, 2, 3, 4, 5]])
    a = write_images(tmp_path / "a.npz", render(classes), classes, metadata={"k": 1})
    b = write_images(tmp_path / "b.npz", render(classes), classes, metadata={"k": 1})
    assert a.read_bytes() == b.read_bytes()


def test_absent_image_is_an_error(tmp_path):
    path = tmp_path / "real.npz"
    classes, _ = _real_layout(path, n=10)
    grid = load_grid(path)
    absent = np.setdiff1d(np.arange(100), grid.indices)[:1]
    with pytest.raises(DataError, match="no image for grid index"):
        grid.images_at(absent)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"imgs": np.zeros((300, 64, 64), np.float32)}, r"'imgs' has dtype float32, expected uint8"),
        ({"imgs": np.zeros((300, 32, 32), np.uint8)}, r"'imgs' has shape \(300, 32, 32\), expected \(N, 64, 64\)"),
        ({"imgs": np.zeros((299, 64, 64), np.uint8)}, r"'latents_classes' has 300 rows but 'imgs' has 299"),
        ({"latents_classes": np.zeros((300, 5), np.int64)}, r"'latents_classes' has shape \(300, 5\)"),
        ({"latents_values": np.zeros((300, 6), np.float32)}, r"'latents_values' has dtype float32"),
        ({"latents_classes": np.full((300, 6), 7, np.int64)}, r"latents_classes\[0, 0\] = 7 is outside 0..0"),
        ({"latents_values": np.zeros((300, 6))}, r"latents_values\[0, 1\] = 0 does not match"),
        ({"imgs": np.full((300, 64, 64), 255, np.uint8)}, r"values up to 255; expected 0/1"),
    ],
)
def test_wrong_arrays_name_file_and_problem(tmp_path, override, message):
    path = tmp_path / "bad.npz"
    _real_layout(path, **override)
    with pytest.raises(DataError, match=message) as err:
        load_grid(path)
    assert str(path) in str(err.value)


def test_missing_member_and_non_zip(tmp_path):
    path = tmp_path / "nolatents.npz"
    np.savez(path, imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match=r"no 'latents_classes' array"):
        load_grid(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_grid(junk)


def test_truncated_member_is_an_error(tmp_path):
    path = tmp_path / "real.npz"
    _real_layout(path, n=20)
    cut = tmp_path / "cut.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(cut, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "imgs.npy":
                data = data[: len(data) // 2]
            dst.writestr(info.filename, data)
    with pytest.raises(DataError, match="truncated|not a valid"):
        load_grid(cut)


# ---------------------------------------------------------------- Dataset / DataLoader


def test_loader_yields_float_batches_from_uint8(tmp_path):
    path = tmp_path / "real.npz"
    classes, imgs = _real_layout(path, n=40)
    grid = load_grid(path)
    for source in (imgs, grid, path):
        batches = list(make_loader(source, classes, batch_size=16, shuffle=False))
        assert [len(b[0]) for b in batches] == [16, 16, 8]
        x, y = batches[0]
        assert x.dtype == torch.float32 and x.shape == (16, 1, 64, 64)
        assert y.dtype == torch.int64 and y.shape == (16, 5)
        np.testing.assert_array_equal(x[:, 0].numpy().astype(np.uint8), imgs[:16])
        np.testing.assert_array_equal(y.numpy(), classes[:16])


def test_loader_shuffle_is_seeded_and_pairs_stay_together():
    classes = np.array([[s, c, 0, x, 5] for s in range(3) for c in range(2) for x in (0, 31)])
    imgs = render(classes)

    def order(seed):
        ys = [y for _, y in make_loader(imgs, classes, batch_size=5, shuffle=True, seed=seed)]
        return torch.cat(ys).numpy()

    assert np.array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))
    for x, y in make_loader(imgs, classes, batch_size=4, shuffle=True, seed=0):
        np.testing.assert_array_equal(x[:, 0].numpy().astype(np.uint8), render(y.numpy()))


def test_loader_accepts_a_distributed_sampler():
    classes = np.array([[0, 0, 0, i, 0] for i in range(10)])
    imgs = render(classes)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(range(10), num_replicas=2, rank=rank, shuffle=True, seed=0)
        seen += [y for _, y in make_loader(imgs, classes, batch_size=3, sampler=sampler)]
    rows = torch.cat(seen)[:, 3].sort().values
    assert rows.tolist() == list(range(10))


def test_loader_refuses_float_images():
    classes = np.zeros((2, 5), np.int64)
    with pytest.raises(DataError, match="uint8"):
        make_loader(np.zeros((2, 64, 64), np.float32), classes, batch_size=2)
