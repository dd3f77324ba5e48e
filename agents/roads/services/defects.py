"""Detections to defects: snap to the road segment, merge repeated sightings, rank, order the repair, and
keep each segment's condition index current."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from city_ops.city.models import RoadSegment
from city_ops.core.roles import Role
from city_ops.core.services import audit_record
from city_ops.workorders.models import WorkOrder
from city_ops.workorders.services import work_order_create
from vision.classes import class_canonical

from ..conf import conf
from ..domain.ranking import (
    TREATMENTS,
    box_area_share,
    condition_index,
    priority_assess,
    severity_assess,
    size_estimate_m,
)
from ..models import Defect, DefectSighting, FixedCamera, InspectionPhoto, SegmentCondition
from ..selectors import Snap, defect_merge_candidate, point_snap
from .describe import vision_note

log = logging.getLogger(__name__)
SOURCE_AGENT = "roads"


@dataclass
class PhotoDefects:
    """What one photo's detections became: new defects, merges into earlier ones, detections off the road."""

    created: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    off_road: int = 0
    other_class: int = 0  # a detection of neither class (a row stored by an older model's names)
    orders: list[int] = field(default_factory=list)


def _segment_lock(segment_id: int) -> None:
    # Two workers seeing the same pothole at once must not make two defects: serialise merges per segment
    # for the rest of the transaction (a transaction-scoped advisory lock; key space "roads" = 0x726f).
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x726F, segment_id])


def defect_rank(*, defect: Defect) -> Defect:
    """Recompute a defect's severity and priority from its class, size (a crack's length too), confidence,
    road class and sightings."""
    sev = severity_assess(class_name=defect.class_name, area_share=defect.area_share, confidence=defect.confidence,
                          crack_length_m=defect.crack_length)
    road_class = defect.segment.road_class if defect.segment_id else "other"
    pri = priority_assess(severity=sev.score, road_class=road_class, sightings=defect.sightings_count)
    defect.severity, defect.severity_level = sev.score, sev.level
    defect.priority_score, defect.priority = pri.score, pri.level
    return defect


def _ground_width(photo: InspectionPhoto) -> float:
    widths = conf("ROADS_GROUND_WIDTH_M")
    return float(widths.get(photo.source, widths.get("crew", 4.0)))


def photo_snap(*, photo: InspectionPhoto) -> Snap | None:
    """Where a photo's detections lie: its location snapped onto the nearest road within the tolerance, or
    onto the segment its fixed camera watches; None off the road."""
    camera_segment = None
    if photo.fixed_camera_id:
        camera_segment = FixedCamera.objects.filter(pk=photo.fixed_camera_id).values_list("segment", flat=True).first()
    return point_snap(point=photo.location, within_m=float(conf("ROADS_SNAP_TOLERANCE_M")),
                      segment=RoadSegment.objects.filter(pk=camera_segment).first() if camera_segment else None)


@transaction.atomic
def detection_record(
    *, photo: InspectionPhoto, index: int, detection: dict, snap: Snap | None
) -> tuple[Defect | None, bool]:
    """Turn one detection of a processed photo, snapped at ``snap`` (``photo_snap``), into a sighting of a
    defect (new or merged).

    Returns (defect, created); (None, False) when the photo lies farther than the snap tolerance from every
    road (``snap`` None), or the detection's class is neither pothole nor crack. Idempotent: a detection
    already recorded returns its defect unchanged (a redelivered task).
    """
    class_name = class_canonical(str(detection.get("class", "")))
    if class_name is None:
        return None, False
    existing = DefectSighting.objects.filter(photo=photo, detection_index=index).select_related("defect").first()
    if existing:
        return existing.defect, False
    if snap is None:
        return None, False
    _segment_lock(snap.segment.pk)
    box = [float(v) for v in detection["box"]]
    confidence = float(detection["confidence"])
    share = box_area_share(box=box, width=photo.width or 0, height=photo.height or 0)
    width_m, length_m = size_estimate_m(box=box, width=photo.width or 0, height=photo.height or 0,
                                        ground_width_m=_ground_width(photo))
    at = Point(snap.lon, snap.lat, srid=4326)
    defect = defect_merge_candidate(segment_id=snap.segment.pk, class_name=class_name, point=at,
                                    within_m=float(conf("ROADS_MERGE_DISTANCE_M")))
    created = defect is None
    distance = 0.0
    if created:
        defect = Defect(class_name=class_name, confidence=confidence, area_share=share, width_m=width_m,
                        length_m=length_m, segment=snap.segment, location=at, offset_m=snap.offset_m,
                        first_seen=photo.taken_at, last_seen=photo.taken_at, sightings_count=1,
                        best_photo=photo, synthetic=photo.synthetic, severity=0, severity_level=1,
                        priority_score=0, priority=1)
        defect_rank(defect=defect)
        defect.save()
    else:
        distance = float(defect.d.m)
        DefectSighting.objects.create(defect=defect, photo=photo, detection_index=index, box=box,
                                      confidence=confidence, area_share=share, location=photo.location,
                                      distance_m=distance, seen_at=photo.taken_at)
        _defect_refresh(defect=defect)
        return defect, False
    DefectSighting.objects.create(defect=defect, photo=photo, detection_index=index, box=box, confidence=confidence,
                                  area_share=share, location=photo.location, distance_m=distance,
                                  seen_at=photo.taken_at)
    return defect, created


def _defect_refresh(*, defect: Defect) -> Defect:
    """Re-derive a merged defect from its sightings: size and confidence maxima, seen dates, distinct photos
    and its rank. Its location stays where it was first snapped, so a chain of sightings cannot walk it."""
    sightings = list(defect.sightings.select_related("photo"))
    best = max(sightings, key=lambda s: (s.confidence, s.area_share))
    defect.confidence = max(s.confidence for s in sightings)
    defect.area_share = max(s.area_share for s in sightings)
    defect.first_seen = min(s.seen_at for s in sightings)
    defect.last_seen = max(s.seen_at for s in sightings)
    defect.sightings_count = len({s.photo_id for s in sightings})
    defect.best_photo = best.photo
    widest = max(sightings, key=lambda s: s.area_share)
    defect.width_m, defect.length_m = size_estimate_m(
        box=widest.box, width=widest.photo.width or 0, height=widest.photo.height or 0,
        ground_width_m=_ground_width(widest.photo))
    defect_rank(defect=defect)
    defect.save()
    return defect


def photo_defects_record(*, photo: InspectionPhoto) -> PhotoDefects:
    """Record every detection of a processed photo as defect sightings, then order repairs for defects that
    reach the threshold and refresh the condition of the segments touched. Runs in the caller's transaction."""
    out = PhotoDefects()
    touched: set[int] = set()
    detections = list(photo.detections or [])
    # Every detection of a photo is placed where the photo was taken, so one snap serves them all (it was one
    # per detection: two queries each, and a survey frame of a broken road has many).
    snap = photo_snap(photo=photo) if detections else None
    for i, det in enumerate(detections):
        defect, created = detection_record(photo=photo, index=i, detection=det, snap=snap)
        if defect is None:
            if class_canonical(str(det.get("class", ""))) is None:
                out.other_class += 1
            else:
                out.off_road += 1
            continue
        (out.created if created else out.merged).append(defect.pk)
        touched.add(defect.segment_id)
        order = defect_order_if_due(defect=defect)
        if order is not None:
            out.orders.append(order.pk)
    for segment_id in touched:
        segment_condition_update(segment_id=segment_id, inspected_at=photo.taken_at)
    return out


def crew_least_loaded():
    """The active field crew member with the fewest open orders (ties: by username), or None."""
    return (
        get_user_model().objects.filter(is_active=True, groups__name=Role.FIELD_CREW.value)
        .annotate(open_orders=Count("work_orders", filter=~Q(work_orders__status__in=WorkOrder.CLOSED_STATES)))
        .order_by("open_orders", "username")
        .first()
    )


@transaction.atomic
def defect_order_if_due(*, defect: Defect, threshold: float | None = None, user=None) -> WorkOrder | None:
    """Create (once) the repair order of an open defect whose priority score reaches the threshold.

    The order is idempotent per defect (source_ref 'defect:<id>') and goes to the least-loaded crew member
    when ROADS_AUTO_ASSIGN is on. Returns the order when one was created now, else None.
    """
    threshold = float(conf("ROADS_ORDER_THRESHOLD") if threshold is None else threshold)
    if defect.status != Defect.Status.OPEN or defect.work_order_id or defect.priority_score < threshold:
        return None
    seg = defect.segment
    road = (seg.name or "unnamed road") if seg else "unknown road"
    treatment = TREATMENTS.get(defect.class_name, "repair")
    assignee = crew_least_loaded() if conf("ROADS_AUTO_ASSIGN") else None
    order, created = work_order_create(
        title=f"{treatment.capitalize()} on {road}",
        description=(f"{defect.severity_label.capitalize()} {defect.class_name}{_size_text(defect)}; seen in "
                     f"{defect.sightings_count} photo(s), confidence {defect.confidence:.2f}, priority score "
                     f"{defect.priority_score:.0f}. Treatment: {treatment}. Close with an 'after' photo."
                     + (f"\n{vision_note(defect.vision_description)}" if defect.vision_description else "")),
        location=Point(defect.location.x, defect.location.y, srid=4326), priority=defect.priority,
        source_agent=SOURCE_AGENT, source_ref=f"defect:{defect.pk}", segment=seg, assignee=assignee, user=user,
        due_at=repair_due(class_name=defect.class_name, priority=defect.priority),
    )
    defect.work_order = order
    if order.status not in WorkOrder.CLOSED_STATES:
        defect.status = Defect.Status.ORDERED
    defect.save(update_fields=["work_order", "status", "updated_at"])
    return order if created else None


def _size_text(defect: Defect) -> str:
    if defect.crack_length is not None:
        return f", about {defect.crack_length:.1f} m long"
    return f", about {defect.width_m:.1f} x {defect.length_m:.1f} m" if defect.width_m else ""


def repair_due(*, class_name: str, priority: int) -> dt.datetime | None:
    """When a repair of this class and priority is due (ROADS_REPAIR_SLA_HOURS); None leaves it to the
    platform's SLA by priority."""
    by_priority = conf("ROADS_REPAIR_SLA_HOURS").get(class_name) or {}
    hours = by_priority.get(WorkOrder.Priority(priority).name.lower())
    return timezone.now() + dt.timedelta(hours=float(hours)) if hours is not None else None


def segment_condition_update(*, segment_id: int, inspected_at=None) -> SegmentCondition | None:
    """Recompute one segment's condition index from its open defects."""
    seg = RoadSegment.objects.filter(pk=segment_id).first()
    if seg is None:
        return None
    open_defects = list(Defect.objects.active().filter(segment_id=segment_id)
                        .values_list("severity", "severity_level", "class_name"))
    # Cracks and potholes count alike: each by its severity (a crack's is lower: its class weight is 0.6).
    index = condition_index(severities=[s for s, _, _ in open_defects], length_m=seg.length_m)
    cond, _ = SegmentCondition.objects.get_or_create(segment=seg, defaults={"condition_index": index})
    cond.condition_index = index
    cond.open_defects = len(open_defects)
    cond.open_potholes = sum(1 for *_, c in open_defects if c == Defect.DefectClass.POTHOLE)
    cond.open_cracks = sum(1 for *_, c in open_defects if c == Defect.DefectClass.CRACK)
    cond.worst_severity = max((lvl for _, lvl, _ in open_defects), default=0)
    if inspected_at and (cond.last_inspected is None or inspected_at > cond.last_inspected):
        cond.last_inspected = inspected_at
    cond.save()
    return cond


@transaction.atomic
def defect_order_closed(*, order: WorkOrder) -> Defect | None:
    """Follow a roads work order's end: done/verified repairs the defect, cancelled dismisses it."""
    ref = order.source_ref or ""
    if order.source_agent != SOURCE_AGENT or not ref.startswith("defect:"):
        return None
    defect = Defect.objects.select_for_update().filter(pk=int(ref.split(":", 1)[1] or 0)).first()
    if defect is None:
        return None
    if order.status in (WorkOrder.Status.DONE, WorkOrder.Status.VERIFIED):
        new = Defect.Status.REPAIRED
    elif order.status == WorkOrder.Status.CANCELLED:
        new = Defect.Status.DISMISSED
    elif defect.status in (Defect.Status.REPAIRED, Defect.Status.DISMISSED):
        new = Defect.Status.ORDERED  # reopened
    else:
        return defect
    if defect.status != new:
        defect.status = new
        defect.resolved_at = timezone.now() if new in (Defect.Status.REPAIRED, Defect.Status.DISMISSED) else None
        defect.save(update_fields=["status", "resolved_at", "updated_at"])
        audit_record(action=f"defect.{new}", obj=defect, actor_label=f"workorder:{order.pk}")
        if defect.segment_id:
            segment_condition_update(segment_id=defect.segment_id)
    return defect


def defects_rerank(*, threshold: float | None = None) -> dict[str, int]:
    """The daily pass: re-rank active defects, order those above the threshold, sync states from their orders
    (in case a signal was missed), and refresh every touched segment's condition."""
    ranked = ordered = synced = 0
    segments: set[int] = set()
    for order in WorkOrder.objects.filter(source_agent=SOURCE_AGENT, status__in=WorkOrder.CLOSED_STATES).filter(
            source_ref__in=[f"defect:{pk}" for pk in Defect.objects.active().values_list("pk", flat=True)]):
        if defect_order_closed(order=order):
            synced += 1
    for defect in Defect.objects.active().select_related("segment"):
        before = (defect.priority, round(defect.priority_score, 1))
        defect_rank(defect=defect)
        if (defect.priority, round(defect.priority_score, 1)) != before:
            defect.save(update_fields=["severity", "severity_level", "priority_score", "priority", "updated_at"])
        ranked += 1
        if defect_order_if_due(defect=defect, threshold=threshold):
            ordered += 1
        if defect.segment_id:
            segments.add(defect.segment_id)
    for segment_id in segments | set(SegmentCondition.objects.values_list("segment_id", flat=True)):
        segment_condition_update(segment_id=segment_id)
    return {"ranked": ranked, "orders_created": ordered, "synced": synced, "segments": len(segments)}
