"""The bus agent's API. Dispatchers upload feeds and run, edit and approve plans; machine clients with the
`bus.positions:write` scope post vehicle positions; crews and dispatchers read the map layers. The two
GTFS-Realtime feeds are public on purpose, as an agency's are: riders' apps read them without an account."""
from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.bus.conf import conf
from agents.runtime.models import AgentRun
from agents.runtime.services import RunParamsError, agent_run_request
from city_ops.core.permissions import IsCrewOrDispatcher, IsDispatcher, scope_permission
from city_ops.core.query import whole_number
from city_ops.core.roles import Role
from city_ops.core.throttling import RunStartThrottle

from ..domain.realtime import RealtimeError
from ..models import Block, Detour, Feed, HeadwayWarning, VehiclePlan
from ..selectors import detours_geojson, routes_geojson, stops_geojson, vehicles_geojson
from ..services.detours import alerts_message, trip_updates_message
from ..services.feeds import FeedImportError, feed_import
from ..services.plans import (
    block_assign,
    plan_approve,
    plan_blocks_lock,
    plan_csv,
    plan_gtfs_zip,
    plan_reoptimise,
    plan_trip_move,
)
from ..services.realtime import positions_ingest, warning_decide
from ..tasks import evaluate_positions_enqueue
from . import serializers as s


def _messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def feed_upload_max_bytes() -> int:
    return int(conf("BUS_FEED_MAX_UPLOAD_BYTES"))


# ------------------------------------------------------------------------------------------------ feeds


class FeedListView(generics.ListAPIView):
    """Imported GTFS feeds; POST a zip (multipart field `file`) to import one."""

    permission_classes = [IsDispatcher]
    serializer_class = s.BusFeedSerializer

    def get_queryset(self):
        return Feed.objects.restrict(self.request.user)

    @extend_schema(request={"multipart/form-data": s.BusFeedUploadSerializer}, responses={201: s.BusFeedSerializer})
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            return Response({"file": ["send the GTFS zip in the form field 'file'"]}, status=400)
        if upload.size > feed_upload_max_bytes():
            return Response({"file": [f"the file is {upload.size} bytes; the limit is {feed_upload_max_bytes()}"]},
                            status=413)
        form = s.BusFeedUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        replace = None
        if form.validated_data.get("replace"):
            replace = Feed.objects.restrict(request.user).filter(pk=form.validated_data["replace"]).first()
            if replace is None:
                return Response({"replace": ["no such feed"]}, status=400)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.zip"
            with open(path, "wb") as fh:
                fh.writelines(upload.chunks())
            try:
                result = feed_import(path=path, name=form.validated_data.get("name", ""),
                                     source_name=Path(upload.name).name, replace=replace, user=request.user)
            except FeedImportError as exc:
                return Response({"file": [exc.args[0]], "problems": exc.problems}, status=400)
        body = {**s.BusFeedSerializer(result.feed).data, "created": result.created, "counts": result.counts}
        return Response(body, status=201 if result.created else 200)


class FeedDetailView(generics.RetrieveAPIView):
    permission_classes = [IsDispatcher]
    serializer_class = s.BusFeedSerializer

    def get_queryset(self):
        return Feed.objects.restrict(self.request.user)


# ------------------------------------------------------------------------------------------------ plans


class PlanListView(generics.ListAPIView):
    """Vehicle plans, newest first (filter by ?feed= and ?date=). POST asks the agent for a new plan version:
    a run is queued and its id returned (202); the plan appears when the run finishes."""

    permission_classes = [IsDispatcher]
    serializer_class = s.BusPlanSerializer
    throttle_classes = [RunStartThrottle]

    def get_queryset(self):
        qs = VehiclePlan.objects.restrict(self.request.user).select_related("feed", "created_by", "approved_by",
                                                                           "depot")
        if feed := self.request.query_params.get("feed"):
            qs = qs.filter(feed_id=feed) if whole_number(feed) is not None else qs.none()
        if day := self.request.query_params.get("date"):
            qs = qs.filter(service_date=day) if len(day) == 10 else qs.none()
        return qs

    @extend_schema(request=s.BusPlanRequestSerializer, responses={202: dict})
    def post(self, request):
        form = s.BusPlanRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        d = form.validated_data
        params = {"feed_id": d["feed"].pk, "date": d["date"].isoformat()}
        if "layover_min" in d:
            params["layover_min"] = d["layover_min"]
        try:
            run, _ = agent_run_request(agent="bus", run_date=d["date"], trigger=AgentRun.Trigger.REPLAN,
                                       reason=d.get("reason") or "re-plan requested over the API", params=params,
                                       user=request.user)
        except RunParamsError as exc:
            return Response(exc.errors, status=400)
        return Response({"run": run.pk, "status": run.status}, status=202)


class PlanDetailView(generics.RetrieveAPIView):
    permission_classes = [IsDispatcher]
    serializer_class = s.BusPlanDetailSerializer

    def get_queryset(self):
        return VehiclePlan.objects.restrict(self.request.user).prefetch_related("blocks__trips")


def _plan(request, pk) -> VehiclePlan:
    return get_object_or_404(VehiclePlan.objects.restrict(request.user, "change"), pk=pk)


class PlanApproveView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=None, responses={200: s.BusPlanSerializer})
    def post(self, request, pk: int):
        try:
            plan = plan_approve(plan=_plan(request, pk), user=request.user)
        except ValidationError as exc:
            return Response({"detail": _messages(exc)}, status=409)
        return Response(s.BusPlanSerializer(plan).data)


class PlanEditView(APIView):
    """Edit a draft: move a trip, lock/unlock blocks, re-optimise the unlocked rest, assign bus and driver.
    A refused edit answers 409 with the reasons and leaves the plan unchanged."""

    permission_classes = [IsDispatcher]
    throttle_classes = [RunStartThrottle]

    @extend_schema(request=s.BusPlanEditSerializer, responses={200: s.BusPlanDetailSerializer})
    def post(self, request, pk: int):
        plan = _plan(request, pk)
        form = s.BusPlanEditSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        d = form.validated_data
        try:
            if d["action"] == "move":
                plan_trip_move(plan=plan, trip_key=d["trip_key"], to_block=d["to_block"], user=request.user)
            elif d["action"] in ("lock", "unlock"):
                plan_blocks_lock(plan=plan, sequences=d["blocks"], locked=d["action"] == "lock", user=request.user)
            elif d["action"] == "reoptimise":
                plan_reoptimise(plan=plan, user=request.user)
            else:
                block = get_object_or_404(Block, plan=plan, sequence=d["block"])
                block_assign(block=block, vehicle=d.get("vehicle"), driver=d.get("driver"), user=request.user)
        except ValidationError as exc:
            return Response({"detail": _messages(exc)}, status=409)
        plan = VehiclePlan.objects.prefetch_related("blocks__trips").get(pk=plan.pk)
        return Response(s.BusPlanDetailSerializer(plan).data)


class PlanExportView(APIView):
    """The plan as CSV (`?format=csv`, default) or as a one-day GTFS zip with block_id (`?format=gtfs`)."""

    permission_classes = [IsDispatcher]

    @extend_schema(parameters=[OpenApiParameter("as", str, enum=["csv", "gtfs"])], responses={200: bytes})
    def get(self, request, pk: int):
        plan = get_object_or_404(VehiclePlan.objects.restrict(request.user), pk=pk)
        name = f"plan_{plan.service_date:%Y%m%d}_v{plan.version}"
        if request.query_params.get("as", "csv") == "gtfs":
            resp = HttpResponse(plan_gtfs_zip(plan=plan), content_type="application/zip")
            resp["Content-Disposition"] = f'attachment; filename="{name}_gtfs.zip"'
        else:
            resp = HttpResponse(plan_csv(plan=plan), content_type="text/csv; charset=utf-8")
            resp["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return resp


# ------------------------------------------------------------------------------------------------ realtime


class PositionsIngestView(APIView):
    """Vehicle positions from an AVL gateway: a GTFS-Realtime FeedMessage (application/x-protobuf) or JSON
    pings `[{"vehicle_id", "lat", "lon", "timestamp", "route_id"?, "trip_id"?, ...}]`. Stored at once,
    evaluated on the realtime queue. `?feed=ID` names the static feed (default: the one near the buses)."""

    permission_classes = [scope_permission("bus.positions:write", Role.DISPATCHER)]

    @extend_schema(request={"application/x-protobuf": OpenApiTypes.BINARY, "application/json": OpenApiTypes.OBJECT},
                   responses={202: dict})
    def post(self, request):
        limit = int(conf("BUS_POSITIONS_MAX_BYTES"))
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            return Response({"detail": f"the body is larger than {limit} bytes"}, status=413)
        data = request.body
        if not data:
            return Response({"detail": "empty body: send a GTFS-Realtime FeedMessage or JSON pings"}, status=400)
        feed = None
        if raw := request.query_params.get("feed"):
            feed = Feed.objects.filter(pk=raw).first() if whole_number(raw) is not None else None
            if feed is None:
                return Response({"feed": [f"no imported feed has id {raw!r}"]}, status=400)
        try:
            result = positions_ingest(data=data, feed=feed, source="api", evaluate=False)
        except RealtimeError as exc:
            return Response({"detail": str(exc)}, status=400)
        if result.stored:
            evaluate_positions_enqueue(feed_id=result.feed.pk if result.feed else None)
        return Response({"stored": result.stored, "feed": result.feed.pk if result.feed else None,
                         "problems": result.problems}, status=202)


class WarningListView(generics.ListAPIView):
    """Bunching and gap warnings with their recommended action (?status=open by default; ?status=all)."""

    permission_classes = [IsDispatcher]
    serializer_class = s.BusWarningSerializer

    def get_queryset(self):
        qs = HeadwayWarning.objects.restrict(self.request.user).select_related("decided_by")
        wanted = self.request.query_params.get("status", "open")
        return qs if wanted == "all" else qs.filter(status=wanted)


class WarningDecideView(APIView):
    """Accept or dismiss a warning's advice; who and when are recorded."""

    permission_classes = [IsDispatcher]

    @extend_schema(request=s.BusWarningDecisionSerializer, responses={200: s.BusWarningSerializer})
    def post(self, request, pk: int, decision: str):
        warning = get_object_or_404(HeadwayWarning.objects.restrict(request.user, "change"), pk=pk)
        form = s.BusWarningDecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            warning = warning_decide(warning=warning, decision=decision, user=request.user,
                                     note=form.validated_data.get("note", ""))
        except ValidationError as exc:
            return Response({"detail": _messages(exc)}, status=409)
        return Response(s.BusWarningSerializer(warning).data)


class DetourListView(generics.ListAPIView):
    permission_classes = [IsDispatcher]
    serializer_class = s.BusDetourSerializer

    def get_queryset(self):
        qs = Detour.objects.restrict(self.request.user).select_related("route", "from_stop", "to_stop")
        wanted = self.request.query_params.get("status", "active")
        return qs if wanted == "all" else qs.filter(status=wanted)


# ------------------------------------------------------------------------------------------------ map layers


class _LayerView(APIView):
    permission_classes = [IsCrewOrDispatcher]
    build = None

    @extend_schema(parameters=[OpenApiParameter("feed", int)], responses={200: dict})
    def get(self, request):
        raw = request.query_params.get("feed")
        feed_id = whole_number(raw)
        return Response(type(self).build(feed_id=feed_id) if feed_id is not None else type(self).build())


class RoutesLayerView(_LayerView):
    build = staticmethod(routes_geojson)


class StopsLayerView(_LayerView):
    build = staticmethod(stops_geojson)


class VehiclesLayerView(APIView):
    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(vehicles_geojson())


class DetoursLayerView(APIView):
    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(detours_geojson())


# ------------------------------------------------------------------------------------------------ GTFS-RT


class _GtfsRtView(APIView):
    """Public, read-only, like any agency's realtime feed: no account, no token (and a bad token is not
    even looked at). `?as=text` shows the protobuf as text for people debugging (DRF keeps `?format=`)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    build = None

    @extend_schema(responses={(200, "application/x-protobuf"): bytes})
    def get(self, request):
        message = type(self).build()
        if request.query_params.get("as") == "text":
            from google.protobuf import text_format

            return HttpResponse(text_format.MessageToString(message), content_type="text/plain; charset=utf-8")
        resp = HttpResponse(message.SerializeToString(), content_type="application/x-protobuf")
        resp["Cache-Control"] = "public, max-age=15"
        return resp


class TripUpdatesView(_GtfsRtView):
    build = staticmethod(trip_updates_message)


class AlertsView(_GtfsRtView):
    build = staticmethod(alerts_message)
