"""Running the detector on received photos (on the vision queue's worker).

For a batch of photo ids: claim them (a photo is processed once even if its task is delivered twice), run the
vision engine once over the batch (its batching and prefetch pay off on a GPU), then finish each photo on its
own: blur faces and plates into the copy that is kept and shown, store the boxes, and turn the detections into
defects, all in one transaction per photo. A photo that fails is marked failed with its reason; the others go
on. A missing or broken model is an operations problem, not the photo's: the photos wait (status received,
the reason noted) and the daily run sends them again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..conf import conf
from ..domain.privacy import image_make_safe, jpeg_encode, kept_copy_decode, kept_copy_reduce
from ..models import CameraRun, InspectionPhoto
from .defects import photo_defects_record
from .describe import defects_describe_enqueue

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
JPEG_SOI = b"\xff\xd8\xff"


@dataclass
class DetectReport:
    """What one call of photos_detect did."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    waiting: int = 0  # the model could not be loaded; photos left for a later try
    defects_created: int = 0
    defects_merged: int = 0
    orders: list[int] = field(default_factory=list)
    inference_ms: float = 0.0
    wall_ms: float = 0.0


def photos_claim(*, photo_ids: list[int]) -> list[int]:
    """Mark received photos (and ones stuck in processing past the re-queue delay) as processing; return
    the ids this caller now owns. A concurrent caller gets the rest (rows locked with SKIP LOCKED)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=int(conf("ROADS_REQUEUE_AFTER_S")))
    with transaction.atomic():
        qs = InspectionPhoto.objects.filter(pk__in=photo_ids).filter(
            Q(status=InspectionPhoto.Status.RECEIVED)
            | Q(status=InspectionPhoto.Status.PROCESSING, claimed_at__lt=stale)
        )
        ids = list(qs.select_for_update(skip_locked=True).values_list("pk", flat=True))
        if ids:
            InspectionPhoto.objects.filter(pk__in=ids).update(
                status=InspectionPhoto.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
            )
    # A photo that keeps killing its worker (it never reaches done/failed) is given up after a few tries.
    spent = list(
        InspectionPhoto.objects.filter(pk__in=ids, attempts__gt=MAX_ATTEMPTS).values_list("pk", flat=True)
    )
    for pk in spent:
        _photo_fail(photo_id=pk, error=f"gave up after {MAX_ATTEMPTS} attempts")
    return [pk for pk in ids if pk not in spent]


def _camera_run_count(
    photo: InspectionPhoto, *, processed: int = 0, failed: int = 0, defects: int = 0
) -> None:
    if not photo.camera_run_id:
        return
    CameraRun.objects.filter(pk=photo.camera_run_id).update(
        frames_processed=F("frames_processed") + processed,
        frames_failed=F("frames_failed") + failed,
        defects_found=F("defects_found") + defects,
    )
    # The run is done when every placed frame has an outcome and no more frames are coming.
    CameraRun.objects.filter(
        pk=photo.camera_run_id,
        status=CameraRun.Status.PROCESSING,
        frames_placed__lte=F("frames_processed") + F("frames_failed"),
    ).update(status=CameraRun.Status.DONE, finished_at=timezone.now())


def _photo_fail(*, photo_id: int, error: str) -> None:
    photo = InspectionPhoto.objects.filter(pk=photo_id).first()
    if photo is None or photo.status in (InspectionPhoto.Status.DONE, InspectionPhoto.Status.FAILED):
        return
    InspectionPhoto.objects.filter(pk=photo_id).update(
        status=InspectionPhoto.Status.FAILED, error=error[:2000], processed_at=timezone.now()
    )
    _camera_run_count(photo, failed=1)


def _detector():
    from vision.engine import detector_get

    return detector_get(model_path=settings.VISION_MODEL_PATH, providers=settings.VISION_PROVIDERS)


def photos_detect(*, photo_ids: list[int]) -> DetectReport:
    """Detect defects in the given photos (those still to do); see the module docstring."""
    from vision.engine import ModelLoadError

    report = DetectReport()
    ids = photos_claim(photo_ids=list(photo_ids))
    report.claimed = len(ids)
    if not ids:
        return report
    try:
        detector = _detector()
    except ModelLoadError as exc:
        log.error("detector unavailable; %d photo(s) wait for it: %s", len(ids), exc)
        InspectionPhoto.objects.filter(pk__in=ids, status=InspectionPhoto.Status.PROCESSING).update(
            status=InspectionPhoto.Status.RECEIVED, error=f"waiting: detector unavailable ({exc})"[:2000]
        )
        report.waiting = len(ids)
        return report
    photos = {p.pk: p for p in InspectionPhoto.objects.filter(pk__in=ids)}
    batch: list[tuple[InspectionPhoto, bytes]] = []
    for pk in ids:
        photo = photos[pk]
        try:
            with photo.original.open("rb") as fh:
                batch.append((photo, fh.read()))
        except (OSError, ValueError) as exc:  # ValueError: no file associated (purged)
            _photo_fail(photo_id=pk, error=f"the original file is missing: {exc}")
            report.failed += 1
    if not batch:
        return report
    started = time.perf_counter()
    max_side = int(conf("ROADS_KEPT_MAX_SIDE"))
    inputs = [_engine_input(data=data, max_side=max_side) for _, data in batch]
    decode_ms = (time.perf_counter() - started) * 1e3
    run = detector.detect(
        [source for source, _ in inputs], conf=conf("ROADS_CONF"), batch_size=int(conf("ROADS_BATCH_SIZE"))
    )
    n = max(1, len(batch))
    per_image_inference = run.timings.inference_ms / n
    per_image_total = (run.timings.total_ms + decode_ms) / n
    report.inference_ms = run.timings.inference_ms
    for (photo, data), (_, kept), result in zip(batch, inputs, run.results):
        try:
            if result.error:
                _photo_fail(photo_id=photo.pk, error=f"not readable by the detector: {result.error}")
                report.failed += 1
                continue
            outcome = photo_finish(
                photo=photo,
                data=data,
                result=result,
                model_name=detector.model_path.name,
                inference_ms=per_image_inference,
                processing_ms=per_image_total,
                pixels=kept,
            )
        except Exception as exc:  # one bad photo never stops the batch
            log.exception("photo %s failed after detection", photo.pk)
            _photo_fail(photo_id=photo.pk, error=f"{type(exc).__name__}: {exc}")
            report.failed += 1
            continue
        report.done += 1
        report.defects_created += len(outcome.created)
        report.defects_merged += len(outcome.merged)
        report.orders.extend(outcome.orders)
    report.wall_ms = (time.perf_counter() - started) * 1e3
    return report


def _engine_input(*, data: bytes, max_side: int):
    """What the engine gets for one photo, and the kept copy's pixels when they come from the same decode.

    A JPEG goes as its bytes: libjpeg decodes it at a reduced DCT scale twice (at the model's size in the
    engine, at the kept copy's size in ``photo_finish``), both far cheaper than one full decode of 12 MP. A
    format without a reduced decode (HEIC from iPhones, PNG) would be decoded in full twice: it is decoded
    once here, reduced to the kept copy, and the engine gets that copy with the full size, so its boxes still
    come back in the original's pixels. Unreadable data goes to the engine as bytes, which says why.
    """
    from vision.decode import DecodedImage, ImageDecodeError, image_decode

    if bytes(data[:3]) == JPEG_SOI:
        return data, None
    try:
        full = image_decode(source=data, fast=False)
        kept = kept_copy_reduce(image=full.pixels, max_side=max_side)
    except ImageDecodeError:
        return data, None
    except Exception:  # one odd photo never stops the batch: the engine meets it again and reports it
        log.exception("decoding a photo for the engine and the kept copy failed")
        return data, None
    h, w = kept.shape[:2]
    source = DecodedImage(
        pixels=kept,
        width=full.width,
        height=full.height,
        scale_x=full.width / w,
        scale_y=full.height / h,
        orientation=full.orientation,
        reduced=(w, h) != (full.width, full.height),
    )
    return source, kept


def photo_finish(
    *,
    photo: InspectionPhoto,
    data: bytes,
    result,
    model_name: str,
    inference_ms: float | None,
    processing_ms: float | None,
    pixels=None,
):
    """Store one photo's detections, its privacy-safe copy and its defects (one transaction). ``pixels``: the
    kept copy when ``_engine_input`` already decoded it (else it is decoded from ``data`` here)."""
    detections = [
        {
            "class": d.class_name,
            "class_id": d.class_id,
            "confidence": round(d.confidence, 4),
            "box": [round(v, 1) for v in d.box],
        }
        for d in result.detections
    ]
    max_side = int(conf("ROADS_KEPT_MAX_SIDE"))
    if pixels is None:
        pixels = kept_copy_decode(data=data, max_side=max_side)  # upright, reduced: what is kept and shown
    full_w = result.width or photo.width or pixels.shape[1]
    full_h = result.height or photo.height or pixels.shape[0]
    sx, sy = pixels.shape[1] / full_w, pixels.shape[0] / full_h
    # Boxes are in full-resolution pixels; the blur works on the reduced copy.
    keep = [[d["box"][0] * sx, d["box"][1] * sy, d["box"][2] * sx, d["box"][3] * sy] for d in detections]
    safe = image_make_safe(image=pixels, keep=keep)
    jpeg, _, _ = jpeg_encode(image=safe.image, max_side=max_side)
    name = default_storage.save(f"roads/photos/{photo.sha256[:2]}/{photo.sha256}.jpg", ContentFile(jpeg))
    try:
        with transaction.atomic():
            locked = InspectionPhoto.objects.select_for_update().get(pk=photo.pk)
            if locked.status != InspectionPhoto.Status.PROCESSING:
                raise RuntimeError(f"photo {photo.pk} is {locked.status}, no longer processing")
            locked.detections = detections
            locked.width, locked.height = full_w, full_h
            locked.model_name = model_name[:100]
            locked.inference_ms = round(inference_ms, 2) if inference_ms is not None else None
            locked.processing_ms = round(processing_ms, 2) if processing_ms is not None else None
            locked.privacy_mode, locked.privacy_regions = safe.mode, safe.regions
            old_image = locked.image.name if locked.image else ""
            locked.image.name = name
            locked.status = InspectionPhoto.Status.DONE
            locked.error = ""
            locked.processed_at = timezone.now()
            locked.save()
            outcome = photo_defects_record(photo=locked)
            _camera_run_count(locked, processed=1, defects=len(outcome.created))
    except BaseException:
        default_storage.delete(name)
        raise
    defects_describe_enqueue(defect_ids=outcome.created)
    if old_image and old_image != name:
        default_storage.delete(old_image)
    if int(conf("ROADS_ORIGINAL_RETENTION_DAYS")) <= 0 and locked.original:
        # No retention: the unblurred original goes as soon as detection is done.
        locked.original.delete(save=False)
        InspectionPhoto.objects.filter(pk=locked.pk).update(original="", original_expires_at=None)
    return outcome
