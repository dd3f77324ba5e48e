"""How bad a defect is and how soon to fix it (no Django): severity from the damage itself, priority from the
damage and the road it is on, and a condition index per road segment.

- **severity** (0-1, and a level 1-4): the class's weight (a pothole breaks wheels; a crack does not yet, but
  lets water in and becomes one) times how large the damage is times how sure the detector is. A pothole's
  size is its box area relative to the image (a square-root curve, because area grows with the square of
  size); a crack's weighs its length (the box diagonal in metres: a crack runs across its box) and its area
  (alligator cracking covers ground), so a long thin crack ranks like a wide patch of small ones.
- **priority score** (0-100): severity times the road's traffic, with the road class as the proxy for traffic
  (no counts exist for most streets), nudged up by repeated sightings (several crews saw it: it is real).
  The score maps onto the work-order priorities low/normal/high/urgent.
- **condition index** (0-100, 100 = no open defects): a PCI-like figure from the density of open defects'
  severities per 100 m of road, so one pothole on a 20 m street counts for more than on 400 m.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# The two defect classes (vision.engine maps every model's names onto them); a crack's weight keeps the
# longest, widest, surest crack below a large pothole (0.6: "severe" at most, never "critical").
CLASS_WEIGHTS: dict[str, float] = {"pothole": 1.0, "crack": 0.6}
DEFAULT_CLASS_WEIGHT = 0.6
# A crack this long (box diagonal, metres) counts as "long" (length factor 1): sealing gets dearer, and
# water gets further under the surface, with every metre.
LONG_CRACK_M = 5.0
# How a crack's size splits between its length and its area.
CRACK_LENGTH_SHARE = 0.6
# What a repair order asks the crew to do, by class.
TREATMENTS: dict[str, str] = {"pothole": "pothole patching", "crack": "crack sealing"}
# Road class as the proxy for traffic: a defect on a main road hurts more people sooner.
ROAD_TRAFFIC_FACTOR: dict[str, float] = {
    "motorway": 1.5, "trunk": 1.4, "primary": 1.3, "secondary": 1.2, "tertiary": 1.1,
    "residential": 1.0, "service": 0.8, "other": 0.9,
}
# A box covering this share of the image counts as "large" (size factor 1).
LARGE_AREA_SHARE = 0.08
SEVERITY_LABELS = {1: "minor", 2: "moderate", 3: "severe", 4: "critical"}


@dataclass(frozen=True)
class Severity:
    """The damage's own badness: a score in [0, 1] and a level 1 (minor) to 4 (critical)."""

    score: float
    level: int

    @property
    def label(self) -> str:
        """'minor', 'moderate', 'severe' or 'critical'."""
        return SEVERITY_LABELS[self.level]


@dataclass(frozen=True)
class Priority:
    """How soon to repair: a score in [0, 100] and the work-order priority 1 (low) to 4 (urgent)."""

    score: float
    level: int


def class_weight(*, class_name: str) -> float:
    """The damage class's weight in [0, 1] (potholes 1.0, cracks less)."""
    return CLASS_WEIGHTS.get(class_name.strip().lower(), DEFAULT_CLASS_WEIGHT)


def box_area_share(*, box: tuple[float, float, float, float] | list[float], width: int, height: int) -> float:
    """The share of the image a box (x1, y1, x2, y2 in pixels) covers, in [0, 1]."""
    if width <= 0 or height <= 0:
        return 0.0
    w = max(0.0, float(box[2]) - float(box[0]))
    h = max(0.0, float(box[3]) - float(box[1]))
    return min(1.0, (w * h) / (width * height))


def size_estimate_m(*, box, width: int, height: int, ground_width_m: float) -> tuple[float, float]:
    """A rough width and length in metres: the box's share of an image that spans ``ground_width_m`` across.

    Only a first guess for the crew (perspective makes far damage look smaller); it is stored as an estimate.
    """
    if width <= 0 or height <= 0:
        return 0.0, 0.0
    metres_per_px = ground_width_m / width
    return (round(max(0.0, box[2] - box[0]) * metres_per_px, 2),
            round(max(0.0, box[3] - box[1]) * metres_per_px, 2))


def crack_length_m(*, width_m: float | None, length_m: float | None) -> float:
    """A crack's length from its box's size estimate: the diagonal (a crack runs corner to corner)."""
    return round(math.hypot(width_m or 0.0, length_m or 0.0), 2)


def _size_factor(*, class_name: str, area_share: float, crack_length: float | None) -> float:
    area = min(1.0, math.sqrt(max(0.0, area_share) / LARGE_AREA_SHARE))
    if class_name.strip().lower() != "crack" or crack_length is None:
        return area
    length = min(1.0, max(0.0, crack_length) / LONG_CRACK_M)
    return CRACK_LENGTH_SHARE * length + (1 - CRACK_LENGTH_SHARE) * area


def severity_assess(
    *, class_name: str, area_share: float, confidence: float, crack_length_m: float | None = None
) -> Severity:
    """Severity of one defect from its class, its size and the detector's confidence: a pothole's size is its
    share of the image; a crack's weighs its length (``crack_length_m``) and that share."""
    size = _size_factor(class_name=class_name, area_share=area_share, crack_length=crack_length_m)
    conf = min(1.0, max(0.0, confidence))
    score = class_weight(class_name=class_name) * (0.35 + 0.65 * size) * (0.6 + 0.4 * conf)
    score = round(min(1.0, score), 4)
    level = 4 if score >= 0.75 else 3 if score >= 0.5 else 2 if score >= 0.25 else 1
    return Severity(score=score, level=level)


def priority_assess(*, severity: float, road_class: str, sightings: int = 1) -> Priority:
    """Repair priority from severity (0-1), the road class (traffic proxy) and how often it was seen."""
    traffic = ROAD_TRAFFIC_FACTOR.get(road_class or "other", ROAD_TRAFFIC_FACTOR["other"])
    seen = 1.0 + 0.08 * min(max(sightings, 1) - 1, 3)  # up to +24 % for four or more independent sightings
    score = round(min(100.0, 100.0 * severity * traffic * seen / 1.3), 1)
    level = 4 if score >= 80 else 3 if score >= 60 else 2 if score >= 30 else 1
    return Priority(score=score, level=level)


def condition_index(*, severities: list[float], length_m: float) -> float:
    """0-100 (100 = no open defects): exp(-density / 1.5) where density is the severity sum per 100 m.

    Segments shorter than 50 m count as 50 m, so a single pothole on a 5 m junction link does not read as a
    ruined road. One severe pothole (severity 1) on 100 m gives 51; two give 26; a minor crack on 200 m, 90.
    """
    density = sum(max(0.0, s) for s in severities) / max(length_m, 50.0) * 100.0
    return round(100.0 * math.exp(-density / 1.5), 1)
