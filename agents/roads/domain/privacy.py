"""Privacy for street photos (no Django): blur faces and number plates before a photo is kept or shown.

The face and plate detector is vision.privacy (OpenCV's bundled Haar cascades). Where it cannot run (OpenCV 5
dropped the cascade classifier), this module fails closed: it blurs the **whole picture except the detected
road damage** (the boxes, grown by a margin), which keeps what the crew needs and hides what it must not see.
The result says which way was taken, so the console can tell the user.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)
_warned = False


@dataclass
class PrivacyResult:
    """The image to keep, how it was made safe ('faces_plates' or 'context') and how many regions were blurred."""

    image: np.ndarray
    mode: str
    regions: int


def context_blur(
    *, image: np.ndarray, keep: Sequence[Sequence[float]], margin: float = 0.15, cells: int = 48
) -> np.ndarray:
    """Pixelate and smooth the whole (h, w, 3) uint8 image except the ``keep`` boxes (x1, y1, x2, y2).

    The picture is reduced to about ``cells`` blocks across (a face or a plate becomes a few blocks) and
    smoothed; the boxes, grown by ``margin`` of their size, are pasted back sharp.
    """
    import cv2

    h, w = image.shape[:2]
    cw = max(2, min(cells, w))
    ch = max(2, round(cw * h / w))
    # Smoothing the block image before scaling it up costs nothing (48 x 36 pixels) and leaves no block edges.
    small = cv2.GaussianBlur(cv2.resize(image, (cw, ch), interpolation=cv2.INTER_AREA), (3, 3), 0)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    for box in keep:
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
        a, b = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        c, d = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
        if c > a and d > b:
            out[b:d, a:c] = image[b:d, a:c]
    return np.ascontiguousarray(out)


def image_make_safe(*, image: np.ndarray, keep: Sequence[Sequence[float]]) -> PrivacyResult:
    """Blur faces and plates (vision.privacy); if that detector is unavailable, blur all but the ``keep`` boxes."""
    global _warned
    try:
        from vision.privacy import PrivacyUnavailableError, image_anonymise
    except ImportError:  # vision is part of this repository; an install without it still must not leak faces
        image_anonymise, PrivacyUnavailableError = None, Exception
    if image_anonymise is not None:
        try:
            res = image_anonymise(image=image)
            return PrivacyResult(image=res.image, mode="faces_plates", regions=res.count)
        except PrivacyUnavailableError as exc:
            if not _warned:
                log.warning(
                    "face/plate blurring unavailable (%s); blurring everything but the damage instead", exc
                )
                _warned = True
    return PrivacyResult(image=context_blur(image=image, keep=keep), mode="context", regions=len(keep))


def kept_copy_decode(*, data: bytes, max_side: int = 1600) -> np.ndarray:
    """The upright RGB pixels of the copy to keep, longest side at most ``max_side``.

    A big JPEG is decoded by libjpeg at a reduced DCT scale (1/2, 1/4, 1/8) that still covers ``max_side``:
    the kept copy never needs the 12 MP a phone writes, and a full decode costs more than the model. Formats
    without a reduced decode (HEIC, PNG) are decoded once by the worker and reduced with ``kept_copy_reduce``.
    """
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as img:
        w, h = img.size
        if img.format == "JPEG" and max(w, h) > max_side:
            f = max_side / max(w, h)
            img.draft("RGB", (int(w * f + 0.999), int(h * f + 0.999)))
        img.load()
        upright = ImageOps.exif_transpose(img)
        rgb = upright.convert("RGB") if upright.mode != "RGB" else upright
        if max(rgb.size) > max_side:
            rgb = rgb.copy() if rgb is img else rgb
            _thumbnail(rgb, max_side)
        return np.ascontiguousarray(np.asarray(rgb))


def kept_copy_reduce(*, image: np.ndarray, max_side: int = 1600) -> np.ndarray:
    """The copy to keep from pixels already decoded (upright RGB): the same reduction as ``kept_copy_decode``;
    the pixels themselves when they already fit."""
    h, w = image.shape[:2]
    if max(w, h) <= max_side:
        return image
    pil = Image.fromarray(image)
    _thumbnail(pil, max_side)
    return np.ascontiguousarray(np.asarray(pil))


def _thumbnail(img: Image.Image, max_side: int) -> None:
    # Bilinear with reducing_gap: a viewing copy, ~5x cheaper than Lanczos on a 2000 x 1500 decode.
    img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)


def jpeg_encode(*, image: np.ndarray, max_side: int = 1600, quality: int = 85) -> tuple[bytes, int, int]:
    """Encode RGB pixels as a JPEG no larger than ``max_side`` (no EXIF: no GPS, no camera serial)."""
    pil = Image.fromarray(image)
    if max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), pil.width, pil.height
