"""manage.py detect IMAGE_OR_DIR... [--conf C] [--model PATH] [--batch N] [--json]: the vision engine's CLI
(vision.cli.detect_paths) with the model and execution providers from the Django settings."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Detect road damage in images: one JSON object per image in sorted path order, "
            '{"image", "model", "detections": [{"class", "confidence", "box"}]} or {"image", "error"}.')

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="image files or directories (searched recursively)")
        parser.add_argument("--conf", type=float, default=None,
                            help="confidence threshold (default: the one the model card recommends)")
        parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: settings.VISION_MODEL_PATH)")
        parser.add_argument("--batch", type=int, default=8, help="images per model call")
        parser.add_argument("--json", action="store_true", help="print the JSON list alone on stdout")

    def handle(self, *args, **opts):
        from vision.cli import detect_paths, report_write
        from vision.engine import ModelLoadError

        logging.getLogger("vision").setLevel(logging.INFO)
        if opts["conf"] is not None and not 0.0 <= opts["conf"] <= 1.0:
            raise CommandError("--conf must be between 0 and 1")
        if opts["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        missing = [p for p in opts["paths"] if not Path(p).exists()]
        model = opts["model"] or Path(settings.VISION_MODEL_PATH)
        try:
            records = detect_paths(paths=opts["paths"], conf=opts["conf"], model_path=model,
                                   providers=settings.VISION_PROVIDERS, batch_size=opts["batch"])
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from None
        if not records:
            raise CommandError("no image files found in " + ", ".join(opts["paths"]))
        report_write(records=records, as_json=opts["json"], stream=self.stdout)
        errors = sum(1 for r in records if "error" in r)
        if errors:
            self.stderr.write(f"{errors} of {len(records)} image(s) could not be read"
                              + (f" ({len(missing)} path(s) do not exist)" if missing else ""))
            sys.exit(1)
