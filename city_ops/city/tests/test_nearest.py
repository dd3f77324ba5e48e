"""Nearest-segment and closure lookups in metres: the same answers as the plain geography query, found
through the GiST index on the segments' geometry instead of by reading the whole road table."""
from __future__ import annotations

import random

import pytest
from django.contrib.gis.geos import LineString, MultiLineString, Point
from django.db import connection
from pyproj import Geod

from city_ops.city.models import RoadNode, RoadSegment
from city_ops.city.osm import closure_segments_for
from city_ops.city.selectors import index_box_sql, segment_nearest
from city_ops.core.testing import gist_index_name, query_plans

GEOD = Geod(ellps="WGS84")
# What segment_nearest asked before: exact, but the cast to geography leaves the index unused.
PLAIN_NEAREST = ("SELECT ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography) FROM city_roadsegment "
                 "WHERE ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s) ORDER BY 1 LIMIT 1")


def _moved(lon: float, lat: float, azimuth: float, metres: float) -> Point:
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return Point(x, y, srid=4326)


def _segments(lines: list[list[tuple[float, float]]]) -> list[RoadSegment]:
    a = RoadNode.objects.create(geom=Point(*lines[0][0], srid=4326))
    b = RoadNode.objects.create(geom=Point(*lines[0][-1], srid=4326))
    return RoadSegment.objects.bulk_create(
        RoadSegment(source=a, target=b, geom=LineString(line, srid=4326), length_m=30, speed_kph=30)
        for line in lines)


@pytest.fixture
def grid(db):
    """3,000 short east-west streets 100 m apart around central Helsinki, analysed: a table the planner
    would rather read through an index than whole."""
    lines = [[(24.90 + i * 0.0018, 60.15 + j * 0.0009), (24.90 + i * 0.0018 + 0.0006, 60.15 + j * 0.0009)]
             for i in range(60) for j in range(50)]
    _segments(lines)
    with connection.cursor() as cur:
        cur.execute("ANALYZE city_roadsegment")


def _plain_nearest_m(point: Point, within_m: float) -> float | None:
    with connection.cursor() as cur:
        cur.execute(PLAIN_NEAREST, [point.ewkt, point.ewkt, within_m])
        row = cur.fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("lat", [60.17, 78.2, -54.8])  # Helsinki, Longyearbyen, Ushuaia
def test_nearest_within_the_distance_and_none_beyond(db, lat):
    # A north-south street; points due east of its middle, 29 and 31 m away. Far north a degree of longitude
    # is short, which a box that forgot the latitude would get wrong.
    start, end = _moved(24.9, lat, 0, -50), _moved(24.9, lat, 0, 50)
    (seg,) = _segments([[start.coords, end.coords]])
    assert segment_nearest(point=_moved(24.9, lat, 90, 29), within_m=30) == seg
    assert segment_nearest(point=_moved(24.9, lat, 90, 31), within_m=30) is None
    assert segment_nearest(point=_moved(24.9, lat, 270, 29.5), within_m=30) == seg


def test_the_box_holds_every_point_within_the_distance():
    """Whatever the latitude and direction, a point `metres` away lies inside the box index_box_sql asks for
    (the index prefilter must never drop a segment the exact test would keep)."""
    rng = random.Random(14)
    for _ in range(2000):
        lon, lat = rng.uniform(-170, 170), rng.uniform(-84, 84)  # not across the antimeridian
        metres = rng.choice([3.0, 30.0, 3000.0])
        _, (_, dlon, dlat) = index_box_sql(column="geom", geom=Point(lon, lat, srid=4326), metres=metres)
        p = _moved(lon, lat, rng.uniform(0, 360), metres)
        assert abs(p.x - lon) <= dlon and abs(p.y - lat) <= dlat, (lon, lat, metres)


def test_nearest_agrees_with_the_plain_geography_query(grid):
    rng = random.Random(18)
    seen = 0
    for _ in range(60):
        point = Point(rng.uniform(24.899, 25.009), rng.uniform(60.149, 60.196), srid=4326)
        for within_m in (5.0, 30.0, 80.0):
            found = segment_nearest(point=point, within_m=within_m)
            plain = _plain_nearest_m(point, within_m)
            if plain is None:
                assert found is None
                continue
            seen += 1
            assert found is not None
            assert _plain_nearest_m(point, 1e6) == pytest.approx(plain)  # sanity: plain finds the nearest
            with connection.cursor() as cur:
                cur.execute("SELECT ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography) "
                            "FROM city_roadsegment WHERE id = %s", [point.ewkt, found.pk])
                assert cur.fetchone()[0] == pytest.approx(plain)
    assert seen > 60  # most points have a street within 30 or 80 m


def test_lookups_use_the_gist_index(grid):
    index = gist_index_name(table="city_roadsegment", column="geom")
    assert index, "RoadSegment.geom has a GiST index"
    point = Point(24.95, 60.17, srid=4326)
    (plan,) = query_plans(lambda: segment_nearest(point=point, within_m=30), table="city_roadsegment")
    assert index in plan and "Seq Scan on city_roadsegment" not in plan, plan
    # The test can tell: the plain geography query cannot use that index at all.
    (plain,) = query_plans(lambda: _plain_nearest_m(point, 30), table="city_roadsegment")
    assert index not in plain and "Seq Scan on city_roadsegment" in plain, plain
    line = LineString((24.95, 60.17), (24.951, 60.17), srid=4326)
    for geom in (point, line, MultiLineString(line, srid=4326)):
        plans = query_plans(lambda g=geom: list(closure_segments_for(geom=g)), table="city_roadsegment")
        assert plans and all(index in p and "Seq Scan on city_roadsegment" not in p for p in plans), plans


def test_closure_segments_match_the_plain_query(grid):
    a = RoadSegment.objects.order_by("pk")[1234]
    mid = a.geom.interpolate_normalized(0.5)
    cases = [Point(mid.x, mid.y + 0.00001, srid=4326),  # ~1 m off the middle of `a`
             LineString(a.geom.coords, srid=4326),  # along `a`
             MultiLineString(LineString(a.geom.coords, srid=4326), srid=4326)]
    plain_sql = {
        "Point": "ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s)",
        "LineString": "ST_DWithin(ST_LineInterpolatePoint(geom, 0.5)::geography, ST_GeomFromEWKT(%s)::geography, %s)",
        "MultiLineString": "ST_DWithin(ST_LineInterpolatePoint(geom, 0.5)::geography, "
                           "ST_GeomFromEWKT(%s)::geography, %s)",
    }
    for geom in cases:
        got = set(closure_segments_for(geom=geom).values_list("pk", flat=True))
        with connection.cursor() as cur:
            cur.execute(f"SELECT id FROM city_roadsegment WHERE {plain_sql[geom.geom_type]}", [geom.ewkt, 3.0])
            plain = {r[0] for r in cur.fetchall()}
        assert got == plain == {a.pk}, geom.geom_type
