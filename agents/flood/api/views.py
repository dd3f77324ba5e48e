"""Flood API views. Each names its permission: gateways post readings with a token scoped
`flood.readings:write` (dispatchers may too), crews and dispatchers read the map layers, dispatchers act on
alerts and import CAP. The CAP documents and the ATOM feed of active alerts are public on purpose, as a
warning agency's feed is (read-only, no personal data)."""
from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.models import ApiClient
from city_ops.core.parsers import MultiPartParser
from city_ops.core.permissions import IsCrewOrDispatcher, IsDispatcher, scope_permission
from city_ops.core.roles import Role, user_has_role

from ..domain import CapError, ReadingsFormatError
from ..domain.cap import CAP_MIME
from ..domain.vocabulary import Level
from ..models import Alert, Sensor
from ..selectors import hydrograph, open_alerts, sensors_geojson, zones_geojson
from ..services import (
    alert_acknowledge,
    alert_cap_xml,
    alert_escalate,
    alerts_atom_xml,
    cap_import,
    cap_xsd_default,
    closure_lift_confirm,
    readings_ingest,
)
from .serializers import (
    AlertDetailSerializer,
    AlertSerializer,
    CapImportSerializer,
    EscalateSerializer,
    IngestResultSerializer,
)


class RawBodyParser(BaseParser):
    """Any body as bytes: readings files (CSV, JSON, EA, RDB, WaterML) and CAP XML are detected from their
    content by the core, not from the Content-Type a gateway happens to send."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


def _body(request) -> bytes:
    upload = request.FILES.get("file") if hasattr(request, "FILES") else None
    if upload is not None:
        return upload.read()
    data = request.data
    return data if isinstance(data, bytes) else b""


class ReadingsIngestView(APIView):
    """Post readings (a file's content as the body, or a multipart `file`). Query: `format` to force one,
    `tz` for times without an offset, `sensor` for EA telemetry that does not name its gauge,
    `create_sensors=1` (dispatchers only) to register unknown stations. Answers the ingest summary."""

    permission_classes = [scope_permission("flood.readings:write", Role.DISPATCHER)]
    parser_classes = [MultiPartParser, RawBodyParser]

    @extend_schema(request={"text/csv": bytes, "application/json": bytes}, responses={200: IngestResultSerializer},
                   parameters=[OpenApiParameter("format", str), OpenApiParameter("tz", str),
                               OpenApiParameter("sensor", str), OpenApiParameter("create_sensors", bool)])
    def post(self, request):
        create = request.query_params.get("create_sensors", "") in ("1", "true", "yes")
        if create and (isinstance(request.auth, ApiClient) or not user_has_role(request.user, Role.DISPATCHER)):
            raise PermissionDenied("only a dispatcher may register sensors from a file")
        data = _body(request)
        if not data.strip():
            return Response({"detail": "empty body: post the readings file's content"},
                            status=status.HTTP_400_BAD_REQUEST)
        source = request.auth.name if isinstance(request.auth, ApiClient) else request.user.username
        try:
            result = readings_ingest(data=data, fmt=request.query_params.get("format") or None,
                                     tz=request.query_params.get("tz") or None,
                                     sensor=request.query_params.get("sensor") or None, create_sensors=create,
                                     source=f"api:{source}")
        except ReadingsFormatError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if not result.recognised:
            return Response({"detail": f"no readings found in the body (read as {result.format})"},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(result.as_dict())


class SensorLayerView(APIView):
    """Sensors as GeoJSON, coloured by state (grey in fault, the alert level's colour, green when calm)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(sensors_geojson())


class ZoneLayerView(APIView):
    """Flood zones as GeoJSON with their level and standby state."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(zones_geojson())


class HydrographView(APIView):
    """A sensor's series over the last `hours` (default 24) with thresholds and QC-flagged readings."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(parameters=[OpenApiParameter("hours", float)], responses={200: dict})
    def get(self, request, pk: int):
        sensor = get_object_or_404(Sensor.objects.restrict(request.user, "view"), pk=pk)
        try:
            hours = float(request.query_params.get("hours", 24))
        except ValueError:
            hours = 24.0
        if math.isnan(hours):  # every comparison lets NaN through the clamp below
            hours = 24.0
        hours = min(max(hours, 0.5), 24 * 31)
        return Response(hydrograph(sensor=sensor, hours=hours))


class AlertListView(APIView):
    """Open alerts, most severe first (`?status=all` for the last 200 of every status)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(parameters=[OpenApiParameter("status", str)], responses={200: AlertSerializer(many=True)})
    def get(self, request):
        if request.query_params.get("status") == "all":
            qs = Alert.objects.restrict(request.user).select_related("zone", "sensor", "acknowledged_by")[:200]
        else:
            qs = open_alerts().restrict(request.user)
        return Response(AlertSerializer(qs, many=True).data)


class AlertDetailView(APIView):
    """One alert with its audit trail (every state change: readings, rule, person)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: AlertDetailSerializer})
    def get(self, request, pk: int):
        alert = get_object_or_404(Alert.objects.restrict(request.user).select_related("zone"), pk=pk)
        return Response(AlertDetailSerializer(alert).data)


def _action(fn, request, pk: int, **kwargs):
    alert = get_object_or_404(Alert.objects.restrict(request.user, "change"), pk=pk)
    try:
        alert = fn(alert=alert, user=request.user, **kwargs)
    except ValidationError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    return Response(AlertSerializer(alert).data)


class AlertAcknowledgeView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=None, responses={200: AlertSerializer})
    def post(self, request, pk: int):
        return _action(alert_acknowledge, request, pk)


class AlertEscalateView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=EscalateSerializer, responses={200: AlertSerializer})
    def post(self, request, pk: int):
        s = EscalateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        level = s.validated_data.get("level")
        return _action(alert_escalate, request, pk, level=int(Level.parse(level)) if level else None,
                       note=s.validated_data.get("note", ""))


class ClosureLiftConfirmView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=None, responses={200: AlertSerializer})
    def post(self, request, pk: int):
        return _action(closure_lift_confirm, request, pk)


class AlertCapView(APIView):
    """The alert's latest CAP 1.2 message (Alert, Update or Cancel, with references). Public."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={(200, CAP_MIME): bytes})
    def get(self, request, pk: int):
        alert = get_object_or_404(Alert.objects.select_related("zone"), pk=pk)
        try:
            xml = alert_cap_xml(alert=alert)
        except ValueError:
            return HttpResponse(status=404)
        return HttpResponse(xml, content_type=f"{CAP_MIME}; charset=utf-8")


class AlertAtomView(APIView):
    """ATOM feed of the active alerts, each entry linking its CAP document. Public."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={(200, "application/atom+xml"): bytes})
    def get(self, request):
        xml = alerts_atom_xml(
            cap_url_for=lambda a: request.build_absolute_uri(reverse("flood-api:alert-cap", args=[a.pk])),
            self_url=request.build_absolute_uri(reverse("flood-api:alerts-atom")))
        return HttpResponse(xml, content_type="application/atom+xml; charset=utf-8")


class CapImportView(APIView):
    """Import a CAP message from the weather service (the XML as the body, or a multipart `file`); a
    rainstorm warning puts the zones its area covers on standby. Refused messages answer 400 with why."""

    permission_classes = [IsDispatcher]
    parser_classes = [MultiPartParser, RawBodyParser]

    @extend_schema(request={CAP_MIME: bytes}, responses={201: CapImportSerializer})
    def post(self, request):
        data = _body(request)
        if not data.strip():
            return Response({"detail": "empty body: post the CAP XML"}, status=status.HTTP_400_BAD_REQUEST)
        try:
            record = cap_import(data=data, xsd_path=cap_xsd_default(), user=request.user)
        except CapError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CapImportSerializer(record).data, status=status.HTTP_201_CREATED)
