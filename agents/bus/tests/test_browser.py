"""The bus panel in Chromium: the network on the map, a bunching warning accepted with its hold advice,
the day's plan as a Gantt chart of its blocks, and the plan approved."""
from __future__ import annotations

import json

import pytest

from agents.bus.models import Feed, HeadwayWarning, VehiclePlan
from agents.bus.services.plans import plan_create
from agents.bus.services.realtime import positions_ingest
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
        page.wait_for_function("() => document.getElementById('map').dataset.loaded.includes('bus-routes')", timeout=20000)
        assert "bus-stops" in page.get_attribute("#map", "data-loaded")
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
