"""Which tool each part of a request asks for, and the whole parse into tool calls on a small city."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import LineString, Point

from city_ops.city.models import RoadNode, RoadSegment
from city_ops.copilot.calls import ToolCall
from city_ops.copilot.grammar import grammar_parse
from city_ops.copilot.grammar.intents import clauses_split, intent_match
from city_ops.copilot.grammar.numbers import arabize

MONDAY = dt.date(2026, 12, 7)


def _tool(text: str, places: frozenset[str] = frozenset()) -> str | None:
    intent = intent_match(arabize(text), lambda kinds: bool(places & kinds))
    return intent.tool if intent else None


@pytest.mark.parametrize("text,tool", [
    ("明天公交排班", "bus.plan"), ("replan buses tomorrow", "bus.plan"),
    ("2路有没有串车", "bus.warnings"), ("any bunching on route 3", "bus.warnings"),
    ("有积水报警吗", "flood.alerts"), ("any flood warnings?", "flood.alerts"),
    ("封闭Bulevardi", "city.closure_open"), ("close Bulevardi", "city.closure_open"),
    ("请把Bulevardi封一下", "city.closure_open"),
    ("解除Bulevardi的封路", "city.closure_lift"), ("lift the closure on Bulevardi", "city.closure_lift"),
    ("reopen Bulevardi", "city.closure_lift"),
    ("生成明天的收运路线", "sanitation.plan"), ("plan waste collection", "sanitation.plan"),
    ("批准3号方案", "sanitation.plan_approve"), ("approve the collection plan", "sanitation.plan_approve"),
    ("哪些垃圾桶会满", "sanitation.bins_at_risk"), ("bins at risk", "sanitation.bins_at_risk"),
    ("严重的坑洞", "roads.defects"), ("cracks on Bulevardi", "roads.defects"),
    ("进行中的工单", "workorders.list"), ("list new work orders", "workorders.list"),
    ("建一个工单修补坑洞", "workorders.create"), ("create a work order for the pothole", "workorders.create"),
    ("new work order: clear the drain", "workorders.create"),
    ("上个月的结算单", "results.statement"), ("statement for last month", "results.statement"),
    ("今天天气怎么样", None), ("hello", None),
])
def test_intents(text, tool):
    assert _tool(text) == tool


def test_flood_status_needs_a_zone_or_sensor():
    assert _tool("water level at Pitkänsillanranta", frozenset({"zone"})) == "flood.status"
    assert _tool("water level at Pitkänsillanranta") is None


def test_clauses_split_on_breaks_but_not_inside_coordinates():
    text = "看看积水预警，再看看公交告警"
    assert [text[s:e] for s, e in clauses_split(text)] == ["看看积水预警", "看看公交告警"]
    assert len(clauses_split("new work order at 60.1699, 24.9384")) == 1


@pytest.fixture
def streets(db):
    a = RoadNode.objects.create(geom=Point(24.94, 60.17, srid=4326))
    for name in ("Mannerheimintie", "Kaivokatu", "Lönnrotinkatu"):
        RoadSegment.objects.create(source=a, target=a, name=name, length_m=50, speed_kph=30,
                                   geom=LineString((24.94, 60.17), (24.941, 60.17), srid=4326))


@pytest.mark.parametrize("text,calls", [
    ("封闭Mannerheimnitie，因为游行，到下午6点",
     [ToolCall("city.closure_open", {"street": "Mannerheimintie", "reason": "游行",
                                     "valid_to": "2026-12-07T18:00:00+02:00"})]),
    ("Create an urgent work order to fix the pothole on Lönrotinkatu",
     [ToolCall("workorders.create", {"title": "Repair pothole on Lönnrotinkatu", "street": "Lönnrotinkatu",
                                     "priority": "urgent"})]),
    ("在Kaivokatu建一个紧急工单修补坑洞",
     [ToolCall("workorders.create", {"title": "Kaivokatu修补坑洞", "street": "Kaivokatu", "priority": "urgent"})]),
    ("下周一的公交排班，停站十分钟", [ToolCall("bus.plan", {"date": "2026-12-14", "layover_min": 10})]),
    ("明天封闭Kaivokatu因为施工，然后重新排一下公交",
     [ToolCall("city.closure_open", {"street": "Kaivokatu", "reason": "施工"}),
      ToolCall("bus.plan", {"date": "2026-12-08"})]),
    ("看看积水预警和公交告警", [ToolCall("flood.alerts"), ToolCall("bus.warnings")]),
    ("今天公交重排，停站5分钟", [ToolCall("bus.plan", {"date": "2026-12-07", "layover_min": 5})]),
    ("close Kaivokatu for repairs, close Mannerheimintie for repairs",
     [ToolCall("city.closure_open", {"street": "Kaivokatu", "reason": "repairs"}),
      ToolCall("city.closure_open", {"street": "Mannerheimintie", "reason": "repairs"})]),
    ("Which work orders are assigned to crew 1?", [ToolCall("workorders.list", {"crew": "crew1"})]),
    ("今天天气怎么样", []),
    # A question about a closure proposes none.
    ("is Mannerheimintie closed?", []), ("Mannerheimintie封了吗", []),
])
def test_grammar_parse(streets, text, calls):
    assert grammar_parse(text=text, today=MONDAY) == calls
