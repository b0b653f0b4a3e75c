"""Folders of images as data (`--data PATH`): decoding with Pillow, labels and splits by the folder
conventions, bad files left out, the decoded cache, and what config.json records."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from image_folders import write_bad_files, write_images
from PIL import Image

from zoo.data.by_path import make_request, open_path
from zoo.data.decoded_cache import cache_folder, decoded
from zoo.data.folder import list_folder
from zoo.data.image_files import Preprocess, crop_box, decode_file
from zoo.train.loop import train


def folder_splits(path, **options):
    return open_path(make_request(path, **options))


def test_labels_are_the_subfolders_and_a_seeded_tenth_is_the_test_split(tmp_path):
    for label, seed in (("cat", 1), ("dog", 2)):
        write_images(tmp_path / "pets" / label, 15, seed=seed)
    splits = folder_splits(tmp_path / "pets")
    assert (len(splits.train), len(splits.test)) == (27, 3)
    assert splits.info["label_names"] == ["cat", "dog"] and splits.info["split"] == "seeded fraction"
    assert sorted(np.concatenate([splits.train_labels, splits.test_labels]).tolist()) == [0] * 15 + [1] * 15
    again = folder_splits(tmp_path / "pets")
    assert np.array_equal(again.test.rows, splits.test.rows)  # the same test images every time
    assert len(folder_splits(tmp_path / "pets", test_fraction=0.5).test) == 15


def test_nested_folders_take_their_top_folders_label_and_root_images_none(tmp_path):
    write_images(tmp_path / "d" / "a" / "deep" / "deeper", 2, seed=1)
    write_images(tmp_path / "d" / "b", 2, seed=2)
    write_images(tmp_path / "d", 1, seed=3)
    listing = list_folder(tmp_path / "d")
    assert listing.label_names == ["a", "b"]
    assert dict(zip(listing.files, listing.labels)) == {
        "a/deep/deeper/img0000.png": 0,
        "a/deep/deeper/img0001.png": 0,
        "b/img0000.png": 1,
        "b/img0001.png": 1,
        "img0000.png": -1,
    }


def test_train_and_test_folders_are_the_splits(tmp_path, capsys):
    write_images(tmp_path / "d" / "other", 2, seed=4)  # beside train/ and test/: named, not used
    write_images(tmp_path / "d" / "train" / "x", 6, seed=1)
    write_images(tmp_path / "d" / "train" / "y", 4, seed=2)
    test_images = write_images(tmp_path / "d" / "test" / "y", 3, seed=3)
    splits = folder_splits(tmp_path / "d")
    assert (len(splits.train), len(splits.test), splits.info["split"]) == (10, 3, "train/ and test/")
    assert splits.info["label_names"] == ["x", "y"] and splits.test_labels.tolist() == [1, 1, 1]
    assert np.array_equal(splits.test[:].numpy(), np.stack(test_images).transpose(0, 3, 1, 2))
    note = capsys.readouterr().err
    assert "2 file(s)" in note and "outside train/ and test/ and are not used: other/img0000.png" in note


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 3), ("P", 3), ("I;16", 1)])
def test_each_mode_decodes_to_its_pixels(tmp_path, mode, channels):
    [saved] = write_images(tmp_path, 1, size=(5, 7), mode=mode)
    with Image.open(tmp_path / "img0000.png") as image:
        expected = {
            "L": lambda: saved[None],
            "RGB": lambda: saved.transpose(2, 0, 1),
            "RGBA": lambda: saved[..., :3].transpose(2, 0, 1),  # the alpha channel is dropped
            "P": lambda: np.asarray(image.convert("RGB")).transpose(2, 0, 1),
            "I;16": lambda: (saved.astype(np.int64) >> 8)[None],
        }[mode]()  # the top byte, not clipped
    [pixels] = decoded(list_folder(tmp_path), Preprocess()).images  # channels from the mode: grey or colour
    assert pixels.shape == (channels, 5, 7) and np.array_equal(pixels, expected)


def test_grey_and_colour_together_decode_as_colour_unless_asked(tmp_path):
    write_images(tmp_path / "d", 3, mode="L", seed=1)
    write_images(tmp_path / "d", 3, mode="RGB", seed=2, start=3)
    assert folder_splits(tmp_path / "d").train.shape[1:] == (3, 32, 32)
    grey = folder_splits(tmp_path / "d", channels=1)
    assert grey.train.shape[1:] == (1, 32, 32) and grey.info["preprocess"]["channels"] == 1
    assert folder_splits(tmp_path / "d", channels=3).info["asked"]["channels"] == 3


def test_centre_crop_to_the_targets_aspect_then_an_antialiased_resize(tmp_path):
    assert crop_box(60, 40, (32, 32), None) == (10, 0, 50, 40)  # a 40x60 image loses 10 columns each side
    assert crop_box(64, 64, (48, 64), None) == (0, 8, 64, 56)
    assert crop_box(178, 218, (64, 64), (148, 148)) == (15, 35, 163, 183)  # CelebA's crop
    # A stripe pattern finer than the target's pixels averages out to grey when antialiased.
    stripes = np.zeros((40, 60), np.uint8)
    stripes[:, ::2] = 255
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    pixels = decode_file(tmp_path / "stripes.png", (8, 8), 1)
    assert pixels.shape == (1, 8, 8) and abs(int(pixels.mean()) - 127) < 10 and pixels.std() < 10
    assert decode_file(tmp_path / "stripes.png", (48, 64), 3).shape == (3, 48, 64)


def test_bad_files_are_left_out_with_one_warning_line_and_recorded(tmp_path, capsys):
    write_images(tmp_path / "d" / "good", 9)
    bad = write_bad_files(tmp_path / "d" / "bad")
    splits = folder_splits(tmp_path / "d")
    assert len(splits.train) + len(splits.test) == 9
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("warning: left out 4 of 13 files")
    assert "bad/bomb.png" in warning[0] and "1 more" in warning[0]
    assert splits.info["left_out"]["count"] == 4
    recorded = {name: why for name, why in splits.info["left_out"]["files"]}
    assert sorted(recorded) == [f"bad/{name}" for name in bad]
    assert "DecompressionBomb" in recorded["bad/bomb.png"] and "truncated" in recorded["bad/truncated.png"]


def test_symlink_loops_are_not_followed(tmp_path):
    write_images(tmp_path / "d" / "a", 2)
    os.symlink(tmp_path / "d", tmp_path / "d" / "a" / "loop")
    os.symlink(tmp_path / "d" / "a", tmp_path / "d" / "b")  # a second way into a: entered once
    write_images(tmp_path / "elsewhere", 1)
    os.symlink(tmp_path / "elsewhere", tmp_path / "d" / "c")  # a link out of the folder is followed
    assert list_folder(tmp_path / "d").files == ["a/img0000.png", "a/img0001.png", "c/img0000.png"]


def test_decoded_once_then_read_from_the_cache_a_changed_file_makes_a_new_entry(tmp_path, monkeypatch):
    write_images(tmp_path / "d", 6)
    first = decoded(list_folder(tmp_path / "d"), Preprocess())
    import zoo.data.decoded_cache as cache

    monkeypatch.setattr(cache, "_build_entry", lambda *a: pytest.fail("decoded again"))
    again = decoded(list_folder(tmp_path / "d"), Preprocess())
    assert again.path == first.path and np.array_equal(np.asarray(again.images), np.asarray(first.images))
    monkeypatch.undo()
    write_images(tmp_path / "d", 1, seed=5, start=2)  # img0002.png rewritten with other pixels
    changed = decoded(list_folder(tmp_path / "d"), Preprocess())
    assert changed.path != first.path and not np.array_equal(changed.images[2], first.images[2])
    assert np.array_equal(changed.images[3], first.images[3])
    write_images(tmp_path / "d", 1, seed=6, start=6)  # a file added
    assert decoded(list_folder(tmp_path / "d"), Preprocess()).path not in (first.path, changed.path)
    (tmp_path / "d" / "img0006.png").unlink()  # and removed again: the entry of the files as they were
    assert decoded(list_folder(tmp_path / "d"), Preprocess()).path == changed.path


def test_a_damaged_cache_entry_is_decoded_again(tmp_path, capsys):
    write_images(tmp_path / "d", 4)
    first = decoded(list_folder(tmp_path / "d"), Preprocess())
    expected = np.array(first.images)
    first.path.write_bytes(first.path.read_bytes()[:200])  # cut short
    rebuilt = decoded(list_folder(tmp_path / "d"), Preprocess())
    assert "damaged" in capsys.readouterr().err and np.array_equal(np.asarray(rebuilt.images), expected)
    rebuilt.path.with_suffix(".json").write_text("{not json")
    assert np.array_equal(np.asarray(decoded(list_folder(tmp_path / "d"), Preprocess()).images), expected)


def test_worker_processes_decode_what_one_process_does(tmp_path):
    write_images(tmp_path / "d", 70, size=(9, 11), seed=3)
    write_bad_files(tmp_path / "d")
    listing = list_folder(tmp_path / "d")
    one = decoded(listing, Preprocess((8, 8), 3), workers=1)
    shutil.rmtree(cache_folder())
    two = decoded(listing, Preprocess((8, 8), 3), workers=2)
    assert np.array_equal(np.asarray(one.images), np.asarray(two.images)) and one.left_out == two.left_out
    assert len(two.usable) == 70


def test_a_run_records_its_data_and_eval_uses_it(tmp_path):
    write_images(tmp_path / "d" / "a", 12, size=(12, 16), seed=1)
    write_images(tmp_path / "d" / "b", 12, size=(12, 16), seed=2)
    run = train(
        "deep-ae",
        tmp_path / "run",
        data=make_request(tmp_path / "d", image_size="8x12", channels=1),
        epochs=1,
        batch_size=8,
    )
    config = json.loads((run / "config.json").read_text())
    data = config["data"]
    assert config["data_shape"] == [1, 8, 12] and config["dataset"] == "d"
    assert data["path"] == str((tmp_path / "d").resolve()) and len(data["fingerprint"]) == 64
    assert data["preprocess"] == {"size": [8, 12], "channels": 1, "crop": None}
    assert data["split"] == "seeded fraction" and data["test_fraction"] == 0.1 and data["label_names"] == ["a", "b"]
    assert (data["train_samples"], data["test_samples"]) == (22, 2)
    from zoo.evaluate.metrics import evaluate

    assert evaluate(run)["test_samples"] == 2
    write_images(tmp_path / "other", 5, size=(30, 30), mode="RGB", seed=7)  # prepared as the run's data was
    assert evaluate(run, data=str(tmp_path / "other"))["test_samples"] == 1


def test_worker_processes_work_from_a_script_without_a_main_guard(tmp_path):
    """A user's script that decodes at top level (no ``if __name__ == "__main__"``) must not be run
    again by each worker process."""
    write_images(tmp_path / "d", 8)
    script = tmp_path / "script.py"
    script.write_text(
        "from zoo.data.decoded_cache import decoded\nfrom zoo.data.folder import list_folder\n"
        "from zoo.data.image_files import Preprocess\n"
        f"print('ran', len(decoded(list_folder({str(tmp_path / 'd')!r}), Preprocess(), workers=2).usable))\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert result.returncode == 0 and result.stdout.split() == ["ran", "8"], result.stderr[-2000:]


def test_eval_on_other_data_prepares_it_to_the_runs_shape(tmp_path):
    """A run trained on MNIST's IDX files, evaluated on a folder of larger colour images and on an
    array: the folder's images are cropped, resized and made grey to 1x28x28."""
    from zoo.evaluate.metrics import evaluate

    run = train("deep-ae", tmp_path / "run", epochs=1, subset=64, sets={"hidden": (8,)})
    write_images(tmp_path / "colour", 10, size=(40, 50), seed=4)
    assert evaluate(run, data=str(tmp_path / "colour"))["test_samples"] == 1
    np.save(tmp_path / "x.npy", np.zeros((20, 28, 28), np.uint8))
    assert evaluate(run, data=str(tmp_path / "x.npy"))["test_samples"] == 2
