"""City layers as GeoJSON for the console map and API clients (roads, closures, districts, places)."""
from __future__ import annotations

import json

from django.contrib.gis.geos import Polygon
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.permissions import IsCrewOrDispatcher, IsDispatcher

from ..geovalidate import (
    GeometryInputError,
    bbox_parse,
    city_geometry_from_geojson,
    drawable_sql,
    lonlat_check,
)
from ..maplayers import (
    LayerRequestError,
    MapSource,
    map_sources,
    source_geojson,
    source_tile_cached,
    viewport_parse,
)
from ..mapsources import network_version
from ..models import RoadClosure
from ..network import NoRouteError, road_network
from ..services import closure_create, closure_lift


def checked(field: str, check, *args, **kwargs):
    """Run a geovalidate check; its GeometryInputError becomes a 400 naming the field and the reason."""
    try:
        return check(*args, **kwargs)
    except GeometryInputError as exc:
        raise serializers.ValidationError({field: str(exc)}) from None


def _bbox(request) -> Polygon | None:
    raw = request.query_params.get("bbox")
    if not raw:
        return None
    return Polygon.from_bbox(checked("bbox", bbox_parse, raw))


def _feature_collection(sql: str, params: list) -> dict:
    """Build GeoJSON in PostGIS (ST_AsGeoJSON): far faster than serialising geometry in Python. Rows a map cannot
    draw (empty, non-finite or out-of-range geometry, however they were stored) are left out, not an error."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT coalesce(json_agg(json_build_object('type','Feature','id',t.id,"
            f"'geometry',ST_AsGeoJSON(t.geom, 6)::json,'properties',t.props)), '[]'::json) FROM ({sql}) t "
            f"WHERE {drawable_sql('t.geom')}",
            params,
        )
        features = cur.fetchone()[0]
    if isinstance(features, str):
        features = json.loads(features)
    return {"type": "FeatureCollection", "features": features}


class RoadLayerView(APIView):
    """The drivable road network (the console's base layer when no tile server is configured)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(parameters=[OpenApiParameter("bbox", str, description="minlon,minlat,maxlon,maxlat")],
                   responses={200: dict})
    def get(self, request):
        bbox = _bbox(request)
        # The key names the database and the import (version + time), so two databases or test runs sharing
        # one Redis never serve each other's network.
        key = f"roads:{connection.settings_dict['NAME']}:{network_version()}:{request.query_params.get('bbox', '')}"
        data = cache.get(key)
        if data is None:
            where, params = "", []
            if bbox is not None:
                where, params = "WHERE s.geom && ST_GeomFromEWKT(%s)", [f"SRID=4326;{bbox.wkt}"]
            data = _feature_collection(
                "SELECT s.id, s.geom, json_build_object('name', s.name, 'class', s.road_class, "
                "'oneway', s.oneway, 'speed', s.speed_kph, 'length_m', round(s.length_m::numeric, 1)) AS props "
                f"FROM city_roadsegment s {where}", params)
            cache.set(key, data, 3600)
        return Response(data)


def _map_source(request, layer: str) -> MapSource:
    """The layer's source, or 404 (no such layer) / 403 (the user's role does not see it)."""
    source = map_sources().get(layer)
    if source is None:
        raise Http404(f"no map layer {layer!r}")
    if not source.allows(request.user):
        raise PermissionDenied("Your role does not allow this layer.")
    return source


class MapTileView(APIView):
    """One layer as a Mapbox vector tile (`ST_AsMVT`) at z/x/y: what the console map draws at any city size.
    The header X-Truncated says the feature cap cut the tile; an empty tile is a 204."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={(200, "application/vnd.mapbox-vector-tile"): bytes, 204: None})
    def get(self, request, layer: str, z: int, x: int, y: int):
        source = _map_source(request, layer)
        try:
            data, truncated = source_tile_cached(source, user=request.user, z=z, x=x, y=y)
        except LayerRequestError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        response = HttpResponse(data, status=200 if data else 204, content_type="application/vnd.mapbox-vector-tile")
        # Private: a tile follows the user's role. The browser keeps it as long as the server's cache does.
        response["Cache-Control"] = f"private, max-age={3600 if source.version else source.ttl}"
        response["X-Truncated"] = "1" if truncated else "0"
        return response


class MapFeaturesView(APIView):
    """One layer as GeoJSON for a viewport: `bbox` and `zoom` required, geometry simplified for the zoom, at
    most the layer's cap of features (`truncated: true` when there were more)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(parameters=[OpenApiParameter("bbox", str, required=True, description="minlon,minlat,maxlon,maxlat"),
                               OpenApiParameter("zoom", int, required=True, description="0 to 22")],
                   responses={200: dict})
    def get(self, request, layer: str):
        source = _map_source(request, layer)
        try:
            bbox, zoom = viewport_parse(request.query_params.get("bbox"), request.query_params.get("zoom"))
        except LayerRequestError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(source_geojson(source, user=request.user, bbox=bbox, zoom=zoom))


class DistrictLayerView(APIView):
    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(_feature_collection(
            "SELECT id, geom, json_build_object('name', name, 'code', code, 'synthetic', synthetic) AS props "
            "FROM city_district", []))


class PlaceLayerView(APIView):
    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(_feature_collection(
            "SELECT id, geom, json_build_object('name', name, 'kind', kind, 'synthetic', synthetic) AS props "
            "FROM city_place", []))


class ClosureSerializer(serializers.Serializer):
    geometry = serializers.JSONField(help_text="GeoJSON geometry (lon/lat)")
    reason = serializers.CharField(max_length=200)
    valid_to = serializers.DateTimeField(required=False, allow_null=True)


class ClosureLayerView(APIView):
    """Active closures (GET: crews and dispatchers); dispatchers may close a road by hand (POST)."""

    permission_classes = [IsCrewOrDispatcher]

    def get_permissions(self):
        return [IsDispatcher()] if self.request.method == "POST" else [IsCrewOrDispatcher()]

    @extend_schema(responses={200: dict})
    def get(self, request):
        ids = list(RoadClosure.objects.active().restrict(request.user, "view").values_list("id", flat=True))
        return Response(_feature_collection(
            "SELECT c.id, c.geom, json_build_object('reason', c.reason, 'source', c.source_agent, "
            "'valid_from', c.valid_from, 'valid_to', c.valid_to, "
            "'segments', (SELECT count(*) FROM city_roadclosure_segments cs WHERE cs.roadclosure_id = c.id)) AS props "
            "FROM city_roadclosure c WHERE c.id = ANY(%s)", [ids]))

    @extend_schema(request=ClosureSerializer, responses={201: dict})
    def post(self, request):
        s = ClosureSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        geom = checked("geometry", city_geometry_from_geojson, s.validated_data["geometry"], what="the closure")
        closure = checked("geometry", closure_create, geom=geom, reason=s.validated_data["reason"],
                          source_agent="dispatcher", valid_to=s.validated_data.get("valid_to"), user=request.user)
        return Response({"id": closure.pk, "segments": closure.segments.count()}, status=status.HTTP_201_CREATED)


class ClosureLiftView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, pk: int):
        closure = RoadClosure.objects.restrict(request.user, "change").filter(pk=pk).first()
        if closure is None:
            return Response({"detail": "no such closure"}, status=status.HTTP_404_NOT_FOUND)
        closure = closure_lift(closure=closure, user=request.user, source_agent="dispatcher")
        return Response({"id": closure.pk, "valid_to": closure.valid_to})


class LonLatField(serializers.ListField):
    """A [lon, lat] pair, finite and in WGS84 range (geovalidate), e.g. [24.94, 60.17]."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.FloatField(), min_length=2, max_length=2, **kwargs)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if len(values) != 2:  # DRF checks min/max_length after this method: a short list must not reach [1]
            raise serializers.ValidationError(f"expected [lon, lat], got {len(values)} number(s)")
        try:
            return lonlat_check(values[0], values[1], what=self.field_name)
        except GeometryInputError as exc:
            raise serializers.ValidationError(str(exc)) from None


class RouteSerializer(serializers.Serializer):
    origin = LonLatField()
    destination = LonLatField()


class RouteView(APIView):
    """Fastest open route between two [lon, lat] points, closures honoured."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(request=RouteSerializer, responses={200: dict})
    def post(self, request):
        s = RouteSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            path = road_network().path(s.validated_data["origin"], s.validated_data["destination"])
        except NoRouteError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response({"length_m": round(path.length_m, 1), "time_s": round(path.time_s, 1),
                         "segments": path.segment_ids,
                         "geometry": {"type": "LineString", "coordinates": path.coords}})
