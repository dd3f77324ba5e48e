"""Console pages without a browser: the map's layers and the agent hooks, starting a run, runs and results
with KPIs against their baselines, the open-orders layer."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from agents.runtime.base import Agent, AgentResult, Kpi
from agents.runtime.models import AgentRun
from agents.runtime.registry import _agents, register
from agents.runtime.services import agent_run_create, agent_run_execute
from city_ops.core.testing import client_for
from city_ops.workorders.services import work_order_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(db):
    from city_ops.core.testing import role_users_create

    return role_users_create()


@pytest.fixture
def panel_agent():
    """An agent with a map layer and a console panel (its URL is the console's own results page here)."""

    @register
    class Gauges(Agent):
        name = "gauges-test"
        label = "River gauges"
        console_url_name = "console:results"
        map_layers = ({"id": "gauges", "label": "Gauges", "url": "/api/city/places.geojson", "on": True},)

        def run(self, ctx):
            return AgentResult(kpis=[Kpi("alerts", 3, "", baseline=4, label="Alerts raised"),
                                     Kpi("lead_min", 42.5, "min", label="Warning lead time")], summary="3 alerts")

    yield Gauges
    _agents.pop("gauges-test", None)


@pytest.fixture
def broken_agent():
    class Broken(Agent):
        name = "broken-test"
        console_url_name = "broken:panel"  # not mounted

        @property
        def map_layers(self):
            raise KeyError("broken-api")

    register(Broken)
    yield Broken
    _agents.pop("broken-test", None)


def test_map_lists_city_and_agent_layers(users, panel_agent, broken_agent):
    html = client_for("dispatcher", users).get("/").content.decode()
    for layer in ("roads", "closures", "districts", "places", "workorders", "gauges"):
        assert f'data-layer="{layer}"' in html, layer
    assert "(River gauges)" in html  # which agent a layer comes from
    assert 'id="map"' in html and "data-loaded" in html
    # the top bar links agent panels from the registry; an unmounted one is left out, not an error
    assert '<a href="/results/" class="agent-link' in html and "River gauges</a>" in html
    assert "broken" not in html.split("</nav>")[0]


def test_start_a_run_from_the_console(users, panel_agent, django_capture_on_commit_callbacks):
    c = client_for("dispatcher", users)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = c.post("/runs/start/", {"agent": "gauges-test", "date": "2026-07-01", "reason": "heavy rain"},
                      follow=True)
    run = AgentRun.objects.get(agent="gauges-test")
    assert run.trigger == "manual" and run.reason == "heavy rain" and run.run_date == dt.date(2026, 7, 1)
    assert run.created_by == users.dispatcher
    assert len(callbacks) == 1  # queued for a worker once committed
    assert f"Run #{run.pk} of gauges-test was queued." in resp.content.decode()
    resp = c.post("/runs/start/", {"agent": "gauges-test", "date": "1 July"}, follow=True)
    assert "not a valid date" in resp.content.decode()
    resp = c.post("/runs/start/", {"agent": "nope"}, follow=True)
    assert "Choose an agent" in resp.content.decode()
    assert AgentRun.objects.count() == 1


def test_runs_and_results_show_kpis_against_baseline(users, panel_agent):
    from city_ops.core.timeutil import city_today

    days = [city_today() - dt.timedelta(days=2), city_today() - dt.timedelta(days=1)]
    for day in days:
        run, _ = agent_run_create(agent="gauges-test", run_date=day, trigger="schedule", enqueue=False)
        agent_run_execute(run_id=run.pk)
    failed, _ = agent_run_create(agent="gauges-test", enqueue=False)
    AgentRun.objects.filter(pk=failed.pk).update(status="failed", error="ValueError: bad row 7")
    c = client_for("dispatcher", users)
    runs = c.get("/runs/?agent=gauges-test").content.decode()
    assert "Alerts raised" in runs and "−25 %" in runs  # 3 against a baseline of 4
    assert "ValueError: bad row 7" in runs and "River gauges" in runs
    assert c.get("/runs/?status=failed").content.decode().count('class="run-row"') == 1
    # results: per agent per day, and a chart per KPI with both days
    page = c.get("/results/?agent=gauges-test&days=7").content.decode()
    charts = json.loads(page.split('<script id="chart-data" type="application/json">')[1].split("</script>")[0])
    by_name = {ch["name"]: ch for ch in charts}
    assert by_name["alerts"]["dates"] == [d.isoformat() for d in days]
    assert by_name["alerts"]["values"] == [3, 3] and by_name["alerts"]["baselines"] == [4, 4]
    assert by_name["lead_min"]["baselines"] == []  # no baseline: no baseline line
    assert by_name["lead_min"]["label"] == "Warning lead time" and by_name["lead_min"]["unit"] == "min"
    assert "chart.umd.js" in page and page.count('class="kpi-chart"') == 2
    # a day outside the period is left out
    assert c.get("/results/?agent=gauges-test&days=1").content.decode().count('class="kpi-chart"') == 0
    # one day in the period: each KPI is a number (and its baseline), not a chart with a lone dot
    one_day = c.get("/results/?agent=gauges-test&days=2").content.decode()
    assert one_day.count('class="kpi-chart"') == 0 and one_day.count('class="kpi-single"') == 2
    single = one_day.split('class="kpi-single"')[1].split("</div>")[0]
    assert '<span class="figure">3' in single and "Baseline 4" in single and "−25 %" in single


def test_open_orders_layer(users):
    late, _ = work_order_create(title="late", location=Point(24.94, 60.17), due_at=timezone.now() - dt.timedelta(hours=1))
    work_order_create(title="fine", location=Point(24.95, 60.16), priority=1)
    data = client_for("dispatcher", users).get("/map/workorders.geojson").json()
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 2
    f = next(f for f in data["features"] if f["id"] == late.pk)
    assert f["geometry"]["coordinates"] == [24.94, 60.17]
    assert f["properties"]["overdue"] is True and f["properties"]["url"] == f"/workorders/{late.pk}/"


def test_times_are_shown_in_the_citys_time_zone(users, settings):
    settings.CITY_TIME_ZONE = "Asia/Shanghai"
    order, _ = work_order_create(title="x", location=Point(24.94, 60.17),
                                 due_at=dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC))
    html = client_for("dispatcher", users).get(f"/workorders/{order.pk}/").content.decode()
    assert "2026-07-01 20:00" in html


@pytest.mark.django_db
def test_crew_top_bar_links_come_from_agents(client):
    from city_ops.core.roles import Role
    from city_ops.core.services import user_create

    crew = user_create(username="crew-links", password="pw-crew-links-1", roles=[Role.FIELD_CREW])
    client.force_login(crew)
    page = client.get("/my-orders/").content.decode()
    assert 'href="/roads/upload/"' in page and "Upload photos" in page
    assert 'href="/roads/"' not in page  # the dispatcher panel is not offered to crews
