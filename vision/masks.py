"""Turn binary defect masks into YOLO boxes, and assemble the two-class road-damage dataset.

``python -m vision.masks SRC DST [--phone DIR] [--negatives N] [--val-fraction 0.1] [--link] [--json]``

SRC holds ``images/<id>.jpg`` and ``masks/<id>_pothole.png`` + ``masks/<id>_crack.png`` (white = defect), the
layout of the road survey frames (Passos et al., UNIVALI / DNIT) and of a city's own mask-labelled photos.
Classes: ``0 = pothole`` (RDD2022 D40), ``1 = crack`` (D00/D10/D20 as one class).

Rules from mask to box (``BoxRules``; sizes scale with the image diagonal, so they hold at any resolution):

1. A pixel is defect where the mask is brighter than half white.
2. Pieces of one defect are joined before labelling: the mask is dilated with an elliptical kernel of
   ``merge_gap`` x diagonal (cracks 2.5%: 23 px on a 768x480 frame, which bridges the breaks left by thin
   crack lines drawn at 1024 px and resized, and joins the cells of an alligator-crack network; potholes
   1.0%: 9 px), then labelled as 8-connected components. A box is the extent of the *undilated* pixels of
   one component, so dilation joins pieces without growing boxes.
3. Boxes of one class that then overlap are merged into their union (a crack network is one box, not a box
   inside another).
4. A box is dropped when its longer side is under ``min_side`` x diagonal (cracks 2.5%: 23 px at 768x480;
   potholes 1.5%: 14 px) or holds fewer defect pixels than ``min_area`` of the image (cracks 0.02%: 74 px,
   a 2 px wide line 37 px long; potholes 0.03%: 111 px): specks a detector cannot be asked to find, and
   far-off crack fragments that a human labeller would not box either. Defect pixels, not box area, so a
   thin straight crack is kept.

Photos are split by a hash of their id (fixed: the same photo is in the same split on every run and
machine). A photo without a readable image is skipped and reported; one whose mask of a class is missing or
unreadable is reported and kept (that class has no boxes there), and one of another size than its photo
likewise. ``--part NAME`` names the source (default ``survey``: files ``survey_<id>``); ``--phone`` adds a YOLO dataset in the Roboflow layout (``train/``, ``valid/``), keeping its own
split, every class mapped to pothole; ``--negatives N`` adds N generated defect-free pavement pictures
(empty label files) to training and N/4 to validation, for training and for the false-positive check.
Besides ``data.yaml`` (all parts), ``data_<part>.yaml`` validate on one part's validation photos only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.rdd2022 import ConversionError, _split_pick, image_place

CLASSES: dict[int, str] = {0: "pothole", 1: "crack"}
MASK_SUFFIX: dict[int, str] = {0: "_pothole.png", 1: "_crack.png"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class BoxRules:
    """Mask-to-box rules of one class (see the module docstring); fractions of the image diagonal/area."""

    merge_gap: float
    min_side: float
    min_area: float  # defect pixels inside the box, as a share of the image


RULES: dict[int, BoxRules] = {
    0: BoxRules(merge_gap=0.010, min_side=0.015, min_area=0.0003),
    1: BoxRules(merge_gap=0.025, min_side=0.025, min_area=0.0002),
}

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


@dataclass
class MaskReport:
    """What the conversion wrote and what it left out, and why."""

    images: dict[str, Counter] = field(default_factory=dict)  # part -> {train: n, val: n}
    boxes: dict[str, Counter] = field(default_factory=dict)  # part -> {class name: n}
    dropped_small: Counter = field(default_factory=Counter)
    clean: dict[str, list[str]] = field(default_factory=dict)  # split -> photos known defect-free
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason); the photo may be kept
    data_yaml: str = ""

    def count(self, *, part: str, split: str, labels: list[tuple[int, ...]]) -> None:
        self.images.setdefault(part, Counter())[split] += 1
        for label in labels:
            self.boxes.setdefault(part, Counter())[CLASSES[label[0]]] += 1

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "images": {part: dict(c) for part, c in self.images.items()},
            "boxes": {part: dict(c) for part, c in self.boxes.items()},
            "dropped_small": dict(self.dropped_small),
            "clean": {split: len(names) for split, names in self.clean.items()},
            "problems": [{"file": f, "reason": r} for f, r in self.problems],
            "data_yaml": self.data_yaml,
        }


def mask_boxes(*, mask: np.ndarray, rules: BoxRules) -> tuple[list[Box], int]:
    """Boxes of one class's binary mask under ``rules``; also how many were dropped as too small."""
    on = (mask > 127).astype(np.uint8)
    if not on.any():
        return [], 0
    diag = float(np.hypot(*on.shape))
    k = max(1, round(rules.merge_gap * diag)) | 1  # odd, so the kernel is centred
    joined = cv2.dilate(on, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels = cv2.connectedComponents(joined, connectivity=8)
    ys, xs = np.nonzero(on)
    ids = labels[ys, xs]
    boxes = []
    for i in range(1, count):
        sel = ids == i
        if sel.any():  # every component holds mask pixels (dilation only adds around them)
            boxes.append((int(xs[sel].min()), int(ys[sel].min()), int(xs[sel].max()) + 1, int(ys[sel].max()) + 1))
    boxes = boxes_union_overlapping(boxes)
    kept = [b for b in boxes if _big_enough(b, on=on, rules=rules, diag=diag)]
    return kept, len(boxes) - len(kept)


def _big_enough(box: Box, *, on: np.ndarray, rules: BoxRules, diag: float) -> bool:
    x0, y0, x1, y1 = box
    return max(x1 - x0, y1 - y0) >= rules.min_side * diag and int(on[y0:y1, x0:x1].sum()) >= rules.min_area * on.size


def boxes_union_overlapping(boxes: list[Box]) -> list[Box]:
    """Merge boxes that overlap into their union, until none overlap (sorted, for a stable output)."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)


def yolo_line(*, cls: int, box: Box, width: int, height: int) -> str:
    """One YOLO label line (class cx cy w h, normalised)."""
    x0, y0, x1, y1 = box
    return f"{cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"


def photo_labels(*, image: Path, masks_dir: Path, report: MaskReport) -> tuple[list[str], bool] | None:
    """YOLO label lines of one photo from its masks, and whether the photo is known to be defect-free (every
    mask read and blank: specks dropped as too small still mark a defect, and a missing mask leaves it
    unknown); None when the photo cannot be read."""
    picture = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    if picture is None:
        report.problems.append((image.name, "image unreadable: skipped"))
        return None
    height, width = picture.shape[:2]
    lines, clean = [], True
    for cls, suffix in MASK_SUFFIX.items():
        path = masks_dir / f"{image.stem}{suffix}"
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if mask is None:
            clean = False
            why = "missing" if not path.is_file() else "unreadable"
            report.problems.append((path.name, f"{CLASSES[cls]} mask {why}: photo kept without {CLASSES[cls]} boxes"))
            continue
        if mask.shape != (height, width):
            clean = False
            report.problems.append((path.name, f"mask {mask.shape[1]}x{mask.shape[0]} != photo {width}x{height}: ignored"))
            continue
        clean = clean and not (mask > 127).any()
        boxes, dropped = mask_boxes(mask=mask, rules=RULES[cls])
        report.dropped_small[CLASSES[cls]] += dropped
        lines += [yolo_line(cls=cls, box=b, width=width, height=height) for b in boxes]
    return lines, clean


def _write(*, dst: Path, split: str, name: str, source: Path, lines: list[str], link: bool) -> None:
    image_place(source=source, target=dst / "images" / split / name, link=link)
    (dst / "labels" / split / f"{Path(name).stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def splits_make(dst: Path) -> None:
    """The YOLO folders ``images/{train,val}`` and ``labels/{train,val}`` under ``dst``."""
    for kind in ("images", "labels"):
        for split in SPLITS:
            (dst / kind / split).mkdir(parents=True, exist_ok=True)


def masks_convert(
    *, src: Path, dst: Path, report: MaskReport, val_fraction: float = 0.1, link: bool = False, part: str = "survey"
) -> MaskReport:
    """Convert ``src/images`` + ``src/masks`` into ``dst`` (files named ``<part>_<id>``), split by photo id."""
    src, dst = Path(src), Path(dst)
    if not part.isalnum():
        raise ConversionError(f"source name {part!r}: letters and digits only (it prefixes the file names)")
    images = sorted(p for p in (src / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if (src / "images").is_dir() else []
    if not images:
        raise ConversionError(f"no photos under {src / 'images'}")
    splits_make(dst)
    for image in images:
        labelled = photo_labels(image=image, masks_dir=src / "masks", report=report)
        if labelled is None:
            continue
        lines, clean = labelled
        split = _split_pick(image.stem, val_fraction)
        name = f"{part}_{image.stem}{image.suffix.lower()}"
        _write(dst=dst, split=split, name=name, source=image, lines=lines, link=link)
        if clean:
            report.clean.setdefault(split, []).append(name)
        report.count(part=part, split=split, labels=[(int(line.split()[0]),) for line in lines])
    return report


def yolo_import(*, src: Path, dst: Path, report: MaskReport, part: str = "phone", link: bool = False) -> MaskReport:
    """Add a Roboflow-layout YOLO dataset (``train/``, ``valid/`` or ``val/``), keeping its split; every
    class becomes pothole (the phone photos' one class, ``Pothole``)."""
    src = Path(src)
    sources = {"train": src / "train", "val": src / "valid" if (src / "valid").is_dir() else src / "val"}
    if not all((d / "images").is_dir() for d in sources.values()):
        raise ConversionError(f"{src} needs train/images and valid/images (or val/images)")
    splits_make(dst)
    for split, folder in sources.items():
        for image in sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            label = folder / "labels" / f"{image.stem}.txt"
            if not label.is_file():
                report.problems.append((f"{folder.name}/labels/{label.name}", "label file missing: photo kept as defect-free"))
            rows = [r.split() for r in (label.read_text().splitlines() if label.is_file() else []) if r.strip()]
            lines = [" ".join(["0", *r[1:5]]) for r in rows if len(r) >= 5]
            _write(dst=dst, split=split, name=f"{part}_{image.name}", source=image, lines=lines, link=link)
            report.count(part=part, split=split, labels=[(0,)] * len(lines))
    return report


def pavement_image(*, seed: int, width: int, height: int) -> np.ndarray:
    """A generated defect-free asphalt picture (RGB): grainy aggregate, low-frequency wear and tone, and
    sometimes paint lines, a soft shadow or a stain; a wide picture gets a horizon and verge like a survey
    frame. Nothing in it is a pothole or a crack, so any box a detector draws on it is false."""
    rng = np.random.default_rng(seed)
    grey = rng.uniform(70, 150)
    tone = np.array([1.0, rng.uniform(0.97, 1.03), rng.uniform(0.93, 1.05)])
    field_ = np.zeros((height, width), np.float32)
    for cell, amplitude in ((64, 14.0), (16, 8.0), (4, 5.0)):  # wear, patches, gravel
        small = rng.normal(0, 1, (height // cell + 2, width // cell + 2)).astype(np.float32)
        field_ += amplitude * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    field_ += rng.normal(0, rng.uniform(6, 16), (height, width)).astype(np.float32)  # aggregate grain
    img = np.clip(grey + field_, 0, 255)[..., None] * tone
    img = _paint(img=img, rng=rng)
    if width > height * 1.3:
        img = _verge(img=img, rng=rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def _paint(*, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if rng.random() < 0.5:  # a lane line, white or yellow, sometimes dashed
        colour = (235, 235, 230) if rng.random() < 0.6 else (225, 185, 60)
        x0, x1 = rng.uniform(0.1, 0.9, 2) * w
        line = np.zeros((h, w), np.uint8)
        cv2.line(line, (int(x0), 0), (int(x1), h), 255, int(rng.uniform(0.01, 0.03) * w))
        if rng.random() < 0.5:
            line[(np.arange(h) // max(1, h // 6)) % 2 == 1] = 0
        img = np.where(line[..., None] > 0, np.array(colour) * rng.uniform(0.8, 1.0), img)
    shade = np.ones((h, w), np.float32)
    if rng.random() < 0.4:  # a soft shadow across the road
        pts = (rng.uniform(0, 1, (4, 2)) * [w, h]).astype(np.int32)
        cv2.fillPoly(shade, [cv2.convexHull(pts)], float(rng.uniform(0.55, 0.8)))
    if rng.random() < 0.3:  # a faint oil or water stain
        centre = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.3, 0.9) * h))
        axes = (int(rng.uniform(0.04, 0.15) * w), int(rng.uniform(0.03, 0.1) * h))
        cv2.ellipse(shade, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.8, 0.92)), -1)
    shade = cv2.GaussianBlur(shade, (0, 0), max(2.0, w / 100))
    return img * shade[..., None]


def _verge(*, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sky and roadside above a horizon, as a roof camera looking ahead sees them."""
    h, w = img.shape[:2]
    horizon = int(rng.uniform(0.15, 0.35) * h)
    sky = np.linspace(1.0, 0.8, horizon)[:, None, None] * np.array(rng.uniform([150, 170, 190], [210, 225, 250]))
    img[:horizon] = sky
    green = np.array(rng.uniform([50, 80, 30], [110, 140, 70]))
    band = int(0.06 * h)
    img[horizon:horizon + band] = green + rng.normal(0, 12, (band, w, 1))
    return img


def negatives_write(*, dst: Path, report: MaskReport, count: int, seed: int = 0, part: str = "pavement") -> MaskReport:
    """``count`` generated pavement pictures to training and ``count // 4`` to validation (other seeds),
    alternating survey-frame (768x480) and phone-photo (640x640) shapes, each with an empty label file."""
    splits_make(dst)
    for split, n, base in (("train", count, seed), ("val", count // 4, seed + 1_000_000)):
        for i in range(n):
            width, height = (768, 480) if i % 2 == 0 else (640, 640)
            rgb = pavement_image(seed=base + i, width=width, height=height)
            name = f"{part}_{base + i:07d}.jpg"
            cv2.imwrite(str(dst / "images" / split / name), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            (dst / "labels" / split / f"{part}_{base + i:07d}.txt").write_text("")
            report.count(part=part, split=split, labels=[])
            report.clean.setdefault(split, []).append(name)
    return report


def data_yamls_write(*, dst: Path, report: MaskReport) -> Path:
    """``data.yaml`` (every source) and, per source, ``data_<part>.yaml`` validating on that source's
    validation photos only (a list file); ``data_clean.yaml``: the defect-free validation photos. Sources
    are read from the file names in ``dst``, so converting several folders into one ``dst`` (one run each,
    ``--part``) keeps the earlier ones."""
    dst = Path(dst).resolve()
    names = "".join(f"  {i}: {n}\n" for i, n in CLASSES.items())
    head = f"# built by vision.masks\npath: {dst}\ntrain: images/train\nnc: {len(CLASSES)}\nnames:\n{names}"
    (dst / "data.yaml").write_text(head + "val: images/val\n")
    val_names = sorted(p.name for p in (dst / "images" / "val").iterdir())
    groups: dict[str, list[str]] = {}
    for name in val_names:
        groups.setdefault(name.split("_", 1)[0], []).append(name)
    earlier = dst / "val_clean.txt"
    known = {Path(line).name for line in earlier.read_text().splitlines()} if earlier.is_file() else set()
    groups["clean"] = sorted((known | set(report.clean.get("val", []))) & set(val_names))
    for part, members in groups.items():
        if members:
            (dst / f"val_{part}.txt").write_text("".join(f"./images/val/{n}\n" for n in members))
            (dst / f"data_{part}.yaml").write_text(head + f"val: val_{part}.txt\n")
    report.data_yaml = str(dst / "data.yaml")
    return dst / "data.yaml"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m vision.masks", description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path, help="photos in images/, masks in masks/<id>_pothole.png, <id>_crack.png")
    p.add_argument("dst", type=Path)
    p.add_argument("--phone", type=Path, default=None, help="a YOLO dataset (train/, valid/) of pothole photos")
    p.add_argument("--negatives", type=int, default=0, help="generated defect-free pavement pictures to train on")
    p.add_argument("--part", default="survey", help="source name: output files are named <part>_<id>")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--link", action="store_true", help="symlink photos instead of copying them")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = MaskReport()
    try:
        masks_convert(src=args.src, dst=args.dst, report=report, val_fraction=args.val_fraction, link=args.link,
                      part=args.part)
        if args.phone:
            yolo_import(src=args.phone, dst=args.dst, report=report, link=args.link)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.negatives:
        negatives_write(dst=args.dst, report=report, count=args.negatives)
    data_yamls_write(dst=args.dst, report=report)
    for f, r in report.problems:
        print(f"{f}: {r}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        summary = report.as_dict()
        print(f"images: {summary['images']}; boxes: {summary['boxes']}; dropped as too small: {summary['dropped_small']}")
        print(f"defect-free photos: {summary['clean']}; wrote {report.data_yaml}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# RGB (mask tint, box outline): pothole cyan tint in a magenta box, crack yellow tint in a green box
SHEET_COLOURS = {0: ((0, 200, 255), (255, 0, 255)), 1: ((255, 220, 0), (0, 255, 0))}


def sheet_write(*, src: Path, out: Path, count: int = 6, tile_width: int = 480) -> Path:
    """A picture of the boxes over the masks (mask pixels tinted, boxes outlined, cyan = pothole, yellow =
    crack; boxes magenta and green) for ``count`` photos of ``src`` that show both classes, picked by hash (stable), 2 per row,
    saved as a 96-colour PNG: what the model card shows to judge the rules by eye."""
    src = Path(src)
    photos = sorted((p for p in (src / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: hashlib.sha1(p.stem.encode()).hexdigest())
    tiles = []
    for image in photos:
        tile = _sheet_tile(image=image, masks_dir=src / "masks", tile_width=tile_width)
        if tile is not None:
            tiles.append(tile)
        if len(tiles) == count:
            break
    if not tiles:
        raise ConversionError(f"no photo under {src} with both a pothole and a crack mask")
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)])
    from PIL import Image

    Image.fromarray(grid).quantize(colors=96).save(out, optimize=True)
    return out


def _sheet_tile(*, image: Path, masks_dir: Path, tile_width: int) -> np.ndarray | None:
    bgr = cv2.imread(str(image))
    masks = {cls: cv2.imread(str(masks_dir / f"{image.stem}{sfx}"), cv2.IMREAD_GRAYSCALE) for cls, sfx in MASK_SUFFIX.items()}
    if bgr is None or any(m is None or m.shape != bgr.shape[:2] or not (m > 127).any() for m in masks.values()):
        return None
    rgb = bgr[..., ::-1].astype(np.float32)
    for cls, mask in masks.items():
        on = mask > 127
        rgb[on] = 0.35 * rgb[on] + 0.65 * np.array(SHEET_COLOURS[cls][0])
    scale = tile_width / rgb.shape[1]
    tile = cv2.resize(rgb, (tile_width, round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA).astype(np.uint8)
    for cls, mask in masks.items():
        for x0, y0, x1, y1 in mask_boxes(mask=mask, rules=RULES[cls])[0]:
            cv2.rectangle(tile, (int(x0 * scale), int(y0 * scale)), (int(x1 * scale), int(y1 * scale)), SHEET_COLOURS[cls][1], 2)
    return np.ascontiguousarray(tile)
