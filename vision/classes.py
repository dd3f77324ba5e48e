"""The road agent's two defect classes and how any detector's class names map onto them (no numpy, no
Django: the agent's services import this without loading the engine).

``pothole`` is RDD2022's D40 or any name containing "pothole"; ``crack`` is D00 (longitudinal), D10
(transverse) or D20 (alligator), merged as one class until typed crack data exists, or any name containing
"crack". Case does not matter; "pothole" is looked for first. Anything else (D43 crosswalk blur, D44
white-line blur, D50 manhole, "class0") is no defect class: the engine drops its detections.
"""

from __future__ import annotations

DEFECT_CLASSES = ("pothole", "crack")
_CLASS_CODES = {"d40": "pothole", "d00": "crack", "d10": "crack", "d20": "crack"}


def class_canonical(name: str) -> str | None:
    """The defect class a model's class name stands for ("pothole" or "crack"), or None for anything else."""
    key = str(name).strip().lower()
    if key in _CLASS_CODES:
        return _CLASS_CODES[key]
    return next((c for c in DEFECT_CLASSES if c in key), None)
