"""Coordinates, boxes and geometries from outside (issue 14): every entry point refuses bad ones with a 400 and a
reason before GEOS sees them, writes nothing, and no stored row can break a page or a map layer. One test runs a
real web server as a subprocess, since a GEOS abort would take pytest down with an in-process server."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.contrib.gis.geos import LineString, Point
from django.db import connection

from city_ops.city.geovalidate import GeometryInputError, bbox_parse, city_check, geojson_check, lonlat_check
from city_ops.city.models import CityEvent, CityProfile, RoadClosure, RoadNode, RoadSegment
from city_ops.city.osm import network_bumped
from city_ops.core.models import AuditEntry
from city_ops.core.testing import client_for
from city_ops.workorders.models import WorkOrder

pytestmark = pytest.mark.django_db

# Two segments in central Helsinki: the city's extent is the box around them.
A, B, C = (24.940, 60.168), (24.944, 60.168), (24.944, 60.171)


@pytest.fixture
def small_city(db):
    CityProfile.objects.create(name="Test city", metric_srid=3067)
    nodes = [RoadNode.objects.create(geom=Point(*xy, srid=4326)) for xy in (A, B, C)]
    for s, t in ((0, 1), (1, 2)):
        RoadSegment.objects.create(source=nodes[s], target=nodes[t], name=f"street {s}", length_m=300, speed_kph=30,
                                   geom=LineString(nodes[s].geom.coords, nodes[t].geom.coords, srid=4326))
    network_bumped(srid=3067)


def _nothing_written(before: tuple[int, int, int]) -> bool:
    return (RoadClosure.objects.count(), CityEvent.objects.count(), WorkOrder.objects.count()) == before


def _counts() -> tuple[int, int, int]:
    return RoadClosure.objects.count(), CityEvent.objects.count(), WorkOrder.objects.count()


# --- the validator itself ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lon,lat,reason", [
    (1e200, 1, "outside -180..180"), ("nan", 1, "finite"), (float("inf"), 1, "finite"), (1, "1e400", "finite"),
    (True, 1, "number"), ("abc", 1, "number"), (10, 91, "outside -90..90"), (None, 1, "number")])
def test_lonlat_refused_with_reason(lon, lat, reason):
    with pytest.raises(GeometryInputError, match=reason):
        lonlat_check(lon, lat)


@pytest.mark.parametrize("raw,reason", [
    ("0,0,1e200,1", "outside"), ("nan,0,1,1", "finite"), ("0,0,inf,1", "finite"), ("2,0,1,1", "below the maximum"),
    ("0,0,1", "expected"), ("0,0,1,x", "number")])
def test_bbox_refused(raw, reason):
    with pytest.raises(GeometryInputError, match=reason):
        bbox_parse(raw)


@pytest.mark.parametrize("geom,reason", [
    ({"type": "GeometryCollection", "geometries": []}, "empty"),
    ({"type": "LineString", "coordinates": [[24.94, 60.16]]}, "at least 2"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "end where it starts"),
    ({"type": "MultiPolygon", "coordinates": []}, "empty"),
    ({"type": "Point", "coordinates": [[1, 2], 3]}, "number"),
    ({"type": "Blob", "coordinates": [1, 2]}, "unknown geometry type"),
    ({"type": "Point", "coordinates": [24.94, 60.17, 1e200]}, "height"),
    ({"type": "Point", "coordinates": [24.94, 60.17, "nan"]}, "height"),
    ({"type": "Point", "coordinates": [24.94, 60.17, 1, 2]}, "a position is"),
    ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": ["nan", 1]}]}, "finite")])
def test_geojson_refused(geom, reason):
    with pytest.raises(GeometryInputError, match=reason):
        geojson_check(geom)


def test_city_check_measures_outside(small_city):
    city_check([(24.95, 60.17)])  # about 300 m east of the last road: inside the margin
    with pytest.raises(GeometryInputError, match=r"km outside the city"):
        city_check([(-77.03, 38.89)])  # Washington


# --- the API ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bbox", ["0,0,1e200,1", "nan,0,1,1", "inf,0,1,1", "0,0,1,-inf", "2,0,1,1", "0,95,1,96",
                                  "0,0,1", "a,b,c,d"])
def test_roads_bbox_bad_is_400(users, small_city, bbox):
    r = client_for("crew", users).get("/api/city/roads.geojson", {"bbox": bbox})
    assert r.status_code == 400, r.content
    assert "bbox" in r.json()


def test_roads_bbox_good_still_filters(users, small_city):
    c = client_for("crew", users)
    assert len(c.get("/api/city/roads.geojson", {"bbox": "24.939,60.167,24.943,60.169"}).json()["features"]) == 1
    assert c.get("/api/city/roads.geojson", {"bbox": "10,10,11,11"}).json()["features"] == []


LINE = {"type": "LineString", "coordinates": [list(A), list(B)]}
BOWTIE = {"type": "Polygon", "coordinates": [[[24.940, 60.167], [24.945, 60.169], [24.945, 60.167],
                                               [24.940, 60.169], [24.940, 60.167]]]}


@pytest.mark.parametrize("geometry,reason", [
    ({"type": "Point", "coordinates": [1e200, 60.17]}, "longitude"),
    ({"type": "LineString", "coordinates": [[24.94, 60.168], ["nan", 60.168]]}, "finite"),
    ({"type": "LineString", "coordinates": [[24.94, 60.168], [24.95, "inf"]]}, "finite"),
    ({"type": "Point", "coordinates": [24.94, 95]}, "latitude"),
    ({"type": "GeometryCollection", "geometries": []}, "empty"),
    (BOWTIE, "not a valid shape"),
    ({"type": "LineString", "coordinates": [[2.35, 48.85], [2.36, 48.86]]}, "outside the city"),
    ({"type": "Point", "coordinates": [24.9445, 60.1695]}, "covers no road segment"),
    ("not json at all", "not JSON")])
def test_closure_bad_geometry_is_400_and_writes_nothing(users, small_city, geometry, reason):
    before = _counts()
    r = client_for("dispatcher", users).post("/api/city/closures.geojson", {"geometry": geometry, "reason": "x"},
                                              content_type="application/json")
    assert r.status_code == 400, r.content
    assert reason in json.dumps(r.json())
    assert _nothing_written(before)
    assert not AuditEntry.objects.filter(action="closure.opened").exists()


def test_closure_good_line_still_created(users, small_city):
    r = client_for("dispatcher", users).post("/api/city/closures.geojson", {"geometry": LINE, "reason": "main burst"},
                                              content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["segments"] == 1
    assert CityEvent.objects.filter(kind=CityEvent.Kind.CLOSURE_OPENED).count() == 1


@pytest.mark.parametrize("destination", [[1e308, 60.17], [24.94, "nan"], ["inf", 60.17], [24.94, -91], [0.0], []])
def test_route_bad_point_is_400(users, small_city, destination):
    r = client_for("crew", users).post("/api/city/route/", {"origin": list(A), "destination": destination},
                                        content_type="application/json")
    assert r.status_code == 400, r.content
    assert "destination" in r.json()


def test_route_body_with_json_nan_literal_is_400(users, small_city):
    # Python's json accepts the NaN and Infinity literals: they must be refused, not reach the network.
    body = '{"origin": [24.94, 60.168], "destination": [NaN, Infinity]}'
    r = client_for("crew", users).post("/api/city/route/", body, content_type="application/json")
    assert r.status_code == 400, r.content


@pytest.mark.parametrize("lon,lat,reason", [("nan", 60.17, "lon"), (24.94, "inf", "lat"), (2.35, 48.85, "outside")])
def test_work_order_bad_position_is_400(users, small_city, lon, lat, reason):
    before = _counts()
    r = client_for("dispatcher", users).post("/api/workorders/", {"title": "pothole", "lon": lon, "lat": lat},
                                              content_type="application/json")
    assert r.status_code == 400, r.content
    assert reason in json.dumps(r.json())
    assert _nothing_written(before)


# --- stored rows never break a page --------------------------------------------------------------------------------

def _insert_closure_sql(wkt: str) -> None:
    """A row written around the services (by hand, an old release, a restore): what the pages must survive."""
    with connection.cursor() as cur:
        cur.execute("INSERT INTO city_roadclosure (geom, reason, source_agent, source_ref, valid_from, created_at) "
                    "VALUES (ST_GeomFromText(%s, 4326), 'stored by hand', '', '', now(), now())", [wkt])


@pytest.mark.parametrize("wkt", ["GEOMETRYCOLLECTION EMPTY", "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))",
                                 "POINT(500 95)"])
def test_pages_and_layers_survive_a_stored_bad_closure(users, small_city, wkt):
    _insert_closure_sql(wkt)
    dispatcher = client_for("dispatcher", users)
    home = dispatcher.get("/")
    assert home.status_code == 200
    assert b"stored by hand" in home.content
    layer = dispatcher.get("/api/city/closures.geojson")
    assert layer.status_code == 200
    assert all(f["geometry"] for f in layer.json()["features"])
    admin = client_for("admin", users)
    closure = RoadClosure.objects.get(reason="stored by hand")
    assert admin.get(f"/admin/city/roadclosure/{closure.pk}/change/").status_code == 200
    assert admin.get("/admin/city/roadclosure/").status_code == 200


def test_home_map_opens_on_city_extent_with_empty_stored_bounds(users, small_city):
    CityProfile.objects.update(bounds="POLYGON EMPTY")
    assert client_for("dispatcher", users).get("/").status_code == 200
    for panel in ("/flood/", "/roads/", "/bus/", "/sanitation/"):
        r = client_for("dispatcher", users).get(panel)
        assert r.status_code == 200, (panel, r.status_code)


def test_flood_panel_opens_on_city_extent_not_on_a_station_abroad(users, small_city):
    from agents.flood.domain import Station
    from agents.flood.services.ingest import sensors_register

    sensors_register(stations=[Station(code="USGS-01646500", lat=38.95, lon=-77.13, parameters=("discharge",))],
                     source="usgs")
    r = client_for("dispatcher", users).get("/flood/")
    assert r.status_code == 200
    bounds = r.content.decode().split('data-bounds="', 1)[1].split('"', 1)[0]
    lon1, lat1, lon2, lat2 = (float(v) for v in bounds.split(","))
    assert (lon1, lat1) == pytest.approx(A, abs=1e-6) and (lon2, lat2) == pytest.approx(C, abs=1e-6)


def test_station_with_impossible_position_is_kept_without_one(small_city):
    from agents.flood.domain import Station
    from agents.flood.models import Sensor
    from agents.flood.services.ingest import sensors_register

    sensors_register(stations=[Station(code="BAD-1", lat=1e200, lon=24.9, parameters=("level",))], source="test")
    sensor = Sensor.objects.get(code="BAD-1")
    assert sensor.geom is None
    assert "latitude" in AuditEntry.objects.get(action="flood.sensor_registered").changes["position_refused"]


def test_admin_closure_text_with_huge_number_is_refused(users, small_city):
    r = client_for("admin", users).post("/admin/city/roadclosure/add/", {
        "geom": "SRID=4326;LINESTRING(24.94 60.168, 1e200 60.168)", "reason": "x",
        "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00"})
    assert r.status_code == 200  # the form again, with the error
    assert b"out of any coordinate range" in r.content
    assert not RoadClosure.objects.exists()


# --- a real server process survives what used to abort it --------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_proc(transactional_db, users, small_city, tmp_path):
    """`manage.py runserver --noreload` against the test database: an abort in GEOS would kill this process,
    not pytest, and the test sees it die."""
    db = settings.DATABASES["default"]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="city_ops.settings.test", PYTHONUNBUFFERED="1",
               DATABASE_URL=f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", "--nothreading",
                             f"127.0.0.1:{port}"], cwd=settings.BASE_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
    yield proc, base, (tmp_path / "server.log")
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _token_for(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def _call(base: str, token: str, path: str, body: dict | None = None) -> int | None:
    """The HTTP status, or None when the connection dropped without an answer (the process died answering:
    before the fix, "stack smashing detected" inside GEOS)."""
    req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Token {token}",
                                                           "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError):
        return None


HUGE_INPUTS = [
    ("/api/city/roads.geojson?bbox=0,0,1e200,1", None),
    ("/api/city/closures.geojson", {"geometry": {"type": "LineString", "coordinates": [[24.94, 60.168],
                                                                                        [1e200, 60.168]]},
                                    "reason": "x"}),
    ("/api/city/closures.geojson", {"geometry": {"type": "Point", "coordinates": [24.94, 60.168, 1e200]},
                                    "reason": "x"}),
    ("/api/city/route/", {"origin": list(A), "destination": [1e308, 60.17]}),
]


def test_server_process_survives_huge_coordinates(server_proc, users):
    proc, base, log = server_proc
    token = _token_for(users.dispatcher)
    for path, body in HUGE_INPUTS:
        assert _call(base, token, path, body) == 400, (path, body, log.read_text()[-3000:])
        assert proc.poll() is None, (path, body, log.read_text()[-3000:])
    assert _call(base, token, "/api/city/roads.geojson?bbox=24.939,60.167,24.943,60.169") == 200


def _admin_form(model, user, **kwargs):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return admin.site._registry[model].get_form(request, kwargs.get("instance"))(**kwargs)


def test_admin_sensor_placed_by_hand_must_be_in_the_city(users, small_city):
    from agents.flood.models import Sensor

    data = {"code": "HAND-1", "name": "by hand", "kind": "rain", "status": "active", "metadata": "{}"}
    form = _admin_form(Sensor, users.admin, data={**data, "geom": "SRID=4326;POINT(2.35 48.85)"})
    assert not form.is_valid() and "outside the city" in str(form.errors["geom"])
    form = _admin_form(Sensor, users.admin, data={**data, "geom": "POINT(24.942 60.169)"})
    assert form.is_valid(), form.errors
    # a station an agency file registered abroad keeps its position when renamed by hand
    abroad = Sensor.objects.create(code="USGS-1", kind="river", geom=Point(-77.13, 38.95, srid=4326))
    form = _admin_form(Sensor, users.admin, instance=abroad,
                       data={**data, "code": "USGS-1", "kind": "river", "geom": abroad.geom.ewkt})
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("page", ["agent_flood/sensor", "agent_flood/floodzone", "agent_sanitation/bin",
                                  "agent_sanitation/depot", "agent_sanitation/disposalsite", "agent_roads/fixedcamera"])
def test_admin_pages_for_hand_placed_things_edit_geometry_as_text(users, page):
    r = client_for("admin", users).get(f"/admin/{page}/add/")
    assert r.status_code == 200
    assert b'<textarea name="geom"' in r.content or b'<textarea name="location"' in r.content
    assert b"openlayers" not in r.content.lower()
