"""Reads on the city model."""
from __future__ import annotations

from django.contrib.gis.geos import Point, Polygon
from django.db.models.expressions import RawSQL

from .models import District, RoadClosure, RoadSegment


def segment_nearest(*, point: Point, within_m: float = 30.0) -> RoadSegment | None:
    """The road segment nearest a point, if one lies within `within_m` metres (geography distance)."""
    if point.srid is None:
        point.srid = 4326
    return (
        RoadSegment.objects.filter(id__in=RawSQL(
            "SELECT id FROM city_roadsegment WHERE ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s)",
            [point.ewkt, within_m]))
        .annotate(d=RawSQL("ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography)", [point.ewkt]))
        .order_by("d")
        .first()
    )


def segment_list_in_bbox(*, bbox: tuple[float, float, float, float] | None = None):
    qs = RoadSegment.objects.all()
    if bbox:
        qs = qs.filter(geom__intersects=Polygon.from_bbox(bbox))
    return qs


def closure_list_active(*, user=None, at=None):
    qs = RoadClosure.objects.active(at)
    return qs.restrict(user, "view") if user is not None else qs


def district_for_point(*, point: Point) -> District | None:
    return District.objects.filter(geom__contains=point).first()
