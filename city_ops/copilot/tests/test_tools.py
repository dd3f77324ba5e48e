"""The registry and the executor: tools are discovered and named as the wire needs, calls are checked
(role, schema) before anything runs, a write is only proposed, and a refusal or failure writes nothing."""
from __future__ import annotations

import pytest

from agents.runtime.models import AgentRun
from city_ops.city.models import RoadClosure
from city_ops.copilot.calls import ToolCall
from city_ops.copilot.executor import call_execute, call_prepare
from city_ops.copilot.registry import tool_get, tools_by_name, tools_for

pytestmark = pytest.mark.django_db

ISSUE_TOOLS = {"flood.alerts", "flood.status", "city.closure_open", "city.closure_lift", "bus.plan", "bus.warnings",
               "sanitation.plan", "sanitation.plan_approve", "sanitation.bins_at_risk", "roads.defects",
               "workorders.list", "workorders.create", "results.statement"}


def test_every_tool_of_the_issue_is_discovered_with_its_write_flag():
    tools = tools_by_name()
    assert ISSUE_TOOLS <= set(tools)
    assert {n for n in ISSUE_TOOLS if tools[n].writes} == {
        "city.closure_open", "city.closure_lift", "bus.plan", "sanitation.plan", "sanitation.plan_approve",
        "workorders.create"}


def test_wire_names_and_schemas():
    tool = tool_get("city__closure_open")
    assert tool.name == "city.closure_open" and tool.wire_name == "city__closure_open"
    wire = tool.wire_schema()
    assert "oneOf" not in wire and "street, segment_ids" in wire["description"]
    assert tool.schema["oneOf"] == [{"required": ["street"]}, {"required": ["segment_ids"]}]


def test_a_crew_is_offered_only_the_crews_tools(users):
    crew = {t.name for t in tools_for(users.crew)}
    assert {"flood.alerts", "roads.defects", "workorders.list"} <= crew
    assert not crew & {"city.closure_open", "bus.plan", "workorders.create", "sanitation.plan_approve"}
    assert ISSUE_TOOLS <= {t.name for t in tools_for(users.dispatcher)}


def test_a_crew_asking_to_close_a_road_is_refused_and_nothing_is_written(users, testikatu):
    out = call_prepare(user=users.crew, call=ToolCall("city.closure_open", {"street": "Testikatu", "reason": "x"}))
    assert out.status == "refused" and out.writes
    assert "field_crew" in out.reason and "dispatcher" in out.reason
    # a confirmation (of a proposal forged some other way) is checked again
    assert call_execute(user=users.crew, call=ToolCall("city.closure_open",
                                                       {"street": "Testikatu", "reason": "x"})).status == "refused"
    assert not RoadClosure.objects.exists()


@pytest.mark.parametrize("tool, args, where", [
    ("city.closure_open", {"street": "Testikatu", "segment_ids": [1], "reason": "x"}, "is valid under each"),
    ("city.closure_open", {"reason": "x"}, "is not valid under any"),
    ("city.closure_open", {"street": "Testikatu", "reason": "x", "force": True}, "Additional properties"),
    ("sanitation.plan", {"date": "2026-02-30"}, "is not a 'date'"),
    ("bus.plan", {"layover_min": 500}, "maximum"),
    ("roads.defects", {"class": "pot hole"}, "does not match"),
])
def test_arguments_that_fail_the_schema_are_refused_not_repaired(users, testikatu, tool, args, where):
    out = call_prepare(user=users.dispatcher, call=ToolCall(tool, args))
    assert out.status == "refused" and where in out.reason, out.reason
    assert not RoadClosure.objects.exists() and not AgentRun.objects.exists()


def test_a_write_is_proposed_with_what_it_will_change_and_runs_only_when_executed(users, testikatu):
    call = ToolCall("city.closure_open", {"street": "testikatu", "reason": "water main burst"})
    proposed = call_prepare(user=users.dispatcher, call=call)
    assert proposed.status == "proposed"
    assert "testikatu (3 segments)" in proposed.result["proposal"] and "water main burst" in proposed.result["proposal"]
    assert not RoadClosure.objects.exists()
    done = call_execute(user=users.dispatcher, call=call)
    closure = RoadClosure.objects.get()
    assert done.status == "done" and done.result == {"closure_id": closure.pk, "segments": 3}
    assert {s.name for s in closure.segments.all()} == {"Testikatu"} and closure.created_by == users.dispatcher


def test_an_unknown_street_fails_clearly_with_the_names_the_city_knows(users, testikatu):
    out = call_prepare(user=users.dispatcher, call=ToolCall("city.closure_open", {"street": "Testikattu",
                                                                                    "reason": "x"}))
    assert out.status == "failed"
    assert "no street named “Testikattu”" in out.reason and "Did you mean: Testikatu" in out.reason


def test_a_read_runs_at_once_through_the_users_restrictions(users, testikatu):
    from django.contrib.gis.geos import Point

    from city_ops.workorders.services import work_order_create

    work_order_create(title="Mine", location=Point(24.94, 60.17), assignee=users.crew, user=users.dispatcher)
    work_order_create(title="Theirs", location=Point(24.94, 60.17), assignee=users.crew_other, user=users.dispatcher)
    crew = call_prepare(user=users.crew, call=ToolCall("workorders.list", {"status": "open"}))
    assert crew.status == "done" and [o["title"] for o in crew.result["orders"]] == ["Mine"]
    dispatcher = call_prepare(user=users.dispatcher, call=ToolCall("workorders.list", {}))
    assert dispatcher.result["count"] == 2


def test_a_run_request_tool_creates_the_run_with_its_id_in_the_result(users):
    call = ToolCall("bus.plan", {"date": "2026-12-08", "layover_min": 7})
    done = call_execute(user=users.dispatcher, call=call)
    run = AgentRun.objects.get()
    assert done.status == "done" and done.result["run_id"] == run.pk and done.result["created"] is True
    assert run.agent == "bus" and run.run_date.isoformat() == "2026-12-08"
    assert run.params == {"date": "2026-12-08", "layover_min": 7} and run.created_by == users.dispatcher


@pytest.mark.parametrize("valid_to, ends", [
    ("2099-06-01", "2099-06-02 00:00"),  # a day: to its end
    ("2099-06-01T18:00", "2099-06-01 18:00"),  # the city's time
    ("2099-06-01T18:00:00+02:00", "2099-06-01 19:00"),  # an offset (Helsinki is +03:00 in June)
])
def test_a_closure_ends_when_asked_in_the_citys_time(users, testikatu, valid_to, ends):
    from city_ops.core.timeutil import city_tz

    out = call_execute(user=users.dispatcher, call=ToolCall("city.closure_open", {
        "street": "Testikatu", "reason": "festival", "valid_to": valid_to}))
    assert out.status == "done", out.reason
    assert f"{RoadClosure.objects.get().valid_to.astimezone(city_tz()):%Y-%m-%d %H:%M}" == ends


def test_a_closure_cannot_end_in_the_past(users, testikatu):
    out = call_prepare(user=users.dispatcher, call=ToolCall("city.closure_open", {
        "street": "Testikatu", "reason": "x", "valid_to": "2020-01-01"}))
    assert out.status == "failed" and "has passed" in out.reason
