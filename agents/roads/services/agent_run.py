"""The agent's daily run: retention, re-queue lost photos, re-rank and order, then the run's KPIs."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db.models import Avg, Q
from django.utils import timezone

from agents.runtime.models import AgentRun
from city_ops.city.selectors import segment_nearest
from city_ops.workorders.models import WorkOrder

from ..conf import conf
from ..models import Defect, DefectSighting, InspectionPhoto
from .defects import SOURCE_AGENT, defects_rerank
from .photos import photos_enqueue
from .retention import retention_apply

DONE_STATES = (WorkOrder.Status.DONE, WorkOrder.Status.VERIFIED)
MAX_PHOTOS_PLACED = 20000  # a day's photos placed on segments for the km inspected (a query each)


def photos_requeue(*, now: dt.datetime | None = None) -> int:
    """Send again photos whose detection message was lost (received or processing for too long)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=int(conf("ROADS_REQUEUE_AFTER_S")))
    ids = list(InspectionPhoto.objects.filter(
        Q(status=InspectionPhoto.Status.RECEIVED, uploaded_at__lt=cutoff)
        | Q(status=InspectionPhoto.Status.PROCESSING, claimed_at__lt=cutoff)).values_list("pk", flat=True)[:5000])
    photos_enqueue(photo_ids=ids)
    return len(ids)


def kpis_window(*, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """What the inspection achieved between ``start`` and ``end``: photos processed, new defects, sightings
    merged into known defects, repair orders created, mean model time per image (real photos only)."""
    done = InspectionPhoto.objects.filter(status=InspectionPhoto.Status.DONE, processed_at__gte=start,
                                          processed_at__lt=end)
    sightings = DefectSighting.objects.filter(photo__in=done).count()
    new_defects = Defect.objects.filter(created_at__gte=start, created_at__lt=end).count()
    mean_ms = done.filter(synthetic=False, inference_ms__isnull=False).aggregate(m=Avg("inference_ms"))["m"]
    return {
        "photos_processed": done.count(),
        "defects_found": new_defects,
        "sightings_merged": max(0, sightings - new_defects),
        "orders_created": WorkOrder.objects.filter(source_agent=SOURCE_AGENT, created_at__gte=start,
                                                   created_at__lt=end).count(),
        "mean_inference_ms": round(mean_ms, 2) if mean_ms is not None else None,  # None: no real photo ran
        "open_defects": Defect.objects.active().count(),
        "km_inspected": km_inspected(photos=done),
        **repairs_window(start=start, end=end),
    }


def km_inspected(*, photos) -> float:
    """The length of the road segments the processed photos show (each photo on its nearest segment within
    30 m; a segment counted once however many photos show it), in km."""
    segments = {seg.pk: seg.length_m for seg in (segment_nearest(point=loc) for loc in
                                                 photos.values_list("location", flat=True)[:MAX_PHOTOS_PLACED])
                if seg is not None}
    return round(sum(segments.values()) / 1000, 3)


def repairs_window(*, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """The agent's repair orders finished between ``start`` and ``end``: how many, how many by their due time,
    the hours from the defect's first sighting to the repair, and the hours the SLA allowed them (the order's
    due time less its creation), whose sum is the target the repair hours are measured against."""
    orders = list(WorkOrder.objects.filter(source_agent=SOURCE_AGENT, status__in=DONE_STATES,
                                           closed_at__gte=start, closed_at__lt=end)
                  .values_list("source_ref", "created_at", "due_at", "closed_at"))
    seen = dict(Defect.objects.filter(pk__in=[_defect_id(ref) for ref, *_ in orders])
                .values_list("pk", "first_seen"))
    hours = sla = 0.0
    in_sla = 0
    for ref, created, due, closed in orders:
        detected = seen.get(_defect_id(ref)) or created
        hours += (closed - detected).total_seconds() / 3600
        sla += ((due or closed) - created).total_seconds() / 3600
        in_sla += due is None or closed <= due
    return {"repairs_done": len(orders), "repairs_in_sla": in_sla, "repair_hours": round(hours, 3),
            "sla_hours": round(sla, 3)}


def _defect_id(source_ref: str) -> int | None:
    kind, _, pk = source_ref.partition(":")
    return int(pk) if kind == "defect" and pk.isdigit() else None


def run_window(*, run, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """What a run reports on: since the previous succeeded run of this agent (else the last 24 hours).
    Previous means finished before `now`: a run replayed for a past day (the demo history) must not take a
    later run's end as its start, or its window would be empty."""
    prev = (AgentRun.objects.filter(agent="roads", status=AgentRun.Status.SUCCEEDED, finished_at__lt=now)
            .exclude(pk=run.pk).order_by("-finished_at").values_list("finished_at", flat=True).first())
    return (prev or now - dt.timedelta(days=1)), now


def daily_run(*, run, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Retention, re-queue, re-rank + orders, KPIs for the window since the previous run."""
    progress = progress or (lambda *a: None)
    now = timezone.now()
    start, end = run_window(run=run, now=now)
    progress(0, 4, "retention")
    retention = retention_apply(now=now)
    progress(1, 4, "re-queue lost photos")
    requeued = photos_requeue(now=now)
    progress(2, 4, "ranking defects and ordering repairs")
    ranking = defects_rerank(threshold=(run.params or {}).get("threshold"))
    progress(3, 4, "results")
    kpis = kpis_window(start=start, end=timezone.now())
    progress(4, 4, "done")
    return {"window": [start.isoformat(), end.isoformat()], "retention": retention, "requeued": requeued,
            "ranking": ranking, "kpis": kpis}
