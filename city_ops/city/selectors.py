"""Reads on the city model."""
from __future__ import annotations

import math

from django.contrib.gis.geos import GEOSGeometry, Point
from django.db.models import Max, Min, Q
from django.db.models.expressions import RawSQL

from .models import CityProfile, District, RoadSegment

# The shortest a degree gets on the WGS84 spheroid: of latitude 110,574 m (at the equator), of longitude
# 111,319 m times the cosine of the latitude (at least; more away from the equator). Rounded down, so that the
# box below is never too small.
_M_PER_DEG_LAT = 110_500.0
_M_PER_DEG_LON_AT_EQUATOR = 111_300.0


def index_box_sql(*, column: str, geom: GEOSGeometry, metres: float) -> tuple[str, list]:
    """`column && <box>`: a box in degrees around `geom` that holds everything within `metres` of it.

    Why: `ST_DWithin(column::geography, ...)` is exact in metres but no index serves the cast, so alone it
    reads every row. ANDed before it, this box lets the column's GiST index pick the few candidates and
    leaves the exact test to them; the box errs large (the shortest degree at the far edge's latitude), so
    the results are the same. Near a pole the box takes in every longitude; it does not wrap across the
    antimeridian (a city's roads and stops do not straddle it)."""
    _, ymin, _, ymax = geom.extent
    dlat = metres / _M_PER_DEG_LAT
    far_lat = max(abs(ymin), abs(ymax)) + dlat
    cos_far = math.cos(math.radians(min(far_lat, 90.0)))
    dlon = metres / (_M_PER_DEG_LON_AT_EQUATOR * cos_far) if cos_far > 1e-3 else 360.0
    return f"{column} && ST_Expand(ST_GeomFromEWKT(%s), %s, %s)", [geom.ewkt, dlon, dlat]


def segment_nearest(*, point: Point, within_m: float = 30.0) -> RoadSegment | None:
    """The road segment nearest a point, if one lies within `within_m` metres (geography distance)."""
    if point.srid is None:
        point.srid = 4326
    box, box_params = index_box_sql(column="geom", geom=point, metres=within_m)
    return (
        RoadSegment.objects.filter(id__in=RawSQL(
            f"SELECT id FROM city_roadsegment WHERE {box} "
            "AND ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s)",
            [*box_params, point.ewkt, within_m]))
        .annotate(d=RawSQL("ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography)", [point.ewkt]))
        .order_by("d")
        .first()
    )


def street_names() -> list[str]:
    """Every distinct street name of the network (unnamed segments left out)."""
    return list(RoadSegment.objects.exclude(name="").order_by().values_list("name", flat=True).distinct())


def street_names_version() -> tuple[int, int, int]:
    """Changes whenever `street_names()` may have: the network's version (bumped by every import) and the
    oldest and newest segment ids (segments added or removed without an import). Index reads, for caches of
    the names. Why both ends: a database restored with its id sequences (the test suite's demo template)
    can reach the same newest id with other streets; the range then differs."""
    profile = CityProfile.objects.only("network_version").first()
    ids = RoadSegment.objects.aggregate(oldest=Min("id"), newest=Max("id"))
    return (profile.network_version if profile else 0, ids["oldest"] or 0, ids["newest"] or 0)


def district_names() -> list[str]:
    return list(District.objects.order_by("name").values_list("name", flat=True))


def street_segments(*, name: str):
    """The road segments of a street, by its name in the city model (case-insensitive)."""
    return RoadSegment.objects.filter(name__iexact=name.strip()).order_by("pk")


def street_names_like(*, name: str, limit: int = 3) -> list[str]:
    """The city's street names closest to a misspelt one (for a "did you mean" that repairs nothing)."""
    from rapidfuzz import fuzz, process, utils

    found = process.extract(name.strip(), street_names(), scorer=fuzz.ratio, processor=utils.default_process,
                            limit=limit, score_cutoff=75)
    return [match for match, _score, _index in found]


def district_find(*, name: str) -> District | None:
    """A district by its name or code (case-insensitive)."""
    text = name.strip()
    return District.objects.filter(Q(name__iexact=text) | Q(code__iexact=text)).first()
