"""How bad a defect is and how soon to fix it (no Django): severity from the damage itself, priority from the
damage and the road it is on, and a condition index per road segment.

- **severity** (0-1, and a level 1-4): the class's weight (a pothole breaks wheels; a hairline longitudinal
  crack does not yet) times how large the damage looks (box area relative to the image; a square-root curve,
  because area grows with the square of size) times how sure the detector is.
- **priority score** (0-100): severity times the road's traffic, with the road class as the proxy for traffic
  (no counts exist for most streets), nudged up by repeated sightings (several crews saw it: it is real).
  The score maps onto the work-order priorities low/normal/high/urgent.
- **condition index** (0-100, 100 = no open defects): a PCI-like figure from the density of open defects'
  severities per 100 m of road, so one pothole on a 20 m street counts for more than on 400 m.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# RDD2022 codes and the names the models use for them; unknown classes get DEFAULT_CLASS_WEIGHT.
CLASS_WEIGHTS: dict[str, float] = {
    "pothole": 1.0, "potholes": 1.0, "d40": 1.0,
    "alligator crack": 0.8, "alligator_crack": 0.8, "d20": 0.8,
    "transverse crack": 0.55, "transverse_crack": 0.55, "d10": 0.55,
    "longitudinal crack": 0.45, "longitudinal_crack": 0.45, "d00": 0.45,
}
DEFAULT_CLASS_WEIGHT = 0.6
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


def severity_assess(*, class_name: str, area_share: float, confidence: float) -> Severity:
    """Severity of one defect from its class, its size (share of the image) and the detector's confidence."""
    size = min(1.0, math.sqrt(max(0.0, area_share) / LARGE_AREA_SHARE))
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
