"""Work orders over the API: crews see and work their own; dispatchers see, create and assign all."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.city.geovalidate import GeometryInputError, city_point_check
from city_ops.core.parsers import FormParser, MultiPartParser
from city_ops.core.permissions import IsCrewOrDispatcher
from city_ops.core.roles import Role, user_has_role
from city_ops.core.uploads import UploadError, image_upload_validate

from ..models import WorkOrder, WorkOrderEvent
from ..services import work_order_create, work_order_photo_add, work_order_transition


class WorkOrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkOrderEvent
        fields = ["at", "actor_label", "from_status", "to_status", "note"]


class WorkOrderSerializer(serializers.ModelSerializer):
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)
    events = WorkOrderEventSerializer(many=True, read_only=True)

    class Meta:
        model = WorkOrder
        fields = ["id", "title", "description", "lon", "lat", "priority", "status", "assignee", "due_at",
                  "is_overdue", "source_agent", "source_ref", "created_at", "closed_at", "events"]

    def get_lon(self, obj) -> float:
        return obj.location.x

    def get_lat(self, obj) -> float:
        return obj.location.y


class WorkOrderCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    lat = serializers.FloatField(min_value=-90, max_value=90)
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, default=WorkOrder.Priority.NORMAL)
    assignee = serializers.CharField(required=False, help_text="username of a field crew member")

    def validate(self, attrs):
        # A hand-placed order: finite, in range and in the city (geovalidate), or a 400 naming the reason.
        try:
            attrs["lon"], attrs["lat"] = city_point_check(attrs["lon"], attrs["lat"], what="the work order")
        except GeometryInputError as exc:
            raise serializers.ValidationError({"location": str(exc)}) from None
        return attrs


class WorkOrderListView(generics.ListAPIView):
    permission_classes = [IsCrewOrDispatcher]
    serializer_class = WorkOrderSerializer

    def get_queryset(self):
        qs = WorkOrder.objects.restrict(self.request.user, "view").select_related("assignee").prefetch_related("events")
        if st := self.request.query_params.get("status"):
            qs = qs.filter(status=st)
        return qs

    @extend_schema(request=WorkOrderCreateSerializer, responses={201: WorkOrderSerializer})
    def post(self, request):
        if not user_has_role(request.user, Role.DISPATCHER):
            raise PermissionDenied("only dispatchers create work orders")
        s = WorkOrderCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        assignee = None
        if d.get("assignee"):
            assignee = get_user_model().objects.filter(username=d["assignee"], groups__name=Role.FIELD_CREW.value).first()
            if assignee is None:
                return Response({"assignee": "no field crew member with that username"}, status=400)
        order, _ = work_order_create(title=d["title"], description=d.get("description", ""),
                                     location=Point(d["lon"], d["lat"], srid=4326), priority=d["priority"],
                                     assignee=assignee, user=request.user)
        return Response(WorkOrderSerializer(order).data, status=status.HTTP_201_CREATED)


class WorkOrderDetailView(generics.RetrieveAPIView):
    permission_classes = [IsCrewOrDispatcher]
    serializer_class = WorkOrderSerializer

    def get_queryset(self):
        return WorkOrder.objects.restrict(self.request.user, "view")


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WorkOrder.Status.choices)
    note = serializers.CharField(required=False, allow_blank=True)
    assignee = serializers.CharField(required=False)


class WorkOrderTransitionView(APIView):
    permission_classes = [IsCrewOrDispatcher]

    @extend_schema(request=TransitionSerializer, responses={200: WorkOrderSerializer})
    def post(self, request, pk: int):
        order = WorkOrder.objects.restrict(request.user, "view").filter(pk=pk).first()
        if order is None:
            return Response({"detail": "no such work order"}, status=404)
        s = TransitionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        assignee = None
        if s.validated_data.get("assignee"):
            assignee = get_user_model().objects.filter(username=s.validated_data["assignee"]).first()
            if assignee is None:
                return Response({"assignee": "no user with that username"}, status=400)
        try:
            order = work_order_transition(order=order, to_status=s.validated_data["status"], user=request.user,
                                          note=s.validated_data.get("note", ""), assignee=assignee)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            return Response({"status": exc.messages}, status=400)
        return Response(WorkOrderSerializer(order).data)


class WorkOrderPhotoView(APIView):
    permission_classes = [IsCrewOrDispatcher]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": dict}, responses={201: dict})
    def post(self, request, pk: int):
        order = WorkOrder.objects.restrict(request.user, "view").filter(pk=pk).first()
        if order is None:
            return Response({"detail": "no such work order"}, status=404)
        kind = request.data.get("kind", "after")
        if kind not in ("before", "after"):
            return Response({"kind": "before or after"}, status=400)
        try:
            upload = image_upload_validate(file=request.FILES.get("image"))
        except UploadError as exc:
            return Response({"image": str(exc)}, status=exc.status)
        try:
            photo = work_order_photo_add(order=order, kind=kind, image=upload, user=request.user)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            return Response({"detail": exc.messages}, status=400)
        order.refresh_from_db()
        return Response({"photo": photo.pk, "status": order.status}, status=status.HTTP_201_CREATED)
