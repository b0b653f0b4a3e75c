"""CelebA as a folder dataset, with the preparation VAE papers on it use: a centre crop of 148x148
from the aligned 178x218 faces, resized to 64x64. Decoded once into the zoo's cache like any folder
of images (``--data``); the test split is the seeded tenth a folder without train/ and test/ gets."""

from pathlib import Path

import zoo

CROP, SIZE = 148, 64
LAYOUTS = ("img_align_celeba", "")  # the folder the archive unpacks to, or the images directly
HINT = (
    "download img_align_celeba.zip (the aligned and cropped images) from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, unzip it and pass the folder with --data "
    "(or put it in $ZOO_DATA_DIR/celeba/)"
)


def find_folder(data_dir=None) -> Path:
    from zoo.data import candidate_dirs

    searched = [base / layout for base in candidate_dirs("celeba", data_dir) for layout in LAYOUTS]
    for folder in searched:
        if folder.is_dir() and any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in folder.iterdir()):
            return folder
    where = ", ".join(str(p) for p in dict.fromkeys(searched))
    raise zoo.ZooError(f"celeba's images not found (looked in {where}); {HINT}")


def load(data_dir=None):
    from zoo.data.by_path import DataRequest, open_path
    from zoo.data.image_files import Preprocess

    return open_path(DataRequest(str(find_folder(data_dir)), Preprocess((SIZE, SIZE), 3, (CROP, CROP))), progress=True)


@zoo.hookimpl
def register_datasets(register):
    register(
        zoo.DatasetSpec(
            name="celeba",
            data_shape=(3, SIZE, SIZE),
            summary=f"CelebA faces, centre crop {CROP}, resized to 3x{SIZE}x{SIZE} (a seeded tenth is the test split)",
            load=load,
            hint=HINT,
        )
    )
