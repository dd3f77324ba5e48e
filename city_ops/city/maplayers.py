"""The console map's layers at city scale: Mapbox vector tiles (`ST_AsMVT`) and, for comparison and for API
clients that want features, zoom-dependent simplified GeoJSON for a bounding box. Both read the same
`MapSource` (a restricted queryset per user and zoom), cap the features per response and say when the cap cut
them off.

Why a cap: a viewport of the whole scale-250 city holds 250,000 road segments; no response should carry them
all. Sources thin themselves by zoom first (the roads keep their major classes when the city is in view), so
the cap is a guard for the densest places, not the normal case. Why tiles for the console: a tile's address
(layer, z, x, y) is the same for every client and every pan, so a tile made once is served from the cache
to everyone until the data's version changes (docs/deploy.md, "City scale": the measurements).

Sources come from the platform (`PLATFORM_SOURCES`) and from agents (`Agent.map_sources`); a source's `id` is
its map layer's id, so the console knows which layers have tiles.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.gis.geos import Polygon
from django.core.cache import cache
from django.db import connection
from django.db.models import Expression, F, QuerySet

from city_ops.core.roles import Role, user_has_role

from .geovalidate import GeometryInputError, bbox_parse, drawable_sql

TILE_EXTENT = 4096  # MVT coordinate grid per tile side (the format's default)
TILE_BUFFER = 64  # grid units drawn past the tile's edge so lines and point symbols join across tiles
MIN_ZOOM, MAX_ZOOM = 0, 22
DEFAULT_CAP = 5000


class LayerRequestError(ValueError):
    """A viewport or tile address refused; the text says why (the API answers 400 with it)."""


@dataclass(frozen=True)
class MapSource:
    """One map layer's rows. `rows(user, zoom)` returns the restricted queryset (thinned by zoom where the
    layer is dense); `props` names the attributes each feature carries (expressions over that queryset).
    `shared` says every user the roles admit sees the same rows, so one cached tile serves them all.
    `version` names the data's state for cache keys (e.g. the road network's import); `ttl` bounds how long
    a cached tile lives when the data has no version (live layers). `console_tiles` False keeps the console
    drawing the layer from its GeoJSON url (tiles stay available to API clients)."""

    id: str
    rows: Callable[[object, int], QuerySet]
    geom: str
    props: dict[str, Expression | F] = field(default_factory=dict)
    roles: tuple[Role, ...] = (Role.DISPATCHER, Role.FIELD_CREW)
    cap: int = DEFAULT_CAP
    shared: bool = True
    ttl: int = 30
    version: Callable[[], str] | None = None
    console_tiles: bool = True

    def allows(self, user) -> bool:
        return user_has_role(user, *self.roles)


# --- where: tiles and viewports -----------------------------------------------------------------------------

def zoom_parse(raw) -> int:
    try:
        z = int(str(raw))
    except (TypeError, ValueError):
        raise LayerRequestError(f"zoom: expected a whole number from {MIN_ZOOM} to {MAX_ZOOM}") from None
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise LayerRequestError(f"zoom: {z} is outside {MIN_ZOOM} to {MAX_ZOOM}")
    return z


def tile_check(z: int, x: int, y: int) -> None:
    zoom_parse(z)
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise LayerRequestError(f"tile {z}/{x}/{y}: x and y must be from 0 to {2 ** z - 1} at zoom {z}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's (minlon, minlat, maxlon, maxlat) in WGS84 (Web Mercator tiling, y down from the north)."""
    n = 2 ** z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def _buffered(bounds: tuple[float, float, float, float], share: float) -> Polygon:
    x1, y1, x2, y2 = bounds
    dx, dy = (x2 - x1) * share, (y2 - y1) * share
    return Polygon.from_bbox((max(x1 - dx, -180), max(y1 - dy, -85.06), min(x2 + dx, 180), min(y2 + dy, 85.06)))


def viewport_parse(bbox_raw: str | None, zoom_raw: str | None) -> tuple[tuple[float, float, float, float], int]:
    """The GeoJSON layers' viewport: both a bbox and a zoom are required (a whole city in one response is
    what the cap exists to prevent)."""
    if not bbox_raw:
        raise LayerRequestError("bbox: required (minlon,minlat,maxlon,maxlat)")
    if zoom_raw in (None, ""):
        raise LayerRequestError("zoom: required")
    try:
        bbox = bbox_parse(bbox_raw)
    except GeometryInputError as exc:
        raise LayerRequestError(str(exc)) from None
    return bbox, zoom_parse(zoom_raw)


def simplify_tolerance(zoom: int) -> float:
    """Half a screen pixel at `zoom`, in degrees: what ST_Simplify may drop without a visible change."""
    return 360.0 / (256 * 2 ** zoom) / 2


# --- the rows, as SQL ----------------------------------------------------------------------------------------

def _rows_sql(source: MapSource, *, user, zoom: int, area: Polygon) -> tuple[str, list]:
    """The source's rows inside `area` as SQL with columns map_id, map_geom and one per property, cap + 1 of
    them (the extra row tells that the cap cut the layer). Built from the queryset, so `restrict` holds."""
    qs = source.rows(user, zoom).filter(**{f"{source.geom}__bboverlaps": area})
    qs = qs.annotate(map_id=F("pk"), map_geom=F(source.geom),
                     **{f"map_p_{name}": expr for name, expr in source.props.items()})
    qs = qs.order_by().values("map_id", "map_geom", *(f"map_p_{name}" for name in source.props))[:source.cap + 1]
    sql, params = qs.query.sql_with_params()
    return sql, list(params)


def _props_sql(source: MapSource) -> str:
    return "".join(f', q."map_p_{name}" AS "{name}"' for name in source.props)


def source_tile(source: MapSource, *, user, z: int, x: int, y: int) -> tuple[bytes, bool]:
    """The MVT tile (one layer named after the source) and whether the cap cut it. An empty tile is b""."""
    tile_check(z, x, y)
    rows, params = _rows_sql(source, user=user, zoom=z, area=_buffered(tile_bounds(z, x, y),
                                                                       TILE_BUFFER / TILE_EXTENT))
    # The first feature of a cut tile carries `truncated: true` (a null property is left out of an MVT, so
    # the others carry nothing): the map reads it where it styles features and tells the user to zoom in.
    sql = (
        f"WITH q AS MATERIALIZED ({rows}), n AS (SELECT count(*) > %s AS cut FROM q) "
        f"SELECT (SELECT cut FROM n), (SELECT ST_AsMVT(t, %s, {TILE_EXTENT}, 'geom', 'id') FROM ("
        f"SELECT g.*, CASE WHEN n.cut AND row_number() OVER () = 1 THEN true END AS truncated FROM n, ("
        f"SELECT q.map_id AS id{_props_sql(source)}, ST_AsMVTGeom(ST_Transform(q.map_geom, 3857), "
        f"ST_TileEnvelope(%s, %s, %s), {TILE_EXTENT}, {TILE_BUFFER}, true) AS geom "
        f"FROM q WHERE {drawable_sql('q.map_geom')} LIMIT %s) g WHERE g.geom IS NOT NULL) t)"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*params, source.cap, source.id, z, x, y, source.cap])
        truncated, data = cur.fetchone()
    return bytes(data or b""), bool(truncated)


def source_geojson(source: MapSource, *, user, bbox: tuple[float, float, float, float], zoom: int) -> dict:
    """The source's features in `bbox` as a FeatureCollection, geometry simplified for `zoom` in PostGIS,
    at most `cap` of them; `truncated` says whether there were more."""
    rows, params = _rows_sql(source, user=user, zoom=zoom, area=Polygon.from_bbox(bbox))
    props = ",".join(f"'{name}', q.\"map_p_{name}\"" for name in source.props)
    sql = (
        f"WITH q AS MATERIALIZED ({rows}) SELECT (SELECT count(*) FROM q) > %s, "
        f"(SELECT coalesce(json_agg(json_build_object('type', 'Feature', 'id', q.map_id, 'geometry', "
        f"ST_AsGeoJSON(ST_Simplify(q.map_geom, %s, true), 6)::json, 'properties', json_build_object({props}))), "
        f"'[]'::json) FROM (SELECT * FROM q WHERE {drawable_sql('q.map_geom')} LIMIT %s) q)"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*params, source.cap, simplify_tolerance(zoom), source.cap])
        truncated, features = cur.fetchone()
    if isinstance(features, str):
        features = json.loads(features)
    return {"type": "FeatureCollection", "features": features, "truncated": bool(truncated),
            "cap": source.cap, "zoom": zoom}


# --- the cache --------------------------------------------------------------------------------------------

def tile_cache_key(source: MapSource, *, user, z: int, x: int, y: int) -> str:
    """Names the database, the source, the data's version and (for a source whose rows depend on the user)
    the user, so two databases, two versions or two crews never share a tile."""
    version = source.version() if source.version else "live"
    who = "all" if source.shared else f"u{user.pk}"
    raw = f"{connection.settings_dict['NAME']}:{source.id}:{version}:{who}:{z}/{x}/{y}"
    return "maptile:" + hashlib.sha1(raw.encode()).hexdigest()


def source_tile_cached(source: MapSource, *, user, z: int, x: int, y: int) -> tuple[bytes, bool]:
    key = tile_cache_key(source, user=user, z=z, x=x, y=y)
    hit = cache.get(key)
    if hit is not None:
        return hit
    made = source_tile(source, user=user, z=z, x=x, y=y)
    # Versioned data (the road network) keeps its tiles an hour; live layers only for their ttl.
    cache.set(key, made, 3600 if source.version else source.ttl)
    return made


# --- the registry -----------------------------------------------------------------------------------------

def map_sources() -> dict[str, MapSource]:
    """Every layer with tiles: the platform's and each agent's `map_sources`, by layer id."""
    from agents.runtime.registry import agents_all

    from .mapsources import PLATFORM_SOURCES

    sources = {s.id: s for s in PLATFORM_SOURCES}
    for agent in agents_all():
        for source in getattr(agent, "map_sources", ()) or ():
            sources.setdefault(source.id, source)
    return sources
