"""Serializers of the road agent's API (read shapes; uploads are multipart and parsed by the services)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from ..models import CameraRun, Defect, FixedCamera, InspectionPhoto


class PhotoSerializer(serializers.ModelSerializer):
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    uploader = serializers.SlugRelatedField(slug_field="username", read_only=True)
    image_url = serializers.SerializerMethodField()
    viewer_url = serializers.SerializerMethodField()
    defects = serializers.SerializerMethodField()

    class Meta:
        model = InspectionPhoto
        fields = (
            "id",
            "status",
            "error",
            "source",
            "uploader",
            "file_name",
            "taken_at",
            "taken_at_source",
            "lon",
            "lat",
            "location_source",
            "width",
            "height",
            "detections",
            "model_name",
            "inference_ms",
            "privacy_mode",
            "uploaded_at",
            "processed_at",
            "camera_run",
            "fixed_camera",
            "image_url",
            "viewer_url",
            "defects",
            "synthetic",
        )

    def get_lon(self, obj) -> float:
        return round(obj.location.x, 7)

    def get_lat(self, obj) -> float:
        return round(obj.location.y, 7)

    def get_image_url(self, obj) -> str | None:
        """The blurred copy, once detection has made it (never the original)."""
        return reverse("roads:photo_image", args=[obj.pk]) if obj.image else None

    def get_viewer_url(self, obj) -> str:
        return reverse("roads:photo_detail", args=[obj.pk])

    def get_defects(self, obj) -> list[int]:
        return sorted({s.defect_id for s in obj.sightings.all()})


class DefectSerializer(serializers.ModelSerializer):
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    road = serializers.SerializerMethodField()
    road_class = serializers.SerializerMethodField()
    severity_label = serializers.CharField(read_only=True)

    class Meta:
        model = Defect
        fields = (
            "id",
            "class_name",
            "confidence",
            "area_share",
            "width_m",
            "length_m",
            "segment",
            "road",
            "road_class",
            "lon",
            "lat",
            "offset_m",
            "severity",
            "severity_level",
            "severity_label",
            "priority_score",
            "priority",
            "first_seen",
            "last_seen",
            "sightings_count",
            "status",
            "work_order",
            "best_photo",
            "synthetic",
        )

    def get_lon(self, obj) -> float:
        return round(obj.location.x, 7)

    def get_lat(self, obj) -> float:
        return round(obj.location.y, 7)

    def get_road(self, obj) -> str:
        return obj.segment.name if obj.segment_id else ""

    def get_road_class(self, obj) -> str:
        return obj.segment.road_class if obj.segment_id else ""


class CameraRunSerializer(serializers.ModelSerializer):
    progress_pct = serializers.IntegerField(read_only=True)
    kpis = serializers.SerializerMethodField()

    class Meta:
        model = CameraRun
        fields = (
            "id",
            "vehicle",
            "track_name",
            "track_start",
            "track_end",
            "status",
            "frames_received",
            "frames_placed",
            "frames_duplicate",
            "frames_off_track",
            "frames_rejected",
            "frames_processed",
            "frames_failed",
            "defects_found",
            "progress_pct",
            "kpis",
            "created_at",
            "finished_at",
        )

    def get_kpis(self, obj) -> dict:
        """photos_processed, defects_found, sightings_merged, orders_created, mean_inference_ms."""
        from ..selectors import camera_run_kpis

        return camera_run_kpis(run=obj)


class FixedCameraSerializer(serializers.ModelSerializer):
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()

    class Meta:
        model = FixedCamera
        fields = ("id", "name", "lon", "lat", "segment", "active", "synthetic")

    def get_lon(self, obj) -> float:
        return obj.location.x

    def get_lat(self, obj) -> float:
        return obj.location.y


class UploadFormSerializer(serializers.Serializer):
    """The upload form (for the API docs; the service parses and checks it)."""

    image = serializers.ListField(child=serializers.ImageField(), help_text="one or more JPEG/PNG files")
    lat = serializers.FloatField(required=False, help_text="the phone's position or the pin")
    lon = serializers.FloatField(required=False)
    accuracy_m = serializers.FloatField(required=False)
    location_source = serializers.ChoiceField(choices=["phone", "pin"], required=False, default="phone")
    taken_at = serializers.DateTimeField(required=False, help_text="used when the photo has no EXIF time")


class CameraRunCreateSerializer(serializers.Serializer):
    vehicle = serializers.CharField(max_length=60)
    track = serializers.FileField(help_text="the vehicle's GPX track")


class FramesSerializer(serializers.Serializer):
    image = serializers.ListField(child=serializers.ImageField())
    taken_at = serializers.ListField(
        child=serializers.DateTimeField(),
        required=False,
        help_text="per frame, used when the frame has no EXIF or file-name time",
    )
