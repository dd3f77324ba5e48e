"""Serializers of the flood API."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from ..domain.vocabulary import Level
from ..models import Alert, AlertEvent, CapImport

LEVEL_NAMES = [level.label for level in Level if level > Level.NONE]


class IngestResultSerializer(serializers.Serializer):
    """The ingest summary (same shape as `ingest_readings --json`)."""

    accepted = serializers.IntegerField(help_text="readings newly stored")
    duplicates = serializers.IntegerField(help_text="readings already stored with the same value")
    revised = serializers.IntegerField(help_text="stored readings that took a new value (the old one is kept)")
    rejected = serializers.ListField(child=serializers.DictField(), help_text="rows refused: row and reason")
    flagged = serializers.ListField(child=serializers.DictField(),
                                    help_text="rows stored but flagged impossible (they drive no rule): row and reason")


class AlertEventSerializer(serializers.ModelSerializer):
    level = serializers.SerializerMethodField()
    previous_level = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AlertEvent
        fields = ["id", "seq", "kind", "time", "level", "previous_level", "rule", "evidence", "sensor_code", "actor",
                  "detail"]

    def get_level(self, obj) -> str:
        return Level(obj.level).label

    def get_previous_level(self, obj) -> str:
        return Level(obj.previous_level).label

    def get_actor(self, obj) -> str:
        return obj.actor.username if obj.actor_id else obj.actor_label


class AlertSerializer(serializers.ModelSerializer):
    zone = serializers.CharField(source="zone.code")
    zone_name = serializers.CharField(source="zone.name")
    level = serializers.SerializerMethodField()
    sensor = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()
    cap_url = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "key", "zone", "zone_name", "hazard", "level", "status", "rule", "evidence", "sensor",
                  "forecast", "raised_at", "cleared_at", "acknowledged_by", "acknowledged_at", "closure_state",
                  "closure_id", "lead_time_min", "cap_url"]

    def get_level(self, obj) -> str:
        return Level(obj.level).label

    def get_sensor(self, obj) -> str | None:
        return obj.sensor.code if obj.sensor_id else None

    def get_acknowledged_by(self, obj) -> str | None:
        return obj.acknowledged_by.username if obj.acknowledged_by_id else None

    def get_cap_url(self, obj) -> str:
        return reverse("flood-api:alert-cap", args=[obj.pk])


class AlertDetailSerializer(AlertSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "events"]


class EscalateSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=LEVEL_NAMES, required=False,
                                    help_text="the level to raise it to (default: one above)")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class CapImportSerializer(serializers.ModelSerializer):
    zones = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = CapImport
        fields = ["id", "identifier", "sender", "sent", "msg_type", "status", "event", "severity", "urgency",
                  "effective", "expires", "area_desc", "rainstorm", "zones", "warnings"]
