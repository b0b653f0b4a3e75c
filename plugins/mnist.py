"""MNIST digits and Fashion-MNIST clothes: 28x28 greyscale, 60k train / 10k test, IDX files."""

import zoo
from zoo.data import idx_dataset


@zoo.hookimpl
def register_datasets(register):
    register(idx_dataset("mnist", "MNIST handwritten digits, 1x28x28, 60k train / 10k test"))
    register(idx_dataset("fashion-mnist", "Fashion-MNIST clothing images, 1x28x28, 60k train / 10k test"))
