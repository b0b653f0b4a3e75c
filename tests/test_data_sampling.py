"""Splits index like tensors, and the prior of a deterministic model (and every picture) is fitted
on a seeded sample of the whole split, not on its first rows (a folder sorted by class)."""

import numpy as np
import torch
from torch import nn

from zoo.data.splits import MappedSplit, spread_rows
from zoo.models.base import GaussianPrior
from zoo.train.loop import PRIOR_FIT_SAMPLES, fit_prior


def test_a_mapped_split_takes_an_integer_a_slice_and_an_index_array(tmp_path):
    array = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(6, 2, 3))
    array[:] = np.arange(36, dtype=np.uint8).reshape(6, 2, 3)
    split = MappedSplit(np.load(tmp_path / "x.npy", mmap_mode="r"), rows=[1, 3, 4])
    torch.testing.assert_close(split[0], torch.from_numpy(np.array(array[1])))
    torch.testing.assert_close(split[np.int64(2)], torch.from_numpy(np.array(array[4])))
    torch.testing.assert_close(split[torch.tensor(1)], torch.from_numpy(np.array(array[3])))
    torch.testing.assert_close(split[1:], torch.from_numpy(np.array(array[[3, 4]])))
    torch.testing.assert_close(split[torch.tensor([2, 0])], torch.from_numpy(np.array(array[[4, 1]])))


class Identity(nn.Module):
    def encode(self, x):
        return x


def test_the_prior_is_fitted_on_the_whole_split_when_it_is_sorted_by_class():
    half = PRIOR_FIT_SAMPLES
    train = torch.cat([torch.zeros(half, 1), torch.ones(half, 1)])  # class 0's rows, then class 1's
    prior = GaussianPrior(1)
    fit_prior(Identity(), prior, train)
    assert 0.4 < float(prior.mean) < 0.6  # the first rows alone would give 0
    assert list(spread_rows(5, 10)) == [0, 1, 2, 3, 4] and len(set(spread_rows(100, 10))) == 10


def test_a_photo_stored_sideways_with_an_exif_orientation_comes_out_upright(tmp_path):
    from PIL import Image

    from zoo.data.image_files import decode_file, probe

    upright = np.zeros((6, 4), np.uint8)  # 6 high, 4 wide, a bright top row
    upright[0] = 255
    stored = np.ascontiguousarray(np.rot90(upright, -1))  # turned 90 degrees clockwise: 4 high, 6 wide
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees clockwise to view" -- undoes the turn above
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif.tobytes())
    assert probe(tmp_path / "phone.png")[:2] == (6, 4)
    pixels = decode_file(tmp_path / "phone.png", channels=1)[0]
    assert pixels.shape == (6, 4) and (pixels[0] == 255).all() and (pixels[1:] == 0).all()
