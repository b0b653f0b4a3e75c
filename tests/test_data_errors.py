"""Bad data given by path is one line, a non-zero exit and no run folder left behind."""

from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error
from image_folders import write_bad_files, write_images

from zoo.cli import cli


def zoo_here(*args):
    """The CLI run in this process (a subprocess per case would cost seconds of torch import each)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def mixed_sizes(folder):
    write_images(folder, 3, size=(32, 32), seed=1)
    write_images(folder, 2, size=(48, 64), seed=2, start=3)


def nan_array(folder):
    folder.mkdir()
    array = np.zeros((10, 4))
    array[3, 1] = np.nan
    np.save(folder / "x.npy", array)


CASES = {
    "missing path": (lambda d: None, "missing", [], ["no such file or folder"]),
    "empty folder": (lambda d: (d / "empty").mkdir(parents=True), "empty", [], ["holds no files"]),
    "no usable image": (write_bad_files, "", [], ["none of its 4 file(s) is a usable image"]),
    "mixed sizes": (mixed_sizes, "", [], ["32x32 (3)", "48x64 (2)", "--image-size"]),
    "a shape the model cannot take": (
        lambda d: write_images(d, 4, size=(30, 30)),
        "",
        [],
        ["conv-ae cannot take data of shape 3x30x30", "divisible by 4"],
    ),
    "NaN": (nan_array, "x.npy", [], ["NaN"]),
    "npz without its keys": (
        lambda d: (d.mkdir(), np.savez(d / "a.npz", a=np.zeros(3), b=np.zeros(3))),
        "a.npz",
        [],
        ["expected one array, or x_train", "found a, b"],
    ),
    "a bad image size": (lambda d: write_images(d, 4), "", ["--image-size", "4y4"], ["--image-size takes S or HxW"]),
    "channels on an array": (
        lambda d: (d.mkdir(), np.save(d / "x.npy", np.zeros((4, 3), np.uint8))),
        "x.npy",
        ["--channels", "3"],
        ["apply to folders of images"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_data_is_one_line_and_leaves_no_run_folder(tmp_path, case):
    make, name, extra, fragments = CASES[case]
    make(tmp_path / "data")
    run = tmp_path / "run"
    result = zoo_here(
        "train", "conv-ae", "--data", tmp_path / "data" / name, *extra, "--epochs", 1, "--set", "hidden=4", "--out", run
    )
    assert_one_line_error(result, *fragments)
    assert not run.exists()


def test_data_options_need_data(tmp_path):
    assert_one_line_error(
        zoo_here("train", "deep-ae", "--image-size", "8", "--out", tmp_path / "r"), "--image-size needs --data PATH"
    )
