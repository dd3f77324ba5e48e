"""Admin for the flood agent's configuration (sensors, series thresholds, zones). Alerts and readings are
read-only here: they change through the agent and the flood panel, which keep the audit trail."""
from django.contrib import admin

from city_ops.core.admin import CityPlacedAdmin, ReadOnlyAdmin

from .models import (
    Alert,
    AlertEvent,
    CapImport,
    Drill,
    FloodZone,
    ReadingRevision,
    Sensor,
    Series,
    TrackerState,
)


class SeriesInline(admin.TabularInline):
    model = Series
    extra = 0
    fields = ["parameter", "statistic", "rule_statistic", "unit", "warning_level", "guaranteed_level", "caution_depth",
              "closure_depth", "typical_low", "typical_high", "range_low", "range_high", "last_time", "last_value"]
    readonly_fields = ["last_time", "last_value"]


@admin.register(Sensor)
class SensorAdmin(CityPlacedAdmin):
    list_display = ["code", "name", "kind", "status", "expected_interval_s"]
    list_filter = ["kind", "status"]
    search_fields = ["code", "name"]
    inlines = [SeriesInline]


@admin.register(FloodZone)
class FloodZoneAdmin(CityPlacedAdmin):
    list_display = ["code", "name", "kind", "level", "standby_until"]
    list_filter = ["kind"]
    filter_horizontal = ["assigned_sensors"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "zone", "hazard", "level", "status", "raised_at", "acknowledged_by", "closure_state"]
    list_filter = ["status", "hazard", "level"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["time", "kind", "zone", "hazard", "level", "rule", "sensor_code", "actor_label"]
    list_filter = ["kind", "hazard"]


@admin.register(CapImport)
class CapImportAdmin(ReadOnlyAdmin):
    list_display = ["sent", "sender", "identifier", "msg_type", "event", "rainstorm"]


@admin.register(ReadingRevision)
class ReadingRevisionAdmin(ReadOnlyAdmin):
    list_display = ["series", "time", "value", "qc", "replaced_at"]
    list_select_related = ["series__sensor"]


@admin.register(Drill)
class DrillAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "name", "status", "speed", "step_min", "clock", "ticks", "started_by"]
    list_filter = ["status"]
    exclude = ["data", "position"]


@admin.register(TrackerState)
class TrackerStateAdmin(ReadOnlyAdmin):
    """The alert tracker's state between evaluations (written by each evaluation run)."""

    list_display = ["name", "evaluated_at", "updated_at"]
