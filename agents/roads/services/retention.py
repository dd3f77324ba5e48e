"""Retention: unblurred originals and crews' own positions are personal data; they are kept only for the
configured period (ROADS_ORIGINAL_RETENTION_DAYS), then removed. The blurred copy and the defects stay."""
from __future__ import annotations

import datetime as dt
import logging

from django.core.files.storage import default_storage
from django.utils import timezone

from ..conf import conf
from ..models import InspectionPhoto

log = logging.getLogger(__name__)


def retention_apply(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete expired originals (photos already processed or failed) and forget phone positions older than the
    retention period. Returns how many of each were removed."""
    now = now or timezone.now()
    days = int(conf("ROADS_ORIGINAL_RETENTION_DAYS"))
    finished = (InspectionPhoto.Status.DONE, InspectionPhoto.Status.FAILED)
    expired = InspectionPhoto.objects.filter(status__in=finished).exclude(original="")
    if days > 0:
        expired = expired.filter(original_expires_at__lte=now)
    originals = 0
    for pk, name in expired.values_list("pk", "original"):
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not delete original %s of photo %s", name, pk)
            continue
        InspectionPhoto.objects.filter(pk=pk).update(original="", original_expires_at=None)
        originals += 1
    positions = InspectionPhoto.objects.filter(
        device_location__isnull=False, uploaded_at__lte=now - dt.timedelta(days=max(days, 0))
    ).update(device_location=None, location_accuracy_m=None)
    return {"originals_deleted": originals, "positions_forgotten": positions}
