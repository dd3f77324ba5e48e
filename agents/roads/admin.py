"""Admin for the road agent: fixed cameras are registered here (location + the segment they watch; edits are
audited); photos, defects, sightings, camera runs and segment conditions are the pipeline's output and are
read-only (they change through uploads, detection and work orders, which keep the trail). Geometry is text."""
from __future__ import annotations

from django.contrib import admin
from django.urls import reverse

from city_ops.core.admin import (
    GEOMETRY_AS_TEXT,
    AuditedAdmin,
    CityPlacedForm,
    ReadOnlyAdmin,
    ReadOnlyInline,
    file_link,
    geometry_summary,
)

from .models import CameraRun, Defect, DefectSighting, FixedCamera, InspectionPhoto, SegmentCondition


@admin.register(FixedCamera)
class FixedCameraAdmin(AuditedAdmin):
    list_display = ("name", "segment", "active", "synthetic", "created_at")
    list_filter = ("active", "synthetic")
    search_fields = ("name",)
    raw_id_fields = ("segment",)
    formfield_overrides = GEOMETRY_AS_TEXT
    form = CityPlacedForm


@admin.register(InspectionPhoto)
class InspectionPhotoAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "source", "uploader", "taken_at", "location_source", "model_name",
                    "inference_ms", "privacy_mode", "synthetic")
    list_filter = ("status", "source", "location_source", "privacy_mode", "synthetic")
    search_fields = ("sha256", "file_name", "uploader__username", "client_name")
    exclude = ("location", "device_location", "original", "image")
    readonly_fields = ("where", "original_file", "image_file")

    @admin.display(description="location")
    def where(self, obj) -> str:
        return geometry_summary(obj.location)

    @admin.display(description="original (unblurred; each viewing is audited)")
    def original_file(self, obj) -> str:
        return file_link(obj.original, reverse("roads:photo_original", args=(obj.pk,)))

    @admin.display(description="image (blurred)")
    def image_file(self, obj) -> str:
        return file_link(obj.image, reverse("roads:photo_image", args=(obj.pk,)))


class SightingInline(ReadOnlyInline):
    model = DefectSighting
    fields = ("photo", "detection_index", "confidence", "area_share", "distance_m", "seen_at")
    readonly_fields = fields


@admin.register(Defect)
class DefectAdmin(ReadOnlyAdmin):
    list_display = ("id", "class_name", "severity_level", "priority_score", "status", "segment", "sightings_count",
                    "last_seen", "work_order", "synthetic")
    list_filter = ("status", "severity_level", "class_name", "synthetic")
    search_fields = ("class_name", "segment__name")
    exclude = ("location",)
    readonly_fields = ("where",)
    inlines = (SightingInline,)

    @admin.display(description="location")
    def where(self, obj) -> str:
        return geometry_summary(obj.location)


@admin.register(CameraRun)
class CameraRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "vehicle", "status", "frames_placed", "frames_duplicate", "frames_processed",
                    "defects_found", "created_at")
    list_filter = ("status",)
    search_fields = ("vehicle", "track_name")
    exclude = ("track", "track_points")


@admin.register(SegmentCondition)
class SegmentConditionAdmin(ReadOnlyAdmin):
    list_display = ("segment", "condition_index", "open_defects", "worst_severity", "last_inspected")
    ordering = ("condition_index",)
