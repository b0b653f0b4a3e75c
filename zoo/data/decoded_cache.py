"""The decoded cache: each image of a folder decoded once, on every core, into one uint8 ``.npy``
[files, C, H, W] in the user cache, so that a run never decodes an image again.

A cache entry is ``<key>.npy`` beside ``<key>.json`` (which files could not be used, and why),
under ``cache_home()/decoded``. The key is a hash of the folder's fingerprint (every file's path,
size and modification time), its identity (the resolved folder, each file's inode and ctime) and the
preprocessing, so adding, removing or changing a file, another folder with the same names, or
asking for another size, makes a new entry. One process builds an entry: the others that ask for
it at the same time (a seed sweep, torchrun's ranks) wait on a file lock and open what it wrote. A
file left out for a read error (``OSError``: a network share's hiccup, a permission fixed later)
is not cached: the entry is used by this run and built again by the next. Both files are written
under temporary names and renamed into place, the manifest last: an entry whose files are
missing, cut short or do not match is decoded again, never an error.
"""

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.core.atomic import atomic_write, write_json
from zoo.core.errors import ZooError, ZooUsageError
from zoo.data.folder import FolderListing
from zoo.data.idx import cache_home
from zoo.data.image_files import BadImage, Preprocess, decode_file, is_grey, probe

FORMAT = 3  # bump when the entry's layout or the decoding changes: old entries are then not found
CHUNK = 64  # files per task handed to a worker process
READ_ERROR = "\0read error\0"  # marks a reason that may not last (OSError): such an entry is not cached
PARALLEL_FROM = 512  # fewer files than this decode in the calling process: a pool's start costs more


@dataclass
class Decoded:
    images: np.ndarray  # read-only memmap, uint8 [files, C, H, W]; a left-out file's row stays zero
    usable: np.ndarray  # int64, sorted: the rows of the files that decoded
    left_out: list  # [file, reason] for each file that did not
    preprocess: Preprocess  # with the size and channels found when they were not asked for
    path: Path  # the .npy


def entry_key(listing: FolderListing, preprocess: Preprocess) -> str:
    settings = json.dumps(
        {"format": FORMAT, "fingerprint": listing.fingerprint, "identity": listing.identity, **preprocess.describe()}
    )
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


def cache_folder() -> Path:
    return cache_home() / "decoded"


def decoded(listing: FolderListing, preprocess: Preprocess, progress=False, workers=None) -> Decoded:
    """The folder's images, decoded: from the cache when an intact entry is there, else decoded now."""
    key = entry_key(listing, preprocess)
    npy, manifest = cache_folder() / f"{key}.npy", cache_folder() / f"{key}.json"
    found = _intact(npy, manifest, key, len(listing.files), quiet=True)
    if found is not None:
        return found
    cache_folder().mkdir(parents=True, exist_ok=True)
    with _locked(cache_folder() / f"{key}.lock"):  # one builder; the others wait, then open its entry
        found = _intact(npy, manifest, key, len(listing.files))
        return found if found is not None else _build_entry(listing, preprocess, npy, manifest, key, progress, workers)


def _intact(npy: Path, manifest: Path, key: str, files: int, quiet=False) -> Decoded | None:
    if not manifest.exists():
        return None
    try:
        return _open_entry(npy, manifest, key, files)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not quiet:
            print(f"note: the decoded cache {npy} is damaged ({type(exc).__name__}); decoding again", file=sys.stderr)
        return None


class _locked:
    """An exclusive lock on ``path`` for the ``with`` block (flock: released if the process dies);
    no lock where the platform has no fcntl."""

    def __init__(self, path: Path):
        self.path, self.file = path, None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        self.file = open(self.path, "a")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()  # closing releases the lock


def _open_entry(npy: Path, manifest: Path, key: str, files: int) -> Decoded:
    info = json.loads(manifest.read_text())
    images = np.load(npy, mmap_mode="r", allow_pickle=False)
    if info["key"] != key or images.dtype != np.uint8 or list(images.shape) != info["shape"] or len(images) != files:
        raise ValueError("the entry does not match its manifest")
    bad = {row for row, _, _ in info["left_out"]}
    usable = np.array([row for row in range(files) if row not in bad], dtype=np.int64)
    return Decoded(
        images,
        usable,
        [[name, why] for _, name, why in info["left_out"]],
        Preprocess.from_record(info),
        npy,
    )


def _build_entry(listing, preprocess, npy, manifest, key, progress, workers) -> Decoded:
    files = listing.files
    workers = workers or (len(os.sched_getaffinity(0)) if len(files) >= PARALLEL_FROM else 1)
    with _Pool(workers) as pool:
        if preprocess.size and preprocess.channels:  # the target is known: no pass over the headers
            bad, target = {}, preprocess
        else:
            probed = pool.map(_probe_chunk, listing.root, files, progress and "reading image headers")
            bad = {row: why for row, why in enumerate(probed) if isinstance(why, str)}
            target = _settle(listing, preprocess, probed, bad)
        shape = (len(files), target.channels, *target.size)

        def write(tmp):
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
            rows = [row for row in range(len(files)) if row not in bad]
            failures = pool.map(
                _decode_chunk,
                listing.root,
                [(row, files[row]) for row in rows],
                progress and "decoding once into the cache",
                extra=(str(tmp), target),
            )
            bad.update({row: why for row, why in zip(rows, failures) if why})

        atomic_write(npy, write)
    if len(bad) == len(files):
        raise _nothing_usable(listing, bad)
    left_out = [[row, files[row], bad[row].removeprefix(READ_ERROR)] for row in sorted(bad)]
    record = {"key": key, "shape": list(shape), **target.describe(), "left_out": left_out}
    if any(why.startswith(READ_ERROR) for why in bad.values()):
        # Not cached: the next run reads those files again. This run uses what was decoded.
        record_path = npy.with_suffix(".partial.json")
        write_json(record_path, record)
        try:
            return _open_entry(npy, record_path, key, len(files))
        finally:
            record_path.unlink(missing_ok=True)
    write_json(manifest, record)
    return _open_entry(npy, manifest, key, len(files))


def _settle(listing, preprocess: Preprocess, probed: list, bad: dict) -> Preprocess:
    """The size and channels to decode to: those asked for, else the images' own (one size for all,
    greyscale when every image is)."""
    good = [p for p in probed if not isinstance(p, str)]
    if not good:
        raise _nothing_usable(listing, bad)
    size, channels = preprocess.size, preprocess.channels
    if size is None:
        sizes = Counter((h, w) for h, w, _ in good)
        if len(sizes) > 1:
            found = ", ".join(f"{h}x{w} ({n:,})" for (h, w), n in sizes.most_common(5))
            more = f" and {len(sizes) - 5} more" if len(sizes) > 5 else ""
            raise ZooUsageError(
                f"{listing.root}: the images differ in size (height x width: {found}{more}); "
                "pass --image-size S or HxW to crop and resize them all to one size"
            )
        size = next(iter(sizes))
    if channels is None:
        channels = 1 if all(is_grey(mode) for _, _, mode in good) else 3
    return Preprocess(tuple(size), channels, preprocess.crop)


def _nothing_usable(listing, bad: dict) -> ZooError:
    if not listing.files:
        return ZooUsageError(f"{listing.root} holds no files; give a folder of images")
    first = ", ".join(f"{listing.files[row]} ({why.removeprefix(READ_ERROR)})" for row, why in list(bad.items())[:3])
    return ZooUsageError(f"{listing.root}: none of its {len(listing.files):,} file(s) is a usable image ({first})")


def _probe_chunk(root, names) -> list:
    out = []
    for name in names:
        try:
            out.append(probe(Path(root) / name))
        except BadImage as exc:
            out.append(str(exc))
        except OSError as exc:  # unreadable: permissions, a dangling link
            out.append(f"{READ_ERROR}{type(exc).__name__}: {exc.strerror or exc}")
    return out


def _decode_chunk(root, items, out_path, target: Preprocess) -> list:
    """Decode ``items`` [(row, name)] into their rows of the .npy being built; '' or the reason per item."""
    images = np.load(out_path, mmap_mode="r+", allow_pickle=False)
    reasons = []
    for row, name in items:
        try:
            pixels = decode_file(Path(root) / name, target.size, target.channels, target.crop)
            if pixels.shape != images.shape[1:]:
                raise BadImage(f"decoded to {pixels.shape}, not {images.shape[1:]}")
            images[row] = pixels
            reasons.append("")
        except BadImage as exc:
            reasons.append(str(exc))
        except OSError as exc:
            reasons.append(f"{READ_ERROR}{type(exc).__name__}: {exc.strerror or exc}")
    images.flush()
    return reasons


class _Pool:
    """Chunks of work on ``workers`` processes, or in this process for one worker; a progress bar
    counts the items. The workers are forked where the platform can (as torch's DataLoader's are):
    a spawned worker would import the caller's main module again, and a user's script that trains
    without an ``if __name__ == "__main__"`` guard would run once per worker. They use numpy and
    Pillow only, never torch."""

    def __init__(self, workers: int):
        self.workers, self.executor = workers, None

    def __enter__(self):
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
        return self

    def __exit__(self, *exc):
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def map(self, function, root, items: list, description, extra=()) -> list:
        from tqdm import tqdm

        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        bar = tqdm(
            total=len(items),
            desc=description or "",
            unit="file",
            disable=None if description else True,
            leave=False,
            dynamic_ncols=True,
        )
        if self.executor is None:
            results = (function(str(root), chunk, *extra) for chunk in chunks)
        else:
            results = (f.result() for f in [self.executor.submit(function, str(root), c, *extra) for c in chunks])
        out = []
        for result in results:
            out += result
            bar.update(len(result))
        bar.close()
        return out
