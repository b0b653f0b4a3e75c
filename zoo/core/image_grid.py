"""Image grids as PNG with numpy and Pillow only, so the torch-free runtime can draw them too."""

import math
from pathlib import Path

import numpy as np


def grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """[N, C, H, W] or [N, H, W] floats in [0, 1] -> one uint8 image [H', W'] or [H', W', 3]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {images.shape}")
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.ones((c, rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, y : y + h, x : x + w] = image
    canvas = (np.clip(canvas, 0.0, 1.0) * 255).round().astype(np.uint8)
    return canvas[0] if c == 1 else canvas.transpose(1, 2, 0)


def save_grid(path, images: np.ndarray, columns: int | None = None, scale: int = 2) -> Path:
    """Write a grid of images as a PNG (written to a temporary name, then renamed)."""
    from PIL import Image

    from zoo.core.atomic import atomic_write

    picture = Image.fromarray(grid(images, columns))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
