"""The preparation of a run's images travels with its exported files (``zoo.preprocess``), and the
torch-free Encoder applies it to image files and PIL images exactly as training prepared them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from image_folders import write_images
from PIL import Image

from zoo.data.by_path import make_request
from zoo.export import metadata
from zoo.export.onnx import export_run
from zoo.export.runtime import Encoder, read_metadata
from zoo.train.loop import train


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """conv-ae trained on 40x50 RGB images cropped and resized to 16x24 (height x width), exported."""
    folder = tmp_path_factory.mktemp("images")
    write_images(folder / "a", 6, size=(40, 50), seed=1)
    write_images(folder / "b", 6, size=(40, 50), seed=2)
    run = train(
        "conv-ae", folder.parent / "run", data=make_request(folder, image_size="16x24"), epochs=1, sets={"hidden": 4}
    )
    return folder, run, export_run(run)


def test_every_part_carries_the_runs_preprocessing(colour_run):
    _, run, paths = colour_run
    for part in ("encoder", "decoder", "generator"):
        assert read_metadata(paths[part])[metadata.PREPROCESS] == {
            "size": [16, 24],
            "channels": 3,
            "crop": None,
            "resize": "bilinear-antialiased",
            "scale": "x / 255",
            "layout": "NCHW",
        }


def test_encoder_prepares_files_and_pil_images_as_training_did(colour_run):
    folder, run, paths = colour_run
    config = json.loads((run / "config.json").read_text())
    trained_on = np.load(config["data"]["cache"], mmap_mode="r")  # the decoded training images
    files = sorted(folder.rglob("*.png"))
    encoder = Encoder(paths["encoder"])
    codes = encoder.encode_images(files[:3])
    np.testing.assert_array_equal(codes, encoder.encode(trained_on[:3].astype(np.float32) / 255))
    with Image.open(files[0]) as image:
        np.testing.assert_array_equal(encoder.encode_images([image]), codes[:1])


def test_encode_images_runs_without_torch_and_names_a_bad_file(colour_run, tmp_path):
    folder, _, paths = colour_run
    (tmp_path / "bad.png").write_text("not an image")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from zoo.export.runtime import Encoder\n"
        f"e = Encoder({str(paths['encoder'])!r})\n"
        f"print(e.encode_images([{str(sorted(folder.rglob('*.png'))[0])!r}]).shape)\n"
        f"e.encode_images([{str(tmp_path / 'bad.png')!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "(1, 8, 4, 6)", result.stderr
    assert "bad.png: not a usable image" in result.stderr
