"""Requests at the edges: NUL characters, paging bounds, declared run parameters, bursts of identical
runs, and the per-user rate limit on starting work (issue 14, "Text, paging and run parameters")."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import close_old_connections
from django.test import Client

from agents.runtime.base import RunParam
from agents.runtime.models import AgentRun
from agents.runtime.services import RunParamsError, agent_run_params_clean, agent_run_request
from agents.sanitation.models import CollectionPlan

pytestmark = pytest.mark.django_db
RUNS = "/api/agents/runs/"


@pytest.fixture
def dispatcher(users) -> Client:
    client = Client()
    client.force_login(users.dispatcher)
    return client


# --- NUL characters -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [f"{RUNS}?agent=%00", f"{RUNS}?x%00=1", "/api/workorders/?status=open%00",
                                 "/api/bus/warnings/1/acc%00ept/"])
def test_nul_in_a_query_parameter_or_the_path_is_a_400_with_the_reason(dispatcher, url):
    resp = dispatcher.get(url)
    assert resp.status_code == 400
    assert "NUL" in resp.json()["detail"]


@pytest.mark.parametrize("body", [
    {"agent": "demo", "params": {"\u0000": 1}},
    {"agent": "demo", "reason": "flood\u0000"},
    {"agent": "demo", "params": {"sleep_s": ["a", {"deep": "x\u0000"}]}},
])
def test_nul_anywhere_in_a_json_body_is_a_400_and_nothing_is_created(dispatcher, body):
    resp = dispatcher.post(RUNS, body, content_type="application/json")
    assert resp.status_code == 400, resp.content
    assert "NUL" in resp.json()["detail"]
    assert not AgentRun.objects.exists()


def test_nul_in_an_api_form_body_is_a_400(dispatcher):
    resp = dispatcher.post(RUNS, "agent=demo&reason=a%00b", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "reason" in resp.json()["detail"]
    multipart = dispatcher.post(RUNS, {"agent": "demo", "reason": "a\x00b"})  # the test client's default
    assert multipart.status_code == 400 and "reason" in multipart.json()["detail"]
    assert not AgentRun.objects.exists()


def test_nul_in_a_console_form_is_a_400_and_starts_nothing(dispatcher):
    resp = dispatcher.post("/runs/start/", {"agent": "demo", "reason": "a\x00b"})
    assert resp.status_code == 400
    assert "NUL" in resp.content.decode() and "reason" in resp.content.decode()
    assert not AgentRun.objects.exists()
    assert dispatcher.get("/runs/?agent=%00").status_code == 400


# --- paging ---------------------------------------------------------------------------------------------


def _runs(n: int) -> None:
    AgentRun.objects.bulk_create([AgentRun(agent="demo", run_date=dt.date(2026, 1, 1), trigger="manual")
                                  for _ in range(n)])


def test_a_page_holds_at_most_the_maximum(dispatcher, settings):
    settings.CITY_OPS_API_MAX_PAGE_SIZE = 3
    _runs(5)
    body = dispatcher.get(f"{RUNS}?limit=3").json()
    assert body["count"] == 5 and len(body["results"]) == 3 and "offset=3" in body["next"]
    resp = dispatcher.get(f"{RUNS}?limit=4")
    assert resp.status_code == 400 and "from 1 to 3" in resp.json()["limit"]


@pytest.mark.parametrize("query, name", [
    ("limit=9223372036854775808", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"), ("limit=0", "limit"), ("limit=1e3", "limit"),
    ("offset=9223372036854775808", "offset"), ("offset=-5", "offset"), ("offset=%C2%B2", "offset"),
    ("offset=" + "9" * 5000, "offset"),
])
def test_bad_limit_or_offset_is_a_400_naming_it(dispatcher, query, name):
    resp = dispatcher.get(f"{RUNS}?{query}")
    assert resp.status_code == 400, resp.content
    assert name in resp.json()


def test_largest_offset_is_an_empty_page_not_an_error(dispatcher):
    _runs(1)
    body = dispatcher.get(f"{RUNS}?offset=9223372036854775807").json()
    assert body["count"] == 1 and body["results"] == []


def test_every_paged_api_list_uses_the_bounded_paging():
    """No list view falls back to DRF's own class (which passes any offset to the database)."""
    from django.urls import get_resolver
    from rest_framework.generics import GenericAPIView

    from city_ops.core.pagination import LimitOffsetPagination

    def views(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from views(p.url_patterns)
            elif (cls := getattr(p.callback, "cls", None)) is not None:
                yield cls

    paged = [v for v in views(get_resolver().url_patterns)
             if issubclass(v, GenericAPIView) and v.pagination_class is not None]
    assert len(paged) >= 5
    assert all(issubclass(v.pagination_class, LimitOffsetPagination) for v in paged), paged


# --- run parameters -------------------------------------------------------------------------------------


def test_run_param_types_and_ranges():
    limit = RunParam("time_limit", float, min=0.1, max=60)
    assert limit.clean("2.5") == 2.5 and limit.clean(3) == 3.0
    for bad in ("abc", "nan", "inf", True, 61, 0, [1], None):
        with pytest.raises(ValueError):
            limit.clean(bad)
    seed = RunParam("seed", int, min=0, max=10)
    assert seed.clean("7") == 7 and seed.clean(7.0) == 7
    for bad in (7.5, "7.5", "1" * 30, -1):
        with pytest.raises(ValueError):
            seed.clean(bad)
    assert RunParam("b", bool).clean("no") is False and RunParam("b", bool).clean(1) is True
    assert RunParam("d", dt.date).clean("2026-07-01") == "2026-07-01"
    with pytest.raises(ValueError):
        RunParam("mode", str, choices=("headways",)).clean("plan")


def test_every_agent_declares_what_its_runs_read():
    from agents.runtime.registry import agent_get

    declared = {name: {p.name for p in agent_get(name).run_params}
                for name in ("demo", "flood", "bus", "roads", "sanitation")}
    assert declared == {"demo": {"sleep_s", "allocate_mb"}, "flood": set(), "bus": {"feed_id", "date", "layover_min", "mode"},
                        "roads": {"threshold"}, "sanitation": {"time_limit", "seed", "max_iterations", "baseline"}}


@pytest.mark.parametrize("params, key, words", [
    ({"time_limit": "abc"}, "time_limit", "not a number"),
    ({"time_limit": 1e9}, "time_limit", "outside"),
    ({"colour": 1}, "colour", "unknown parameter"),
    ({"plan_id": 1}, "plan_id", "set by the runtime"),
    ({"payload": {}}, "payload", "set by the runtime"),
    ({"event_kind": "closure.opened"}, "event_kind", "set by the runtime"),
])
def test_api_refuses_a_bad_or_reserved_parameter_naming_it(dispatcher, params, key, words):
    resp = dispatcher.post(RUNS, {"agent": "sanitation", "params": params}, content_type="application/json")
    assert resp.status_code == 400
    assert words in resp.json()["params"][key]
    assert not AgentRun.objects.exists()


def test_api_stores_typed_parameters(dispatcher):
    resp = dispatcher.post(RUNS, {"agent": "sanitation", "params": {"time_limit": "2", "baseline": "no"}},
                           content_type="application/json")
    assert resp.status_code == 201
    assert AgentRun.objects.get(pk=resp.json()["id"]).params == {"time_limit": 2.0, "baseline": False}


def test_run_agent_refuses_a_bad_parameter_naming_it(db):
    with pytest.raises(CommandError, match="time_limit.*not a number"):
        call_command("run_agent", "sanitation", "--param", "time_limit=abc")
    with pytest.raises(CommandError, match="closure_id.*set by the runtime"):
        call_command("run_agent", "bus", "--param", "closure_id=3")
    with pytest.raises(CommandError, match="expected KEY=VALUE"):
        call_command("run_agent", "demo", "--param", "sleep_s")
    assert not AgentRun.objects.exists()


def test_console_refuses_a_bad_parameter_and_starts_a_good_one(dispatcher):
    resp = dispatcher.post("/runs/start/", {"agent": "sanitation", "params": "time_limit=abc"}, follow=True)
    assert "time_limit" in resp.content.decode() and not AgentRun.objects.exists()
    dispatcher.post("/runs/start/", {"agent": "sanitation", "params": "time_limit=3 seed=2"})
    run = AgentRun.objects.get()
    assert run.params == {"time_limit": 3.0, "seed": 2}
    again = dispatcher.post("/runs/start/", {"agent": "sanitation", "params": "seed=2 time_limit=3.0"}, follow=True)
    assert f"Run #{run.pk} of sanitation is already under way" in again.content.decode()
    assert AgentRun.objects.count() == 1


def test_the_runtime_still_sets_its_own_keys():
    run, _ = agent_run_request(agent="sanitation", runtime_params={"action": "reoptimise", "plan_id": 9},
                               enqueue=False)
    assert run.params == {"action": "reoptimise", "plan_id": 9}
    with pytest.raises(RunParamsError) as exc:
        agent_run_params_clean(agent="sanitation", params={"action": "reoptimise"})
    assert set(exc.value.errors) == {"action"}


# --- bursts ---------------------------------------------------------------------------------------------


def test_identical_api_request_returns_the_pending_run(dispatcher):
    body = {"agent": "sanitation", "params": {"time_limit": 5}}
    first = dispatcher.post(RUNS, body, content_type="application/json")
    again = dispatcher.post(RUNS, {**body, "params": {"time_limit": "5.0"}, "reason": "again"},
                            content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 202)
    assert again.json()["id"] == first.json()["id"]
    other = dispatcher.post(RUNS, {"agent": "sanitation", "params": {"time_limit": 6}}, content_type="application/json")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # Once the run is over, the same request is a new run.
    AgentRun.objects.filter(pk=first.json()["id"]).update(status=AgentRun.Status.SUCCEEDED)
    assert dispatcher.post(RUNS, body, content_type="application/json").status_code == 201
    assert AgentRun.objects.count() == 3


def test_a_burst_of_plan_edits_makes_one_run(dispatcher):
    plan = CollectionPlan.objects.create(date=dt.date(2026, 7, 1), version=1)
    url = f"/api/sanitation/plans/{plan.pk}/edit/"
    # The burst: 57 identical edits made 57 runs and 48 plan versions.
    answers = [dispatcher.post(url, {"action": "reoptimise"}, content_type="application/json") for _ in range(57)]
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["run"] for r in answers}) == 1
    run = AgentRun.objects.get()
    assert run.params == {"action": "reoptimise", "plan_id": plan.pk} and run.status == "pending"
    AgentRun.objects.filter(pk=run.pk).update(status=AgentRun.Status.RUNNING)
    assert dispatcher.post(url, {"action": "reoptimise"}, content_type="application/json").json()["run"] == run.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_make_one_run():
    """Eight threads ask at once: the partial unique index, not luck, leaves exactly one run."""
    barrier = threading.Barrier(8)
    ids, errors = [], []

    def ask():
        try:
            barrier.wait()
            run, _ = agent_run_request(agent="demo", params={"sleep_s": 1}, enqueue=False)
            ids.append(run.pk)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ids) == 8
    assert len(set(ids)) == 1 and AgentRun.objects.count() == 1


def test_starting_runs_is_rate_limited_per_user(users, settings):
    from django.core.cache import cache

    cache.clear()  # this test's own Redis database: no request history from an earlier run
    settings.CITY_OPS_RUN_START_RATE = "3/min"
    client, other = Client(), Client()
    client.force_login(users.dispatcher)
    other.force_login(users.admin)
    codes = [client.post(RUNS, {"agent": "demo", "params": {"sleep_s": i}}, content_type="application/json")
             for i in range(4)]
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    assert int(codes[-1]["Retry-After"]) > 0
    assert client.get(RUNS).status_code == 200  # reading is never limited
    assert other.post(RUNS, {"agent": "demo"}, content_type="application/json").status_code == 201


# --- numbers in query strings ---------------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("/api/bus/plans/?feed=%C2%B2", 200), ("/api/bus/plans/?feed=99999999999999999999", 200),
    ("/api/bus/layers/stops/?feed=%C2%B2", 200), ("/api/bus/layers/routes/?feed=9223372036854775808", 200),
    ("/api/roads/defects/?segment=%C2%B2", 200), ("/api/roads/defects/?segment=99999999999999999999", 200),
    ("/sanitation/routes.geojson?plan=%C2%B2", 200), ("/sanitation/routes.geojson?plan=9223372036854775808", 200),
    ("/roads/report/?segment=%C2%B2", 404), ("/roads/report/?segment=99999999999999999999", 404),
])
def test_an_id_that_is_not_a_plain_bigint_finds_nothing(dispatcher, url, expected):
    """"²" passes str.isdigit() but not int(); 20 digits pass int() but not PostgreSQL's bigint."""
    assert dispatcher.get(url).status_code == expected


def test_the_console_shares_the_limit(users, settings):
    from django.core.cache import cache

    cache.clear()
    settings.CITY_OPS_RUN_START_RATE = "2/min"
    client = Client()
    client.force_login(users.dispatcher)
    client.post(RUNS, {"agent": "demo"}, content_type="application/json")
    assert client.post("/runs/start/", {"agent": "demo", "params": "sleep_s=1"}).status_code == 302
    refused = client.post("/runs/start/", {"agent": "demo", "params": "sleep_s=2"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert AgentRun.objects.count() == 2
