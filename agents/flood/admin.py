"""Admin for the flood agent's configuration (sensors, series thresholds, zones). Alerts and readings are
read-only here: they change through the agent and the flood panel, which keep the audit trail. Geometry is
text (no map widget from a CDN, which the site's Content-Security-Policy refuses)."""
from django.contrib.gis import admin

from city_ops.core.admin import GEOMETRY_AS_TEXT, ReadOnlyAdmin

from .models import Alert, AlertEvent, CapImport, Drill, FloodZone, Sensor, Series


class SeriesInline(admin.TabularInline):
    model = Series
    extra = 0
    fields = ["parameter", "unit", "warning_level", "guaranteed_level", "caution_depth", "closure_depth",
              "typical_low", "typical_high", "last_time", "last_value"]
    readonly_fields = ["last_time", "last_value"]


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    formfield_overrides = GEOMETRY_AS_TEXT
    list_display = ["code", "name", "kind", "status", "expected_interval_s"]
    list_filter = ["kind", "status"]
    search_fields = ["code", "name"]
    inlines = [SeriesInline]


@admin.register(FloodZone)
class FloodZoneAdmin(admin.ModelAdmin):
    formfield_overrides = GEOMETRY_AS_TEXT
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


@admin.register(Drill)
class DrillAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "name", "status", "speed", "step_min", "clock", "ticks", "started_by"]
    list_filter = ["status"]
    exclude = ["data", "position"]
