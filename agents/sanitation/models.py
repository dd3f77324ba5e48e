"""What the sanitation agent owns: bins and their fill readings, crews' pickups, depots, disposal sites,
trucks and crews, the learned fill model per bin, and the collection plans (versions of routes and stops).

Crews see only their own routes and stops (`restrict_for`); dispatchers see everything."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q

from city_ops.core.models import RestrictedQuerySet


class WasteType(models.TextChoices):
    MIXED = "mixed", "mixed waste"
    BIO = "bio", "biowaste"
    PAPER = "paper", "paper and cardboard"
    PLASTIC = "plastic", "plastic packaging"
    GLASS = "glass", "glass"


# Loose density in the bin (kg per litre): turns a volume forecast into a weight for trucks' limits.
DENSITY_KG_L = {
    WasteType.MIXED: 0.12,
    WasteType.BIO: 0.40,
    WasteType.PAPER: 0.08,
    WasteType.PLASTIC: 0.04,
    WasteType.GLASS: 0.30,
}


class Depot(models.Model):
    """Where trucks start and end their day, with its opening hours."""

    name = models.CharField(max_length=100, unique=True)
    geom = models.PointField(srid=4326)
    opens = models.TimeField(default="05:00")
    closes = models.TimeField(default="20:00")

    def __str__(self) -> str:
        return self.name


class DisposalSite(models.Model):
    """A transfer station or landfill: its opening hours, the time an unload takes, what it accepts."""

    name = models.CharField(max_length=100, unique=True)
    geom = models.PointField(srid=4326)
    opens = models.TimeField(default="06:00")
    closes = models.TimeField(default="18:00")
    unload_min = models.PositiveIntegerField(default=15, help_text="minutes an unload takes")
    waste_types = models.JSONField(default=list, blank=True, help_text="accepted waste types; empty: all")

    def __str__(self) -> str:
        return self.name


class Crew(models.Model):
    """A truck's crew: the signed-in field-crew users who work its routes (they see only those)."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="sanitation_crews", blank=True)

    def __str__(self) -> str:
        return self.name


class Truck(models.Model):
    """A collection truck: its depot, shift, capacity per trip (litres of loose bin volume and kg), daily
    weight cap across trips, stop limit, the crew's lunch break, the waste types it takes and its crew.
    `in_service` is cleared by a breakdown until someone puts it back."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100, blank=True)
    depot = models.ForeignKey(Depot, on_delete=models.PROTECT, related_name="trucks")
    crew = models.ForeignKey(Crew, null=True, blank=True, on_delete=models.SET_NULL, related_name="trucks")
    waste_types = models.JSONField(default=list, help_text="waste types it collects, e.g. ['mixed']")
    capacity_l = models.PositiveIntegerField(help_text="litres of bin volume per trip (before compaction)")
    capacity_kg = models.PositiveIntegerField(help_text="payload per trip")
    daily_cap_kg = models.PositiveIntegerField(null=True, blank=True, help_text="most it may collect in a day")
    max_stops = models.PositiveIntegerField(null=True, blank=True)
    shift_start = models.TimeField(default="06:00")
    shift_end = models.TimeField(default="14:30")
    lunch_earliest = models.TimeField(null=True, blank=True, default="10:30")
    lunch_latest = models.TimeField(null=True, blank=True, default="12:00")
    lunch_min = models.PositiveIntegerField(default=30)
    in_service = models.BooleanField(default=True)
    out_of_service_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Bin(models.Model):
    """A collection point: a bin or container at a place on a street (snapped to its road segment), its
    volume, waste type, the hours it may be emptied, how long emptying takes and its fill sensor, if any."""

    code = models.CharField(max_length=40, unique=True)
    geom = models.PointField(srid=4326)
    segment = models.ForeignKey("city.RoadSegment", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    street = models.CharField(max_length=200, blank=True)
    capacity_l = models.PositiveIntegerField()
    waste_type = models.CharField(max_length=10, choices=WasteType.choices, default=WasteType.MIXED)
    access_from = models.TimeField(default="00:00")
    access_to = models.TimeField(default="23:59:59")
    service_s = models.PositiveIntegerField(default=60, help_text="seconds to empty it")
    sensor_id = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["sensor_id"], condition=~Q(sensor_id=""), name="one_bin_per_sensor"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def density_kg_l(self) -> float:
        return DENSITY_KG_L.get(self.waste_type, 0.12)


class FillReading(models.Model):
    """A bin sensor's fill level (0 empty, 1 full) at a time. One row per (bin, time): ingest is idempotent."""

    bin = models.ForeignKey(Bin, on_delete=models.CASCADE, related_name="readings")
    at = models.DateTimeField()
    fill = models.FloatField()
    source = models.CharField(max_length=20, default="sensor")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bin", "at"], name="one_reading_per_bin_time")]
        indexes = [models.Index(fields=["bin", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.bin_id} {self.at:%Y-%m-%d %H:%M} {self.fill:.2f}"


def _crew_rule(path: str):
    """A `restrict_for` rule: dispatchers see every row, field crews the rows of their own crews' routes
    (`path` leads from the row to the crew's members), anyone else nothing."""

    def rule(qs, user, action):
        from city_ops.core.roles import Role, user_has_role

        if user_has_role(user, Role.DISPATCHER):
            return qs
        if user_has_role(user, Role.FIELD_CREW):
            return qs.filter(**{path: user}).distinct()
        return qs.none()

    return staticmethod(rule)


class CollectionPlan(models.Model):
    """One version of the collection plan for a date. The nightly run makes version 1 as a draft; edits,
    closures and breakdowns make new versions with their reason; a dispatcher approves one (which
    supersedes the version approved before)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        SUPERSEDED = "superseded"

    date = models.DateField(db_index=True)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    reason = models.CharField(max_length=300, blank=True)
    run = models.ForeignKey("agents_core.AgentRun", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="sanitation_plans")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    feasible = models.BooleanField(default=False)
    violations = models.JSONField(default=list, blank=True)
    kpis = models.JSONField(default=dict, blank=True, help_text="km, hours, bins vs the fixed schedule, MAE")
    candidates = models.JSONField(default=dict, blank=True,
                                  help_text="bin id -> demand, prize, required: the problem re-optimising uses")
    closed_segments = models.JSONField(default=list, blank=True, help_text="road segments closed when planned")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-version"]
        constraints = [models.UniqueConstraint(fields=["date", "version"], name="one_plan_version_per_date")]

    def __str__(self) -> str:
        return f"plan {self.date} v{self.version} ({self.status})"


class PlanRoute(models.Model):
    """One truck's day in a plan: the order of its stops, the road geometry it drives, its distance and
    hours, its load and time profile, and whether a dispatcher locked it against re-optimising."""

    plan = models.ForeignKey(CollectionPlan, on_delete=models.CASCADE, related_name="routes")
    truck = models.ForeignKey(Truck, on_delete=models.PROTECT, related_name="routes")
    crew = models.ForeignKey(Crew, null=True, blank=True, on_delete=models.SET_NULL, related_name="routes")
    order = models.PositiveIntegerField(default=0)
    geom = models.LineStringField(srid=4326, null=True, blank=True)
    segment_ids = models.JSONField(default=list, blank=True, help_text="road segments driven, in order")
    distance_m = models.FloatField(default=0)
    depart_at = models.DateTimeField(null=True, blank=True)
    back_at = models.DateTimeField(null=True, blank=True)
    lunch_at = models.DateTimeField(null=True, blank=True)
    profile = models.JSONField(default=list, blank=True, help_text="[{t, load_l, load_kg, stop}] per stop")
    locked = models.BooleanField(default=False)
    color = models.CharField(max_length=9, default="#1f6feb")

    objects = RestrictedQuerySet.as_manager()
    restrict_for = _crew_rule("crew__members")

    class Meta:
        ordering = ["plan", "order"]
        constraints = [models.UniqueConstraint(fields=["plan", "truck"], name="one_route_per_truck_per_plan")]

    def __str__(self) -> str:
        return f"{self.plan} / {self.truck}"

    @property
    def hours(self) -> float:
        if self.depart_at and self.back_at:
            return (self.back_at - self.depart_at).total_seconds() / 3600
        return 0.0


class PlanStop(models.Model):
    """A stop of a route: a bin to empty or a disposal site to unload at, with the planned times and the
    truck's load after it."""

    class Kind(models.TextChoices):
        BIN = "bin"
        DISPOSAL = "disposal"

    route = models.ForeignKey(PlanRoute, on_delete=models.CASCADE, related_name="stops")
    order = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    bin = models.ForeignKey(Bin, null=True, blank=True, on_delete=models.PROTECT, related_name="plan_stops")
    disposal_site = models.ForeignKey(DisposalSite, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="plan_stops")
    arrival = models.DateTimeField(null=True, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    departure = models.DateTimeField(null=True, blank=True)
    load_after_l = models.IntegerField(default=0)
    load_after_kg = models.IntegerField(default=0)
    forecast_fill = models.FloatField(null=True, blank=True)
    required = models.BooleanField(default=False)
    reason = models.CharField(max_length=60, blank=True)

    objects = RestrictedQuerySet.as_manager()
    restrict_for = _crew_rule("route__crew__members")

    class Meta:
        ordering = ["route", "order"]
        constraints = [models.UniqueConstraint(fields=["route", "order"], name="one_stop_per_route_order")]

    def __str__(self) -> str:
        return f"{self.route_id}#{self.order} {self.bin_id or self.disposal_site_id}"


class Pickup(models.Model):
    """What a crew did at a bin: collected it (with the fill it saw) or skipped it (blocked access, not put
    out, overflowing already; a photo shows why). The fill model learns from these."""

    class Status(models.TextChoices):
        COLLECTED = "collected"
        SKIPPED = "skipped"

    class Reason(models.TextChoices):
        BLOCKED = "blocked", "access blocked"
        NOT_OUT = "not_out", "bin not put out"
        OVERFLOWING = "overflowing", "overflowing already"
        OTHER = "other", "other"

    bin = models.ForeignKey(Bin, on_delete=models.CASCADE, related_name="pickups")
    at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=12, choices=Reason.choices, blank=True)
    observed_fill = models.FloatField(null=True, blank=True, help_text="the level the crew saw (0-1.5)")
    overflowing = models.BooleanField(default=False, help_text="waste lay beside the bin")
    photo = models.ImageField(upload_to="sanitation/pickups/%Y/%m/", null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    crew = models.ForeignKey(Crew, null=True, blank=True, on_delete=models.SET_NULL, related_name="pickups")
    stop = models.OneToOneField(PlanStop, null=True, blank=True, on_delete=models.SET_NULL, related_name="pickup")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()
    restrict_for = _crew_rule("crew__members")

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["bin", "at"])]

    def __str__(self) -> str:
        return f"{self.bin_id} {self.status} {self.at:%Y-%m-%d %H:%M}"


class FillModel(models.Model):
    """The learned fill model of one bin, rewritten by every run: rate per weekday, the last known level,
    the forecast for the plan date, and the day-ahead forecast error (MAE) with its recent history."""

    bin = models.OneToOneField(Bin, on_delete=models.CASCADE, related_name="fill_model")
    rates = models.JSONField(default=list, help_text="fill per day, Monday first (fraction of the bin)")
    mean_rate = models.FloatField(default=0)
    source = models.CharField(max_length=12, default="prior", help_text="own data, or neighbours' (kNN)")
    n_obs = models.PositiveIntegerField(default=0)
    last_level = models.FloatField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    forecast_for = models.DateField(null=True, blank=True)
    forecast_fill = models.FloatField(null=True, blank=True, help_text="expected level at the end of that day")
    forecast_sd = models.FloatField(null=True, blank=True)
    mae = models.FloatField(null=True, blank=True, help_text="mean absolute day-ahead error, last 28 days")
    mae_n = models.PositiveIntegerField(default=0)
    mae_history = models.JSONField(default=list, blank=True, help_text="[[date, mae, n]] per run, newest last")
    state = models.JSONField(default=dict, blank=True, help_text="the filter's parameters and covariance")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"fill model of {self.bin_id}"


class CityPlan(models.Model):
    """A day planned district by district, each district a task of its own on the planning queue (so a city
    of many districts plans on as many planning workers as there are), with the districts' figures summed
    once the last one is done (`services.city_plans`). The districts' routes are figures here, not a plan
    version: the panel's plan of a date stays the one `CollectionPlan` the dispatcher approves."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"

    date = models.DateField(db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    options = models.JSONField(default=dict, blank=True, help_text="solver time limit, seed, bins per district")
    kpis = models.JSONField(default=dict, blank=True, help_text="the districts' km, trucks, bins, hours summed")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"city plan {self.date} #{self.pk} ({self.status})"


class DistrictPlan(models.Model):
    """One district's part of a `CityPlan`: its trucks, then (once a planning worker has claimed and
    solved it) its figures and per-truck routes, or the reason it failed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    city_plan = models.ForeignKey(CityPlan, on_delete=models.CASCADE, related_name="districts")
    district = models.ForeignKey("city.District", on_delete=models.PROTECT, related_name="+")
    truck_ids = models.JSONField(default=list, help_text="the trucks this district is given")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.CharField(max_length=120, blank=True)
    kpis = models.JSONField(default=dict, blank=True)
    routes = models.JSONField(default=list, blank=True, help_text="[{truck, bins, km}] per route")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["city_plan", "district"], name="one_part_per_district")]

    def __str__(self) -> str:
        return f"{self.district_id} of {self.city_plan_id} ({self.status})"
