"""points3d: the lecture's synthetic 3-D point cloud, a tilted, curved band near a plane."""

import zoo
from zoo.data import Splits


def make_points(m: int, w1: float, w2: float, noise: float, seed: int):
    """The lecture's ``Points(m, w1, w2, noise)``: a curve in the (x0, x1) plane, lifted to
    x2 = w1 x0 + w2 x1 plus noise, so most of the variance lies in a tilted plane."""
    import numpy as np  # here, not at the top: `zoo list` loads this plugin and needs no numpy

    rng = np.random.RandomState(seed)
    angles = rng.rand(m) * 3 * np.pi / 2 - 0.5
    data = np.empty((m, 3))
    data[:, 0] = np.cos(angles) + np.sin(angles) / 2 + noise * rng.randn(m) / 2
    data[:, 1] = np.sin(angles) * 0.7 + noise * rng.randn(m) / 2
    data[:, 2] = data[:, 0] * w1 + data[:, 1] * w2 + noise * rng.randn(m)
    return data.astype(np.float32)


def load(data_dir=None) -> Splits:
    import torch

    # As in the lecture: Points(100, 0.1, 0.3, 0.1) for training; the test points use another seed.
    train = make_points(100, 0.1, 0.3, 0.1, seed=4)
    test = make_points(100, 0.1, 0.3, 0.1, seed=5)
    return Splits(train=torch.from_numpy(train), test=torch.from_numpy(test), source="generated")


@zoo.hookimpl
def register_datasets(register):
    register(
        zoo.DatasetSpec(
            name="points3d",
            data_shape=(3,),
            summary="Synthetic 3-D points on a tilted, curved band (100 train / 100 test)",
            load=load,
            generated=True,
        )
    )
