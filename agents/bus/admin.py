"""Admin for the bus agent. Everything here is read-only: feeds change only by importing a GTFS zip
(`import_gtfs`, the bus panel), plans and blocks through the plan services (which version and audit them),
vehicle positions, headways and warnings through the realtime services, detours through the closure
services. The admin shows them to operators; it is not a second way around those rules."""
from django.contrib import admin

from city_ops.core.admin import ReadOnlyAdmin

from .models import (
    Agency,
    Block,
    BlockTrip,
    Calendar,
    CalendarDate,
    Detour,
    Feed,
    Frequency,
    HeadwaySnapshot,
    HeadwayWarning,
    Route,
    Shape,
    Stop,
    StopTime,
    Trip,
    VehiclePlan,
    VehiclePosition,
    VehicleState,
)


class _FeedRowAdmin(ReadOnlyAdmin):
    """A GTFS table's rows: filtered by feed; the feed's tables can hold millions of rows, so no full count."""

    list_filter = ["feed"]
    show_full_result_count = False


@admin.register(Feed)
class FeedAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "source_name", "service_start", "service_end", "imported_at", "imported_by"]
    search_fields = ["name", "source_name"]


@admin.register(Agency)
class AgencyAdmin(_FeedRowAdmin):
    list_display = ["agency_id", "name", "timezone", "feed"]


@admin.register(Route)
class RouteAdmin(_FeedRowAdmin):
    list_display = ["route_id", "short_name", "long_name", "route_type", "feed"]
    search_fields = ["route_id", "short_name", "long_name"]


@admin.register(Stop)
class StopAdmin(_FeedRowAdmin):
    list_display = ["stop_id", "code", "name", "location_type", "feed"]
    search_fields = ["stop_id", "code", "name"]


@admin.register(Shape)
class ShapeAdmin(_FeedRowAdmin):
    list_display = ["shape_id", "feed"]


@admin.register(Trip)
class TripAdmin(_FeedRowAdmin):
    list_display = ["trip_id", "route", "service_id", "direction_id", "block_id", "headsign"]
    list_select_related = ["route"]
    search_fields = ["trip_id", "block_id"]


@admin.register(StopTime)
class StopTimeAdmin(_FeedRowAdmin):
    list_display = ["trip", "stop_sequence", "stop", "arrival_s", "departure_s"]
    list_select_related = ["trip", "stop"]


@admin.register(Calendar)
class CalendarAdmin(_FeedRowAdmin):
    list_display = ["service_id", "start_date", "end_date", "monday", "saturday", "sunday", "feed"]


@admin.register(CalendarDate)
class CalendarDateAdmin(_FeedRowAdmin):
    list_display = ["service_id", "date", "exception_type", "feed"]


@admin.register(Frequency)
class FrequencyAdmin(_FeedRowAdmin):
    list_display = ["trip", "start_s", "end_s", "headway_s", "exact_times"]


@admin.register(VehiclePlan)
class VehiclePlanAdmin(ReadOnlyAdmin):
    list_display = ["id", "feed", "service_date", "version", "status", "vehicles", "lower_bound", "deadhead_km",
                    "created_at", "approved_by"]
    list_filter = ["status"]


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ["plan", "sequence", "vehicle", "driver", "locked"]
    list_select_related = ["plan__feed"]


@admin.register(BlockTrip)
class BlockTripAdmin(ReadOnlyAdmin):
    list_display = ["block", "order", "trip_id", "route_id", "start_s", "end_s"]
    list_select_related = ["block__plan__feed"]
    show_full_result_count = False


@admin.register(VehiclePosition)
class VehiclePositionAdmin(ReadOnlyAdmin):
    list_display = ["observed_at", "vehicle_id", "route_id", "trip_id", "source", "feed"]
    search_fields = ["vehicle_id", "route_id"]
    show_full_result_count = False


@admin.register(VehicleState)
class VehicleStateAdmin(ReadOnlyAdmin):
    list_display = ["vehicle_id", "route_id", "trip_id", "observed_at", "feed"]
    search_fields = ["vehicle_id", "route_id"]


@admin.register(HeadwaySnapshot)
class HeadwaySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["evaluated_at", "route_id", "direction_id", "vehicles", "cv", "grade", "ewt_s", "bunching", "gaps"]
    list_filter = ["grade"]
    show_full_result_count = False


@admin.register(HeadwayWarning)
class HeadwayWarningAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "route_id", "leader", "follower", "action", "status", "decided_by"]
    list_filter = ["kind", "status"]


@admin.register(Detour)
class DetourAdmin(ReadOnlyAdmin):
    list_display = ["id", "closure", "route", "direction_id", "status", "detour_m", "replaced_m", "created_at"]
    list_filter = ["status"]
    list_select_related = ["closure", "route"]
