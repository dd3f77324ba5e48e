"""Reads for the road agent: spatial queries on segments and defects, the console's lists and layers."""
from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db import connection
from django.db.models import Avg, Count, Q, Sum

from city_ops.city.models import CityProfile, RoadSegment
from city_ops.city.selectors import segment_nearest

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


def defect_merge_candidate(*, segment_id: int, class_name: str, point: Point, within_m: float) -> Defect | None:
    """The open defect of the same class on the same segment nearest ``point``, if within ``within_m``."""
    return (
        Defect.objects.active()
        .filter(segment_id=segment_id, class_name=class_name)
        .annotate(d=Distance("location", point))
        .filter(d__lte=D(m=within_m))
        .order_by("d", "id")
        .first()
    )


def city_area_check(*, lon: float, lat: float, margin_m: float) -> tuple[bool, float | None]:
    """(inside, distance_m) of a point against the city's bounds grown by ``margin_m``.

    With no city loaded (no bounds) every point is accepted: there is nothing to compare with.
    """
    profile = CityProfile.objects.exclude(bounds__isnull=True).first()
    if profile is None:
        return True, None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_Distance(ST_GeomFromEWKT(%s)::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
            [profile.bounds.ewkt, lon, lat],
        )
        dist = float(cur.fetchone()[0])
    return dist <= margin_m, dist


def photo_list(*, user, status: str = "", source: str = ""):
    """Photos the user may see, newest first."""
    qs = InspectionPhoto.objects.restrict(user).select_related("uploader", "camera_run")
    if status in InspectionPhoto.Status.values:
        qs = qs.filter(status=status)
    if source in InspectionPhoto.Source.values:
        qs = qs.filter(source=source)
    return qs


def defect_list(*, user, status: str = "active", segment_id: int | None = None):
    """Defects the user may see, most urgent first."""
    qs = Defect.objects.restrict(user).select_related("segment", "work_order", "best_photo")
    if status == "active":
        qs = qs.active()
    elif status in Defect.Status.values:
        qs = qs.filter(status=status)
    if segment_id:
        qs = qs.filter(segment_id=segment_id)
    return qs


SEVERITY_COLORS = {1: "#2e7d32", 2: "#c9a300", 3: "#e8710a", 4: "#b3261e"}


def defects_geojson(*, user, status: str = "active") -> dict:
    """Defects as GeoJSON points coloured by severity (for the map)."""
    from django.urls import reverse

    features = []
    for d in defect_list(user=user, status=status)[:5000]:
        features.append({
            "type": "Feature", "id": d.pk,
            "geometry": {"type": "Point", "coordinates": [round(d.location.x, 7), round(d.location.y, 7)]},
            "properties": {
                "title": f"{d.class_name} #{d.pk}", "class": d.class_name, "severity": d.severity_label,
                "severity_level": d.severity_level, "priority_score": d.priority_score,
                "sightings": d.sightings_count, "status": d.status,
                "road": (d.segment.name or "") if d.segment else "",
                "color": SEVERITY_COLORS.get(d.severity_level, "#8a3ffc"),
                "url": reverse("roads:defect_detail", args=[d.pk]),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def conditions_geojson() -> dict:
    """Segments with a condition record, as GeoJSON lines with their index (built in PostGIS)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(json_agg(json_build_object('type','Feature','id',s.id,"
            "'geometry',ST_AsGeoJSON(s.geom, 6)::json,'properties',json_build_object("
            "'title', coalesce(nullif(s.name, ''), 'unnamed road'), 'condition', c.condition_index,"
            "'open_defects', c.open_defects, 'road_class', s.road_class, 'color', CASE"
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
    return SegmentCondition.objects.select_related("segment").filter(open_defects__gt=0).order_by(
        "condition_index", "segment_id")[:limit]


def photo_stats(*, since=None) -> dict:
    """Counts of photos by status and the mean inference time of the processed ones (ms per image)."""
    qs = InspectionPhoto.objects.all()
    if since is not None:
        qs = qs.filter(processed_at__gte=since)
    agg = qs.aggregate(
        done=Count("id", filter=Q(status=InspectionPhoto.Status.DONE)),
        failed=Count("id", filter=Q(status=InspectionPhoto.Status.FAILED)),
        mean_inference_ms=Avg("inference_ms", filter=Q(status=InspectionPhoto.Status.DONE, synthetic=False)),
    )
    return agg


def camera_runs_recent(*, limit: int = 5):
    """The newest camera runs (their progress counters)."""
    return CameraRun.objects.order_by("-created_at")[:limit]


def defect_counts() -> dict:
    """Active defects by severity level, and totals by status."""
    by_level = dict(Defect.objects.active().values_list("severity_level").annotate(n=Count("id")))
    by_status = dict(Defect.objects.values_list("status").annotate(n=Count("id")))
    sightings = Defect.objects.aggregate(n=Sum("sightings_count"))["n"] or 0
    return {"by_level": by_level, "by_status": by_status, "sightings": sightings}
