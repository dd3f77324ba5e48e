"""Reads for the demo agent: the city's places and network size."""
from __future__ import annotations

from django.db.models import Sum

from city_ops.city.models import Place, RoadClosure, RoadSegment


def network_stats() -> dict[str, float]:
    total = RoadSegment.objects.aggregate(m=Sum("length_m"))["m"] or 0.0
    closed = RoadSegment.objects.filter(closures__in=RoadClosure.objects.active()).distinct().aggregate(
        m=Sum("length_m"))["m"] or 0.0
    return {"segments": RoadSegment.objects.count(), "road_km": total / 1000, "closed_km": closed / 1000}


def place_points() -> list[tuple[str, float, float]]:
    return [(p.name, p.geom.x, p.geom.y) for p in Place.objects.order_by("id")]
