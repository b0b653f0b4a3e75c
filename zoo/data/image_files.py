"""One image file, decoded with Pillow to the size and channels a model takes: what a folder's
decoding runs on every core, and what ``zoo.export.runtime`` runs for an app, so that training and
inference prepare an image the same way. numpy and Pillow only (no torch).

The preparation, in order (``zoo.preprocess`` in the exported files records its settings):

0. the EXIF orientation applied (a phone's photo is stored sideways with a tag saying so);
1. to 8 bits: 16-bit greyscale keeps its top byte (Pillow's own conversion would clip at 255),
   the other modes convert to L (greyscale) or RGB; an alpha channel is dropped;
2. to ``channels``: 1 is L (ITU-R 601-2 luma), 3 is RGB (grey repeated);
3. a centre crop: of ``crop`` (height, width) when given, else the largest box of the target's
   aspect, so that resizing never stretches;
4. a resize to ``size`` (height, width), bilinear with antialiasing (Pillow filters over the whole
   footprint when shrinking, like torchvision's ``Resize(antialias=True)``).
"""

import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


@dataclass(frozen=True)
class Preprocess:
    """What is done to every image: ``size`` (height, width) and ``channels`` (1 or 3); None leaves
    the images' own (then every image must share one size). ``crop`` (height, width): a fixed centre
    crop before resizing (CelebA's 148), instead of the target's aspect."""

    size: tuple | None = None
    channels: int | None = None
    crop: tuple | None = None

    @classmethod
    def from_record(cls, record: dict) -> "Preprocess":
        """The inverse of ``describe``: a recorded preprocessing (config.json, a cache manifest)."""

        def pair(value):
            return tuple(value) if value else None

        return cls(pair(record.get("size")), record.get("channels"), pair(record.get("crop")))

    def describe(self) -> dict:
        return {
            "size": list(self.size) if self.size else None,
            "channels": self.channels,
            "crop": list(self.crop) if self.crop else None,
        }


class BadImage(Exception):
    """A file Pillow cannot open or decode (unreadable, truncated, not an image, a decompression bomb)."""


def _opened(path):
    """``Image.open`` with a decompression bomb (over Pillow's MAX_IMAGE_PIXELS) an error, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
            raise BadImage(_reason(exc, path)) from None


def _reason(exc: BaseException, path) -> str:
    """The exception in one short line, without the file's path (the warning names the file)."""
    text = (str(exc).replace(repr(str(path)), "").replace(str(path), "").strip().splitlines() or [""])[0][:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def probe(path) -> tuple:
    """(height, width, mode) from the file's header, without decoding its pixels; BadImage if Pillow
    cannot open it."""
    with _opened(path) as image:
        turned = _orientation(image) in SIDEWAYS
        return (image.width, image.height, image.mode) if turned else (image.height, image.width, image.mode)


SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))  # the Orientation tag
    except Exception:  # a broken EXIF block: leave the image as stored
        return 1


def is_grey(mode: str) -> bool:
    return mode in GREY_MODES


def to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """Steps 1 and 2: an L (channels 1) or RGB (channels 3) image."""
    if image.mode in WIDE_GREY_MODES:  # 16-bit grey: keep the top byte
        wide = np.asarray(image).astype(np.int64)
        image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow's advice for palettes with transparency
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def crop_box(width: int, height: int, size, crop) -> tuple | None:
    """Step 3's box (left, top, right, bottom): ``crop`` centred, or the largest centred box of
    ``size``'s aspect; None when there is nothing to cut. Rounded as torchvision's CenterCrop."""
    if crop is not None:
        box_h, box_w = min(crop[0], height), min(crop[1], width)
    elif size is not None:
        target_h, target_w = size
        if width * target_h > height * target_w:  # wider than the target: cut the sides
            box_h, box_w = height, max(1, round(height * target_w / target_h))
        else:
            box_h, box_w = max(1, round(width * target_h / target_w)), width
    else:
        return None
    if (box_h, box_w) == (height, width):
        return None
    left, top = int(round((width - box_w) / 2.0)), int(round((height - box_h) / 2.0))
    return left, top, left + box_w, top + box_h


def prepare(image: Image.Image, size=None, channels: int = 3, crop=None) -> np.ndarray:
    """A PIL image -> uint8 [channels, H, W], by the steps above."""
    if _orientation(image) != 1:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(image)
    image = to_8bit(image, channels)
    box = crop_box(image.width, image.height, size, crop)
    if box is not None:
        image = image.crop(box)
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def decode_file(path, size=None, channels: int = 3, crop=None) -> np.ndarray:
    """An image file -> uint8 [channels, H, W]; BadImage if it cannot be decoded (truncated, ...)."""
    with _opened(path) as image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a palette's transparency note, EXIF oddities
                image.load()
                return prepare(image, size, channels, crop)
        except Exception as exc:
            raise BadImage(_reason(exc, path)) from None
