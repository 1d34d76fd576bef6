"""Labelled pictures from files: the Morpho-MNIST layout, the PNG folder layout,
the project's data file, and what each does with hostile files."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest

from cvaeq.data.files import read_labelled, write_labelled
from cvaeq.data.idx import read_idx
from cvaeq.data.labelled import LabelledPictures, held_out_mask, load_labelled, training_parts
from cvaeq.errors import DataError
from cvaeq.viz import png_bytes
from cvaeq.world import Factor, World, get_world

WORLD = get_world("morphomnist")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes (MNIST's layout)."""
    array = np.asarray(array, dtype=np.uint8)
    head = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def morpho_folder(tmp_path, n=5, prefix="train", zipped=True, table=None, images=None, labels=None):
    """A small Morpho-MNIST folder: random pictures, labels 0..9 and an index,thickness,intensity table."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8) if images is None else images
    labels = (np.arange(n) % 10).astype(np.uint8) if labels is None else labels
    if table is None:
        table = "index,thickness,intensity\n" + "".join(f"{i},{1 + i / 10},{100 + i}\n" for i in range(n))
    gz = gzip.compress if zipped else (lambda b: b)
    ext = ".gz" if zipped else ""
    (tmp_path / f"{prefix}-images-idx3-ubyte{ext}").write_bytes(gz(idx_bytes(images)))
    (tmp_path / f"{prefix}-labels-idx1-ubyte{ext}").write_bytes(gz(idx_bytes(labels)))
    (tmp_path / f"{prefix}-morpho.csv").write_text(table) if isinstance(table, str) else (
        tmp_path / f"{prefix}-morpho.csv"
    ).write_bytes(table)
    return tmp_path, images, labels


# ----------------------------------------------------------------------------- the shipped files


def test_shipped_digits_read_in_the_worlds_order_with_the_held_out_part():
    pics = load_labelled(world="morphomnist")
    assert len(pics) == 8000 and pics.images.dtype == np.uint8 and pics.images.shape == (8000, 28, 28)
    assert pics.factors.dtype == np.float64 and pics.factors.shape == (8000, 3)
    # the first rows of t10k-morpho.csv, and MNIST's first test labels (7, 2, 1, 0, 4)
    assert pics.factors[:5, 0].tolist() == [7, 2, 1, 0, 4]
    assert pics.factors[0, 1:].tolist() == [2.2673757, 145.269]
    assert pics.factors[7999, 1:].tolist() == [2.5625653, 209.6244]
    train, test = pics.split("train"), pics.split("test")
    assert test.rows.tolist() == list(range(7000, 8000)) and train.rows.tolist() == list(range(7000))
    assert np.array_equal(test.images, pics.images[7000:])
    with pytest.raises(DataError, match="already the test part"):
        test.split("train")
    assert pics.factors_of(7001) == {
        "digit": int(pics.factors[7001, 0]),
        "thickness": pics.factors[7001, 1],
        "intensity": pics.factors[7001, 2],
    }


def test_training_parts_are_tensors_of_the_split():
    import torch

    parts = training_parts("morphomnist")
    x, y = parts["train"]
    assert x.dtype == torch.uint8 and tuple(x.shape) == (7000, 28, 28)
    assert y.dtype == torch.float64 and tuple(y.shape) == (7000, 3)
    xt, yt = parts["test"]
    assert tuple(xt.shape) == (1000, 28, 28) and float(yt[0, 1]) == load_labelled(world=WORLD).factors[7000, 1]


def test_test_mask_without_declared_rows_is_the_last_tenth():
    world = World("toy", (Factor("a", labels=("x", "y")),), image_shape=(2, 2))
    assert held_out_mask(world, np.array([5, 0, 9, 1, 2, 3, 4, 6, 7, 8, 10])).tolist() == [
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]


# ----------------------------------------------------------------------------- the Morpho-MNIST layout


@pytest.mark.parametrize("zipped", [True, False])
def test_morpho_layout_of_a_users_train_files(tmp_path, zipped):
    folder, images, labels = morpho_folder(tmp_path, n=12, zipped=zipped)
    pics = load_labelled(folder, WORLD)
    assert np.array_equal(pics.images, images)
    assert pics.factors[:, 0].tolist() == labels.tolist()
    assert pics.factors[3, 1:].tolist() == [1.3, 103.0]
    # the last tenth is not the world's rule: morphomnist holds out rows 7000-7999 whatever the files
    assert len(pics.split("train")) == 12
    # the table's own path reads the same
    assert np.array_equal(load_labelled(folder / "train-morpho.csv", WORLD).factors, pics.factors)


def test_table_rows_in_any_order_follow_their_index(tmp_path):
    table = "index,thickness,intensity\n2,3.0,30\n0,1.0,10\n1,2.0,20\n"
    folder, *_ = morpho_folder(tmp_path, n=3, table=table)
    assert load_labelled(folder, WORLD).factors[:, 1].tolist() == [1.0, 2.0, 3.0]


def test_morpho_measurement_columns_are_skipped(tmp_path):
    table = "index,area,thickness,slant,intensity\n0,1,2.0,0.1,50\n"
    folder, *_ = morpho_folder(tmp_path, n=1, table=table)
    assert load_labelled(folder, WORLD).factors[0, 1:].tolist() == [2.0, 50.0]


def test_two_prefixes_need_a_choice(tmp_path):
    morpho_folder(tmp_path, n=3, prefix="train")
    morpho_folder(tmp_path, n=2, prefix="t10k")
    with pytest.raises(DataError, match="say which"):
        load_labelled(tmp_path, WORLD)
    assert len(load_labelled(tmp_path, WORLD, prefix="t10k")) == 2


def _bad_table(tmp_path, table, match):
    folder, *_ = morpho_folder(tmp_path, n=3, table=table)
    with pytest.raises(DataError, match=match):
        load_labelled(folder, WORLD)


@pytest.mark.parametrize(
    "table, match",
    [
        ("index,thickness,intensity\n0,1,10\n1,1,10\n", r"3 pictures, 3 labels and 2 table rows"),  # a row missing
        ("index,thickness,intensity\n0,1,10\n1,1,10\n2,1,10\n3,1,10\n", "4 table rows"),  # a row extra
        ("index,thickness,intensity\n0,1,10\n1,1,10\n1,1,10\n", "index 1 is given twice"),
        ("index,thickness,intensity\n0,1,10\n1,1,10\n7,1,10\n", "index 7 but the table has 3 rows"),
        ("index,thickness,intensity\n0,1,10\n1,1,10\n-2,1,10\n", "not a row number"),
        ("index,thickness\n0,1\n1,1\n2,1\n", "no 'intensity' column"),
        ("index,thickness,intensity,colour\n0,1,10,r\n1,1,10,r\n2,1,10,r\n", "'colour' is not a factor"),
        ("index,thickness,thickness,intensity\n0,1,1,10\n", "named twice"),
        ("thickness,intensity\n1,10\n1,10\n1,10\n", "no 'index' column"),
        ("index,thickness,intensity\n0,1,10\n1,nan,10\n2,1,10\n", r"line 3: thickness takes a number"),
        ("index,thickness,intensity\n0,1,10\n1,1,10\n2,1,300\n", r"line 4: intensity=300 is off the domain"),
        ("index,thickness,intensity\n0,1,10\n1,1,10,5\n2,1,10\n", r"line 3: 4 fields"),
        ("index,thickness,intensity\n0,1,10\n1,\n2,1,10\n", r"line 3: 2 fields"),
        ("", "empty"),
        ("index,thickness,intensity\n", "no rows"),
        (b"index,thickness,intensity\n0,1,10\n1,1,\xff10\n2,1,10\n", r"line 3: not UTF-8"),
    ],
)
def test_hostile_tables(tmp_path, table, match):
    _bad_table(tmp_path, table, match)


def test_mismatched_counts_of_pictures_and_labels(tmp_path):
    folder, *_ = morpho_folder(tmp_path, n=3, labels=np.array([1, 2], np.uint8))
    with pytest.raises(DataError, match="3 pictures, 2 labels and 3 table rows"):
        load_labelled(folder, WORLD)


def test_a_label_off_the_digits(tmp_path):
    folder, *_ = morpho_folder(tmp_path, n=3, labels=np.array([1, 12, 3], np.uint8))
    with pytest.raises(DataError, match="label 12 .picture 1. is not a class of digit"):
        load_labelled(folder, WORLD)


def test_pictures_of_another_size(tmp_path):
    folder, *_ = morpho_folder(tmp_path, n=3, images=np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(DataError, match="images of 32×32; this world's are 28×28"):
        load_labelled(folder, WORLD)


# ----------------------------------------------------------------------------- hostile IDX files


def test_truncated_idx(tmp_path):
    blob = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "p").write_bytes(blob[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "p", 3, "images", (28, 28))
    (tmp_path / "p.gz").write_bytes(gzip.compress(blob[:-10]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "p.gz", 3, "images", (28, 28))
    (tmp_path / "q.gz").write_bytes(gzip.compress(blob)[:-30])  # the gzip stream itself cut short
    with pytest.raises(DataError, match="truncated|gzip"):
        read_idx(tmp_path / "q.gz", 3, "images", (28, 28))


def test_trailing_bytes_are_refused(tmp_path):
    blob = idx_bytes(np.zeros((4, 28, 28), np.uint8)) + b"\0"
    (tmp_path / "p").write_bytes(blob)
    with pytest.raises(DataError, match="trailing data"):
        read_idx(tmp_path / "p", 3, "images", (28, 28))
    (tmp_path / "p.gz").write_bytes(gzip.compress(blob))
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(tmp_path / "p.gz", 3, "images", (28, 28))


def test_wrong_magic(tmp_path):
    blob = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    blob[2] = 0x0D  # floats
    (tmp_path / "p").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="magic number 0x00000d03, expected 0x00000803"):
        read_idx(tmp_path / "p", 3, "images", (28, 28))
    (tmp_path / "l").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="expected 0x00000803"):  # a labels file given as pictures
        read_idx(tmp_path / "l", 3, "images", (28, 28))
    (tmp_path / "s").write_bytes(b"\0\0\x08")
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx(tmp_path / "s", 3, "images", (28, 28))


def test_header_claiming_huge_dims_is_refused_before_reading(tmp_path):
    head = bytes([0, 0, 8, 3]) + (0xFFFFFFFF).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "p.gz").write_bytes(gzip.compress(head))
    with pytest.raises(DataError, match="claims 4,294,967,295 images; at most 1,000,000"):
        read_idx(tmp_path / "p.gz", 3, "images", (28, 28))
    head = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (1 << 20).to_bytes(4, "big") * 2
    (tmp_path / "q").write_bytes(head)
    with pytest.raises(DataError, match="images of 1048576×1048576"):
        read_idx(tmp_path / "q", 3, "images", (28, 28))


def test_gzip_bomb_is_read_no_further_than_its_header(tmp_path):
    # a header claiming 10 labels, then 1 GB of zeros compressed to ~1 MB
    path = tmp_path / "bomb-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big"))
        zeros = bytes(1 << 24)
        for _ in range(64):
            f.write(zeros)
    assert path.stat().st_size < 2 << 20
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path, 1, "labels")
    assert time.perf_counter() - t < 5  # it stopped at 11 bytes, not after decompressing 1 GB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no 1 GB buffer


def test_not_gzip_though_named_so(tmp_path):
    (tmp_path / "p.gz").write_bytes(idx_bytes(np.zeros((1, 28, 28), np.uint8)))
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(tmp_path / "p.gz", 3, "images", (28, 28))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    folder, *_ = morpho_folder(tmp_path, n=3)
    os.unlink(folder / "train-labels-idx1-ubyte.gz")
    os.mkfifo(folder / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="not a regular file"):
        load_labelled(folder, WORLD)
    os.unlink(folder / "train-morpho.csv")
    os.mkfifo(folder / "train-morpho.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_labelled(folder, WORLD)


def test_a_link_to_a_regular_file_is_read_and_a_dangling_one_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    morpho_folder(src, n=3)
    dst = tmp_path / "dst"
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).symlink_to(p)
    assert len(load_labelled(dst, WORLD)) == 3
    (dst / "train-images-idx3-ubyte.gz").unlink()
    (dst / "train-images-idx3-ubyte.gz").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no such"):
        load_labelled(dst, WORLD)


# ----------------------------------------------------------------------------- PNG folder + factors.csv


def png_folder(tmp_path, rows, pictures=None):
    for name, img in (pictures or {}).items():
        (tmp_path / name).write_bytes(png_bytes(img))
    (tmp_path / "factors.csv").write_text(rows)
    return tmp_path


def test_png_folder_grey_and_rgb(tmp_path):
    grey = np.arange(784, dtype=np.uint8).reshape(28, 28)
    rgb = np.repeat(grey[..., None], 3, axis=2)  # RGB with equal channels is grey
    folder = png_folder(
        tmp_path,
        "file,thickness,digit,intensity\na.png,2.5,7,200\nb.png,3,1,0\n",
        {"a.png": grey, "b.png": rgb},
    )
    pics = load_labelled(folder, WORLD)
    assert np.array_equal(pics.images[0], grey) and np.array_equal(pics.images[1], grey)
    assert pics.factors.tolist() == [[7, 2.5, 200], [1, 3, 0]]  # the world's order, not the file's
    assert pics.rows.tolist() == [0, 1]


def test_png_folder_of_a_binary_world_without_continuous_factors(tmp_path):
    world = get_world("dsprites")
    img = world.render(np.array([[2, 5, 0, 15, 15]]))[0]
    folder = png_folder(
        tmp_path, "file,shape,scale,orientation,posX,posY\nh.png,heart,1,0,0.5,0.5\n", {"h.png": img * 255}
    )
    pics = load_labelled(folder, world)
    assert pics.factors.dtype == np.int64 and pics.factors.tolist() == [[2, 5, 0, 15, 15]]  # 0.5 snaps as in queries
    assert np.array_equal(pics.images[0], img)


@pytest.mark.parametrize(
    "rows, match",
    [
        ("file,digit,thickness\na.png,7,2\n", "no 'intensity' column"),
        ("file,digit,thickness,intensity,mood\na.png,7,2,3,ok\n", "'mood' is not a factor"),
        ("file,digit,thickness,intensity\na.png,7,2,3\na.png,1,2,3\n", "a.png is named twice"),
        ("file,digit,thickness,intensity\n../a.png,7,2,3\n", "not a plain file name"),
        ("file,digit,thickness,intensity\na.txt,7,2,3\n", "not a .png"),
        ("file,digit,thickness,intensity\nmissing.png,7,2,3\n", "no such picture"),
        ("file,digit,thickness,intensity\na.png,seven,2,3\n", r"line 2: unknown digit 'seven'"),
        ("file,digit,thickness,intensity\na.png,7,inf,3\n", r"line 2: thickness takes a number"),
        ("file,digit,thickness,intensity\na.png,7,-1,3\n", r"thickness=-1 is off the domain"),
    ],
)
def test_hostile_png_folders(tmp_path, rows, match):
    folder = png_folder(tmp_path, rows, {"a.png": np.zeros((28, 28), np.uint8), "a.txt": np.zeros((28, 28), np.uint8)})
    with pytest.raises(DataError, match=match):
        load_labelled(folder, WORLD)


def test_png_of_the_wrong_size_or_with_colours(tmp_path):
    colours = np.zeros((28, 28, 3), np.uint8)
    colours[..., 0] = 255
    folder = png_folder(
        tmp_path,
        "file,digit,thickness,intensity\na.png,7,2,3\n",
        {"a.png": np.zeros((32, 28), np.uint8)},
    )
    with pytest.raises(DataError, match="a.png: the image is 32×28"):
        load_labelled(folder, WORLD)
    (tmp_path / "a.png").write_bytes(png_bytes(colours))
    with pytest.raises(DataError, match="has colours"):
        load_labelled(folder, WORLD)
    os.unlink(tmp_path / "a.png")
    os.mkfifo(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a regular file"):
        load_labelled(folder, WORLD)


def test_an_unknown_folder_says_what_it_expected(tmp_path):
    with pytest.raises(DataError, match="expected PREFIX-images-idx3-ubyte"):
        load_labelled(tmp_path, WORLD)
    with pytest.raises(DataError, match="no such folder or file"):
        load_labelled(tmp_path / "nope", WORLD)
    with pytest.raises(DataError, match="ships no labelled pictures"):
        load_labelled(world="dsprites")


# ----------------------------------------------------------------------------- the data file


def test_data_file_round_trip_and_its_checks(tmp_path):
    pics = load_labelled(world=WORLD).split("test")
    path = write_labelled(tmp_path / "m.npz", pics)
    back = load_labelled(path)
    assert back.world is WORLD and np.array_equal(back.images, pics.images)
    assert np.array_equal(back.factors, pics.factors) and np.array_equal(back.rows, pics.rows)
    assert len(back.split("test")) == 1000  # rows kept, so the held-out part is still the held-out part
    with pytest.raises(DataError, match="not 'dsprites'"):
        read_labelled(path, "dsprites")
    np.savez(
        tmp_path / "bad.npz",
        imgs=pics.images,
        factors=pics.factors.astype(np.float32),
        rows=pics.rows,
        metadata_json=np.array('{"world": "morphomnist"}'),
    )
    with pytest.raises(DataError, match="'factors' is float32"):
        read_labelled(tmp_path / "bad.npz")


def test_grid_world_data_file_keeps_the_grid_layout(tmp_path):
    world = get_world("dsprites")
    classes = np.array([[2, 5, 0, 16, 16], [0, 0, 0, 0, 0]])
    pics = LabelledPictures(world, world.render(classes), classes, np.array([4, 9]), "test")
    path = write_labelled(tmp_path / "d.npz", pics)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["imgs", "latents_classes", "latents_values", "metadata_json", "rows"]
        assert z["latents_classes"].dtype == np.int64
    back = read_labelled(path)
    assert back.factors.tolist() == classes.tolist() and back.rows.tolist() == [4, 9]


def test_a_shipped_copy_in_a_temp_folder_reads_like_the_original(tmp_path):
    for p in WORLD.data.iterdir():
        shutil.copy(p, tmp_path / p.name)
    a, b = load_labelled(tmp_path, WORLD), load_labelled(world=WORLD)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.factors, b.factors)


# ----------------------------------------------------------------------------- what training reads


def test_training_data_of_a_renderer_less_world_is_its_labelled_parts():
    from cvaeq.model.training_data import labelled_training_data

    images, factors, source, m = labelled_training_data(WORLD, 100, seed=0)
    pics = load_labelled(world=WORLD)
    assert m == 100 and images.shape == (100, 28, 28) and factors.dtype == np.float64
    # rows drawn from the train part only, in row order, each picture with its own factors
    picked = [np.flatnonzero((pics.images[:7000] == im).all(axis=(1, 2)))[0] for im in images[:5]]
    assert picked == sorted(picked) and all(p < 7000 for p in picked)
    assert np.array_equal(factors[:5], pics.factors[picked])
    again = labelled_training_data(WORLD, 100, seed=0)
    assert np.array_equal(again[0], images) and np.array_equal(again[1], factors)  # same seed, same rows
    test_images, test_factors, test_source, m = labelled_training_data(WORLD, 5000, seed=0, part="test")
    assert m == 1000 and np.array_equal(test_images, pics.images[7000:]) and "test part, rows 7000-7999" in test_source


def test_load_training_data_reads_the_files_of_a_renderer_less_story():
    from types import SimpleNamespace

    from cvaeq.model.training_data import load_training_data

    story = SimpleNamespace(world=WORLD, name="morphomnist")  # what load_training_data reads of a story
    images, factors, source, n_story = load_training_data(story, 50, seed=1, progress=False, uniform=0.25)
    assert images.shape == (50, 28, 28) and n_story == 50 and "train part" in source  # no uniform draws: none exist
    held = load_training_data(story, 5000, seed=1, progress=False, part="test")
    assert len(held[0]) == 1000
