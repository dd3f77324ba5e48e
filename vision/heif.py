"""HEIC/HEIF photos (what iPhones take) through Pillow, by the pillow-heif plugin (libheif + libde265 bundled
in its wheel; nothing is downloaded at run time).

``heif_register()`` registers the plugin's opener with Pillow once per process; every ``Image.open`` after it
reads HEIC like a JPEG: ``im.format == "HEIF"``, ``getexif()`` gives the GPS and time tags. Orientation: HEIF
carries its rotation as transform boxes (``irot``/``imir``) that libheif applies while decoding, and the plugin
resets the EXIF orientation to 1 (keeping the original in ``info["original_orientation"]``), so the pixels and
size come out upright and code that then applies the EXIF orientation does not rotate twice.

``heif_brand(data)`` tells from the first bytes whether a file is a HEIF container (an ``ftyp`` box with a HEIF
brand), so a HEIC that libheif cannot parse (truncated, damaged) is reported as a damaged HEIC and not as
"not an image".
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

# ftyp brands of HEIF still images and sequences (ISO/IEC 23008-12); "mif1"/"msf1" are the structural brands
# some writers put first. AVIF ("avif", "avis") shares the container but is not what pillow-heif decodes here.
HEIF_BRANDS = frozenset({"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1"})

_lock = threading.Lock()
_registered: bool | None = None


def heif_register() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow (once per process); False when it is not installed.

    Thumbnails, depth and auxiliary images are not read: the detector needs only the primary image, and
    listing them costs time on every open.
    """
    global _registered
    if _registered is not None:
        return _registered
    with _lock:
        if _registered is None:
            try:
                from pillow_heif import register_heif_opener
            except ImportError:
                logger.info("pillow-heif is not installed: HEIC/HEIF photos cannot be read")
                _registered = False
            else:
                register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
                _registered = True
    return _registered


def heif_brand(data: bytes | bytearray | memoryview) -> str | None:
    """The HEIF brand of a file from its first bytes (``ftyp`` box: major brand, then compatible ones), or
    None when it is not a HEIF container. Reads at most the first box; never decodes anything."""
    head = bytes(data[:64])
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[0:4], "big")
    end = min(len(head), max(size, 16))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    for raw in brands:
        brand = raw.decode("ascii", "replace").lower()
        if brand in HEIF_BRANDS:
            return brand
    return None
