"""Each agent's read tools on the demo city, as the console would show them to the same user: filters by
street, district, zone, sensor, class and severity narrow the agent's own selectors' answers."""
from __future__ import annotations

import pytest

from city_ops.copilot.calls import ToolCall
from city_ops.copilot.executor import call_execute, call_prepare

pytestmark = pytest.mark.django_db


def _read(user, tool: str, **args) -> dict:
    out = call_prepare(user=user, call=ToolCall(tool, args))
    assert out.status == "done", out.reason
    return out.result


def test_flood_reads(users, demo_city):
    zone = _read(users.crew, "flood.status", zone="pitka-u")["zones"]
    assert [z["code"] for z in zone] == ["PITKA-U"]
    sensor = _read(users.dispatcher, "flood.status", sensor="D-PITKA")["sensor"]
    assert sensor["code"] == "D-PITKA" and sensor["latest"]
    assert set(_read(users.dispatcher, "flood.alerts", district="Kluuvi")) == {"alerts", "standby"}
    out = call_prepare(user=users.dispatcher, call=ToolCall("flood.status", {"zone": "Atlantis"}))
    assert out.status == "failed" and "no flood zone named “Atlantis”" in out.reason


def test_road_defects_by_street_class_and_severity(users, demo_city):
    all_defects = _read(users.dispatcher, "roads.defects")
    assert all_defects["count"] >= 3
    street = next(d["street"] for d in all_defects["defects"] if d["class"] == "pothole")
    on_street = _read(users.dispatcher, "roads.defects", street=street, **{"class": "Pothole"})
    assert on_street["count"] >= 1 and {d["street"] for d in on_street["defects"]} == {street}
    assert {d["class"] for d in on_street["defects"]} == {"pothole"}
    critical = _read(users.dispatcher, "roads.defects", severity="critical")["defects"]
    assert {d["severity"] for d in critical} <= {"critical"} and len(critical) < all_defects["count"]
    cracks = _read(users.dispatcher, "roads.defects", **{"class": "crack"})["defects"]
    assert {d["class"] for d in cracks} == {"crack"}
    assert len(cracks) == sum(d["class"] == "crack" for d in all_defects["defects"])
    # a crew member sees the defects of their own photos and orders only: none here
    assert _read(users.crew, "roads.defects")["count"] == 0


def test_bins_at_risk_and_bus_warnings(users, demo_city):
    from agents.sanitation.models import Bin, FillModel
    from city_ops.city.models import District

    # two bins forecast nearly full on a day (the fill models a night's run would write): one in Kluuvi, one not
    kluuvi = District.objects.get(code="KLU").geom
    bins = [Bin.objects.filter(geom__within=kluuvi).first(), Bin.objects.exclude(geom__within=kluuvi).first()]
    inside, outside = (FillModel.objects.update_or_create(bin=b, defaults={"forecast_fill": 0.93,
                                                                          "forecast_for": "2026-12-09"})[0]
                       for b in bins)
    city = _read(users.dispatcher, "sanitation.bins_at_risk", date="2026-12-09")
    assert {b["bin"] for b in city["bins"]} == {inside.bin.code, outside.bin.code}
    assert {b["forecast_fill_pct"] for b in city["bins"]} == {93}
    district = _read(users.dispatcher, "sanitation.bins_at_risk", date="2026-12-09", district="KLU")
    assert [b["bin"] for b in district["bins"]] == [inside.bin.code]
    assert "warnings" in _read(users.dispatcher, "bus.warnings", route="1")
    assert call_prepare(user=users.crew, call=ToolCall("bus.warnings", {})).status == "refused"


def test_a_work_order_at_a_position_lands_on_the_nearest_road(users, demo_city):
    call = ToolCall("workorders.create", {"title": "Fallen sign", "position": [24.9458, 60.1718], "priority": "high"})
    assert call_prepare(user=users.dispatcher, call=call).status == "proposed"
    done = call_execute(user=users.dispatcher, call=call)
    from city_ops.workorders.models import WorkOrder

    order = WorkOrder.objects.get(pk=done.result["work_order_id"])
    assert order.priority == WorkOrder.Priority.HIGH and order.segment is not None and order.created_by == users.dispatcher
