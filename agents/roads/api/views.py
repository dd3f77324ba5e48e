"""The road agent's API: crews upload photos (token or session), vehicles and fixed cameras post frames
(machine tokens with the `roads.frames:write` scope), dispatchers read defects, runs and cameras."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from city_ops.core.models import ApiClient
from city_ops.core.parsers import FormParser, MultiPartParser
from city_ops.core.permissions import IsCrewOrDispatcher, IsDispatcher, scope_permission
from city_ops.core.query import whole_number
from city_ops.core.roles import Role

from ..models import CameraRun, FixedCamera, InspectionPhoto
from ..selectors import defect_list, photo_list
from ..services.cameras import (
    CameraRunError,
    FrameIn,
    camera_frames_add,
    camera_run_finish,
    camera_run_start,
    fixed_camera_snapshot,
    upload_time_read,
)
from ..services.photos import (
    PhotoRejected,
    PhotosRejected,
    form_position_parse,
    photos_receive,
    time_field_parse,
)
from .serializers import (
    CameraRunCreateSerializer,
    CameraRunSerializer,
    DefectSerializer,
    FixedCameraSerializer,
    FramesSerializer,
    PhotoSerializer,
    UploadFormSerializer,
)

CanPostFrames = scope_permission("roads.frames:write", Role.DISPATCHER)


def _rejected(exc: PhotosRejected) -> Response:
    return Response({"detail": str(exc), "errors": [e.as_dict() for e in exc.errors]}, status=exc.status)


def _files(request) -> list:
    return request.FILES.getlist("image") + request.FILES.getlist("images")


def _client_name(request) -> str:
    return request.auth.name if isinstance(request.auth, ApiClient) else ""


class PhotoListUploadView(generics.ListAPIView):
    """GET: the photos the user may see (a crew member: their own). POST: upload one or many photos."""

    permission_classes = (IsCrewOrDispatcher,)
    serializer_class = PhotoSerializer
    parser_classes = (MultiPartParser, FormParser)

    def get_queryset(self):
        return photo_list(
            user=self.request.user,
            status=self.request.query_params.get("status", ""),
            source=self.request.query_params.get("source", ""),
        ).prefetch_related("sightings")

    @extend_schema(
        request={"multipart/form-data": UploadFormSerializer}, responses={201: PhotoSerializer(many=True)}
    )
    def post(self, request):
        """Store the photos (all or none) and queue them for detection; the same file again answers 200."""
        try:
            form = form_position_parse(data=request.data)
            received = photos_receive(files=_files(request), form=form, uploader=request.user)
        except PhotoRejected as exc:
            return Response({"detail": exc.message, "errors": [exc.as_dict()]}, status=exc.status)
        except PhotosRejected as exc:
            return _rejected(exc)
        created = sum(1 for r in received if r.created)
        body = {
            "created": created,
            "existing": len(received) - created,
            "photos": [dict(PhotoSerializer(r.photo).data, created=r.created) for r in received],
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PhotoDetailView(generics.RetrieveAPIView):
    """One photo: status, and when done its boxes (original pixel coordinates) and the blurred image's URL."""

    permission_classes = (IsCrewOrDispatcher,)
    serializer_class = PhotoSerializer

    def get_queryset(self):
        return InspectionPhoto.objects.restrict(self.request.user).prefetch_related("sightings")


class DefectListView(generics.ListAPIView):
    """Defects, most urgent first (a crew member: those on their own photos or orders)."""

    permission_classes = (IsCrewOrDispatcher,)
    serializer_class = DefectSerializer

    def get_queryset(self):
        segment = self.request.query_params.get("segment")
        return defect_list(
            user=self.request.user,
            status=self.request.query_params.get("status", "active"),
            segment_id=whole_number(segment),
        )


class DefectDetailView(generics.RetrieveAPIView):
    permission_classes = (IsCrewOrDispatcher,)
    serializer_class = DefectSerializer

    def get_queryset(self):
        return defect_list(user=self.request.user, status="all")


class CameraRunListView(generics.ListAPIView):
    """GET (dispatchers): camera runs and their progress. POST (vehicle uploader or dispatcher): start a run
    with the vehicle's GPX track (multipart: vehicle, track)."""

    serializer_class = CameraRunSerializer
    parser_classes = (MultiPartParser, FormParser)

    def get_permissions(self):
        return [CanPostFrames() if self.request.method == "POST" else IsDispatcher()]

    def get_queryset(self):
        return CameraRun.objects.all()

    @extend_schema(
        request={"multipart/form-data": CameraRunCreateSerializer}, responses={201: CameraRunSerializer}
    )
    def post(self, request):
        track = request.FILES.get("track")
        if track is None:
            return Response({"detail": "send the vehicle's GPX track (form field 'track')"}, status=400)
        if track.size > 20 * 1024 * 1024:
            return Response({"detail": "the GPX track is larger than 20 MB"}, status=413)
        try:
            run = camera_run_start(
                vehicle=request.data.get("vehicle", ""),
                gpx=track.read(),
                user=request.user,
                client_name=_client_name(request),
            )
        except CameraRunError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(CameraRunSerializer(run).data, status=201)


class CameraRunDetailView(generics.RetrieveAPIView):
    """A run's progress: frames placed, near-duplicates skipped, processed, defects found."""

    serializer_class = CameraRunSerializer

    def get_permissions(self):
        return [CanPostFrames()]

    def get_queryset(self):
        return CameraRun.objects.all()


class CameraRunFramesView(APIView):
    """Frames of a run (multipart, field 'image', many per request; optional 'taken_at' per frame). Each is
    placed on the run's track by its capture time; near-duplicates and frames off the track are skipped; a
    bad frame is reported and the rest are kept. Stored frames go to the vision queue in batches."""

    parser_classes = (MultiPartParser, FormParser)

    def get_permissions(self):
        return [CanPostFrames()]

    @extend_schema(request={"multipart/form-data": FramesSerializer}, responses={200: dict})
    def post(self, request, pk: int):
        run = get_object_or_404(CameraRun, pk=pk)
        uploads = _files(request)
        if not uploads:
            return Response({"detail": "no frame was sent (form field 'image')"}, status=400)
        times = request.data.getlist("taken_at") if hasattr(request.data, "getlist") else []
        frames = []
        for i, upload in enumerate(uploads):
            try:
                fallback = time_field_parse(
                    raw=times[i] if i < len(times) else None, name=f"taken_at #{i + 1}"
                )
            except PhotoRejected as exc:
                return Response({"detail": exc.message, "errors": [exc.as_dict()]}, status=400)
            when, source = upload_time_read(upload=upload, fallback=fallback)
            frames.append(FrameIn(upload=upload, when=when, time_source=source))
        try:
            outcome = camera_frames_add(run=run, frames=frames)
        except CameraRunError as exc:
            return Response({"detail": str(exc)}, status=409)
        run.refresh_from_db()
        return Response({**outcome.as_dict(), "run": CameraRunSerializer(run).data})


class CameraRunFinishView(APIView):
    """No more frames for this run."""

    def get_permissions(self):
        return [CanPostFrames()]

    @extend_schema(request=None, responses={200: CameraRunSerializer})
    def post(self, request, pk: int):
        run = camera_run_finish(run=get_object_or_404(CameraRun, pk=pk))
        return Response(CameraRunSerializer(run).data)


class FixedCameraListView(generics.ListAPIView):
    permission_classes = (IsDispatcher,)
    serializer_class = FixedCameraSerializer

    def get_queryset(self):
        return FixedCamera.objects.all().order_by("name")


class FixedCameraSnapshotView(APIView):
    """A fixed camera posts a snapshot (multipart 'image', optional 'taken_at'); detection snaps its defects to
    the segment the camera watches."""

    parser_classes = (MultiPartParser, FormParser)

    def get_permissions(self):
        return [CanPostFrames()]

    @extend_schema(request={"multipart/form-data": FramesSerializer}, responses={201: PhotoSerializer})
    def post(self, request, pk: int):
        camera = get_object_or_404(FixedCamera, pk=pk)
        upload = request.FILES.get("image")
        if upload is None:
            return Response(
                {
                    "detail": "no snapshot was sent (form field 'image')",
                    "errors": [{"file": "", "code": "no_file", "detail": "no file"}],
                },
                status=400,
            )
        try:
            taken = time_field_parse(raw=request.data.get("taken_at"))
        except PhotoRejected as exc:
            return Response({"detail": exc.message, "errors": [exc.as_dict()]}, status=400)
        try:
            received = fixed_camera_snapshot(
                camera=camera, upload=upload, taken_at=taken, client_name=_client_name(request)
            )
        except PhotosRejected as exc:
            return _rejected(exc)
        except (CameraRunError, DjangoValidationError) as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response(
            dict(PhotoSerializer(received.photo).data, created=received.created),
            status=201 if received.created else 200,
        )
