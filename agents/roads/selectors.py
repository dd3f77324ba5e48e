"""Reads for the road agent: spatial queries on segments and defects, the console's lists and layers."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db import connection
from django.db.models import Avg, Count, Q, Sum
from django.utils.translation import gettext_noop

from agents.runtime.base import Headline, StatementSection
from agents.runtime.statement import Note, PeriodKpis, SummedKpi, ratio, section_summed
from city_ops.city.models import RoadSegment
from city_ops.city.selectors import segment_nearest
from city_ops.results.selectors import rate_stated, unit_costs_get

from .models import CameraRun, Defect, InspectionPhoto, SegmentCondition


@dataclass(frozen=True)
class Snap:
    """A point snapped onto a road segment: the segment, the point on it, and how far it moved (metres)."""

    segment: RoadSegment
    lon: float
    lat: float
    offset_m: float


def point_snap(*, point: Point, within_m: float, segment: RoadSegment | None = None) -> Snap | None:
    """Snap ``point`` to the nearest road segment within ``within_m`` (PostGIS geography), or onto ``segment``
    when one is given (a fixed camera's watched road). None when no road is that close."""
    if point.srid is None:
        point.srid = 4326
    seg = segment or segment_nearest(point=point, within_m=within_m)
    if seg is None:
        return None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_X(p), ST_Y(p), ST_Distance(p::geography, ST_GeomFromEWKT(%s)::geography) FROM ("
            " SELECT ST_ClosestPoint(geom, ST_GeomFromEWKT(%s)) AS p FROM city_roadsegment WHERE id = %s) t",
            [point.ewkt, point.ewkt, seg.pk],
        )
        lon, lat, offset = cur.fetchone()
    if segment is not None and offset > within_m:
        return None
    return Snap(segment=seg, lon=lon, lat=lat, offset_m=float(offset))


def defect_merge_candidate(
    *, segment_id: int, class_name: str, point: Point, within_m: float
) -> Defect | None:
    """The open defect of the same class on the same segment nearest ``point``, if within ``within_m``."""
    return (
        Defect.objects.active()
        .filter(segment_id=segment_id, class_name=class_name)
        .annotate(d=Distance("location", point))
        .filter(d__lte=D(m=within_m))
        .order_by("d", "id")
        .first()
    )


def photo_list(*, user, status: str = "", source: str = ""):
    """Photos the user may see, newest first."""
    qs = InspectionPhoto.objects.restrict(user).select_related("uploader", "camera_run")
    if status in InspectionPhoto.Status.values:
        qs = qs.filter(status=status)
    if source in InspectionPhoto.Source.values:
        qs = qs.filter(source=source)
    return qs


def defect_list(*, user, status: str = "active", segment_id: int | None = None, class_name: str = ""):
    """Defects the user may see, most urgent first; ``class_name`` ("pothole" or "crack") keeps one class."""
    qs = Defect.objects.restrict(user).select_related("segment", "work_order", "best_photo")
    if status == "active":
        qs = qs.active()
    elif status in Defect.Status.values:
        qs = qs.filter(status=status)
    if segment_id:
        qs = qs.filter(segment_id=segment_id)
    if class_name in Defect.DefectClass.values:
        qs = qs.filter(class_name=class_name)
    return qs


SEVERITY_COLORS = {1: "#2e7d32", 2: "#c9a300", 3: "#e8710a", 4: "#b3261e"}


def defects_geojson(*, user, status: str = "active", class_name: str = "") -> dict:
    """Defects as GeoJSON points coloured by severity (for the map), with their class in the user's language."""
    from django.urls import reverse

    features = []
    for d in defect_list(user=user, status=status, class_name=class_name)[:5000]:
        features.append(
            {
                "type": "Feature",
                "id": d.pk,
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(d.location.x, 7), round(d.location.y, 7)],
                },
                "properties": {
                    "title": f"{d.get_class_name_display()} #{d.pk}",
                    "class": d.class_name,
                    "severity": d.severity_label,
                    "severity_level": d.severity_level,
                    "priority_score": d.priority_score,
                    "sightings": d.sightings_count,
                    "status": d.status,
                    "road": (d.segment.name or "") if d.segment else "",
                    "color": SEVERITY_COLORS.get(d.severity_level, "#8a3ffc"),
                    "url": reverse("roads:defect_detail", args=[d.pk]),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def conditions_geojson() -> dict:
    """Segments with a condition record, as GeoJSON lines with their index (built in PostGIS)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(json_agg(json_build_object('type','Feature','id',s.id,"
            "'geometry',ST_AsGeoJSON(s.geom, 6)::json,'properties',json_build_object("
            "'title', coalesce(nullif(s.name, ''), 'unnamed road'), 'condition', c.condition_index,"
            "'open_defects', c.open_defects, 'open_potholes', c.open_potholes, 'open_cracks', c.open_cracks,"
            " 'road_class', s.road_class, 'color', CASE"
            " WHEN c.condition_index >= 85 THEN '#2e7d32' WHEN c.condition_index >= 60 THEN '#c9a300'"
            " WHEN c.condition_index >= 35 THEN '#e8710a' ELSE '#b3261e' END))), '[]'::json)"
            " FROM agent_roads_segmentcondition c JOIN city_roadsegment s ON s.id = c.segment_id"
        )
        features = cur.fetchone()[0]
    if isinstance(features, str):
        features = json.loads(features)
    return {"type": "FeatureCollection", "features": features}


def condition_worst(*, limit: int = 10):
    """The segments in the worst condition (lowest index first)."""
    return (
        SegmentCondition.objects.select_related("segment")
        .filter(open_defects__gt=0)
        .order_by("condition_index", "segment_id")[:limit]
    )


def camera_runs_recent(*, limit: int = 5):
    """The newest camera runs (their progress counters), with their mean model time per frame."""
    return CameraRun.objects.order_by("-created_at").annotate(
        mean_inference_ms=Avg("photos__inference_ms", filter=Q(photos__status=InspectionPhoto.Status.DONE))
    )[:limit]


def camera_run_kpis(*, run: CameraRun) -> dict:
    """A camera run's KPIs: frames processed, new defects found, sightings merged into known defects, repair
    orders created for the defects it saw (after it started), mean model time per processed frame (ms)."""
    from city_ops.workorders.models import WorkOrder

    from .models import DefectSighting

    sightings = DefectSighting.objects.filter(photo__camera_run=run).count()
    seen = Defect.objects.filter(sightings__photo__camera_run=run).values("work_order_id")
    orders = WorkOrder.objects.filter(pk__in=seen, created_at__gte=run.created_at).count()
    mean_ms = InspectionPhoto.objects.filter(camera_run=run, status=InspectionPhoto.Status.DONE).aggregate(
        m=Avg("inference_ms")
    )["m"]
    return {
        "photos_processed": run.frames_processed,
        "defects_found": run.defects_found,
        "sightings_merged": max(0, sightings - run.defects_found),
        "orders_created": orders,
        "mean_inference_ms": round(mean_ms, 2) if mean_ms is not None else None,
    }


def defect_counts() -> dict:
    """Active defects by severity level, and totals by status."""
    by_level = dict(Defect.objects.active().values_list("severity_level").annotate(n=Count("id")))
    by_class = dict(Defect.objects.active().values_list("class_name").annotate(n=Count("id")))
    by_status = dict(Defect.objects.values_list("status").annotate(n=Count("id")))
    sightings = Defect.objects.aggregate(n=Sum("sightings_count"))["n"] or 0
    return {"by_level": by_level, "by_class": by_class, "by_status": by_status, "sightings": sightings}


# --- the inspection report (HTML and PDF are two renderings of this one read) --------------------------------


@dataclass
class ReportShot:
    """One photo of a defect in a report: the photo, the sighting, and the defect's box in the photo's
    full-resolution upright pixels (x, y, w, h)."""

    photo: InspectionPhoto
    sighting: object
    box: dict
    stroke: float


@dataclass
class ReportSection:
    """One defect of a report with its photos (at most four) and its segment's condition record."""

    defect: Defect
    shots: list[ReportShot]
    condition: SegmentCondition | None


@dataclass
class InspectionReport:
    """What an inspection report shows, for one segment (``segment``) or one day (``day``)."""

    title: str
    segment: RoadSegment | None
    day: object | None  # datetime.date
    sections: list[ReportSection]
    condition: SegmentCondition | None  # the segment's, for a segment report
    photo_count: int
    days: list  # the newest days with photos (the report's day picker)
    generated: object  # aware datetime

    @property
    def class_counts(self) -> list[tuple[str, int]]:
        """How many of the report's defects are potholes and how many cracks, in that order."""
        return [(c, sum(1 for s in self.sections if s.defect.class_name == c)) for c in Defect.DefectClass.values]


REPORT_MAX_DEFECTS = 200
REPORT_SHOTS_PER_DEFECT = 4


def report_stroke(photo: InspectionPhoto) -> float:
    """Box line width in the photo's own pixels (so boxes look alike on big and small photos)."""
    return max(2.0, (photo.width or 1000) / 320)


def inspection_report(*, user, segment_id: int | None = None, day=None) -> InspectionReport:
    """The defects of one road segment (``segment_id``; all its sightings) or of one day in the city's time
    zone (``day``; the defects seen in that day's photos, and only those photos), most urgent first, with
    their photos and boxes and the segments' condition indices. Raises RoadSegment.DoesNotExist for an
    unknown segment. Only defects the user may see are included."""
    from django.utils import timezone
    from django.utils.translation import gettext as _

    from city_ops.core.timeutil import city_today, city_tz, day_bounds

    qs = Defect.objects.restrict(user).select_related("segment", "work_order", "best_photo")
    segment = None
    if segment_id is not None:
        segment = RoadSegment.objects.get(pk=segment_id)
        qs = qs.filter(segment=segment)
        photos_qs = InspectionPhoto.objects.filter(sightings__defect__segment=segment)
        title = _("Inspection report: %(road)s") % {"road": segment.name or _("unnamed road")}
    else:
        day = day or city_today()
        start, end = day_bounds(day)
        photos_qs = InspectionPhoto.objects.filter(taken_at__gte=start, taken_at__lt=end)
        qs = qs.filter(sightings__photo__in=photos_qs)
        title = _("Inspection report: %(day)s") % {"day": day.isoformat()}
    defects = list(qs.distinct().order_by("-priority_score", "id")[:REPORT_MAX_DEFECTS])
    photo_ids = set(photos_qs.values_list("pk", flat=True))
    conditions = {
        c.segment_id: c
        for c in SegmentCondition.objects.filter(
            segment_id__in={d.segment_id for d in defects if d.segment_id}
        )
    }
    sections = []
    for d in defects:
        shots = []
        for s in d.sightings.select_related("photo").order_by("seen_at"):
            if segment is None and s.photo_id not in photo_ids:
                continue
            x1, y1, x2, y2 = s.box
            shots.append(
                ReportShot(
                    photo=s.photo,
                    sighting=s,
                    box={"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1},
                    stroke=report_stroke(s.photo),
                )
            )
            if len(shots) == REPORT_SHOTS_PER_DEFECT:
                break
        sections.append(ReportSection(defect=d, shots=shots, condition=conditions.get(d.segment_id)))
    days = [
        d.date()
        for d in InspectionPhoto.objects.datetimes("taken_at", "day", order="DESC", tzinfo=city_tz())[:60]
    ]
    return InspectionReport(
        title=title,
        segment=segment,
        day=day if segment is None else None,
        sections=sections,
        condition=SegmentCondition.objects.filter(segment=segment).first() if segment else None,
        photo_count=len(photo_ids),
        days=sorted(set(days), reverse=True),
        generated=timezone.now(),
    )


# --- the results statement ---------------------------------------------------------------------------------
# Defects found, repairs done within their SLA and the time from detection to repair, against the SLA
# targets (every repair by its due time; the hours each order's SLA allows), from the daily runs' KPIs.

STATEMENT_SPECS = [
    SummedKpi("km_inspected", gettext_noop("Road inspected"), gettext_noop("km"), better="higher", why_no_baseline=gettext_noop(
        "km_inspected: the city kept no record of the km its patrols inspected before the agent, so there is "
        "no baseline")),
    SummedKpi("defects_found", gettext_noop("Defects found"), gettext_noop("defects"), better="higher", why_no_baseline=gettext_noop(
        "defects_found: the city kept no record of the defects its patrols found before the agent, so there is "
        "no baseline")),
    # Each repair short of the SLA's target is a late one, at the contract's penalty per late repair.
    SummedKpi("repairs_in_sla", gettext_noop("Repairs done within their SLA"), gettext_noop("repairs"), better="higher",
              priced=("late_repair",)),
    SummedKpi("repair_hours", gettext_noop("Hours from detection to repair (sum)"), gettext_noop("h")),
]


INSPECTION_UNKNOWN = gettext_noop("inspection_crew_hours: no run of the period reported km inspected and defects found")
INSPECTION_RATES = gettext_noop(
    "inspection_crew_hours: the baseline is a manual patrol of the same km at %(patrol)s km per crew-hour; the "
    "value a dispatcher's review of each defect found, %(review)s minutes each (work rates: admin, unit costs)")
REPAIR_MEAN_NONE = gettext_noop("repair_hours_mean: no repair done in the period, or no SLA stored for one")


def _inspection_crew_hours(kpis: PeriodKpis) -> tuple[Headline, str]:
    """The crew-hours the agent's inspection took (a dispatcher's review of each defect it found; the photos
    come from crews and vehicles on their rounds) against those a manual patrol needs to inspect the same km,
    at the city's work rates (results unit costs), with the note that states both rates."""
    km, found = kpis.total("km_inspected"), kpis.total("defects_found")
    prices = unit_costs_get()
    patrol_rate, review_min = prices.rates["patrol_km_per_crew_hour"], prices.rates["review_min_per_defect"]
    known = km is not None and found is not None
    headline = Headline(name="inspection_crew_hours", label=gettext_noop("Crew-hours to inspect the roads"),
                        unit=gettext_noop("crew-h"), value=round(found * review_min / 60, 3) if known else None,
                        baseline=round(km / patrol_rate, 3) if known else None, priced=("crew_hour",))
    if not known:
        return headline, INSPECTION_UNKNOWN
    return headline, Note(INSPECTION_RATES, patrol=rate_stated(prices, "patrol_km_per_crew_hour"),
                          review=rate_stated(prices, "review_min_per_defect"))


def roads_statement(*, date_from: dt.date, date_to: dt.date) -> StatementSection:
    kpis = PeriodKpis.load(agent="roads", date_from=date_from, date_to=date_to)
    repairs = kpis.total("repairs_done")
    sla_hours, _ = kpis.baseline_total("repair_hours")
    mean = Headline(name="repair_hours_mean", label=gettext_noop("Mean time from detection to repair"),
                    unit=gettext_noop("h"), value=ratio(kpis.total("repair_hours"), repairs), baseline=ratio(sla_hours, repairs))
    inspection, inspection_note = _inspection_crew_hours(kpis)
    notes = [inspection_note] + ([] if mean.baseline is not None else [REPAIR_MEAN_NONE])
    return section_summed(kpis=kpis, specs=STATEMENT_SPECS, extra=[inspection, mean], notes=notes,
                          also={"repairs_done"})
