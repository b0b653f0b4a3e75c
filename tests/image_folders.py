"""Folders of real image files written by the tests: PNGs and JPEGs in every mode Pillow saves,
broken files of each kind the zoo must leave out, and MNIST-shaped IDX images written out as PNGs."""

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_images(
    folder, count: int, size=(32, 32), mode: str = "RGB", seed: int = 0, suffix: str = ".png", start: int = 0
) -> list:
    """``count`` images of ``size`` (height, width) in ``mode`` under ``folder``; returns the arrays
    saved (as Pillow reads them back)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    saved = []
    for i in range(start, start + count):
        path = folder / f"img{i:04d}{suffix}"
        image_of(mode, size, rng).save(path)
        with Image.open(path) as reread:
            saved.append(np.asarray(reread))
    return saved


def image_of(mode: str, size, rng) -> Image.Image:
    h, w = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "P":
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).quantize(16)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path, side: int = 10_000) -> None:
    """A tiny PNG whose header claims side x side pixels: over Pillow's decompression-bomb
    warning limit (MAX_IMAGE_PIXELS), under its error limit."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def write_bad_files(folder) -> list:
    """One of each kind of file the zoo leaves out; returns their names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_images(folder, 1, seed=99, start=900)
    whole = (folder / "img0900.png").read_bytes()
    (folder / "img0900.png").unlink()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    write_bomb_png(folder / "bomb.png")
    return ["bomb.png", "empty.jpg", "notes.txt", "truncated.png"]


def write_png_digits(folder, images: np.ndarray, labels: np.ndarray) -> None:
    """uint8 [N, H, W] images as greyscale PNGs in <label>/<index>.png, as torchvision's ImageFolder
    expects them."""
    for index, (image, label) in enumerate(zip(images, labels)):
        path = Path(folder) / str(int(label)) / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(path)


def write_colour_shapes(folder, count: int, side: int = 16, seed: int = 0) -> None:
    """``count`` colour PNGs a small VAE learns in seconds: a disc on a background, both colours drawn
    per image, and a little noise (8-bit photographs in miniature)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    for i in range(count):
        cy, cx, radius = side / 2, side / 2, side / 3
        inside = (np.hypot(y - cy, x - cx) < radius)[..., None]
        pixels = np.where(inside, rng.uniform(0.3, 1.0, 3), rng.uniform(0.0, 0.4, 3)) * 255
        pixels = np.clip(pixels + rng.normal(0, 2, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"shape{i:04d}.png")
