"""Image decoding for the detector: file path, bytes or array in, upright RGB pixels out.

JPEGs bigger than the model input are decoded at reduced size by libjpeg's DCT scaling (``Image.draft``):
the model sees at most ``imgsz`` pixels, so decoding a 12 MP photo in full only to shrink it wastes most of the
work. Boxes found on the reduced image are mapped back to full-resolution coordinates with ``scale``. The
reduced image keeps FAST_MARGIN times the model's size (see there), so a 12 MP photo is decoded at 1/2 scale.

HEIC/HEIF (iPhones) is read through pillow-heif (``vision.heif``, registered on import); libheif applies the
file's own rotation, so those pixels arrive upright and their EXIF orientation reads 1.
"""

from __future__ import annotations

import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from vision.heif import heif_brand, heif_register

heif_register()


EXIF_ORIENTATION = 0x0112
# EXIF orientation -> PIL transpose that makes the pixels upright (same table as PIL.ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _pil_open_original():
    # ultralytics monkey-patches PIL.Image.open (to pip-install a HEIF plugin on unknown files); in a process that
    # imported it, use the original so an unknown file is a clean decode error, not an install attempt.
    fn = Image.open
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    if module is not None and module.__name__.startswith("ultralytics"):
        fn = getattr(module, "_image_open", fn)
    return fn


_PIL_OPEN = _pil_open_original()


class ImageDecodeError(Exception):
    """The input is not a readable image (unknown format, truncated, too many pixels...)."""


@dataclass
class DecodedImage:
    """Upright RGB pixels plus the factors that map them back to the full-resolution upright image."""

    pixels: np.ndarray  # (h, w, 3) uint8 RGB, C-contiguous
    width: int  # full-resolution upright width
    height: int  # full-resolution upright height
    scale_x: float  # full-resolution pixels per decoded pixel (1.0 unless decoded reduced)
    scale_y: float
    orientation: int = 1
    reduced: bool = False


# A DecodedImage is taken as it is: a caller that already decoded the file (the road agent's worker, which needs
# the pixels for the kept copy too) passes pixels and full size, and boxes still come back in full-size pixels.
ImageSource = str | Path | bytes | bytearray | memoryview | np.ndarray | DecodedImage


def source_label(source: ImageSource) -> str:
    """A short human-readable name for an input (its path, or its kind and size)."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(str(d) for d in source.shape)}>"
    if isinstance(source, DecodedImage):
        return f"<decoded {source.width}x{source.height}>"
    return f"<{len(source)} bytes>"


# The full path shrinks with bilinear interpolation (ultralytics' LetterBox, for parity), which at a 10x
# reduction samples the photo sparsely; DCT scaling averages whole blocks instead. Left to DCT scaling alone
# (1/8 for 4000 x 3000 -> 416), the two pictures differ enough to move the shipped model's boxes: on the 22
# validation photos with a pothole, upscaled to 12 MP, 4 had a box at the recommended threshold whose fast twin
# overlapped it by IoU 0.71-0.89. Leaving at least a 4x bilinear reduction after DCT scaling (1/2 for 12 MP) put
# every one at IoU >= 0.96 for 43 instead of 36 ms per photo end to end (the full decode: 85 ms).
FAST_MARGIN = 4


def image_decode(
    *,
    source: ImageSource,
    target_hw: tuple[int, int] | None = None,
    fast: bool = True,
    max_pixels: int | None = None,
) -> DecodedImage:
    """Decode ``source`` into upright RGB pixels.

    ``target_hw`` is the model input (height, width): with ``fast`` a JPEG is decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) that still keeps FAST_MARGIN times the letterboxed size. Arrays are taken as RGB (h, w, 3) uint8 and used
    as they are (already upright); a DecodedImage is returned as it is (its pixels checked). Raises
    ImageDecodeError for anything unreadable.
    """
    if isinstance(source, np.ndarray):
        return _array_wrap(source)
    if isinstance(source, DecodedImage):
        return _decoded_check(source)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    with _source_open(source) as fh:
        try:
            img = _PIL_OPEN(fh)
        except Image.DecompressionBombError as exc:
            raise ImageDecodeError(f"too many pixels (decompression bomb guard): {exc}") from exc
        except UnidentifiedImageError as exc:
            if _head_is_heif(fh):
                # libheif refuses a HEIC it cannot parse (cut short, damaged) at open: say so, not "unknown".
                raise ImageDecodeError("corrupt or truncated HEIF/HEIC image") from exc
            raise ImageDecodeError("not a recognised image format") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageDecodeError(f"unreadable image header: {exc}") from exc
        try:
            return _pil_decode(img=img, target_hw=target_hw, fast=fast, limit=limit)
        except ImageDecodeError:
            raise
        except (OSError, ValueError, SyntaxError, MemoryError, EOFError, RuntimeError) as exc:
            # PIL reports truncated/corrupt data as OSError ("image file is truncated") or SyntaxError;
            # pillow-heif reports a libheif decoding error as RuntimeError.
            raise ImageDecodeError(f"corrupt or truncated image data: {exc}") from exc


def _head_is_heif(fh: BinaryIO) -> bool:
    try:
        fh.seek(0)
        return heif_brand(fh.read(64)) is not None
    except (OSError, ValueError):
        return False


def _source_open(source: str | Path | bytes | bytearray | memoryview) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    try:
        return open(source, "rb")
    except OSError as exc:
        raise ImageDecodeError(f"cannot open {source_label(source)}: {exc.strerror or exc}") from exc


def _pil_decode(
    *, img: Image.Image, target_hw: tuple[int, int] | None, fast: bool, limit: int | None
) -> DecodedImage:
    stored_w, stored_h = img.size
    if stored_w < 1 or stored_h < 1:
        raise ImageDecodeError("image has no pixels")
    if limit and stored_w * stored_h > limit:
        raise ImageDecodeError(
            f"too many pixels: {stored_w}x{stored_h} exceeds the limit of {limit} (decompression bomb guard)"
        )
    try:
        orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture itself
        orientation = 1
    if orientation not in _TRANSPOSE:
        orientation = 1
    swap = orientation >= 5  # orientations 5-8 exchange width and height
    full_w, full_h = (stored_h, stored_w) if swap else (stored_w, stored_h)

    reduced = False
    if fast and target_hw and img.format == "JPEG":
        # Letterbox ratio of the upright image, times the margin the final resize must still do.
        r = min(target_hw[0] / full_h, target_hw[1] / full_w) * FAST_MARGIN
        if r < 0.5:
            need_w, need_h = math.ceil(full_w * r), math.ceil(full_h * r)
            if swap:
                need_w, need_h = need_h, need_w
            img.draft("RGB", (need_w, need_h))
            reduced = img.size != (stored_w, stored_h)
    img.load()
    if img.mode != "RGB":
        img = _rgb_convert(img)
    if orientation != 1:
        img = img.transpose(_TRANSPOSE[orientation])
    pixels = np.asarray(img)
    if not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return DecodedImage(
        pixels=pixels,
        width=full_w,
        height=full_h,
        scale_x=full_w / w,
        scale_y=full_h / h,
        orientation=orientation,
        reduced=reduced,
    )


def _rgb_convert(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency on the letterbox grey rather than black, as the model was trained on.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (114, 114, 114, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / peak)).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def _decoded_check(decoded: DecodedImage) -> DecodedImage:
    pixels = decoded.pixels
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 3
        or pixels.shape[2] != 3
    ):
        raise ImageDecodeError("decoded images must carry (h, w, 3) uint8 RGB pixels")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1 or decoded.width < 1 or decoded.height < 1:
        raise ImageDecodeError("image has no pixels")
    h, w = pixels.shape[:2]
    # The scale follows from the sizes (boxes found on the pixels map back to the full-size picture).
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels),
        width=decoded.width,
        height=decoded.height,
        scale_x=decoded.width / w,
        scale_y=decoded.height / h,
        orientation=decoded.orientation,
        reduced=decoded.reduced or (w, h) != (decoded.width, decoded.height),
    )


def _array_wrap(arr: np.ndarray) -> DecodedImage:
    if arr.dtype != np.uint8:
        raise ImageDecodeError(f"array images must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageDecodeError(f"array images must be (h, w, 3) RGB, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageDecodeError("image has no pixels")
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    return DecodedImage(pixels=arr, width=w, height=h, scale_x=1.0, scale_y=1.0)
