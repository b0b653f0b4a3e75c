"""A folder of colour "photos" made offline from Fashion-MNIST, as a user's own data would come: two
kinds of clothing (T-shirts and sneakers, one subfolder each), each garment tinted with its own
colour on its own plain background colour, saved at mixed sizes (28 to 80 pixels a side, not all
square), every twentieth as RGBA and every fiftieth as a 16-bit RGB PNG.

    python -m benchmarks.data.tinted_fashion OUT [--count 600] [--offset 0]

``--offset`` takes later images of each class (a folder of new images to score, never trained on).
"""

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.machine import arguments
from zoo.core.registry import get_dataset
from zoo.data import load

CLASSES = ((0, "tshirt"), (7, "sneaker"))
SIDES = (28, 40, 56, 64, 80)


def tinted(grey: np.ndarray, rng) -> np.ndarray:
    """[28, 28] uint8 -> [28, 28, 3] floats in [0, 1]: the garment in one colour over another."""
    g = grey.astype(np.float32)[..., None] / 255
    foreground, background = rng.uniform(0.2, 1.0, 3), rng.uniform(0.0, 0.3, 3)
    return g * foreground + (1 - g) * background


def write_tinted_folder(out: Path, count: int = 600, offset: int = 0, seed: int = 0) -> Path:
    """``count`` images, half of each class, under out/<class name>/; returns ``out``."""
    splits = load(get_dataset("fashion-mnist"))
    images, labels = np.asarray(splits.train).reshape(-1, 28, 28), np.asarray(splits.train_labels)
    rng = np.random.default_rng(seed + offset)
    for label, name in CLASSES:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(np.flatnonzero(labels == label)[offset : offset + count // len(CLASSES)]):
            rgb = tinted(images[row], rng)
            side = int(rng.choice(SIDES))
            size = (side, side + int(rng.integers(0, 9)))  # width, height
            picture = Image.fromarray((rgb * 255).round().astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
            if i % 50 == 25:  # 16 bits a channel
                save_16_bit(np.asarray(picture).astype(np.uint16) * 257, folder / f"{i:04d}.png")
                continue
            if i % 20 == 0:
                picture = picture.convert("RGBA")
            picture.save(folder / f"{i:04d}.png")
    return out


def save_16_bit(rgb: np.ndarray, path: Path) -> None:
    """A 16-bit RGB PNG, written by hand (Pillow writes 16 bits for greyscale only): the signature,
    IHDR (bit depth 16, colour type 2), one zlib-compressed IDAT of unfiltered rows."""
    import struct
    import zlib

    height, width, _ = rgb.shape
    rows = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def main():
    parser = arguments(__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    write_tinted_folder(args.folder, args.count, args.offset)


if __name__ == "__main__":
    main()
