"""Unit costs and work rates are edited here (one row; a blank field is the documented default). Issued statements are
records: read-only."""
from __future__ import annotations

from django.contrib import admin

from city_ops.core.admin import AuditedAdmin, ReadOnlyAdmin

from .models import IssuedStatement, UnitCosts


@admin.register(UnitCosts)
class UnitCostsAdmin(AuditedAdmin):
    list_display = ("currency", "per_truck_km", "per_truck_hour", "per_truck_day", "per_bus_day", "per_bus_km",
                    "per_crew_hour", "per_tonne_co2", "per_late_repair", "patrol_km_per_crew_hour",
                    "review_min_per_defect", "callout_crew_hours", "updated_at")
    fieldsets = (
        (None, {"fields": ("currency", "per_truck_km", "per_truck_hour", "per_truck_day", "per_bus_day", "per_bus_km",
                           "per_crew_hour", "per_tonne_co2", "per_late_repair")}),
        ("Work rates", {"fields": ("patrol_km_per_crew_hour", "review_min_per_defect", "callout_crew_hours"),
                        "description": "Quantities of work the statement counts crew-hours with; a blank field "
                                       "is the documented default."}),
    )

    def has_add_permission(self, request) -> bool:
        return not UnitCosts.objects.exists()  # one row: the city's

    def save_model(self, request, obj, form, change):
        obj.pk = 1
        super().save_model(request, obj, form, change)


@admin.register(IssuedStatement)
class IssuedStatementAdmin(ReadOnlyAdmin):
    list_display = ("date_from", "date_to", "version", "sha256", "issued_by", "issued_at")
    list_filter = ("date_from",)
    readonly_fields = ("date_from", "date_to", "version", "sha256", "issued_by", "issued_at", "content")
