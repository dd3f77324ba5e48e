"""Blur faces and number plates in road photographs before they are stored or shared.

Uses OpenCV's bundled Haar cascades (``cv2.data.haarcascades``): ``haarcascade_frontalface_default.xml`` for
faces, ``haarcascade_russian_plate_number.xml`` (or ``haarcascade_license_plate_rus_16stages.xml``) for plates.
They ship with OpenCV 4.x wheels; OpenCV 5 wheels dropped both ``CascadeClassifier`` and the XML files, in which
case ``PrivacyUnavailableError`` explains the fix (``opencv-python-headless<5``, or ``VISION_HAAR_DIR`` + an
OpenCV build that still has the cascade classifier). Haar cascades are fast and dependency-free but miss
profile faces and small or oblique plates: treat the blur as a best effort, not a guarantee.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FACE_CASCADES = ("haarcascade_frontalface_default.xml",)
PLATE_CASCADES = ("haarcascade_russian_plate_number.xml", "haarcascade_license_plate_rus_16stages.xml")
DETECT_MAX_SIDE = 1600  # cascades run on a downscaled grey copy; regions are scaled back


class PrivacyUnavailableError(Exception):
    """OpenCV's cascade classifier or its bundled cascade files are not available in this installation."""


@dataclass(frozen=True)
class Region:
    """A rectangle to blur, in pixels of the input image."""

    x: int
    y: int
    w: int
    h: int
    kind: str  # "face" or "plate"


@dataclass
class BlurResult:
    """The blurred copy of the image and the regions that were blurred."""

    image: np.ndarray
    regions: list[Region] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of regions blurred."""
        return len(self.regions)


_LOCK = threading.Lock()
_CLASSIFIERS: dict[str, object] = {}


def cascade_dir() -> Path:
    """Directory holding the Haar cascade XML files (``VISION_HAAR_DIR`` overrides OpenCV's bundled one)."""
    env = os.environ.get("VISION_HAAR_DIR")
    if env:
        return Path(env)
    data = getattr(cv2, "data", None)
    return Path(getattr(data, "haarcascades", "") or ".")


def _classifier(kind: str):
    with _LOCK:
        if kind in _CLASSIFIERS:
            return _CLASSIFIERS[kind]
        if not hasattr(cv2, "CascadeClassifier"):
            raise PrivacyUnavailableError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (removed in OpenCV 5): "
                "install opencv-python-headless<5 to blur faces and number plates"
            )
        names = FACE_CASCADES if kind == "face" else PLATE_CASCADES
        base = cascade_dir()
        for name in names:
            path = base / name
            if path.is_file():
                clf = cv2.CascadeClassifier(str(path))
                if not clf.empty():
                    _CLASSIFIERS[kind] = clf
                    return clf
        raise PrivacyUnavailableError(f"no {kind} cascade ({', '.join(names)}) found in {base}")


def privacy_available() -> bool:
    """True when both the face and the plate cascades can be loaded."""
    try:
        _classifier("face")
        _classifier("plate")
    except PrivacyUnavailableError:
        return False
    return True


def regions_find(*, image: np.ndarray, faces: bool = True, plates: bool = True) -> list[Region]:
    """Find faces and number plates in an (h, w, 3) uint8 image (RGB or BGR: the cascades use grey levels)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    factor = min(1.0, DETECT_MAX_SIDE / max(h, w))
    if factor < 1.0:
        grey = cv2.resize(grey, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    min_side = max(12, round(min(grey.shape[:2]) * 0.02))
    found: list[Region] = []
    wanted = [("face", 5), ("plate", 4)]
    for kind, neighbours in wanted:
        if (kind == "face" and not faces) or (kind == "plate" and not plates):
            continue
        rects = _classifier(kind).detectMultiScale(
            grey,
            scaleFactor=1.1,
            minNeighbors=neighbours,
            minSize=(min_side, min_side // 2 if kind == "plate" else min_side),
        )
        for x, y, rw, rh in np.asarray(rects).reshape(-1, 4):
            found.append(
                Region(
                    x=int(x / factor),
                    y=int(y / factor),
                    w=int(np.ceil(rw / factor)),
                    h=int(np.ceil(rh / factor)),
                    kind=kind,
                )
            )
    return found


def region_blur(*, image: np.ndarray, region: Region, margin: float = 0.15) -> None:
    """Blur ``region`` (grown by ``margin`` on each side, clipped to the image) in place, beyond recognition.

    Pixelates to ~8 cells across then smooths, so a strong Gaussian alone cannot be partly inverted.
    """
    h, w = image.shape[:2]
    dx, dy = int(region.w * margin), int(region.h * margin)
    x0, y0 = max(0, region.x - dx), max(0, region.y - dy)
    x1, y1 = min(w, region.x + region.w + dx), min(h, region.y + region.h + dy)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = image[y0:y1, x0:x1]
    cells = max(2, min(8, (x1 - x0) // 4))
    small = cv2.resize(
        roi, (cells, max(2, round(cells * (y1 - y0) / (x1 - x0)))), interpolation=cv2.INTER_AREA
    )
    coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(x1 - x0, y1 - y0) // 4) | 1)
    image[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)


def image_anonymise(*, image: np.ndarray, faces: bool = True, plates: bool = True) -> BlurResult:
    """Return a copy of ``image`` with detected faces and number plates blurred, and the regions blurred.

    Raises PrivacyUnavailableError when this OpenCV cannot run the cascades.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected an (h, w[, 3]) uint8 image, got {image.dtype} {image.shape}")
    out = image.copy()
    regions = regions_find(image=image, faces=faces, plates=plates)
    for region in regions:
        region_blur(image=out, region=region)
    return BlurResult(image=out, regions=regions)
