"""Serializers of the sanitation API: bins with their fill model, plans with routes and stops, crews'
stop marks and fill-reading batches."""
from __future__ import annotations

from rest_framework import serializers

from ..models import Bin, CollectionPlan, Pickup, PlanRoute, PlanStop


class BinSerializer(serializers.ModelSerializer):
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    forecast_fill = serializers.SerializerMethodField()
    forecast_for = serializers.SerializerMethodField()
    mae = serializers.SerializerMethodField()
    rates = serializers.SerializerMethodField()

    class Meta:
        model = Bin
        fields = ["id", "code", "lon", "lat", "street", "capacity_l", "waste_type", "access_from", "access_to",
                  "service_s", "sensor_id", "active", "forecast_for", "forecast_fill", "mae", "rates"]

    def get_lon(self, obj) -> float:
        return round(obj.geom.x, 6)

    def get_lat(self, obj) -> float:
        return round(obj.geom.y, 6)

    def _model(self, obj):
        return getattr(obj, "fill_model", None)

    def get_forecast_fill(self, obj) -> float | None:
        m = self._model(obj)
        return m.forecast_fill if m else None

    def get_forecast_for(self, obj) -> str | None:
        m = self._model(obj)
        return m.forecast_for.isoformat() if m and m.forecast_for else None

    def get_mae(self, obj) -> float | None:
        m = self._model(obj)
        return m.mae if m else None

    def get_rates(self, obj) -> list[float]:
        m = self._model(obj)
        return m.rates if m else []


class ReadingSerializer(serializers.Serializer):
    sensor_id = serializers.CharField(required=False, allow_blank=True)
    bin = serializers.CharField(required=False, allow_blank=True, help_text="bin code, when there is no sensor id")
    at = serializers.CharField(help_text="ISO 8601 time; without an offset it is read in the city's time zone")
    fill = serializers.FloatField(required=False, help_text="0 (empty) to 1.5 (overflowing)")
    fill_pct = serializers.FloatField(required=False, help_text="0-150, instead of fill")


class ReadingBatchSerializer(serializers.Serializer):
    readings = ReadingSerializer(many=True)


class FillIngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField())


class PickupSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="collected or skipped")

    class Meta:
        model = Pickup
        fields = ["id", "at", "status", "reason", "observed_fill", "overflowing", "note"]


class PlanStopSerializer(serializers.ModelSerializer):
    bin = serializers.SlugRelatedField(slug_field="code", read_only=True)
    disposal_site = serializers.SlugRelatedField(slug_field="name", read_only=True)
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    pickup = serializers.SerializerMethodField()

    class Meta:
        model = PlanStop
        fields = ["id", "order", "kind", "bin", "disposal_site", "lon", "lat", "arrival", "start", "departure",
                  "load_after_l", "load_after_kg", "forecast_fill", "required", "reason", "pickup"]

    def _site(self, obj):
        return obj.bin or obj.disposal_site

    def get_lon(self, obj) -> float:
        return round(self._site(obj).geom.x, 6)

    def get_lat(self, obj) -> float:
        return round(self._site(obj).geom.y, 6)

    def get_pickup(self, obj) -> dict | None:
        p = getattr(obj, "pickup", None)
        return PickupSerializer(p).data if p else None


class PlanRouteSerializer(serializers.ModelSerializer):
    truck = serializers.SlugRelatedField(slug_field="code", read_only=True)
    crew = serializers.SlugRelatedField(slug_field="name", read_only=True)
    hours = serializers.FloatField(read_only=True)
    geometry = serializers.SerializerMethodField()
    stops = PlanStopSerializer(many=True, read_only=True)
    plan_date = serializers.DateField(source="plan.date", read_only=True)
    plan_version = serializers.IntegerField(source="plan.version", read_only=True)

    class Meta:
        model = PlanRoute
        fields = ["id", "plan", "plan_date", "plan_version", "truck", "crew", "order", "distance_m", "hours",
                  "depart_at", "back_at", "lunch_at", "locked", "color", "profile", "geometry", "stops"]

    def get_geometry(self, obj) -> dict | None:
        if obj.geom is None:
            return None
        return {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in obj.geom.coords]}


class PlanSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="draft, approved or superseded")

    class Meta:
        model = CollectionPlan
        fields = ["id", "date", "version", "status", "reason", "feasible", "violations", "kpis", "created_at",
                  "approved_at", "run"]


class PlanDetailSerializer(PlanSerializer):
    routes = PlanRouteSerializer(many=True, read_only=True)

    class Meta(PlanSerializer.Meta):
        fields = PlanSerializer.Meta.fields + ["routes"]


class PlanEditSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["move", "lock", "unlock", "reoptimise"])
    bin = serializers.CharField(required=False, help_text="move: the bin's code")
    truck = serializers.CharField(required=False, help_text="move: the code of the truck to take it")
    route = serializers.IntegerField(required=False, help_text="lock/unlock: the route's id")


class StopMarkSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="collected or skipped")
    observed_fill = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.5)
    reason = serializers.ChoiceField(choices=Pickup.Reason.choices, required=False, allow_blank=True)
    overflowing = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)
    photo = serializers.ImageField(required=False, allow_null=True)
