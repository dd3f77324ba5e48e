"""Coordinates, boxes and geometries from outside, checked before GEOS, GDAL or PostGIS sees them.

Every entry point (the API, console and admin forms, files: GTFS stops, sensor stations, photo EXIF, GPX
tracks, VRP instances) passes what it received through these functions first. Each raises one
`GeometryInputError` (a `ValueError`) whose text is the reason a person can act on; the caller turns it into a
400 or a rejected row with its line number.

Why before GEOS, not after: GEOS's WKT writer formats a coordinate like 1e200 into a fixed buffer and aborts the
whole web process ("stack smashing detected"), and every closure or bbox goes through WKT on its way to
PostGIS. So GeoJSON is parsed here with `json` and its coordinates checked recursively before a GEOSGeometry is
built, and nothing unbounded is ever handed to GEOS.

Plain functions and no Django at import time: the Django-free domain cores (GTFS, VRP readers) use the number
checks too; only `city_extent` and `city_check` read the database (lazily).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence

LON_RANGE = (-180.0, 180.0)
LAT_RANGE = (-90.0, 90.0)
# Metres per degree of latitude (and of longitude at the equator): precise enough for a margin check.
M_PER_DEGREE = 111_320.0
# A margin around the city's road network for writes that place something in the city (closures, photos,
# work orders, sensors placed by hand): a bin or a pump just past the last mapped road is still the city's.
DEFAULT_CITY_MARGIN_M = 2_000.0
# Upper bound on any number in a geometry text (WKT/EWKT) before GEOS parses it: far above every projected
# coordinate on Earth (metres or feet), far below what overflows GEOS's writer.
MAX_ABS_COORDINATE = 1e9

GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                            "GeometryCollection"})


class GeometryInputError(ValueError):
    """A coordinate, box or geometry refused; the message says why, in words for the person who sent it."""


# --- numbers ---------------------------------------------------------------------------------------------------

def number_parse(value, *, what: str = "value") -> float:
    """A finite float from a number or a numeric string; "nan", "inf", 1e400 and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GeometryInputError(f"{what} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise GeometryInputError(f"{what} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise GeometryInputError(f"{what} must be a finite number, not {str(value)[:40]!r}")
    return number


def _in_range(value: float, bounds: tuple[float, float], what: str) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise GeometryInputError(f"{what} {value:.6g} is outside {bounds[0]:g}..{bounds[1]:g}")
    return value


def lonlat_check(lon, lat, *, what: str = "position") -> tuple[float, float]:
    """(lon, lat) as finite floats in WGS84 range, or GeometryInputError naming the bad one."""
    x = _in_range(number_parse(lon, what=f"{what}: longitude"), LON_RANGE, f"{what}: longitude")
    y = _in_range(number_parse(lat, what=f"{what}: latitude"), LAT_RANGE, f"{what}: latitude")
    return x, y


def bbox_parse(raw: str) -> tuple[float, float, float, float]:
    """A `minlon,minlat,maxlon,maxlat` box in WGS84 with min < max on both axes."""
    parts = str(raw).split(",")
    if len(parts) != 4:
        raise GeometryInputError("bbox: expected minlon,minlat,maxlon,maxlat")
    x1, y1 = lonlat_check(parts[0], parts[1], what="bbox min")
    x2, y2 = lonlat_check(parts[2], parts[3], what="bbox max")
    if not (x1 < x2 and y1 < y2):
        raise GeometryInputError("bbox: the minimum must be below the maximum on both axes")
    return x1, y1, x2, y2


# --- GeoJSON -----------------------------------------------------------------------------------------------------

def _position(value, path: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or not 2 <= len(value) <= 3:
        raise GeometryInputError(f"{path}: a position is [lon, lat] or [lon, lat, height]")
    return _lonlat_height(*value, what=path)


def _lonlat_height(lon, lat, height=None, *, what: str) -> tuple[float, float]:
    """(lon, lat) checked, and a height, when there is one, finite and bounded (GEOS writes it too)."""
    point = lonlat_check(lon, lat, what=what)
    if height is not None and abs(number_parse(height, what=f"{what}: height")) > MAX_ABS_COORDINATE:
        raise GeometryInputError(f"{what}: height {height} is out of any range")
    return point


def _positions(value, path: str, *, at_least: int) -> list[tuple[float, float]]:
    if not isinstance(value, (list, tuple)):
        raise GeometryInputError(f"{path}: expected a list of positions")
    out = [_position(p, f"{path}[{i}]") for i, p in enumerate(value)]
    if len(out) < at_least:
        raise GeometryInputError(f"{path}: needs at least {at_least} positions, has {len(out)}")
    return out


def _ring(value, path: str) -> list[tuple[float, float]]:
    ring = _positions(value, path, at_least=4)
    if ring[0] != ring[-1]:
        raise GeometryInputError(f"{path}: a polygon ring must end where it starts")
    return ring


def _members(value, path: str, each) -> list:
    if not isinstance(value, (list, tuple)) or not value:
        raise GeometryInputError(f"{path}: empty (a geometry needs at least one member)")
    return [each(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _polygon(value, path: str) -> list:
    return _members(value, path, _ring)


def _geometry_coordinates(geom: dict, path: str) -> list[tuple[float, float]]:
    """Every position of a GeoJSON geometry, checked; raises on a bad or empty one."""
    if not isinstance(geom, dict):
        raise GeometryInputError(f"{path}: expected a GeoJSON geometry object")
    kind = geom.get("type")
    if kind not in GEOMETRY_TYPES:
        raise GeometryInputError(f"{path}: unknown geometry type {str(kind)[:40]!r}")
    if kind == "GeometryCollection":
        parts = _members(geom.get("geometries"), f"{path}.geometries", _geometry_coordinates)
        return [p for part in parts for p in part]
    coords, where = geom.get("coordinates"), f"{path}.coordinates"
    if kind == "Point":
        return [_position(coords, where)]
    if kind == "MultiPoint":
        return _members(coords, where, _position)
    if kind == "LineString":
        return _positions(coords, where, at_least=2)
    if kind == "MultiLineString":
        lines = _members(coords, where, lambda v, p: _positions(v, p, at_least=2))
    elif kind == "Polygon":
        lines = _polygon(coords, where)
    else:
        polygons = _members(coords, where, _polygon)
        lines = [ring for polygon in polygons for ring in polygon]
    return [p for line in lines for p in line]


def geojson_check(raw, *, types: Iterable[str] | None = None, what: str = "geometry") -> dict:
    """A GeoJSON geometry (a dict or its JSON text) whose every coordinate is finite and in WGS84 range, with at
    least one position, of one of `types` when given. Returns the geometry as a dict."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise GeometryInputError(f"{what}: not JSON ({exc})") from None
    if isinstance(raw, dict) and raw.get("type") == "Feature":
        raw = raw.get("geometry")
    _geometry_coordinates(raw, what)
    allowed = frozenset(types or GEOMETRY_TYPES)
    if raw["type"] not in allowed:
        raise GeometryInputError(f"{what}: a {raw['type']} where {' or '.join(sorted(allowed))} is expected")
    return raw


def geometry_from_geojson(raw, *, types: Iterable[str] | None = None, what: str = "geometry"):
    """A valid, non-empty GEOSGeometry (SRID 4326) from checked GeoJSON; invalid shapes (a self-intersecting
    polygon) are refused with GEOS's reason. GEOS only ever sees coordinates that passed `geojson_check`."""
    from django.contrib.gis.geos import GEOSException, GEOSGeometry

    checked = geojson_check(raw, types=types, what=what)
    try:
        geom = GEOSGeometry(json.dumps(checked), srid=4326)
    except (GEOSException, ValueError) as exc:
        raise GeometryInputError(f"{what}: not a GeoJSON geometry ({exc})") from None
    return geometry_valid_check(geom, what=what)


def geometry_valid_check(geom, *, what: str = "geometry"):
    """The geometry itself when it is non-empty and valid (OGC rules), else GeometryInputError with the reason."""
    if geom.empty:
        raise GeometryInputError(f"{what}: empty")
    if not geom.valid:
        raise GeometryInputError(f"{what}: not a valid shape ({geom.valid_reason})")
    return geom


# --- geometry text (WKT / EWKT, the admin's fields) --------------------------------------------------------------

_NUMBER_TOKEN = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf|infinity)\b",
                           re.IGNORECASE)


def geometry_text_check(text: str, *, what: str = "geometry") -> str:
    """WKT/EWKT or GeoJSON text whose numbers are all finite and bounded, so GEOS may parse it. GeoJSON goes
    through `geojson_check`; hex WKB is refused (its numbers cannot be read without decoding it)."""
    text = str(text or "").strip()
    if text.startswith("{"):
        geojson_check(text, what=what)
        return text
    if re.fullmatch(r"[0-9A-Fa-f]+", text):
        raise GeometryInputError(f"{what}: paste WKT, EWKT or GeoJSON, not hex WKB")
    for token in _NUMBER_TOKEN.findall(text):
        value = number_parse(token, what=what)
        if abs(value) > MAX_ABS_COORDINATE:
            raise GeometryInputError(f"{what}: the number {token[:40]} is out of any coordinate range")
    return text


def geometry_coords_check(geom, *, what: str = "geometry"):
    """A GEOSGeometry read back from GEOS (an admin form, a transformed shape): every coordinate finite and in
    WGS84 range. Reading coordinates is safe; only writing WKT of unbounded ones aborts GEOS."""
    _geos_points(geom, what=what)
    return geom


def _geos_points(geom, *, what: str) -> list[tuple[float, float]]:
    if geom.empty:
        raise GeometryInputError(f"{what}: empty")
    return [_lonlat_height(*xyz, what=what) for xyz in _flat_coords(geom.coords)]


def _flat_coords(coords) -> Iterable[Sequence[float]]:
    if coords and isinstance(coords[0], (int, float)):
        yield coords
        return
    for item in coords:
        yield from _flat_coords(item)


# --- the city --------------------------------------------------------------------------------------------------

def extent_of(points: Iterable[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = zip(*points, strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def city_extent() -> tuple[float, float, float, float] | None:
    """The city's extent (minlon, minlat, maxlon, maxlat): the box around its road network, computed in SQL
    (an empty or broken stored box reads as None, never as an error). One indexed row, so it is read each
    time rather than cached: a network import changes it and must be seen at once."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_XMin(bounds), ST_YMin(bounds), ST_XMax(bounds), ST_YMax(bounds) FROM city_cityprofile "
            "WHERE bounds IS NOT NULL AND NOT ST_IsEmpty(bounds) ORDER BY id LIMIT 1")
        row = cur.fetchone()
    if row is None or not all(v is not None and math.isfinite(v) for v in row):
        return None
    return tuple(float(v) for v in row)


def _outside_m(extent: Sequence[float], city: Sequence[float]) -> float:
    """How far (metres, roughly) the box `extent` reaches beyond the box `city`; 0 when inside."""
    mid_lat = math.radians((city[1] + city[3]) / 2)
    dx = max(city[0] - extent[0], extent[2] - city[2], 0.0) * M_PER_DEGREE * max(math.cos(mid_lat), 0.01)
    dy = max(city[1] - extent[1], extent[3] - city[3], 0.0) * M_PER_DEGREE
    return math.hypot(dx, dy)


def city_check(points: Iterable[tuple[float, float]], *, what: str = "geometry",
               margin_m: float | None = None) -> None:
    """Refuse checked WGS84 positions that reach further than `margin_m` outside the city's extent. With no city
    loaded every position is accepted: there is nothing to compare with."""
    city = city_extent()
    if city is None:
        return
    if margin_m is None:
        from django.conf import settings

        margin_m = float(getattr(settings, "CITY_EXTENT_MARGIN_M", DEFAULT_CITY_MARGIN_M))
    outside = _outside_m(extent_of(points), city)
    if outside > margin_m:
        raise GeometryInputError(
            f"{what} is {outside / 1000:.1f} km outside the city (allowed: {margin_m / 1000:.1f} km beyond its roads)")


def city_point_check(lon, lat, *, what: str = "position", margin_m: float | None = None) -> tuple[float, float]:
    """A hand-placed position: finite, in range and within the city (plus the margin)."""
    point = lonlat_check(lon, lat, what=what)
    city_check([point], what=what, margin_m=margin_m)
    return point


def city_geometry_from_geojson(raw, *, types: Iterable[str] | None = None, what: str = "geometry",
                               margin_m: float | None = None):
    """A valid, non-empty GEOSGeometry from GeoJSON that lies within the city (plus the margin)."""
    checked = geojson_check(raw, types=types, what=what)
    city_check(_geometry_coordinates(checked, what), what=what, margin_m=margin_m)
    return geometry_from_geojson(checked, types=types, what=what)


def city_geometry_check(geom, *, what: str = "geometry", margin_m: float | None = None):
    """A GEOSGeometry (from a form) with finite WGS84 coordinates that lies within the city (plus the margin)."""
    city_check(_geos_points(geom, what=what), what=what, margin_m=margin_m)
    return geom


DRAWABLE_SQL = ("{col} IS NOT NULL AND NOT ST_IsEmpty({col}) AND ST_XMin({col}) >= -180 AND ST_XMax({col}) <= 180 "
                "AND ST_YMin({col}) >= -90 AND ST_YMax({col}) <= 90")


def drawable_sql(column: str) -> str:
    """A SQL condition true for a stored geometry a map can draw (non-empty, finite, in WGS84 range): layers and
    pages filter on it so a row written around the services (or before these checks) cannot break them."""
    return DRAWABLE_SQL.format(col=column)


def extent_sql(column: str) -> str:
    """SQL for a stored geometry's extent as 'minlon,minlat,maxlon,maxlat' text, NULL where it cannot be drawn
    (pages zoom to it; an empty or broken row then has no zoom button rather than breaking the page)."""
    return (f"CASE WHEN {drawable_sql(column)} THEN concat_ws(',', round(ST_XMin({column})::numeric, 6), "
            f"round(ST_YMin({column})::numeric, 6), round(ST_XMax({column})::numeric, 6), "
            f"round(ST_YMax({column})::numeric, 6)) END")
