"""A folder of images: which files it holds, their labels and their splits, by the conventions users
know. Subfolder names are labels, as in torchvision's ImageFolder: an image's label is the first
folder under the root (or under train/ or test/) it lies in, however deep; an image directly in that
folder has none (-1). ``train/`` and ``test/`` side by side are the splits, as in Hugging Face's
imagefolder. Files and folders whose names start with a dot are skipped; symbolic links are
followed, except into a folder already visited (a link loop).

Nothing is opened here: the listing and its fingerprint (every file's path, size and modification
time) come from the file system alone, so a cached decode is found without reading an image.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

SPLIT_FOLDERS = ("train", "test")


@dataclass
class FolderListing:
    root: Path
    files: list  # paths relative to root, "/"-separated, in a stable (sorted) order
    labels: list  # one per file: an index into label_names, or -1
    label_names: list  # sorted, as ImageFolder's classes
    splits: list | None  # one per file, "train" or "test", when the folder has train/ and test/
    fingerprint: str  # changes when a file is added, removed, renamed, resized or touched
    outside_splits: list  # with train/ and test/: the files beside them, which neither split uses
    # Which files these are on disk: the resolved folder and each file's device, inode and ctime. Two
    # folders whose files agree in name, size and mtime (a copy by `rsync -a`, a re-export) still
    # differ here, so the decoded cache never hands one folder's pixels to the other.
    identity: str = ""


def walk_files(root: Path) -> list:
    """Every non-hidden file under ``root``, relative and sorted; each folder entered once."""
    seen, found = set(), []
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:  # reached again through a link: a loop
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        relative = Path(folder).relative_to(root)
        found += [(relative / name).as_posix() for name in filenames if not name.startswith(".")]
    return sorted(found)


def fingerprint(root: Path, files: list) -> str:
    digest = hashlib.sha256()
    for name in files:
        try:
            stat = os.stat(root / name)
            digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:  # a dangling link: listed, and left out as unreadable when decoded
            digest.update(f"{name}\t-\n".encode())
    return digest.hexdigest()


def identity(root: Path, files: list) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode())
    for name in files:
        try:
            stat = os.stat(root / name)
            digest.update(f"{name}\t{stat.st_dev}\t{stat.st_ino}\t{stat.st_ctime_ns}\n".encode())
        except OSError:
            digest.update(f"{name}\t-\n".encode())
    return digest.hexdigest()


def list_folder(root) -> FolderListing:
    root = Path(root)
    files = walk_files(root)
    top = {name.split("/", 1)[0] for name in files if "/" in name}
    splits, outside = None, []
    if set(SPLIT_FOLDERS) <= top:
        outside = [name for name in files if name.split("/", 1)[0] not in SPLIT_FOLDERS or "/" not in name]
        unused = set(outside)
        files = [name for name in files if name not in unused]
        splits = [name.split("/", 1)[0] for name in files]
        inner = [name.split("/", 1)[1] for name in files]
    else:
        inner = files
    names = [path.split("/", 1)[0] if "/" in path else None for path in inner]
    label_names = sorted({name for name in names if name is not None})
    index = {name: i for i, name in enumerate(label_names)}
    labels = [index[name] if name is not None else -1 for name in names]
    return FolderListing(
        root, files, labels, label_names, splits, fingerprint(root, files), outside, identity(root, files)
    )
