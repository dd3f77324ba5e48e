"""The shared geography every agent uses. Geometry is stored in WGS84 (SRID 4326); lengths and distances
are measured in the city's metric CRS (settings.CITY_METRIC_SRID) and stored in metres."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils import timezone

from city_ops.core.models import RestrictedQuerySet


class CityProfile(models.Model):
    """The one city this installation serves: name, time zone, metric CRS, and the road network's version
    (bumped by every import so cached graphs know to rebuild)."""

    name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC")
    metric_srid = models.IntegerField(default=3857)
    source = models.CharField(max_length=200, blank=True, help_text="where the road network came from")
    attribution = models.CharField(max_length=200, blank=True)
    synthetic = models.BooleanField(default=False)
    network_version = models.PositiveIntegerField(default=0)
    bounds = models.PolygonField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class RoadNode(models.Model):
    """A junction or end point of the drivable network (an OSM node where it came from OSM)."""

    osm_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    geom = models.PointField(srid=4326)

    def __str__(self) -> str:
        return f"node {self.osm_id or self.pk}"


class RoadSegment(models.Model):
    """A drivable road piece between two nodes. `oneway` means traffic flows source -> target only."""

    class RoadClass(models.TextChoices):
        MOTORWAY = "motorway"
        TRUNK = "trunk"
        PRIMARY = "primary"
        SECONDARY = "secondary"
        TERTIARY = "tertiary"
        RESIDENTIAL = "residential"
        SERVICE = "service"
        OTHER = "other"

    osm_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    source = models.ForeignKey(RoadNode, on_delete=models.CASCADE, related_name="out_segments")
    target = models.ForeignKey(RoadNode, on_delete=models.CASCADE, related_name="in_segments")
    geom = models.LineStringField(srid=4326)
    name = models.CharField(max_length=200, blank=True)
    road_class = models.CharField(max_length=20, choices=RoadClass.choices, default=RoadClass.OTHER)
    length_m = models.FloatField()
    speed_kph = models.FloatField()
    oneway = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.name or 'unnamed'} ({self.road_class}, {self.length_m:.0f} m)"

    @property
    def travel_time_s(self) -> float:
        return self.length_m / (self.speed_kph / 3.6)


class District(models.Model):
    """An administrative area: subscriptions, reports and KPIs group by it."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    geom = models.MultiPolygonField(srid=4326)
    synthetic = models.BooleanField(default=False, help_text="generated for the demo, not official")

    def __str__(self) -> str:
        return self.name


class Place(models.Model):
    """A named place (depot, landmark, underpass name) that people refer to."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=40, blank=True)
    geom = models.PointField(srid=4326)
    synthetic = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class ClosureQuerySet(RestrictedQuerySet):
    def active(self, at=None):
        at = at or timezone.now()
        return self.filter(valid_from__lte=at).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))

    @staticmethod
    def restrict_for(qs, user, action):
        # Closures are operational facts every signed-in role needs (crews drive around them too).
        from city_ops.core.roles import Role, user_has_role

        if action == "view" and user_has_role(user, Role.DISPATCHER, Role.FIELD_CREW):
            return qs
        if user_has_role(user, Role.DISPATCHER):
            return qs
        return qs.none()


class RoadClosure(models.Model):
    """A road (or part of the network) that must not be used between valid_from and valid_to. Written by
    agents (the flood agent) or dispatchers; the road-network service leaves its segments out."""

    geom = models.GeometryField(srid=4326, help_text="the closed area or line")
    segments = models.ManyToManyField(RoadSegment, related_name="closures", blank=True)
    reason = models.CharField(max_length=200)
    source_agent = models.CharField(max_length=40, blank=True)
    source_ref = models.CharField(max_length=100, blank=True, help_text="e.g. the alert that caused it")
    valid_from = models.DateTimeField(default=timezone.now)
    valid_to = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClosureQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["valid_from", "valid_to"])]

    def __str__(self) -> str:
        return f"closure: {self.reason}"

    restrict_for = ClosureQuerySet.restrict_for


class CityEvent(models.Model):
    """Something that happened to the city that agents may react to (a closure opened or lifted, a zone's
    alert level changed). Written in the same transaction as the change; dispatched after commit."""

    class Kind(models.TextChoices):
        CLOSURE_OPENED = "closure.opened"
        CLOSURE_LIFTED = "closure.lifted"
        ZONE_LEVEL_CHANGED = "zone.level_changed"
        VEHICLE_BREAKDOWN = "vehicle.breakdown"
        DEMO = "demo.ping"

    kind = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField(default=dict)
    source_agent = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
