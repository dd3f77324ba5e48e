"""The sanitation API: bins (dispatchers), fill readings in (sensor gateways with the
`sanitation.fills:write` scope, or dispatchers), plans (list, detail, approve, edit: dispatchers), crews'
own routes, stop marks and GPX (a crew member sees only their crew's routes)."""
from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_request
from city_ops.core.parsers import FormParser, JSONParser, MultiPartParser
from city_ops.core.permissions import IsCrewOrDispatcher, IsDispatcher, scope_permission
from city_ops.core.roles import Role
from city_ops.core.throttling import RunStartThrottle
from city_ops.core.timeutil import city_today, date_parse
from city_ops.core.uploads import UploadError, image_upload_validate

from .. import selectors, services
from ..models import Bin, CollectionPlan, PlanRoute, PlanStop, Truck
from .serializers import (
    BinSerializer,
    FillIngestResultSerializer,
    PickupSerializer,
    PlanDetailSerializer,
    PlanEditSerializer,
    PlanRouteSerializer,
    PlanSerializer,
    ReadingBatchSerializer,
    StopMarkSerializer,
)

FILLS_SCOPE = "sanitation.fills:write"


def _errors(exc: DjangoValidationError) -> list[str]:
    return list(exc.messages)


class BinListView(generics.ListAPIView):
    """Bins with their latest fill forecast and forecast error."""

    permission_classes = [IsDispatcher]
    serializer_class = BinSerializer

    def get_queryset(self):
        qs = Bin.objects.select_related("fill_model").order_by("code")
        if waste := self.request.query_params.get("waste_type"):
            qs = qs.filter(waste_type=waste)
        return qs


class FillIngestView(APIView):
    """A batch of fill readings from the sensor gateway. Idempotent; bad rows are reported by row number
    (1-based) and the good ones kept."""

    permission_classes = [scope_permission(FILLS_SCOPE, Role.DISPATCHER)]

    @extend_schema(request=ReadingBatchSerializer, responses={201: FillIngestResultSerializer, 200: FillIngestResultSerializer,
                                                              400: FillIngestResultSerializer})
    def post(self, request):
        data = request.data
        rows = data.get("readings") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            return Response({"detail": "send {'readings': [{sensor_id, at, fill}, ...]}"}, status=400)
        label = getattr(request.auth, "name", "") or getattr(request.user, "username", "")
        result = services.fill_readings_ingest(
            rows=[(i, row if isinstance(row, dict) else {}) for i, row in enumerate(rows, start=1)],
            source="api", actor_label=label)
        code = status.HTTP_201_CREATED if result.created else (
            status.HTTP_400_BAD_REQUEST if result.errors and not result.duplicates else status.HTTP_200_OK)
        return Response(result.as_dict(), status=code)


class PlanListView(generics.ListAPIView):
    """Plan versions, newest first (`date` filters one day)."""

    permission_classes = [IsDispatcher]
    serializer_class = PlanSerializer

    @extend_schema(parameters=[OpenApiParameter("date", str, description="YYYY-MM-DD")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = CollectionPlan.objects.restrict(self.request.user, "view")
        if raw := self.request.query_params.get("date"):
            try:
                qs = qs.filter(date=date_parse(raw))
            except ValueError as exc:
                from rest_framework.exceptions import ValidationError

                raise ValidationError({"date": str(exc)}) from None
        return qs


class PlanDetailView(generics.RetrieveAPIView):
    """One plan version with its routes (geometry, load profile) and stops."""

    permission_classes = [IsDispatcher]
    serializer_class = PlanDetailSerializer

    def get_queryset(self):
        return CollectionPlan.objects.restrict(self.request.user, "view").prefetch_related(
            "routes__truck", "routes__crew", "routes__stops__bin", "routes__stops__disposal_site",
            "routes__stops__pickup")


class PlanApproveView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(request=None, responses={200: PlanSerializer, 400: dict})
    def post(self, request, pk: int):
        plan = CollectionPlan.objects.restrict(request.user, "view").filter(pk=pk).first()
        if plan is None:
            return Response({"detail": "no such plan"}, status=404)
        try:
            plan = services.plan_approve(plan=plan, user=request.user)
        except DjangoValidationError as exc:
            return Response({"detail": _errors(exc)}, status=400)
        return Response(PlanSerializer(plan).data)


class PlanEditView(APIView):
    """Edit a plan: `move` a bin to another truck (a new checked version), `lock`/`unlock` a route, or
    `reoptimise` the unlocked routes (queued as an agent run: 202 with the run's id; the same run again while
    it is pending or running)."""

    permission_classes = [IsDispatcher]
    throttle_classes = [RunStartThrottle]

    @extend_schema(request=PlanEditSerializer, responses={200: dict, 201: PlanSerializer, 202: dict, 400: dict})
    def post(self, request, pk: int):
        plan = CollectionPlan.objects.restrict(request.user, "view").filter(pk=pk).first()
        if plan is None:
            return Response({"detail": "no such plan"}, status=404)
        s = PlanEditSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        try:
            if d["action"] == "move":
                bin_ = Bin.objects.filter(code=d.get("bin", "")).first()
                truck = Truck.objects.filter(code=d.get("truck", "")).first()
                if bin_ is None or truck is None:
                    return Response({"detail": "name an existing bin (code) and truck (code)"}, status=400)
                new = services.plan_stop_move(plan=plan, bin=bin_, truck=truck, user=request.user)
                return Response(PlanSerializer(new).data, status=201)
            if d["action"] in ("lock", "unlock"):
                route = plan.routes.filter(pk=d.get("route") or 0).first()
                if route is None:
                    return Response({"route": "no such route in this plan"}, status=400)
                route = services.plan_route_lock(route=route, locked=d["action"] == "lock", user=request.user)
                return Response({"route": route.pk, "locked": route.locked})
            run, _ = agent_run_request(agent="sanitation", run_date=plan.date, trigger=AgentRun.Trigger.REPLAN,
                                       reason=f"re-optimise plan {plan.date} v{plan.version}",
                                       runtime_params={"action": "reoptimise", "plan_id": plan.pk}, user=request.user)
            return Response({"run": run.pk, "status": run.status}, status=202)
        except DjangoValidationError as exc:
            return Response({"detail": _errors(exc)}, status=400)


class CrewRouteListView(generics.ListAPIView):
    """The signed-in crew member's routes in the approved plan of a day (default today); dispatchers see
    every route of that plan."""

    permission_classes = [IsCrewOrDispatcher]
    serializer_class = PlanRouteSerializer
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("date", str, description="YYYY-MM-DD (default: today)")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        raw = self.request.query_params.get("date")
        try:
            day = date_parse(raw) if raw else city_today()
        except ValueError as exc:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"date": str(exc)}) from None
        plan = selectors.plan_latest(date=day, approved_only=True)
        if plan is None:
            return PlanRoute.objects.none()
        return selectors.plan_routes(plan=plan, user=self.request.user)


class StopMarkView(APIView):
    """Mark a stop of one's route: collected (with the fill seen) or skipped (reason, optional photo).
    JSON, or multipart when a photo is sent."""

    permission_classes = [IsCrewOrDispatcher]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request={"application/json": StopMarkSerializer, "multipart/form-data": StopMarkSerializer},
                   responses={200: PickupSerializer, 400: dict})
    def post(self, request, pk: int):
        stop = PlanStop.objects.restrict(request.user, "view").select_related("route__plan", "route__crew").filter(
            pk=pk).first()
        if stop is None:
            return Response({"detail": "no such stop on your routes"}, status=404)
        photo = request.FILES.get("photo")
        data = {k: v for k, v in request.data.items() if k != "photo"}
        s = StopMarkSerializer(data=data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        if photo is not None:
            try:
                photo = image_upload_validate(file=photo)
            except UploadError as exc:
                return Response({"photo": str(exc)}, status=exc.status)
        try:
            pickup = services.stop_mark(stop=stop, user=request.user, status=d["status"],
                                        observed_fill=d.get("observed_fill"), reason=d.get("reason") or "",
                                        overflowing=d.get("overflowing", False), photo=photo, note=d.get("note", ""))
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            return Response({"detail": _errors(exc)}, status=400)
        return Response(PickupSerializer(pickup).data)


class RouteGpxView(APIView):
    """A route as a GPX 1.1 file (track along the roads, stops as route points and waypoints)."""

    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(responses={(200, "application/gpx+xml"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request, pk: int):
        route = PlanRoute.objects.restrict(request.user, "view").select_related(
            "plan", "truck__depot").filter(pk=pk).first()
        if route is None:
            return Response({"detail": "no such route"}, status=404)
        return gpx_response(route)


def gpx_response(route: PlanRoute) -> HttpResponse:
    """The GPX download (shared with the console)."""
    body = services.route_gpx(route=route)
    resp = HttpResponse(body, content_type="application/gpx+xml")
    stamp = route.plan.date.isoformat() if isinstance(route.plan.date, dt.date) else str(route.plan.date)
    resp["Content-Disposition"] = f'attachment; filename="route-{route.truck.code}-{stamp}-v{route.plan.version}.gpx"'
    return resp
