"""`cvaeq data import | show --index` and the other data commands on a world without a renderer."""

import gzip
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvaeq.cli import main
from cvaeq.data.labelled import load_labelled
from cvaeq.world import get_world

WORLD = get_world("morphomnist")


def run(*args):
    return CliRunner().invoke(main, list(args))


def one_line_exit_2(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output


def test_show_index_writes_the_real_digit_and_says_its_factors(tmp_path):
    out = tmp_path / "digit.png"
    result = run("data", "show", "--world", "morphomnist", "--index", "7001", "--out", str(out))
    assert result.exit_code == 0, result.output
    pics = load_labelled(world=WORLD)
    assert np.array_equal(np.asarray(Image.open(out)), pics.images[7001])  # byte for byte
    path, named = result.output.strip().splitlines()
    assert path == str(out)
    digit, thickness, intensity = pics.factors[7001]
    assert named == f"digit={int(digit)} thickness={thickness:.6g} intensity={intensity:.6g}"


def test_show_index_from_an_imported_file(tmp_path):
    npz = tmp_path / "m.npz"
    assert run("data", "import", "--world", "morphomnist", "--out", str(npz)).exit_code == 0
    out = tmp_path / "d.png"
    result = run("data", "show", "--world", "morphomnist", "--index", "3", "--source", str(npz), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(out)), load_labelled(world=WORLD).images[3])


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "show", "--world", "morphomnist", "digit=1", "thickness=2", "intensity=3"], "has no renderer"),
        (["data", "show", "--world", "morphomnist"], "show one of its pictures with --index N"),
        (["data", "show", "--world", "morphomnist", "--index", "8000"], "no picture with row index 8000"),
        (["data", "show", "--world", "morphomnist", "--index", "1", "digit=1"], "not both"),
        (["data", "build", "--world", "morphomnist"], "cannot render a grid: world 'morphomnist' has no renderer"),
        (["data", "resample", "--world", "morphomnist", "--n", "3", "--seed", "0"], "cannot resample"),
    ],
)
def test_renderer_less_world_commands_say_why_in_one_line(tmp_path, args, message):
    result = run(*args, "--out", str(tmp_path / "x.png")) if args[1] == "show" else run(*args)
    one_line_exit_2(result, message)
    assert not (tmp_path / "x.png").exists()


def test_image_from_factors_of_a_renderer_less_world_says_what_to_give():
    from cvaeq.errors import DataError
    from cvaeq.images import load_image

    with pytest.raises(DataError, match="cannot draw the evidence from factors: .* give the picture as a .png"):
        load_image("digit=1,thickness=2,intensity=3", WORLD)


def test_import_writes_a_file_that_reads_back(tmp_path):
    folder = tmp_path / "mm"
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    head = bytes([0, 0, 8, 3]) + (4).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + images.tobytes()))
    (folder / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1]))
    (folder / "train-morpho.csv").write_text("index,thickness,intensity\n0,1,2\n1,2,3\n2,3,4\n3,4,5\n")
    out = tmp_path / "m.npz"
    result = run("data", "import", str(folder), "--world", "morphomnist", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(out), "4 pictures of world morphomnist (4 train, 0 test)"]
    back = load_labelled(out)
    assert np.array_equal(back.images, images) and back.factors[:, 0].tolist() == [3, 1, 4, 1]


def test_import_refuses_bad_outputs_and_bad_sources_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    one_line_exit_2(
        run("data", "import", "--world", "morphomnist", "--out", str(tmp_path / "pipe.npz")), "not a regular file"
    )
    one_line_exit_2(
        run("data", "import", str(tmp_path), "--world", "morphomnist", "--out", str(tmp_path / "m.npz")),
        "not a folder of labelled pictures",
    )
    (tmp_path / "train-morpho.csv").write_text("index,thickness,intensity\n0,1,2\n")
    one_line_exit_2(
        run("data", "import", str(tmp_path), "--world", "morphomnist", "--out", str(tmp_path / "m.npz")),
        "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz",
    )
    assert not (tmp_path / "m.npz").exists()
    one_line_exit_2(run("data", "import", "--world", "dsprites", "--out", str(tmp_path / "m.npz")), "ships no")


def test_an_existing_output_is_kept_when_the_import_fails(tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"precious")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "factors.csv").write_text("file,digit,thickness,intensity\na.png,1,2,3\n")
    one_line_exit_2(
        run("data", "import", str(tmp_path / "src"), "--world", "morphomnist", "--out", str(out)), "no such picture"
    )
    assert out.read_bytes() == b"precious"
