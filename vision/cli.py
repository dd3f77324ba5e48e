"""Command-line front end of the engine: ``python -m vision.detect IMAGE_OR_DIR... [--conf C] [--model PATH] --json``.

``detect_paths`` is the function a Django ``detect`` management command calls; ``main`` is the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from vision.engine import DEFAULT_MODEL, ModelLoadError, detector_get

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".hif"}
)


def paths_expand(*, paths: Sequence[str | Path]) -> list[Path]:
    """Expand directories to the image files under them (recursively); return all paths sorted.

    Files named explicitly are kept whatever their suffix, so a bad file is reported rather than skipped.
    """
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.add(path)
    return sorted(found, key=str)


def detect_paths(
    *,
    paths: Sequence[str | Path],
    conf: float | None = None,
    model_path: str | Path | None = None,
    providers: Sequence[str] | None = None,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """Run the detector on files/directories; one JSON-ready dict per image in sorted path order.

    ``{"image", "model", "detections": [{"class", "confidence", "box": [x1, y1, x2, y2]}]}`` (``class`` is
    "pothole" or "crack", whatever the model calls them: see ``vision.engine.class_canonical``), or
    ``{"image", "error"}`` for a file that could not be read. ``conf`` defaults to the model card's
    recommended threshold. Raises ModelLoadError when the model itself cannot be loaded.
    """
    detector = detector_get(model_path=model_path, providers=providers)
    files = paths_expand(paths=paths)
    run = detector.detect([str(p) for p in files], conf=conf, batch_size=batch_size)
    model_name = detector.model_path.name
    out: list[dict[str, Any]] = []
    for path, result in zip(files, run.results):
        if result.error is not None:
            out.append({"image": str(path), "error": result.error})
            continue
        out.append(
            {
                "image": str(path),
                "model": model_name,
                "detections": [
                    {
                        "class": d.class_name,
                        "confidence": round(d.confidence, 4),
                        "box": [round(v, 2) for v in d.box],
                    }
                    for d in result.detections
                ],
            }
        )
    logger.info(
        "%d images: preprocess %.0f ms, inference %.0f ms, postprocess %.0f ms",
        len(files),
        run.timings.preprocess_ms,
        run.timings.inference_ms,
        run.timings.postprocess_ms,
    )
    return out


def report_write(*, records: Sequence[dict[str, Any]], as_json: bool, stream: TextIO) -> None:
    """Print records as one JSON list (``as_json``) or one human-readable line per image."""
    if as_json:
        stream.write(json.dumps(list(records), indent=2) + "\n")
        return
    for rec in records:
        if "error" in rec:
            stream.write(f"{rec['image']}: ERROR {rec['error']}\n")
            continue
        found = ", ".join(
            f"{d['class']} {d['confidence']:.2f} [{', '.join(f'{v:.0f}' for v in d['box'])}]"
            for d in rec["detections"]
        )
        stream.write(
            f"{rec['image']}: {len(rec['detections'])} detection(s){': ' + found if found else ''}\n"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit status: 0 all images read, 1 some images unreadable, 2 no model or no input."""
    parser = argparse.ArgumentParser(
        prog="python -m vision.detect", description="Detect road damage in photographs."
    )
    parser.add_argument("paths", nargs="+", help="image files or directories")
    parser.add_argument(
        "--conf", type=float, default=None, help="confidence threshold (default: model card's)"
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model (default: %(default)s)")
    parser.add_argument("--providers", default="cpu", help="comma-separated: cuda,cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print a JSON list only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.conf is not None and not 0.0 <= args.conf <= 1.0:
        parser.error("--conf must be between 0 and 1")
    try:
        records = detect_paths(
            paths=args.paths,
            conf=args.conf,
            model_path=args.model,
            providers=[p.strip() for p in args.providers.split(",") if p.strip()],
            batch_size=args.batch,
        )
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print("error: no image files found", file=sys.stderr)
        return 2
    report_write(records=records, as_json=args.json, stream=sys.stdout)
    return 1 if any("error" in r for r in records) else 0
