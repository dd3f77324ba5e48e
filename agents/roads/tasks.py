"""Thin Celery tasks of the road agent: photo ids in, a service call. Enqueued on the `vision` queue (GPU
workers where there are any) after the upload's transaction commits (services.photos.photos_enqueue)."""
from __future__ import annotations

from celery import shared_task

from agents.runtime.errors import TRANSIENT_ERRORS


@shared_task(name="roads.detect_photo", acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)
def detect_photo(photo_id: int) -> dict:
    """Detect defects in one photo."""
    from .services.detection import photos_detect

    return _summary(photos_detect(photo_ids=[photo_id]))


@shared_task(name="roads.detect_batch", acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)
def detect_batch(photo_ids: list[int]) -> dict:
    """Detect defects in a batch of photos (camera runs): one model call per engine batch."""
    from .services.detection import photos_detect

    return _summary(photos_detect(photo_ids=list(photo_ids)))


def _summary(report) -> dict:
    return {"claimed": report.claimed, "done": report.done, "failed": report.failed, "waiting": report.waiting,
            "defects_created": report.defects_created, "orders": len(report.orders)}


@shared_task(name="roads.describe_defects", acks_late=True)
def describe_defects(defect_ids: list[int]) -> dict:
    """The optional vision step: one-line descriptions of new defects (no retry: a miss is just no line)."""
    from .services.describe import defects_describe

    return {"described": defects_describe(defect_ids=list(defect_ids))}
