"""The bus panel in Chromium: the network on the map, a bunching warning accepted with its hold advice,
the day's plan as a Gantt chart of its blocks, and the plan approved."""
from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from agents.bus.domain.synthetic import feed_synthetic_write, positions_synthetic
from agents.bus.models import Feed, HeadwaySnapshot, HeadwayWarning, VehiclePlan
from agents.bus.selectors import day_trips, feed_tz
from agents.bus.services.feeds import feed_import
from agents.bus.services.plans import plan_create
from agents.bus.services.realtime import patterns_for, positions_ingest
from city_ops.core.testing import role_users_create
from city_ops.core.timeutil import city_today
from tests.conftest import browser_login

from .test_realtime import _pings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bus_panel_warning_gantt_and_approval(demo_city, live_server, browser):
    role_users_create(prefix="b")
    feed = Feed.objects.get(name="Demo city buses")
    plan = plan_create(feed=feed, service_date=city_today(), reason="browser test")
    positions_ingest(data=json.dumps(_pings(feed, {"bus-d": 0.90, "bus-c": 0.52, "bus-b": 0.14, "bus-a": 0.10})).encode(),
                     feed=feed, source="test")
    warning = HeadwayWarning.objects.get(status="open", leader="bus-b", follower="bus-a")

    page = browser.new_page()
    try:
        browser_login(page, live_server, "bdispatcher", "pw-disp-123")
        page.goto(f"{live_server.url}/bus/")
        # Each layer arrives by its own request, in any order on a busy machine: wait for both.
        page.wait_for_function("() => ['bus-routes', 'bus-stops'].every("
                               "l => document.getElementById('map').dataset.loaded.includes(l))", timeout=20000)
        # The Gantt chart has one row per block of the plan.
        page.wait_for_function("() => window.busGantt && window.busGantt.data.labels.length > 0", timeout=20000)
        rows = page.evaluate("window.busGantt.data.labels.length")
        assert rows == plan.blocks.count() == plan.vehicles
        item = page.locator(f"[data-warning='{warning.pk}']")
        assert "Hold bus bus-a" in item.inner_text()
        item.get_by_role("button", name="Accept").click()
        page.wait_for_load_state("networkidle")
        assert "accepted" in page.locator(".messages").inner_text()
        assert page.locator(f"[data-warning='{warning.pk}']").count() == 0
        warning.refresh_from_db()
        assert warning.status == "accepted" and warning.decided_by.username == "bdispatcher"
        page.click("#approve-plan")
        page.wait_for_load_state("networkidle")
        assert page.inner_text("#plan-status") == "approved"
        assert VehiclePlan.objects.get(pk=plan.pk).status == "approved"
    finally:
        page.close()


def _city_of_routes(tmp_path, day: dt.date) -> tuple[Feed, VehiclePlan]:
    """A 50-route feed running on `day`, the day planned, and a live snapshot of 300 buses on it at 08:00
    (evaluated as the live ingestion does): the picture that made the panel 13,360 px tall."""
    path = feed_synthetic_write(path=tmp_path / "city.zip", routes=50, stops_per_route=6, seed=3,
                                service_start=f"{day:%Y%m%d}", service_end=f"{day:%Y%m%d}")
    feed = feed_import(path=path, name="City of routes").feed
    plan = plan_create(feed=feed, service_date=day, reason="browser test, 50 routes")
    epoch = int(dt.datetime.combine(day, dt.time(8), tzinfo=feed_tz(feed=feed)).timestamp())
    pings = positions_synthetic(patterns=patterns_for(feed=feed), trips=day_trips(feed=feed, service_date=day),
                                at_s=8 * 3600, epoch=epoch, vehicles=300, rng=np.random.default_rng(3))
    positions_ingest(data=json.dumps(pings).encode(), feed=feed, source="test")
    return feed, plan


def test_bus_panel_holds_a_city_of_routes(live_server, browser, tmp_path):
    """With 50 routes and 300 live buses the Buses page keeps the vehicle plan above the fold and stays a
    few screens tall: the warnings as a count and the worst few, the rest a page at a time behind "show
    all"; the headway table a page at a time, least regular first, and filtered to one route on request."""
    role_users_create(prefix="b")
    day = city_today()
    while day.weekday() >= 5:  # the synthetic feed runs on weekdays
        day += dt.timedelta(days=1)
    feed, plan = _city_of_routes(tmp_path, day)
    open_warnings = HeadwayWarning.objects.filter(feed=feed, status="open").count()
    snapshots = HeadwaySnapshot.objects.filter(feed=feed).count()
    assert open_warnings > 25 and snapshots > 40 and plan.vehicles > 100  # a city's worth, not the demo's

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        browser_login(page, live_server, "bdispatcher", "pw-disp-123")
        page.goto(f"{live_server.url}/bus/?feed={feed.pk}&date={day:%Y-%m-%d}")
        page.wait_for_function("() => window.busGantt && window.busGantt.data.labels.length > 0", timeout=20000)
        assert page.evaluate("window.busGantt.data.labels.length") == plan.vehicles
        # The plan, its KPIs and chart, is on the first screen; the whole page is a few screens, not seventeen.
        assert page.locator("#kpi-vehicles").bounding_box()["y"] < 800
        assert page.locator("#gantt").bounding_box()["y"] < 800
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 4000, height
        # Warnings: the count of every open one, the worst five shown, the next page behind "show all".
        assert page.inner_text("#warning-count") == str(open_warnings)
        assert page.locator("#warning-list > li").count() == 5
        assert not page.locator("#warning-list-more").is_visible()
        page.click("#warnings-more > summary")
        assert page.locator("#warning-list-more > li").count() == min(20, open_warnings - 5)
        worst = HeadwayWarning.objects.get(pk=page.get_attribute("#warning-list > li >> nth=0", "data-warning"))
        shown = [HeadwayWarning.objects.get(pk=pk) for pk in page.eval_on_selector_all(
            "#warning-list-more > li", "items => items.map(i => i.dataset.warning)")]
        assert all(abs(math.log(max(w.headway_s, 1) / w.scheduled_headway_s)) <=
                   abs(math.log(max(worst.headway_s, 1) / worst.scheduled_headway_s)) + 1e-9 for w in shown)
        # The headway table: a page of 20 rows, the least regular route first; then one route alone.
        assert page.locator("#headway-table tbody tr").count() == 20
        assert page.locator("#headway nav.pager").is_visible()
        route = HeadwaySnapshot.objects.filter(feed=feed).order_by("route_id").first().route_id
        page.fill("#route-filter input[name=route]", route)
        page.click("#route-filter button[type=submit]")
        page.wait_for_load_state("networkidle")
        cells = page.eval_on_selector_all("#headway-table tbody tr td:first-child", "tds => tds.map(t => t.innerText)")
        assert cells and all(c.split(" / ")[0] == route for c in cells)
        assert all(t.startswith(f"{route} ") or t == route for t in cells) and len(cells) <= 2
        assert page.evaluate("document.documentElement.scrollHeight") < 4000
    finally:
        page.close()
