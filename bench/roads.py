"""Road agent benchmark: what the agent's photo pipeline costs on top of the bare vision engine, on the same
ONNX model and the same photos, side by side in one run.

    .venv/bin/python bench/roads.py [--model PATH] [--large 8] [--small 16] [--format jpeg|heic]
        [--providers cuda,cpu] [--json]

- reference: the engine alone (`Detector.detect` on the same file bytes, batch 8): decode (reduced for big
  JPEGs), letterbox, model, boxes;
- receive: `photos_receive` per photo (full upload check incl. a complete decode, EXIF, location, hash, store);
- detect: `photos_detect` per batch (engine + the kept copy's decode (reduced for JPEG; for HEIC one full
  decode shared with the engine) + the face/plate search and blur + JPEG of the kept copy + snapping/merging/
  ranking in PostGIS + rows), i.e. what a vision worker does per photo;
- privacy: the face/plate search and blur alone (`image_make_safe`) on the same kept copies, the part of
  detect that the engine does not do (OpenCV's Haar cascades on a copy of at most ROADS_KEPT_MAX_SIDE px).

Photos are generated road pictures (a dark pothole, EXIF GPS on a real street of the loaded city) at phone
size (4000 x 3000, 12 MP) and small (640 x 480), as JPEG or, with ``--format heic``, as iPhones send them
(HEIC has no reduced decode, so every pixel is decoded). Everything runs in a transaction that is rolled
back and in a temporary media folder, so the database and media are left as they were. Needs a loaded city
(make demo).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._django import django_setup


def _photos(
    n: int, size: tuple[int, int], lon: float, lat: float, seed0: int, fmt: str = "jpeg"
) -> list[bytes]:
    import io

    from PIL import Image

    from agents.roads.domain.synthetic import gps_exif, jpeg_bytes, road_photo
    from vision.heif import heif_register

    out = []
    for i in range(n):
        pixels, _ = road_photo(seed=seed0 + i, size=size)
        exif = gps_exif(lon=lon + i * 1e-5, lat=lat, taken="2025:06:01 10:00:00")
        if fmt == "heic":  # as an iPhone writes it (HEVC in a HEIF container, EXIF GPS and time)
            heif_register()
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="HEIF", quality=80, exif=exif.tobytes())
            out.append(buf.getvalue())
        else:
            out.append(jpeg_bytes(image=pixels, quality=90, exif=exif))
    return out


def _measure(datas: list[bytes], model: Path, batch: int, providers: list[str]) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from agents.roads.conf import conf
    from agents.roads.domain.privacy import image_make_safe, kept_copy_decode
    from agents.roads.services.detection import photos_detect
    from agents.roads.services.photos import photos_receive
    from vision.engine import detector_get

    det = detector_get(model_path=model, providers=providers)
    det.detect(datas[:1])  # warm-up (session, threads)
    t0 = time.perf_counter()
    run = det.detect(datas, batch_size=batch)
    engine_s = time.perf_counter() - t0
    kept = [kept_copy_decode(data=d, max_side=int(conf("ROADS_KEPT_MAX_SIDE"))) for d in datas]
    t0 = time.perf_counter()
    modes = {image_make_safe(image=pixels, keep=[]).mode for pixels in kept}
    privacy_s = time.perf_counter() - t0
    with transaction.atomic():
        t1 = time.perf_counter()
        received = [
            photos_receive(files=[SimpleUploadedFile(f"b{i}.jpg", d)], enqueue=False)[0]
            for i, d in enumerate(datas)
        ]
        receive_s = time.perf_counter() - t1
        ids = [r.photo.pk for r in received]
        t2 = time.perf_counter()
        done = 0
        for start in range(0, len(ids), batch):
            done += photos_detect(photo_ids=ids[start : start + batch]).done
        detect_s = time.perf_counter() - t2
        transaction.set_rollback(True)
    if done != len(datas):
        raise SystemExit(f"only {done} of {len(datas)} photos were processed")
    n = len(datas)
    return {
        "images": n,
        "done": done,
        "engine_img_s": round(n / engine_s, 2),
        "engine_ms_per_img": round(engine_s / n * 1e3, 1),
        "engine_model_ms_per_img": round(run.timings.inference_ms / n, 1),
        "receive_ms_per_img": round(receive_s / n * 1e3, 1),
        "detect_ms_per_img": round(detect_s / n * 1e3, 1),
        "privacy_ms_per_img": round(privacy_s / n * 1e3, 1),
        "privacy_mode": ",".join(sorted(modes)),
        "pipeline_img_s": round(n / (receive_s + detect_s), 2),
        "pipeline_vs_engine": round((receive_s + detect_s) / engine_s, 2),
        "detect_vs_engine": round(detect_s / engine_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=None, help="ONNX model (default: settings.VISION_MODEL_PATH)"
    )
    parser.add_argument("--large", type=int, default=8, help="12 MP photos")
    parser.add_argument("--small", type=int, default=16, help="640 x 480 photos")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--format",
        choices=("jpeg", "heic"),
        default="jpeg",
        help="photos as JPEG (Android, cameras) or HEIC (iPhones)",
    )
    parser.add_argument("--providers", default="cpu", help="comma-separated: cuda,cpu (as VISION_PROVIDERS)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    django_setup()
    from django.conf import settings
    from django.test import override_settings

    from city_ops.city.models import RoadSegment

    model = args.model or Path(settings.VISION_MODEL_PATH)
    if not model.is_file():
        print(f"no model at {model}: pass --model PATH (any YOLO ONNX export)", file=sys.stderr)
        return 2
    seg = RoadSegment.objects.filter(road_class="residential").order_by("osm_id").first()
    if seg is None:
        print("no city loaded: run `manage.py load_demo_city` first", file=sys.stderr)
        return 2
    lon, lat = seg.geom.coords[0]
    from vision.engine import providers_resolve

    providers = providers_resolve([p.strip() for p in args.providers.split(",") if p.strip()])
    results = {"model": model.name, "format": args.format, "providers": providers}
    with (
        tempfile.TemporaryDirectory() as media,
        override_settings(
            MEDIA_ROOT=media,
            ROADS_AUTO_ASSIGN=False,
            VISION_MODEL_PATH=str(model),
            VISION_PROVIDERS=providers,
        ),
    ):
        if args.large:
            photos = _photos(args.large, (4000, 3000), lon, lat, 1000, args.format)
            results["12mp"] = _measure(photos, model, args.batch, providers)
        if args.small:
            photos = _photos(args.small, (640, 480), lon, lat, 2000, args.format)
            results["small"] = _measure(photos, model, args.batch, providers)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    modes = {results[k]["privacy_mode"] for k in ("12mp", "small") if k in results}
    print(
        f"model {results['model']}, {args.format.upper()} photos, {', '.join(providers)}, "
        f"privacy {', '.join(sorted(modes))}"
    )
    print(
        f"{'photos':<8}{'engine img/s':>14}{'pipeline img/s':>16}{'receive ms':>12}{'detect ms':>11}"
        f"{'engine ms':>11}{'model ms':>10}{'privacy ms':>12}{'detect/engine':>15}"
    )
    for key in ("12mp", "small"):
        if key in results:
            r = results[key]
            print(
                f"{key:<8}{r['engine_img_s']:>14}{r['pipeline_img_s']:>16}{r['receive_ms_per_img']:>12}"
                f"{r['detect_ms_per_img']:>11}{r['engine_ms_per_img']:>11}{r['engine_model_ms_per_img']:>10}"
                f"{r['privacy_ms_per_img']:>12}{r['detect_vs_engine']:>15}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
