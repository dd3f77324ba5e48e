"""Admin for the sanitation agent's configuration (bins, trucks, crews, depots, disposal sites). Plans,
pickups, readings and the fill model are read-only here: they change through the agent, the panel and the
crews' phones, which keep the audit trail and the checker's verdict. Geometry is text (no map widget from a
CDN, which the site's Content-Security-Policy refuses)."""
from django.contrib import admin
from django.urls import reverse

from city_ops.core.admin import CityPlacedAdmin, ReadOnlyAdmin, file_link

from .models import (
    Bin,
    CityPlan,
    CollectionPlan,
    Crew,
    Depot,
    DisposalSite,
    DistrictPlan,
    FillModel,
    FillReading,
    Pickup,
    PlanRoute,
    PlanStop,
    Truck,
)


@admin.register(Bin)
class BinAdmin(CityPlacedAdmin):
    list_display = ["code", "street", "capacity_l", "waste_type", "access_from", "access_to", "sensor_id", "active"]
    list_filter = ["waste_type", "active"]
    search_fields = ["code", "street", "sensor_id"]
    raw_id_fields = ["segment"]


@admin.register(Truck)
class TruckAdmin(admin.ModelAdmin):
    list_display = ["code", "depot", "crew", "capacity_l", "capacity_kg", "daily_cap_kg", "shift_start", "shift_end",
                    "in_service"]
    list_filter = ["in_service", "depot"]


@admin.register(Crew)
class CrewAdmin(admin.ModelAdmin):
    list_display = ["name"]
    filter_horizontal = ["members"]


@admin.register(Depot)
class DepotAdmin(CityPlacedAdmin):
    list_display = ["name", "opens", "closes"]


@admin.register(DisposalSite)
class DisposalSiteAdmin(CityPlacedAdmin):
    list_display = ["name", "opens", "closes", "unload_min"]


@admin.register(CityPlan)
class CityPlanAdmin(ReadOnlyAdmin):
    list_display = ["date", "status", "created_at", "finished_at", "kpis"]
    list_filter = ["status"]


@admin.register(DistrictPlan)
class DistrictPlanAdmin(ReadOnlyAdmin):
    list_display = ["city_plan", "district", "status", "claimed_by", "started_at", "finished_at", "error"]
    list_filter = ["status"]


@admin.register(CollectionPlan)
class CollectionPlanAdmin(ReadOnlyAdmin):
    list_display = ["date", "version", "status", "feasible", "reason", "created_at", "approved_by"]
    list_filter = ["status", "feasible"]
    date_hierarchy = "date"


@admin.register(Pickup)
class PickupAdmin(ReadOnlyAdmin):
    list_display = ["at", "bin", "status", "reason", "observed_fill", "overflowing", "crew"]
    list_filter = ["status", "reason", "overflowing"]
    raw_id_fields = ["bin", "stop"]
    exclude = ["photo"]
    readonly_fields = ["photo_file"]

    @admin.display(description="photo")
    def photo_file(self, obj) -> str:
        return file_link(obj.photo, reverse("sanitation:pickup_photo", args=(obj.pk,)))


@admin.register(FillReading)
class FillReadingAdmin(ReadOnlyAdmin):
    list_display = ["at", "bin", "fill", "source"]
    list_filter = ["source"]
    raw_id_fields = ["bin"]


@admin.register(FillModel)
class FillModelAdmin(ReadOnlyAdmin):
    list_display = ["bin", "source", "n_obs", "mean_rate", "forecast_for", "forecast_fill", "mae", "updated_at"]
    list_filter = ["source"]
    exclude = ["state"]


@admin.register(PlanRoute)
class PlanRouteAdmin(ReadOnlyAdmin):
    """A plan's truck routes: written by the planner and the plan edit services."""

    list_display = ["plan", "order", "truck", "crew", "distance_m", "depart_at", "back_at"]
    list_select_related = ["plan", "truck", "crew"]
    exclude = ["geom", "segment_ids", "profile"]


@admin.register(PlanStop)
class PlanStopAdmin(ReadOnlyAdmin):
    list_display = ["route", "order", "kind", "bin", "disposal_site", "arrival"]
    list_select_related = ["route__plan", "route__truck", "bin", "disposal_site"]
    list_filter = ["kind"]
