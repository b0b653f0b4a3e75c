"""MNIST digits and Fashion-MNIST clothes: 28x28 greyscale, 60k train / 10k test, as IDX files.

The core finds and reads the IDX files; what is particular to these two datasets lives here: the
folder torchvision downloads them into, torchvision's downloader, and Debian's package. Also
``mnist-binary``: MNIST's own files, dynamically binarized (the same as ``--set binarize=dynamic``).
"""

import zoo


def torchvision_download(class_name: str):
    """download(folder): both splits through torchvision, in its <Name>/raw/ layout."""

    def download(folder) -> None:
        import torchvision

        dataset_class = getattr(torchvision.datasets, class_name)
        for train in (True, False):
            dataset_class(root=str(folder), train=train, download=True)

    return download


@zoo.hookimpl
def register_datasets(register):
    register(
        zoo.DatasetSpec(
            name="mnist",
            data_shape=(1, 28, 28),
            summary="MNIST handwritten digits, 1x28x28, 60k train / 10k test",
            layouts=("MNIST/raw",),
            download=torchvision_download("MNIST"),
        )
    )
    register(
        zoo.DatasetSpec(
            name="fashion-mnist",
            data_shape=(1, 28, 28),
            summary="Fashion-MNIST clothing images, 1x28x28, 60k train / 10k test",
            layouts=("FashionMNIST/raw",),
            download=torchvision_download("FashionMNIST"),
            hint="Debian: apt-get install dataset-fashion-mnist",
        )
    )
    # Binarized MNIST as the likelihood literature uses it (Burda et al., 2015): the mnist files,
    # each training batch redrawn as Bernoulli(intensity), the test split drawn once with a fixed seed.
    register(
        zoo.DatasetSpec(
            name="mnist-binary",
            data_shape=(1, 28, 28),
            summary="MNIST, dynamically binarized (same files as mnist; binarize=dynamic)",
            load=load_mnist_files,
            train={"binarize": "dynamic"},
        )
    )


def load_mnist_files(data_dir):
    from zoo.data import load_idx_dataset

    return load_idx_dataset("mnist", data_dir)
