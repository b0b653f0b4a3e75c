"""Decoding a folder of images once into the zoo's cache, in images per second, on one core and on
two: 20,000 32x32 PNGs kept at their size, and 2,000 larger JPEGs (500x375) cropped and resized to
64x64; then how long a later run takes to open the cached array.

Run:
    python -m benchmarks.data.decode_images [--quick] [--out DIR]
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data.image_folders import write_folder
from benchmarks.machine import arguments, describe, publish

FOLDERS = {  # name: (count, height, width, suffix, the size decoded to)
    "png32": (20_000, 32, 32, ".png", None),
    "jpeg500x375-to-64": (2_000, 375, 500, ".jpg", (64, 64)),
}


def decode_once(folder: Path, size, workers: int) -> dict:
    """Decode ``folder`` into an empty cache with ``workers`` processes; then open it again."""
    from zoo.data.decoded_cache import cache_folder, decoded
    from zoo.data.folder import list_folder
    from zoo.data.image_files import Preprocess

    shutil.rmtree(cache_folder(), ignore_errors=True)
    t0 = time.perf_counter()
    listing = list_folder(folder)
    result = decoded(listing, Preprocess(size), workers=workers)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded(list_folder(folder), Preprocess(size))  # a later run: list, fingerprint, open the .npy
    reopen = time.perf_counter() - t0
    return {
        "images": len(result.usable),
        "seconds": seconds,
        "images_per_second": len(result.usable) / seconds,
        "reopen_seconds": reopen,
        "array_bytes": int(result.images.nbytes),
    }


def main():
    parser = arguments(__doc__, quick="a tenth of the images")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        rows = {}
        for name, (count, height, width, suffix, size) in FOLDERS.items():
            folder = write_folder(Path(tmp) / name, count // scale, height, width, suffix)
            for workers in (1, 2):
                print(f"{name}: {workers} process(es)", file=sys.stderr)
                rows[f"{name}/{workers}"] = {
                    "folder": name,
                    "workers": workers,
                    "size": size,
                    **decode_once(folder, size, workers),
                }
    result = {
        "benchmark": "decode_images",
        "machine": describe(1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "quick": args.quick,
        "rows": rows,
    }
    m = result["machine"]
    markdown = "\n".join(
        [
            "# Decoding a folder of images once into the cache",
            "",
            f"{m['cpu']}, {m['cores']} cores, Pillow {pillow_version()}, {m['date']}. Load average "
            f"{result['load_average_before'][0]:.2f} before, {result['load_average_after'][0]:.2f} after (above 0: "
            "other work shared the cores). Each decode starts from an empty cache and includes listing the folder, "
            "reading the headers and starting the worker processes; 'reopen' is a later run's listing, "
            "fingerprint and opening of the cached array.",
            "",
            "| folder | images | processes | seconds | images / s | reopen (s) | array MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {r['folder']} | {r['images']:,} | {r['workers']} | {r['seconds']:.2f} | "
                f"{r['images_per_second']:,.0f} | {r['reopen_seconds']:.3f} | {r['array_bytes'] / 1e6:.1f} |"
                for r in rows.values()
            ],
            "",
        ]
    )
    publish("decode_images", result, markdown, args.out)


def pillow_version() -> str:
    import PIL

    return PIL.__version__


if __name__ == "__main__":
    main()
