"""Django admin for the city model.

The road network is the output of `manage.py import_osm` (or the demo loader): it is browsable here but
not edited by hand, because the cached road graphs are keyed by the network version that only an import
bumps (a hand-edited speed would silently not reach the workers). Closures go through the closure
services, so an operator's closure publishes `closure.opened`/`closure.lifted` and makes the agents
re-plan exactly like the flood agent's closures do. City events are history."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone

from city_ops.core.admin import (
    GEOMETRY_AS_TEXT,
    AuditedAdmin,
    CityPlacedForm,
    ReadOnlyAdmin,
    geometry_summary,
)

from .geovalidate import GeometryInputError
from .models import CityEvent, CityProfile, District, Place, RoadClosure, RoadNode, RoadSegment
from .services import closure_create, closure_lift, closure_segments_check


@admin.register(CityProfile)
class CityProfileAdmin(AuditedAdmin):
    """The one city. Its time zone, CRS and bounds come from the settings and the import; the name and
    credits may be edited."""

    list_display = ("name", "time_zone", "metric_srid", "network_version", "synthetic", "updated_at")
    fields = ("name", "source", "attribution", "time_zone", "metric_srid", "synthetic", "network_version",
              "bounds_summary", "updated_at")
    readonly_fields = ("time_zone", "metric_srid", "synthetic", "network_version", "bounds_summary", "updated_at")

    @admin.display(description="bounds")
    def bounds_summary(self, obj) -> str:
        return geometry_summary(obj.bounds)

    def has_add_permission(self, request) -> bool:
        return False  # created by the import

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RoadNode)
class RoadNodeAdmin(ReadOnlyAdmin):
    list_display = ("id", "osm_id", "lon", "lat")
    search_fields = ("=id", "=osm_id")
    fields = ("id", "osm_id", "geom_text")
    readonly_fields = fields
    show_full_result_count = False  # a city has 10^5-10^6 nodes; no COUNT(*) on every page

    @admin.display(description="longitude")
    def lon(self, obj) -> float:
        return round(obj.geom.x, 7)

    @admin.display(description="latitude")
    def lat(self, obj) -> float:
        return round(obj.geom.y, 7)

    @admin.display(description="geometry")
    def geom_text(self, obj) -> str:
        return geometry_summary(obj.geom)


@admin.register(RoadSegment)
class RoadSegmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "road_class", "length_m_rounded", "speed_kph", "oneway", "osm_id")
    list_filter = ("road_class", "oneway")
    search_fields = ("name", "=id", "=osm_id")
    fields = ("id", "osm_id", "name", "road_class", "length_m", "speed_kph", "oneway", "source", "target",
              "geom_text")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="length (m)", ordering="length_m")
    def length_m_rounded(self, obj) -> float:
        return round(obj.length_m, 1)

    @admin.display(description="geometry")
    def geom_text(self, obj) -> str:
        return geometry_summary(obj.geom)


@admin.register(District)
class DistrictAdmin(AuditedAdmin):
    list_display = ("code", "name", "synthetic")
    list_filter = ("synthetic",)
    search_fields = ("code", "name")
    formfield_overrides = GEOMETRY_AS_TEXT


@admin.register(Place)
class PlaceAdmin(AuditedAdmin):
    list_display = ("name", "kind", "lon", "lat", "synthetic")
    list_filter = ("kind", "synthetic")
    search_fields = ("name", "kind")
    formfield_overrides = GEOMETRY_AS_TEXT

    @admin.display(description="longitude")
    def lon(self, obj) -> float:
        return round(obj.geom.x, 6)

    @admin.display(description="latitude")
    def lat(self, obj) -> float:
        return round(obj.geom.y, 6)


class ActiveClosureFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("yes", "in force now"), ("no", "ended or not yet started")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.active()
        if self.value() == "no":
            return queryset.exclude(pk__in=RoadClosure.objects.active().values("pk"))
        return queryset


class RoadClosureForm(CityPlacedForm):
    """A hand-drawn closure must lie in the city and cover a road, as through the API (refused, not saved)."""

    def clean_geom(self):
        geom = self.cleaned_data.get("geom")
        if geom is not None:
            try:
                closure_segments_check(geom=geom)
            except GeometryInputError as exc:
                raise forms.ValidationError(str(exc)) from None
        return geom


@admin.register(RoadClosure)
class RoadClosureAdmin(admin.ModelAdmin):
    """Closures. Adding one here runs `closure_create` (segments found, audit row, `closure.opened` event
    after commit); ending one is the "lift" action (`closure_lift`). Existing closures are not edited in
    place: a changed closure is a lift and a new closure, so the agents see both events."""

    list_display = ("id", "reason", "source_agent", "valid_from", "valid_to", "in_force", "segment_count",
                    "created_by")
    list_filter = (ActiveClosureFilter, "source_agent")
    search_fields = ("reason", "source_ref", "source_agent")
    date_hierarchy = "valid_from"
    list_select_related = ("created_by",)
    formfield_overrides = GEOMETRY_AS_TEXT
    form = RoadClosureForm
    actions = ("closures_lift",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_segments=Count("segments"))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("geom", "reason", "source_ref", "valid_from", "valid_to")
        return ("reason", "source_agent", "source_ref", "valid_from", "valid_to", "created_by", "created_at",
                "segment_count", "geom_text")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj) -> bool:
        now = timezone.now()
        return obj.valid_from <= now and (obj.valid_to is None or obj.valid_to > now)

    @admin.display(description="segments", ordering="n_segments")
    def segment_count(self, obj) -> int:
        n = getattr(obj, "n_segments", None)
        return n if n is not None else obj.segments.count()

    @admin.display(description="geometry")
    def geom_text(self, obj) -> str:
        return geometry_summary(obj.geom)

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page is a read-only view; the lift action needs the change permission on the list.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        closure = closure_create(geom=data["geom"], reason=data["reason"], source_agent="",
                                 source_ref=data.get("source_ref", ""), valid_from=data.get("valid_from"),
                                 valid_to=data.get("valid_to"), user=request.user)
        obj.pk, obj.created_at, obj.created_by = closure.pk, closure.created_at, closure.created_by
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        pass  # closure_create has set the segments

    @admin.action(description="Lift (end now)", permissions=["change"])
    def closures_lift(self, request, queryset):
        lifted = 0
        for closure in queryset:
            before = closure.valid_to
            closure = closure_lift(closure=closure, user=request.user)
            lifted += closure.valid_to != before
        messages.success(request, f"{lifted} closure(s) lifted; the agents re-plan around the change.")


@admin.register(CityEvent)
class CityEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "source_agent", "created_at", "dispatched_at")
    list_filter = ("kind", "source_agent")
    search_fields = ("kind", "source_agent", "=id")
    date_hierarchy = "created_at"
    fields = ("kind", "source_agent", "payload", "created_at", "dispatched_at")
    readonly_fields = fields
