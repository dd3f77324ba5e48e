"""The map's layers at city scale: vector tiles (`ST_AsMVT`) and viewport GeoJSON for the road network and
the agents' point layers, with role checks, refused addresses, zoom thinning and the feature cap."""
from __future__ import annotations

import dataclasses
import math

import pytest
from django.contrib.gis.geos import LineString, Point
from django.core.cache import cache
from django.test import Client

from city_ops.city import mapsources
from city_ops.city.maplayers import simplify_tolerance, tile_bounds
from city_ops.city.models import RoadNode, RoadSegment
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db

# Far from central Helsinki (about 110 km): the roads tests keep the real Helsinki network committed for the
# whole session (agents/roads/tests/conftest.py), so a tile there would hold their streets beside these.
LON, LAT = 26.70, 60.87


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


# --- a small Mapbox Vector Tile reader (protobuf wire format; the spec's Tile/Layer/Feature fields) ---------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf: bytes):
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} is not in an MVT")
        yield number, value


def _tile_value(buf: bytes):
    import struct

    for number, value in _fields(buf):
        if number == 1:
            return value.decode()
        if number == 2:
            return struct.unpack("<f", value)[0]
        if number == 3:
            return struct.unpack("<d", value)[0]
        if number in (4, 5):
            return value
        if number == 6:
            return (value >> 1) ^ -(value & 1)
        if number == 7:
            return bool(value)
    return None


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def mvt_decode(data: bytes) -> dict[str, list[dict]]:
    """{layer name: [{"id", "type", "properties", "geometry" (command integers)}]}."""
    layers = {}
    for number, layer_buf in _fields(data):
        if number != 3:
            continue
        name, keys, values, features = "", [], [], []
        for n, v in _fields(layer_buf):
            if n == 1:
                name = v.decode()
            elif n == 2:
                features.append(v)
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                values.append(_tile_value(v))
        decoded = []
        for feature_buf in features:
            f = {"id": None, "type": 0, "properties": {}, "geometry": []}
            for n, v in _fields(feature_buf):
                if n == 1:
                    f["id"] = v
                elif n == 2:
                    tags = _packed(v)
                    f["properties"] = {keys[k]: values[t] for k, t in zip(tags[::2], tags[1::2])}
                elif n == 3:
                    f["type"] = v
                elif n == 4:
                    f["geometry"] = _packed(v)
            decoded.append(f)
        layers[name] = decoded
    return layers


# --- data -------------------------------------------------------------------------------------------------

@pytest.fixture
def streets(db):
    """Twelve 200 m streets around central Helsinki: four primary, eight residential, one of them wiggly."""
    a = RoadNode.objects.create(geom=Point(LON, LAT, srid=4326))
    b = RoadNode.objects.create(geom=Point(LON + 0.01, LAT, srid=4326))
    segments = []
    for i in range(12):
        y = LAT + i * 0.001
        line = [(LON + k * 0.0005, y + (0.00002 if k % 2 else 0)) for k in range(8)]
        segments.append(RoadSegment(source=a, target=b, geom=LineString(line, srid=4326), name=f"street {i}",
                                    road_class="primary" if i < 4 else "residential", length_m=200, speed_kph=30))
    return RoadSegment.objects.bulk_create(segments)


@pytest.fixture(autouse=True)
def _fresh_tiles():
    """Tiles are cached by database, layer, version and address; each test's data is new under the same key."""
    client = cache._cache.get_client()
    pattern = cache.make_key("maptile:*")
    for key in client.scan_iter(match=pattern):
        client.delete(key)


def _tile(client: Client, layer: str, z: int, x: int, y: int):
    return client.get(f"/api/city/tiles/{layer}/{z}/{x}/{y}.mvt")


def _with_cap(monkeypatch, layer: str, cap: int):
    sources = tuple(dataclasses.replace(s, cap=cap) if s.id == layer else s for s in mapsources.PLATFORM_SOURCES)
    monkeypatch.setattr(mapsources, "PLATFORM_SOURCES", sources)


# --- tiles ------------------------------------------------------------------------------------------------

def test_road_tile_decodes_with_its_streets(users, streets):
    z = 16
    x, y = tile_of(LON + 0.001, LAT + 0.002, z)
    r = _tile(client_for("crew", users), "roads", z, x, y)
    assert r.status_code == 200 and r["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert r["Cache-Control"].startswith("private, max-age=") and r["X-Truncated"] == "0"
    layer = mvt_decode(r.content)["roads"]
    names = {f["properties"]["name"] for f in layer}
    _, south, _, north = tile_bounds(z, x, y)
    margin = (north - south) * 64 / 4096  # the tile's buffer
    inside = {f"street {i}" for i in range(12) if south < LAT + i * 0.001 < north}
    near = {f"street {i}" for i in range(12) if south - margin < LAT + i * 0.001 < north + margin}
    assert inside and inside <= names <= near
    assert all(f["type"] == 2 and f["geometry"] for f in layer)  # lines, with drawing commands
    assert {f["id"] for f in layer} <= {s.pk for s in streets}
    assert {f["properties"]["class"] for f in layer} == {"primary", "residential"}


def test_empty_tile_is_a_204(users, streets):
    r = _tile(client_for("dispatcher", users), "roads", 16, 0, 0)
    assert r.status_code == 204 and r.content == b""


def test_city_zoom_draws_the_arterials_only(users, streets):
    z = 10
    x, y = tile_of(LON, LAT, z)
    layer = mvt_decode(_tile(client_for("crew", users), "roads", z, x, y).content)["roads"]
    assert {f["properties"]["class"] for f in layer} == {"primary"} and len(layer) == 4


def test_tile_roles_and_addresses(users, streets):
    crew, dispatcher = client_for("crew", users), client_for("dispatcher", users)
    assert _tile(Client(), "roads", 16, 0, 0).status_code in (401, 403)
    # an agent's layer keeps its own roles: bins are the dispatchers'
    assert _tile(crew, "sanitation-bins", 16, 0, 0).status_code == 403
    assert _tile(dispatcher, "sanitation-bins", 16, 0, 0).status_code == 204
    assert _tile(crew, "no-such-layer", 16, 0, 0).status_code == 404
    for z, x, y in ((23, 0, 0), (3, 8, 0), (3, 0, 8)):
        r = _tile(crew, "roads", z, x, y)
        assert r.status_code == 400 and ("zoom" in r.json()["detail"] or "x and y" in r.json()["detail"])


def test_cap_cuts_a_tile_and_says_so(users, streets, monkeypatch):
    _with_cap(monkeypatch, "roads", 2)
    z = 14  # every class, and more than two streets in the tile
    x, y = tile_of(LON + 0.001, LAT + 0.002, z)
    r = _tile(client_for("crew", users), "roads", z, x, y)
    assert r["X-Truncated"] == "1"
    layer = mvt_decode(r.content)["roads"]
    assert len(layer) == 2 and [f["properties"].get("truncated") for f in layer].count(True) == 1


def test_agent_point_layer_tiles(users):
    from agents.flood.models import Sensor

    Sensor.objects.create(code="D-1", name="underpass depth", kind="depth", geom=Point(LON, LAT, srid=4326))
    Sensor.objects.create(code="D-2", name="faulty", kind="depth", status="fault",
                          geom=Point(LON + 0.0001, LAT, srid=4326))
    z = 15
    x, y = tile_of(LON, LAT, z)
    layer = mvt_decode(_tile(client_for("crew", users), "flood-sensors", z, x, y).content)["flood-sensors"]
    colours = {f["properties"]["code"]: f["properties"]["color"] for f in layer}
    assert colours == {"D-1": "#2e7d32", "D-2": "#7f7f7f"}  # calm green; grey in fault
    assert all(f["type"] == 1 for f in layer)


# --- viewport GeoJSON -------------------------------------------------------------------------------------

BBOX = f"{LON - 0.01},{LAT - 0.01},{LON + 0.02},{LAT + 0.02}"


@pytest.mark.parametrize("query,reason", [
    ("", "bbox: required"),
    (f"bbox={BBOX}", "zoom: required"),
    (f"bbox={BBOX}&zoom=23", "outside"),
    (f"bbox={BBOX}&zoom=x", "whole number"),
    ("bbox=1,2,3&zoom=12", "expected minlon,minlat,maxlon,maxlat"),
    ("bbox=25,60,24,61&zoom=12", "minimum must be below"),
])
def test_viewport_is_required_and_checked(users, query, reason):
    r = client_for("crew", users).get(f"/api/city/layers/roads.geojson?{query}")
    assert r.status_code == 400 and reason in r.json()["detail"]


def test_geojson_is_capped_and_simplified(users, streets, monkeypatch):
    crew = client_for("crew", users)
    full = crew.get(f"/api/city/layers/roads.geojson?bbox={BBOX}&zoom=18").json()
    assert len(full["features"]) == 12 and full["truncated"] is False
    coarse = crew.get(f"/api/city/layers/roads.geojson?bbox={BBOX}&zoom=12").json()
    # zoom 12: the arterials only, and the 2 m wiggles (well under half a pixel) simplified away
    assert len(coarse["features"]) == 4
    assert simplify_tolerance(12) > 0.00002 > simplify_tolerance(18)
    assert all(len(f["geometry"]["coordinates"]) == 2 for f in coarse["features"])
    assert all(len(f["geometry"]["coordinates"]) == 8 for f in full["features"])

    _with_cap(monkeypatch, "roads", 5)
    cut = crew.get(f"/api/city/layers/roads.geojson?bbox={BBOX}&zoom=18").json()
    assert len(cut["features"]) == 5 and cut["truncated"] is True and cut["cap"] == 5


def test_geojson_roles(users, streets):
    assert Client().get(f"/api/city/layers/roads.geojson?bbox={BBOX}&zoom=14").status_code in (401, 403)
    assert client_for("crew", users).get(f"/api/city/layers/nope.geojson?bbox={BBOX}&zoom=14").status_code == 404


def test_bin_tiles_colour_as_the_bins_geojson(users):
    """The bins' tile colours are the same rule as the GeoJSON layer's `fill_color`, built in SQL."""
    from agents.sanitation.models import Bin, FillModel
    from agents.sanitation.views import fill_color

    levels = {"B-none": None, "B-low": 0.2, "B-half": 0.5, "B-high": 0.85, "B-full": 1.2}
    for i, (code, level) in enumerate(levels.items()):
        b = Bin.objects.create(code=code, geom=Point(LON + i * 0.0002, LAT, srid=4326), capacity_l=240)
        FillModel.objects.create(bin=b, forecast_fill=level)
    Bin.objects.create(code="B-gone", geom=Point(LON, LAT + 0.0002, srid=4326), capacity_l=240, active=False)
    z = 15
    x, y = tile_of(LON, LAT, z)
    layer = mvt_decode(_tile(client_for("dispatcher", users), "sanitation-bins", z, x, y).content)["sanitation-bins"]
    assert {f["properties"]["title"]: f["properties"]["color"] for f in layer} == {
        code: fill_color(level) for code, level in levels.items()}
