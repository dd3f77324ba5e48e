"""API shapes of the bus agent."""
from __future__ import annotations

from rest_framework import serializers

from city_ops.core.timeutil import date_parse

from ..models import Block, Detour, Feed, HeadwayWarning, VehiclePlan


class BusFeedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Feed
        fields = ["id", "name", "source_name", "sha256", "agency_timezone", "has_block_id", "service_start",
                  "service_end", "stats", "warnings", "imported_at"]


class BusFeedUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="a GTFS zip")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    replace = serializers.IntegerField(required=False, help_text="load as a new version of this feed id")


class BusBlockSerializer(serializers.ModelSerializer):
    code = serializers.CharField(read_only=True)
    trips = serializers.SerializerMethodField()

    class Meta:
        model = Block
        fields = ["id", "sequence", "code", "locked", "vehicle", "driver", "trips"]

    def get_trips(self, block) -> list[str]:
        return [t.trip_key for t in block.trips.all()]


class BusPlanSerializer(serializers.ModelSerializer):
    feed_name = serializers.CharField(source="feed.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    approved_by = serializers.CharField(source="approved_by.username", default=None, read_only=True)
    depot = serializers.CharField(source="depot.name", default=None, read_only=True)

    class Meta:
        model = VehiclePlan
        fields = ["id", "feed", "feed_name", "service_date", "version", "status", "reason", "created_at",
                  "created_by", "approved_at", "approved_by", "layover_s", "max_wait_s", "depot", "deadhead_source",
                  "trips", "vehicles", "lower_bound", "feed_vehicles", "deadhead_km", "deadhead_min", "solve_s", "run"]


class BusPlanDetailSerializer(BusPlanSerializer):
    blocks = BusBlockSerializer(many=True, read_only=True)

    class Meta(BusPlanSerializer.Meta):
        fields = [*BusPlanSerializer.Meta.fields, "blocks"]


class BusPlanRequestSerializer(serializers.Serializer):
    feed = serializers.PrimaryKeyRelatedField(queryset=Feed.objects.all())
    date = serializers.CharField(help_text="service date YYYY-MM-DD")
    layover_min = serializers.FloatField(required=False, min_value=0, max_value=120)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)

    def validate_date(self, value):
        try:
            return date_parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class BusPlanEditSerializer(serializers.Serializer):
    ACTIONS = ("move", "lock", "unlock", "reoptimise", "assign")
    action = serializers.ChoiceField(choices=ACTIONS)
    trip_key = serializers.CharField(required=False, max_length=120)
    to_block = serializers.IntegerField(required=False, min_value=1, help_text="block sequence (B007 -> 7)")
    blocks = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    block = serializers.IntegerField(required=False, min_value=1)
    vehicle = serializers.CharField(required=False, allow_blank=True, max_length=50)
    driver = serializers.CharField(required=False, allow_blank=True, max_length=100)

    def validate(self, data):
        needs = {"move": ("trip_key", "to_block"), "lock": ("blocks",), "unlock": ("blocks",), "reoptimise": (),
                 "assign": ("block",)}[data["action"]]
        missing = [k for k in needs if k not in data]
        if missing:
            raise serializers.ValidationError({k: f"required for action '{data['action']}'" for k in missing})
        if data["action"] == "assign" and "vehicle" not in data and "driver" not in data:
            raise serializers.ValidationError("assign needs a vehicle, a driver or both")
        return data


class BusWarningSerializer(serializers.ModelSerializer):
    advice = serializers.CharField(source="advice_text", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)

    class Meta:
        model = HeadwayWarning
        fields = ["id", "feed", "kind", "route_id", "direction_id", "leader", "follower", "headway_s",
                  "scheduled_headway_s", "scheduled_source", "action", "action_vehicle", "action_stop_id", "action_seconds", "advice",
                  "reason", "status", "created_at", "last_seen_at", "decided_at", "decided_by", "note"]


class BusWarningDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class BusDetourSerializer(serializers.ModelSerializer):
    route_id = serializers.CharField(source="route.route_id", read_only=True)
    route = serializers.CharField(source="route.label", read_only=True)
    from_stop = serializers.CharField(source="from_stop.stop_id", default=None, read_only=True)
    to_stop = serializers.CharField(source="to_stop.stop_id", default=None, read_only=True)
    skipped_stops = serializers.SerializerMethodField()
    trips = serializers.SerializerMethodField()
    geometry = serializers.SerializerMethodField()

    class Meta:
        model = Detour
        fields = ["id", "closure", "feed", "route_id", "route", "direction_id", "status", "from_stop", "to_stop",
                  "skipped_stops", "trips", "detour_m", "replaced_m", "note", "created_at", "lifted_at", "geometry"]

    def get_skipped_stops(self, d) -> list[str]:
        return [s.stop_id for s in d.skipped_stops.all()]

    def get_trips(self, d) -> int:
        return d.affected_trips.count()

    def get_geometry(self, d) -> dict | None:
        import json

        return json.loads(d.geom.geojson) if d.geom else None
