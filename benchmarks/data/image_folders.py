"""Folders of generated images for the data benchmarks: smooth colour pictures (upsampled noise,
so that PNG and JPEG compress them as they do photographs rather than as static), one subfolder per
label as torchvision's ImageFolder expects."""

from pathlib import Path

import numpy as np
from PIL import Image


def picture(rng, height: int, width: int) -> Image.Image:
    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    grain = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def write_folder(
    folder: Path, count: int, height: int, width: int, suffix: str = ".png", labels: int = 10, seed: int = 0
) -> Path:
    """``count`` images in ``folder``/<label>/<index><suffix>; written once (kept if already there)."""
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(seed)
    for label in range(labels):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        picture(rng, height, width).save(folder / str(i % labels) / f"{i:06d}{suffix}", quality=90)
    done.write_text("")
    return folder
