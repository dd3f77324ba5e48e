"""Generated road photos for the demo and the tests (no Django): grey asphalt with a lane marking and dark,
ragged pothole-like blobs at known places. Marked synthetic wherever they are stored; never real data."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def road_photo(*, seed: int, size: tuple[int, int] = (960, 720), holes: list[tuple[float, float, float, float]]
               | None = None) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """An RGB (h, w, 3) uint8 road picture and the pixel boxes (x1, y1, x2, y2) of its potholes.

    ``holes`` gives each pothole as (cx, cy, w, h) in fractions of the image; by default one or two are
    placed from the seed. Deterministic for a seed.
    """
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    img = np.clip(rng.normal(122, 14, (h, w, 1)).repeat(3, axis=2) + rng.normal(0, 3, (h, w, 3)), 0, 255)
    img = img.astype(np.uint8)
    # a dashed centre line, as on most streets
    x = int(w * 0.5)
    for y0 in range(0, h, 120):
        cv2.rectangle(img, (x - 6, y0), (x + 6, y0 + 60), (225, 225, 215), -1)
    if holes is None:
        holes = []
        for _ in range(int(rng.integers(1, 3))):
            bw, bh = rng.uniform(0.12, 0.25), rng.uniform(0.10, 0.2)
            holes.append((rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.8), bw, bh))
    boxes = []
    for cx, cy, bw, bh in holes:
        px, py, rx, ry = int(cx * w), int(cy * h), int(bw * w / 2), int(bh * h / 2)
        # a ragged dark rim and a darker core: a pothole seen from a standing crew member
        pts = []
        for a in np.linspace(0, 2 * np.pi, 24, endpoint=False):
            r = rng.uniform(0.85, 1.0)
            pts.append((px + r * rx * np.cos(a), py + r * ry * np.sin(a)))
        cv2.fillPoly(img, [np.array(pts, dtype=np.int32)], (58, 52, 46))
        cv2.ellipse(img, (px, py), (int(rx * 0.7), int(ry * 0.7)), 0, 0, 360, (34, 30, 27), -1)
        boxes.append((float(px - rx), float(py - ry), float(px + rx), float(py + ry)))
    return img, boxes


def jpeg_bytes(*, image: np.ndarray, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    """Encode RGB pixels as JPEG, optionally with an EXIF block (GPS, capture time)."""
    buf = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def gps_exif(*, lon: float | None = None, lat: float | None = None, taken: str | None = None,
             offset: str | None = None, orientation: int | None = None) -> Image.Exif:
    """An EXIF block with GPS (degrees/minutes/seconds + N/S/E/W), DateTimeOriginal and orientation, as phones
    write them (PIL writes the GPS IFD itself; no extra package needed)."""
    exif = Image.Exif()
    if lon is not None and lat is not None:
        gps = exif.get_ifd(0x8825)

        def dms(v: float) -> tuple[float, float, float]:
            v = abs(v)
            d = int(v)
            m = int((v - d) * 60)
            return float(d), float(m), round((v - d - m / 60) * 3600, 4)

        gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
    if taken:
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = taken
        if offset:
            sub[0x9011] = offset
    if orientation:
        exif[0x0112] = orientation
    return exif
