"""What the bus agent owns: imported GTFS feeds (in PostGIS), vehicle plans with their blocks, live vehicle
positions and the headway warnings drawn from them, and detours around road closures.

Static GTFS rows keep their feed's own ids (`stop_id`, `trip_id`, ...) next to the database keys, so a plan
or a GTFS-Realtime message can name them exactly as the agency does. Times of day are seconds since the
service day's "noon minus 12 h" (GTFS time; 25:10:00 is 90 600 s), never datetimes.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models

from city_ops.core.models import RestrictedQuerySet

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# ------------------------------------------------------------------------------------------------ GTFS


class Feed(models.Model):
    """One imported GTFS feed, identified by the SHA-256 of its zip. Re-importing the same file (or a new
    version into this feed with `import_gtfs --replace ID`) replaces every row below in one transaction."""

    name = models.CharField(max_length=200)
    source_name = models.CharField(max_length=255, help_text="the zip's file name")
    sha256 = models.CharField(max_length=64, unique=True)
    agency_timezone = models.CharField(max_length=64, blank=True,
                                       help_text="service dates are days in this zone")
    has_block_id = models.BooleanField(default=False)
    service_start = models.DateField(null=True, blank=True)
    service_end = models.DateField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True, help_text="rows per table, import seconds")
    warnings = models.JSONField(default=list, blank=True)
    imported_at = models.DateTimeField()
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Agency(models.Model):
    """agency.txt row."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="agencies")
    agency_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=200)
    url = models.CharField(max_length=300, blank=True)
    timezone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.name


class Route(models.Model):
    """routes.txt row; `geom` is the union of its trips' shapes (or stop-to-stop lines without shapes)."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="routes")
    route_id = models.CharField(max_length=100)
    agency_id = models.CharField(max_length=100, blank=True)
    short_name = models.CharField(max_length=50, blank=True)
    long_name = models.CharField(max_length=200, blank=True)
    route_type = models.IntegerField(default=3)
    color = models.CharField(max_length=6, blank=True)
    geom = models.MultiLineStringField(srid=4326, null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "route_id"], name="bus_route_unique_id")]

    def __str__(self) -> str:
        return self.short_name or self.long_name or self.route_id

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.short_name, self.long_name) if p) or self.route_id


class Stop(models.Model):
    """stops.txt row (a stop without coordinates has no geometry)."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="stops")
    stop_id = models.CharField(max_length=100)
    code = models.CharField(max_length=50, blank=True)
    name = models.CharField(max_length=200, blank=True)
    geom = models.PointField(srid=4326, null=True, blank=True)
    location_type = models.SmallIntegerField(default=0)
    parent_station = models.CharField(max_length=100, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "stop_id"], name="bus_stop_unique_id")]

    def __str__(self) -> str:
        return self.name or self.stop_id


class Shape(models.Model):
    """shapes.txt points of one shape_id as a line."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="shapes")
    shape_id = models.CharField(max_length=100)
    geom = models.LineStringField(srid=4326)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "shape_id"], name="bus_shape_unique_id")]

    def __str__(self) -> str:
        return self.shape_id


class Trip(models.Model):
    """trips.txt row. `block_id` is the agency's own vehicle block, kept to compare fleet sizes."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="trips")
    trip_id = models.CharField(max_length=100)
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="trips")
    service_id = models.CharField(max_length=100)
    direction_id = models.SmallIntegerField(null=True, blank=True)
    shape = models.ForeignKey(Shape, null=True, blank=True, on_delete=models.SET_NULL, related_name="trips")
    block_id = models.CharField(max_length=100, blank=True)
    headsign = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "trip_id"], name="bus_trip_unique_id")]
        indexes = [models.Index(fields=["feed", "service_id"])]

    def __str__(self) -> str:
        return self.trip_id


class StopTime(models.Model):
    """stop_times.txt row, bulk-loaded with COPY (tens of thousands per feed)."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="+")
    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="stop_times")
    stop = models.ForeignKey(Stop, on_delete=models.CASCADE, related_name="+")
    stop_sequence = models.IntegerField()
    arrival_s = models.IntegerField(null=True, blank=True)
    departure_s = models.IntegerField(null=True, blank=True)
    shape_dist_traveled = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["trip", "stop_sequence"]), models.Index(fields=["feed"])]


class Calendar(models.Model):
    """calendar.txt row: weekdays a service runs between two dates."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="calendars")
    service_id = models.CharField(max_length=100)
    monday = models.BooleanField()
    tuesday = models.BooleanField()
    wednesday = models.BooleanField()
    thursday = models.BooleanField()
    friday = models.BooleanField()
    saturday = models.BooleanField()
    sunday = models.BooleanField()
    start_date = models.DateField()
    end_date = models.DateField()


class CalendarDate(models.Model):
    """calendar_dates.txt row: a service added (1) or removed (2) on one date."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="calendar_dates")
    service_id = models.CharField(max_length=100)
    date = models.DateField()
    exception_type = models.SmallIntegerField()


class Frequency(models.Model):
    """frequencies.txt row: the trip departs every `headway_s` from start to end."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="frequencies")
    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="frequencies")
    start_s = models.IntegerField()
    end_s = models.IntegerField()
    headway_s = models.IntegerField()
    exact_times = models.SmallIntegerField(default=0)


# ------------------------------------------------------------------------------------------------ plans


class VehiclePlan(models.Model):
    """One version of the vehicle plan of a feed for a service date. A re-plan is a new version with its
    reason; a dispatcher edits the draft, then approves it (which supersedes the previously approved one)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        SUPERSEDED = "superseded"

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="plans")
    service_date = models.DateField()
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    run = models.ForeignKey("agents_core.AgentRun", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    layover_s = models.FloatField(default=300.0)
    max_wait_s = models.FloatField(null=True, blank=True)
    depot = models.ForeignKey("city.Place", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deadhead_source = models.CharField(max_length=20, blank=True, help_text="road network / straight line / mixed")
    # KPIs, recomputed after every edit
    trips = models.PositiveIntegerField(default=0)
    vehicles = models.PositiveIntegerField(default=0)
    lower_bound = models.PositiveIntegerField(default=0)
    feed_vehicles = models.PositiveIntegerField(null=True, blank=True)
    deadhead_km = models.FloatField(default=0.0)
    deadhead_min = models.FloatField(default=0.0)
    # The counterfactual: what the city runs without the agent on the same trips (core.blocks_baseline).
    baseline_rule = models.CharField(max_length=20, blank=True, help_text="feed blocks / first-fit")
    baseline_vehicles = models.PositiveIntegerField(null=True, blank=True)
    baseline_deadhead_km = models.FloatField(null=True, blank=True)
    solve_s = models.FloatField(default=0.0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-service_date", "-version"]
        constraints = [models.UniqueConstraint(fields=["feed", "service_date", "version"],
                                               name="bus_plan_unique_version")]

    def __str__(self) -> str:
        return f"plan {self.service_date} v{self.version} ({self.status})"

    @property
    def editable(self) -> bool:
        return self.status == self.Status.DRAFT


class Block(models.Model):
    """One vehicle's day in a plan: its trips in order, the bus and driver assigned, and whether a
    dispatcher locked it (re-optimising keeps locked blocks as they are)."""

    plan = models.ForeignKey(VehiclePlan, on_delete=models.CASCADE, related_name="blocks")
    sequence = models.PositiveIntegerField()
    locked = models.BooleanField(default=False)
    vehicle = models.CharField(max_length=50, blank=True)
    driver = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["plan", "sequence"]
        constraints = [models.UniqueConstraint(fields=["plan", "sequence"], name="bus_block_unique_seq")]

    def __str__(self) -> str:
        return self.code

    @property
    def code(self) -> str:
        return f"B{self.sequence:03d}"


class BlockTrip(models.Model):
    """A trip in a block. `trip_key` is the GTFS trip_id, or `trip_id@HH:MM:SS` for a departure expanded
    from frequencies.txt. Times are copied so a plan survives a re-import of its feed."""

    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="trips")
    order = models.PositiveIntegerField()
    trip_key = models.CharField(max_length=120)
    trip_id = models.CharField(max_length=100)
    route_id = models.CharField(max_length=100, blank=True)
    start_s = models.IntegerField()
    end_s = models.IntegerField()
    first_stop_id = models.CharField(max_length=100, blank=True)
    last_stop_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["block", "order"]
        constraints = [models.UniqueConstraint(fields=["block", "order"], name="bus_blocktrip_unique_order")]

    def __str__(self) -> str:
        return self.trip_key


# ------------------------------------------------------------------------------------------------ realtime


class _ReportedPosition(models.Model):
    """The fields of one vehicle report, shared by the history (VehiclePosition) and the latest (VehicleState)."""

    vehicle_id = models.CharField(max_length=100)
    label = models.CharField(max_length=100, blank=True)
    route_id = models.CharField(max_length=100, blank=True)
    trip_id = models.CharField(max_length=120, blank=True)
    direction_id = models.SmallIntegerField(null=True, blank=True)
    geom = models.PointField(srid=4326)
    bearing = models.FloatField(null=True, blank=True)
    current_stop_sequence = models.IntegerField(null=True, blank=True)
    stop_id = models.CharField(max_length=100, blank=True)
    observed_at = models.DateTimeField()
    source = models.CharField(max_length=20, blank=True)

    class Meta:
        abstract = True


class VehiclePosition(_ReportedPosition):
    """Every reported position (history), as received from GTFS-Realtime or a JSON AVL ping."""

    # history outlives a deleted feed; the latest state (below) goes with it
    feed = models.ForeignKey(Feed, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["vehicle_id", "observed_at"]), models.Index(fields=["observed_at"])]


class VehicleState(_ReportedPosition):
    """The latest position of each vehicle (per feed), with where the evaluation placed it."""

    feed = models.ForeignKey(Feed, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    received_at = models.DateTimeField()  # copied from the position it reflects

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "vehicle_id"], nulls_distinct=False,
                                               name="bus_vehiclestate_one_per_vehicle")]

    def __str__(self) -> str:
        return self.vehicle_id


class HeadwaySnapshot(models.Model):
    """One evaluation of one route and direction: live headways, cv with its TCQSM grade, excess wait."""

    feed = models.ForeignKey(Feed, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    evaluated_at = models.DateTimeField(db_index=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    route_id = models.CharField(max_length=100)
    direction_id = models.SmallIntegerField(null=True, blank=True)
    vehicles = models.PositiveIntegerField()
    headways_s = models.JSONField(default=list)
    scheduled_headway_s = models.FloatField(null=True, blank=True)
    scheduled_source = models.CharField(max_length=10, blank=True,
                                        help_text="feed (timetable), given, or observed (mean of live headways)")
    cv = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=1, blank=True)
    ewt_s = models.FloatField(null=True, blank=True)
    bunching = models.PositiveIntegerField(default=0)
    gaps = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-evaluated_at"]


class HeadwayWarning(models.Model):
    """Bunching (headway < half the scheduled one) or a gap (> 1.5x) between two buses, with the
    recommended action; a dispatcher accepts or dismisses it (recorded with who and when)."""

    class Kind(models.TextChoices):
        BUNCHING = "bunching"
        GAP = "gap"

    class Action(models.TextChoices):
        HOLD = "hold"
        DISPATCH = "dispatch"
        WATCH = "watch"

    class Status(models.TextChoices):
        OPEN = "open"
        ACCEPTED = "accepted"
        DISMISSED = "dismissed"
        EXPIRED = "expired"

    feed = models.ForeignKey(Feed, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    route_id = models.CharField(max_length=100)
    direction_id = models.SmallIntegerField(null=True, blank=True)
    leader = models.CharField(max_length=100)
    follower = models.CharField(max_length=100)
    headway_s = models.FloatField()
    scheduled_headway_s = models.FloatField(null=True, blank=True)
    scheduled_source = models.CharField(max_length=10, blank=True,
                                        help_text="feed (timetable), given, or observed (mean of live headways)")
    action = models.CharField(max_length=10, choices=Action.choices)
    action_vehicle = models.CharField(max_length=100, blank=True)
    action_stop_id = models.CharField(max_length=100, blank=True)
    action_seconds = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    geom = models.PointField(srid=4326, null=True, blank=True, help_text="where the follower was")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    note = models.CharField(max_length=300, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.kind} route {self.route_id}: {self.leader}/{self.follower}"

    @property
    def advice_text(self) -> str:
        if self.action == self.Action.HOLD:
            return f"Hold bus {self.action_vehicle} at stop {self.action_stop_id} for {self.action_seconds} s"
        if self.action == self.Action.DISPATCH:
            where = f" at stop {self.action_stop_id}" if self.action_stop_id else ""
            return f"Dispatch a standby bus{where}"
        return "Watch: no hold would even out these headways"


# ------------------------------------------------------------------------------------------------ detours


class Detour(models.Model):
    """A route pattern (one shape) that runs over closed road: the stops it must skip, the detour the
    agent proposes on the open road network between the stops before and after, and the trips affected.
    Published as GTFS-Realtime TripUpdates (SKIPPED stops) and a Service Alert while active."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        LIFTED = "lifted"

    closure = models.ForeignKey("city.RoadClosure", on_delete=models.CASCADE, related_name="bus_detours")
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="detours")
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="detours")
    shape = models.ForeignKey(Shape, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    direction_id = models.SmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    from_stop = models.ForeignKey(Stop, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_stop = models.ForeignKey(Stop, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    skipped_stops = models.ManyToManyField(Stop, blank=True, related_name="+")
    affected_trips = models.ManyToManyField(Trip, blank=True, related_name="+")
    closed_geom = models.MultiLineStringField(srid=4326, null=True, blank=True,
                                              help_text="the part of the route that runs over closed road")
    geom = models.LineStringField(srid=4326, null=True, blank=True, help_text="the proposed detour")
    detour_m = models.FloatField(null=True, blank=True)
    replaced_m = models.FloatField(null=True, blank=True, help_text="length of the route section it replaces")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["closure", "route", "shape"], nulls_distinct=False,
                                               name="bus_detour_unique")]

    def __str__(self) -> str:
        return f"detour of route {self.route} around closure #{self.closure_id}"
