"""What the flood agent owns: sensors and their series, the readings (years of minute data from thousands of
sensors), flood zones, alerts with their audit trail, the alert tracker's persisted state, and imported CAP
messages.

Readings are the big table. Its primary key is (series, time): that makes a re-sent reading a no-op
(`INSERT ... ON CONFLICT DO NOTHING`), a re-sent reading with another value a revision (the value it
replaces is kept in `ReadingRevision`), and serves "latest readings of a series" as a backward index scan, with
no surrogate id or sequence to slow the COPY ingest. A BRIN index on time keeps time-range scans cheap at
a few kilobytes per million rows (readings arrive roughly in time order). Each series also carries its latest
time and value, updated by the ingest, for the map and the "latest per series" lists.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from city_ops.core.models import RestrictedQuerySet

from .domain.vocabulary import CANONICAL_UNITS, Level

LEVEL_CHOICES = [(int(level), level.label) for level in Level]
PARAMETER_CHOICES = [(name, name) for name in CANONICAL_UNITS]
HAZARD_CHOICES = [("rainstorm", "rainstorm"), ("river_flood", "river flood"), ("waterlogging", "waterlogging")]


class FloodQuerySet(RestrictedQuerySet):
    """Flood data is operational: dispatchers (and admins) see everything, field crews may view it (they
    drive around flooded roads), nobody else sees anything."""

    @staticmethod
    def restrict_for(qs, user, action):
        from city_ops.core.roles import Role, user_has_role

        if user_has_role(user, Role.DISPATCHER):
            return qs
        if action == "view" and user_has_role(user, Role.FIELD_CREW):
            return qs
        return qs.none()


class Sensor(models.Model):
    """A field device at a point: a rain gauge, a river or sea-level gauge, or a waterlogging depth sensor
    in an underpass or on a low road. It measures one or more parameters (each a Series)."""

    class Kind(models.TextChoices):
        RAIN = "rain", "rain gauge"
        RIVER = "river", "river gauge"
        SEA = "sea", "sea-level gauge"
        DEPTH = "depth", "waterlogging depth sensor"

    class Status(models.TextChoices):
        ACTIVE = "active"
        FAULT = "fault"  # stuck or silent, as the last evaluation judged it
        MAINTENANCE = "maintenance"
        RETIRED = "retired"  # kept for its history; not evaluated

    code = models.CharField(max_length=64, unique=True, help_text="the id gateways and files use, e.g. E9140")
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    geom = models.PointField(srid=4326, null=True, blank=True, help_text="empty when a file named no position")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    fault = models.CharField(max_length=200, blank=True, help_text="why it is in fault (stuck, silent)")
    expected_interval_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="how often it reports; empty: learnt from its readings")
    installed_on = models.DateField(
        null=True, blank=True, help_text="readings dated before this day (UTC) are refused; empty: no lower bound")
    metadata = models.JSONField(default=dict, blank=True, help_text="source, station ids, synthetic flag")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class Series(models.Model):
    """One parameter of one sensor, in the parameter's canonical unit (level m, discharge m3/s, rainfall mm,
    depth cm), with the thresholds the rules use and the latest reading. A summary series (a USGS daily mean)
    names its statistic; instantaneous readings have none. The series' rule judges the series whose statistic
    it names (`rule_statistic`): by default none, so instantaneous series are judged and summary series only
    stored and charted until an operator names their statistic (a daily total is no 3-hour rainfall, and one
    value a day would read as a silent sensor, so judging them is a decision, not a default)."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="series")
    parameter = models.CharField(max_length=12, choices=PARAMETER_CHOICES)
    statistic = models.CharField(max_length=5, blank=True, default="",
                                 help_text="the source's statistic code (USGS 00003: daily mean); empty: instantaneous")
    rule_statistic = models.CharField(
        max_length=5, blank=True, default="",
        help_text="the statistic the rule judges: empty for instantaneous readings; a summary series' own "
                  "statistic (e.g. 00003) to raise alerts on its values, at their daily times")
    unit = models.CharField(max_length=8)
    # water level (m, the gauge's datum): 警戒水位 and 保证水位
    warning_level = models.FloatField(null=True, blank=True)
    guaranteed_level = models.FloatField(null=True, blank=True)
    # waterlogging depth (cm)
    caution_depth = models.FloatField(null=True, blank=True, help_text="blue; default 15 cm")
    closure_depth = models.FloatField(null=True, blank=True, help_text="yellow and road closure; default 25 cm")
    # the sensor's normal range where the source publishes one; QC widens it into a plausibility band
    typical_low = models.FloatField(null=True, blank=True)
    typical_high = models.FloatField(null=True, blank=True)
    # what the instrument can measure at all: a value outside is refused as impossible at ingest (empty: the
    # parameter's hard limits, agents/flood/domain/qc.py)
    range_low = models.FloatField(null=True, blank=True, help_text="lowest value the sensor can report")
    range_high = models.FloatField(null=True, blank=True, help_text="highest value the sensor can report")
    last_time = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    # Counts the ingests that stored readings at or before the series' latest time (a backfill): a live run
    # that kept this series' recent readings from its previous run checks them again when it moves.
    backfills = models.PositiveBigIntegerField(default=0)
    # The reading time up to which the live evaluation has judged this series (its own readings, not the
    # newest of any series): a reading is judged once, when its time is past this mark, even when it came
    # late (after other series' newer readings were judged). Written by the run that judged it.
    evaluated_until = models.DateTimeField(null=True, blank=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["sensor__code", "parameter", "statistic"]
        constraints = [models.UniqueConstraint(fields=["sensor", "parameter", "statistic"],
                                               name="flood_series_unique")]

    def __str__(self) -> str:
        return f"{self.sensor.code}:{self.parameter}" + (f":{self.statistic}" if self.statistic else "")

    def clean(self) -> None:
        # A rule naming another statistic would judge nothing: the series' own readings are all it has.
        if self.rule_statistic not in ("", self.statistic):
            raise ValidationError({"rule_statistic": _(
                "The rule can name only this series' own statistic (%(statistic)s) or none.")
                % {"statistic": self.statistic or "none: instantaneous"}})


class Reading(models.Model):
    """One value of one series at one time (UTC). Stored once per (series, time): re-sending it is a no-op,
    re-sending another value a revision. `qc` is what quality control made of it (a flagged value never
    reaches a rule): spike and out-of-range are the evaluation's judgement, which a later run may revise;
    impossible is the ingest's, final, and such a reading is never read back for the rules."""

    class QC(models.IntegerChoices):
        OK = 0, "ok"
        SPIKE = 1, "spike"
        OUT_OF_RANGE = 2, "out of range"
        IMPOSSIBLE = 3, "impossible"

    pk = models.CompositePrimaryKey("series_id", "time")
    # The primary key's leading column indexes it already. No database FK constraint: a deferred FK check
    # per row doubled the COPY ingest time (measured: 9 s of 21 s for 1.44 M rows), and the ingest only
    # writes series ids it has just read from the series table; deleting a series deletes its readings
    # through the ORM's cascade.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, db_index=False, db_constraint=False,
                               related_name="readings")
    time = models.DateTimeField()
    value = models.FloatField()
    qc = models.SmallIntegerField(choices=QC.choices, default=QC.OK)

    class Meta:
        indexes = [BrinIndex(fields=["time"], name="flood_reading_time_brin", pages_per_range=32)]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.time:%Y-%m-%dT%H:%M:%SZ}={self.value:g}"


class ReadingRevision(models.Model):
    """A value a revision replaced: an agency re-sent the reading of (series, time) with another value (USGS
    and the EA revise provisional data). The reading holds the new value; this keeps the old one, its QC
    flag, and when it was replaced."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, db_constraint=False, related_name="revisions")
    time = models.DateTimeField()
    value = models.FloatField(help_text="the value replaced")
    qc = models.SmallIntegerField(choices=Reading.QC.choices)
    replaced_at = models.DateTimeField()

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["series", "time", "replaced_at"]
        indexes = [models.Index(fields=["series", "time"], name="flood_revision_series_time")]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.time:%Y-%m-%dT%H:%M:%SZ} was {self.value:g} until {self.replaced_at:%Y-%m-%d %H:%M}"


class FloodZone(models.Model):
    """A low-lying area, an underpass or a river reach. What lies in it is found by spatial query (road
    segments, other agents' assets); sensors belong to the zones they lie in or are assigned to. A CAP
    rainstorm warning covering it puts it on standby until the warning expires."""

    class Kind(models.TextChoices):
        LOW_AREA = "low_area", "low-lying area"
        UNDERPASS = "underpass"
        RIVER_REACH = "river_reach", "river reach"

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    geom = models.PolygonField(srid=4326)
    assigned_sensors = models.ManyToManyField(Sensor, blank=True, related_name="assigned_zones",
                                              help_text="sensors outside the polygon that watch it (rain gauges)")
    level = models.SmallIntegerField(choices=LEVEL_CHOICES, default=0, help_text="highest open alert level")
    standby_until = models.DateTimeField(null=True, blank=True)
    standby_source = models.ForeignKey("CapImport", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    metadata = models.JSONField(default=dict, blank=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One alert of one hazard in one zone, from raising to clearing. At most one is open per (zone,
    hazard) - the database refuses a second. `level` is what is in force: the tracker's level, or higher
    where a dispatcher escalated by hand (`manual_level`)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLEARED = "cleared"

    class Closure(models.TextChoices):
        NONE = "none"
        REQUESTED = "requested"  # the road is closed
        LIFT_PROPOSED = "lift_proposed"  # the water is down; a dispatcher confirms the reopening
        LIFTED = "lifted"

    key = models.CharField(max_length=160, db_index=True, help_text="the tracker's alert id")
    zone = models.ForeignKey(FloodZone, on_delete=models.PROTECT, related_name="alerts")
    hazard = models.CharField(max_length=16, choices=HAZARD_CHOICES)
    level = models.SmallIntegerField(choices=LEVEL_CHOICES)
    tracker_level = models.SmallIntegerField(choices=LEVEL_CHOICES)
    manual_level = models.SmallIntegerField(choices=LEVEL_CHOICES, default=0)
    max_level = models.SmallIntegerField(choices=LEVEL_CHOICES, default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    rule = models.CharField(max_length=60)
    evidence = models.JSONField(default=list, blank=True, help_text="the readings the decision rests on")
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    forecast = models.BooleanField(default=False, help_text="raised by the rate-of-rise forecast")
    raised_at = models.DateTimeField(help_text="reading time")
    cleared_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closure_state = models.CharField(max_length=14, choices=Closure.choices, default=Closure.NONE)
    closure = models.ForeignKey("city.RoadClosure", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    lead_time_min = models.FloatField(null=True, blank=True,
                                      help_text="minutes between raising and the gauge crossing its warning")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "hazard"], condition=Q(status="open"),
                                    name="flood_one_open_alert_per_zone_hazard"),
        ]
        indexes = [models.Index(fields=["status", "-level"])]

    def __str__(self) -> str:
        return f"{Level(self.level).label} {self.hazard} in {self.zone.name} ({self.status})"

    @property
    def level_label(self) -> str:
        return Level(self.level).label


class AlertEvent(models.Model):
    """One state change, for the audit trail and the CAP message history: which readings (evidence keys
    `sensor:parameter:time`), which rule, which person. Sensor-fault notices have no alert."""

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    zone = models.ForeignKey(FloodZone, on_delete=models.CASCADE, related_name="events")
    hazard = models.CharField(max_length=16, choices=HAZARD_CHOICES)
    seq = models.PositiveIntegerField(null=True, blank=True, help_text="the tracker's sequence number")
    kind = models.CharField(max_length=24)
    time = models.DateTimeField(help_text="reading time (or the dispatcher's action time)")
    level = models.SmallIntegerField(choices=LEVEL_CHOICES)
    previous_level = models.SmallIntegerField(choices=LEVEL_CHOICES)
    rule = models.CharField(max_length=60, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    sensor_code = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey("agents_core.AgentRun", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["alert", "time"]), models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.hazard} in zone {self.zone_id} at {self.time:%Y-%m-%d %H:%M}"


class TrackerState(models.Model):
    """The alert tracker between runs (its `state_dump` JSON) and the reading time evaluated up to. One row
    per city installation (`name` "live"); runs and dispatcher actions lock it so they never interleave."""

    name = models.CharField(max_length=40, unique=True, default="live")
    state = models.JSONField(default=dict, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # New with every row: what a worker kept from its previous run belongs to this row's history only.
    generation = models.UUIDField(default=uuid.uuid4, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"tracker {self.name} @ {self.evaluated_at}"


class CapImport(models.Model):
    """A CAP message imported from the weather service (or another agency), and the zones it put on
    standby. The raw XML is kept as received."""

    identifier = models.CharField(max_length=200)
    sender = models.CharField(max_length=200)
    sent = models.DateTimeField()
    msg_type = models.CharField(max_length=10)
    status = models.CharField(max_length=10)
    event = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=10, blank=True)
    urgency = models.CharField(max_length=10, blank=True)
    headline = models.CharField(max_length=300, blank=True)
    effective = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField(null=True, blank=True)
    area = models.MultiPolygonField(srid=4326, null=True, blank=True)
    area_desc = models.TextField(blank=True)
    references = models.JSONField(default=list, blank=True)
    rainstorm = models.BooleanField(default=False, help_text="a rain/storm/flood warning (puts zones on standby)")
    zones = models.ManyToManyField(FloodZone, blank=True, related_name="cap_imports")
    warnings = models.JSONField(default=list, blank=True)
    raw = models.TextField()
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["-imported_at"]
        constraints = [models.UniqueConstraint(fields=["sender", "identifier", "sent"], name="flood_cap_unique")]

    def __str__(self) -> str:
        return f"CAP {self.msg_type} {self.event} from {self.sender}"


class Drill(models.Model):
    """A drill started from the flood panel: a readings file (uploaded, or a bundled scenario) replayed
    through the evaluation loop tick by tick at a chosen speed, against the city's sensors and zones. It
    runs in memory: its alert log is kept here and nowhere else (no live alert, closure, notification or
    work order). Between ticks it keeps the tracker's state and where it stands."""

    class Status(models.TextChoices):
        # the labels are the ones Django derived before they were translated: no migration for the words
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Failed")

    name = models.CharField(max_length=200, help_text="the file's name or the scenario's title")
    scenario = models.CharField(max_length=40, blank=True, help_text="the bundled scenario, if one")
    data = models.BinaryField(help_text="the readings file as given")
    fmt = models.CharField(max_length=16, blank=True)
    tz = models.CharField(max_length=64, blank=True)
    speed = models.FloatField(help_text="times real time; 0: as fast as possible")
    step_min = models.FloatField(default=15.0, help_text="reading-time minutes per tick")
    auto_confirm_min = models.FloatField(null=True, blank=True,
                                         help_text="proposed closure lifts confirmed this much later; empty: never")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    start = models.DateTimeField(help_text="the first reading's time")
    end = models.DateTimeField(help_text="the last reading's time")
    clock = models.DateTimeField(help_text="reading time replayed up to")
    ticks = models.PositiveIntegerField(default=0)
    readings = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list, blank=True, help_text="rows the parser refused")
    skipped = models.JSONField(default=dict, blank=True)
    position = models.JSONField(default=dict, blank=True, help_text="the tracker and tick cursor between ticks")
    events = models.JSONField(default=list, blank=True, help_text="the drill's alert log so far")
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FloodQuerySet.as_manager()
    restrict_for = FloodQuerySet.restrict_for

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drill {self.name} ({self.status})"
