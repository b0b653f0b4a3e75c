"""Datasets: registered ones (IDX files, a plugin's own loader) and data given by path.

One module per job:

- ``idx``: where IDX datasets (MNIST's format) are looked for, and reading them;
- ``splits``: the ``Splits`` the loop takes index-slice batches from, in RAM or memory-mapped;
- ``image_files``: decoding one image file (Pillow) to the target size and channels;
- ``folder``: a folder of images: the files, their labels (subfolders) and splits (train/, test/);
- ``decoded_cache``: each image decoded once, on every core, into a uint8 ``.npy`` in the user cache;
- ``arrays``: ``.npy`` and ``.npz`` files;
- ``by_path``: ``--data PATH``: which source reads PATH, and what config.json records about it.

Importing this package stays light (no torch, no numpy): plugins that build ``Splits`` load with
`zoo list`.
"""

from zoo.data.idx import (  # noqa: F401 (the package's interface)
    IDX_FILES,
    cache_home,
    candidate_dirs,
    find_idx_files,
    load_idx_dataset,
    locate,
    read_idx,
    user_cache,
)
from zoo.data.splits import Splits, as_float  # noqa: F401


def load(spec, data_dir=None) -> Splits:
    """A dataset's splits: its plugin's own ``load``, or the IDX files the core finds for it."""
    return spec.load(data_dir) if spec.load else load_idx_dataset(spec, data_dir)


def where(spec, data_dir=None) -> str:
    """Where a dataset's files are, for `zoo datasets`; ZooError saying where it looked if missing."""
    if spec.load:
        return "generated in memory" if spec.generated else "loaded by its plugin"
    return str(locate(spec, data_dir, download=False)["train_images"].parent)
