"""Per-source, per-class evaluation of a two-class road-damage model (what the model card reports).

A dataset built by ``vision.masks`` carries, beside its ``data.yaml``, one ``data_<part>.yaml`` per source
whose validation split is that source's validation photos only (``phone``: the close-up phone photos;
``survey``: the patrol-camera frames; a city's own, under the name given to ``vision.masks --part``) and ``val_clean.txt``: the validation photos known to be defect-free
(survey frames whose masks are blank, generated pavement). ``splits_evaluate`` measures, for each source,
each class's mAP50 (95% bootstrap interval over the photos) and precision/recall at the recommended
confidence, and counts the boxes the exported model draws on the defect-free photos at that confidence,
through ``vision.engine`` as the road agent runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Sources without defects to score: the generated pavement, and the defect-free list itself.
UNSCORED_PARTS = ("pavement", "clean")
CLEAN_LIST = "val_clean.txt"


@dataclass
class ClassMetrics:
    """One class on one source's validation photos."""

    map50: float
    map50_low: float | None
    map50_high: float | None
    precision: float  # at the recommended confidence
    recall: float
    instances: int


def class_metrics(*, box, per_image: dict[str, list], names: dict[int, str], conf: float) -> dict[str, ClassMetrics]:
    """Each class present in a validation run (``box``: ultralytics' ``Metric``), read at ``conf``."""
    from vision.train import map50_interval

    k = min(999, max(0, round(conf * 999)))  # ultralytics samples the curves on 1000 confidences in [0, 1]
    counts = _instances(per_image)
    out = {}
    for row, cls in enumerate(box.ap_class_index):
        interval = map50_interval(per_image=per_image, cls=int(cls))
        out[names[int(cls)]] = ClassMetrics(
            map50=round(float(box.ap50[row]), 4),
            map50_low=round(interval[0], 3) if interval else None,
            map50_high=round(interval[1], 3) if interval else None,
            precision=round(float(box.p_curve[row][k]), 4),
            recall=round(float(box.r_curve[row][k]), 4),
            instances=int(counts.get(int(cls), 0)),
        )
    return out


def _instances(per_image: dict[str, list]) -> dict[int, int]:
    import numpy as np

    targets = np.concatenate(per_image.get("target_cls") or [np.zeros(0)]).astype(int)
    return {int(c): int(n) for c, n in zip(*np.unique(targets, return_counts=True))}


def split_measure(*, weights: Path, data_yaml: Path, imgsz: int, device: str, conf: float) -> dict[str, Any]:
    """Per-class figures of ``weights`` on the validation photos of ``data_yaml``."""
    from vision.train import _split_images, val_run

    val, per_image = val_run(weights=weights, data_yaml=data_yaml, imgsz=imgsz, device=device)
    classes = class_metrics(box=val.box, per_image=per_image, names=dict(val.names), conf=conf)
    return {"images": len(_split_images(data_yaml, "val")), "classes": {k: asdict(v) for k, v in classes.items()}}


def false_boxes(*, onnx_path: Path, photos: list[Path], conf: float) -> dict[str, Any]:
    """Boxes drawn by the exported model, through ``vision.engine``, on photos with no defect at ``conf``:
    every one is false. ``per_20`` is the issue's yardstick (false boxes per 20 clean photos)."""
    from vision.engine import Detector

    run = Detector(model_path=onnx_path, providers=["CPUExecutionProvider"]).detect([str(p) for p in photos], conf=conf, batch_size=8)
    boxes = sum(len(r.detections) for r in run.results)
    flagged = sum(1 for r in run.results if r.detections)
    sources: dict[str, int] = {}
    for p in photos:  # vision.masks names photos <source>_<id>
        sources[Path(p).name.split("_", 1)[0]] = sources.get(Path(p).name.split("_", 1)[0], 0) + 1
    return {
        "photos": len(photos),
        "sources": sources,
        "boxes": boxes,
        "photos_flagged": flagged,
        "per_20": round(20 * boxes / max(1, len(photos)), 2),
        "conf": conf,
    }


def list_photos(list_file: Path) -> list[Path]:
    """The photos of an ultralytics list file (paths relative to the list's folder)."""
    base = Path(list_file).parent
    return [(base / line.strip()).resolve() for line in Path(list_file).read_text().splitlines() if line.strip()]


def splits_evaluate(
    *, weights: Path, onnx_path: Path, data_yaml: Path, imgsz: int, device: str, conf: float
) -> dict[str, Any] | None:
    """``{"splits": {part: per-class figures}, "false_boxes": {...}}`` for a ``vision.masks`` dataset;
    None for a dataset without per-source validation files (a plain YOLO folder)."""
    folder = Path(data_yaml).parent
    parts = sorted(
        p.stem.removeprefix("data_") for p in folder.glob("data_*.yaml") if p.stem.removeprefix("data_") not in UNSCORED_PARTS
    )
    if not parts:
        return None
    splits = {
        part: split_measure(weights=weights, data_yaml=folder / f"data_{part}.yaml", imgsz=imgsz, device=device, conf=conf)
        for part in parts
    }
    clean = folder / CLEAN_LIST
    fp = false_boxes(onnx_path=onnx_path, photos=list_photos(clean), conf=conf) if clean.is_file() else None
    return {"splits": splits, "false_boxes": fp}
