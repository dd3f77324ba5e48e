"""Convert the RDD2022 road-damage dataset (Pascal VOC XML + images) to YOLO format with a data.yaml.

``python -m vision.rdd2022 SRC DST [--val-fraction 0.1] [--link] [--json]``

SRC is searched recursively for ``*.xml`` annotations (RDD2022 keeps them in ``<country>/train/annotations/xmls``
beside ``<country>/train/images``). Kept classes: D00 longitudinal crack, D10 transverse crack, D20 alligator
crack, D40 pothole; any other label (D43, D44, D50, Repair, ...) is ignored and counted. A broken annotation
or a missing image is reported by file and skipped; the rest is converted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as ET
from defusedxml import DefusedXmlException

RDD_CLASSES: dict[str, tuple[int, str]] = {
    "D00": (0, "Longitudinal crack"),
    "D10": (1, "Transverse crack"),
    "D20": (2, "Alligator crack"),
    "D40": (3, "Pothole"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ConversionError(Exception):
    """The source or destination cannot be used at all (missing source, nothing to convert)."""


@dataclass
class ConversionReport:
    """What the conversion wrote and what it left out, and why."""

    images: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    boxes: Counter = field(default_factory=Counter)
    ignored_labels: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    data_yaml: str = ""

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "images": self.images,
            "boxes": dict(self.boxes),
            "ignored_labels": dict(self.ignored_labels),
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "data_yaml": self.data_yaml,
        }


def _image_find(xml_path: Path, filename: str | None) -> Path | None:
    # RDD2022: <split>/annotations/xmls/X.xml <-> <split>/images/X.jpg; also accept images beside the XML.
    dirs = [xml_path.parent, xml_path.parent.parent.parent / "images", xml_path.parent.parent / "images"]
    names = [filename] if filename else []
    names += [xml_path.stem + s for s in IMAGE_SUFFIXES]
    for d in dirs:
        for n in names:
            candidate = d / n
            if candidate.is_file():
                return candidate
    return None


def _split_pick(key: str, val_fraction: float) -> str:
    # Hash-based so the split is stable across runs and machines.
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") / 2**32
    return "val" if h < val_fraction else "train"


def image_place(*, source: Path, target: Path, link: bool) -> None:
    """Put a photo into the converted dataset: a symlink to it (``link``) or a copy, replacing what is there."""
    if target.exists() or target.is_symlink():
        target.unlink()
    if link:
        os.symlink(source.resolve(), target)
    else:
        shutil.copyfile(source, target)


def annotation_read(
    *, xml_path: Path
) -> tuple[str | None, int | None, int | None, list[tuple[str, float, float, float, float]]]:
    """Read one VOC annotation: (filename, width, height, [(label, xmin, ymin, xmax, ymax)])."""
    root = ET.parse(xml_path).getroot()
    filename = (root.findtext("filename") or "").strip() or None
    size = root.find("size")
    width = height = None
    if size is not None:
        try:
            width, height = int(float(size.findtext("width") or 0)), int(float(size.findtext("height") or 0))
        except ValueError:
            width = height = None
    objects = []
    for obj in root.iter("object"):
        label = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if bb is None:
            objects.append((label, float("nan"), 0.0, 0.0, 0.0))
            continue
        try:
            coords = [float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            coords = [float("nan")] * 4
        objects.append((label, *coords))
    return filename, width or None, height or None, objects


def rdd2022_convert(
    *, src: Path, dst: Path, val_fraction: float = 0.1, link: bool = False
) -> ConversionReport:
    """Convert RDD2022 VOC annotations under ``src`` into a YOLO dataset at ``dst``; return the report."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ConversionError(f"source directory not found: {src}")
    xmls = sorted(src.rglob("*.xml"))
    if not xmls:
        raise ConversionError(f"no VOC .xml annotations under {src}")
    report = ConversionReport()
    for split in ("train", "val"):
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
    for xml_path in xmls:
        rel = xml_path.relative_to(src)
        try:
            filename, width, height, objects = annotation_read(xml_path=xml_path)
        except (ParseError, DefusedXmlException, OSError) as exc:
            report.skipped.append((str(rel), f"unreadable XML: {exc}"))
            continue
        image = _image_find(xml_path, filename)
        if image is None:
            report.skipped.append((str(rel), f"image {filename or xml_path.stem + '.jpg'} not found"))
            continue
        if not width or not height:
            from PIL import Image

            try:
                with Image.open(image) as im:
                    width, height = im.size
            except OSError as exc:
                report.skipped.append((str(rel), f"image unreadable: {exc}"))
                continue
        lines = []
        for label, x0, y0, x1, y1 in objects:
            if label not in RDD_CLASSES:
                report.ignored_labels[label or "<empty>"] += 1
                continue
            if any(math.isnan(v) for v in (x0, y0, x1, y1)):
                report.ignored_labels[f"{label} (missing or bad bndbox)"] += 1
                continue
            x0, x1 = sorted((max(0.0, min(x0, width)), max(0.0, min(x1, width))))
            y0, y1 = sorted((max(0.0, min(y0, height)), max(0.0, min(y1, height))))
            if x1 - x0 < 1 or y1 - y0 < 1:
                report.ignored_labels[f"{label} (degenerate box)"] += 1
                continue
            cls = RDD_CLASSES[label][0]
            lines.append(
                f"{cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
            )
            report.boxes[label] += 1
        # Prefix with the path so same-named files from different countries do not collide.
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        stem = image.stem if not top or image.stem.startswith(top) else f"{top}_{image.stem}"
        split = _split_pick(stem, val_fraction)
        target = dst / "images" / split / f"{stem}{image.suffix.lower()}"
        image_place(source=image, target=target, link=link)
        (dst / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        report.images[split] += 1
    names = "\n".join(f"  {idx}: {name}" for idx, name in sorted(RDD_CLASSES.values()))
    data_yaml = dst / "data.yaml"
    data_yaml.write_text(
        f"# RDD2022 converted by vision.rdd2022 (D00, D10, D20, D40)\n"
        f"path: {dst.resolve()}\ntrain: images/train\nval: images/val\nnc: {len(RDD_CLASSES)}\nnames:\n{names}\n"
    )
    report.data_yaml = str(data_yaml)
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m vision.rdd2022", description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--link", action="store_true", help="symlink images instead of copying them")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        report = rdd2022_convert(src=args.src, dst=args.dst, val_fraction=args.val_fraction, link=args.link)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"images: {report.images}; boxes: {dict(report.boxes)}; ignored: {dict(report.ignored_labels)}")
        for f, r in report.skipped:
            print(f"skipped {f}: {r}", file=sys.stderr)
        print(f"wrote {report.data_yaml}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
