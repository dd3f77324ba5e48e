"""The sanitation panel in a real browser (Debian's Chromium): the dispatcher's map of bins by forecast fill
and routes per truck, the load/time charts, approving the plan, the fill model's error table; then a crew
member's phone view of the approved route, marking stops collected and skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import browser_login

from .conftest import plan_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[3] / ".run"


@pytest.fixture
def no_broker(monkeypatch):
    """Nothing here may reach the shared broker: city events and run enqueues are recorded instead."""
    from celery import current_app

    from agents.runtime import services as runtime

    sent = []
    monkeypatch.setattr(current_app._get_current_object(), "send_task", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(runtime, "_enqueue", lambda run: sent.append(("run", run.pk)))
    return sent


@pytest.fixture
def draft_plan(demo_city, users, settings, no_broker):
    from django.core.cache import cache

    from agents.runtime.services import agent_run_create, agent_run_execute
    from agents.sanitation.models import CollectionPlan
    from city_ops.city.models import CityProfile

    cache.delete(f"roads:{CityProfile.objects.first().network_version}:")
    settings.SANITATION_PLAN_TIME_LIMIT_S = 0.5
    run, _ = agent_run_create(agent="sanitation", run_date=plan_day(), trigger="schedule", enqueue=False)
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    plan = CollectionPlan.objects.get(run=run)
    first = plan.routes.order_by("order").first()
    first.crew.members.add(users.crew)
    return plan


def test_dispatcher_reviews_and_approves_then_crew_works_the_route(browser, live_server, users, draft_plan):
    from agents.sanitation.models import Bin, Pickup

    plan = draft_plan
    day = plan.date.isoformat()
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    assert page.locator("nav a.agent-link", has_text="Sanitation").count() == 1  # the panel is in the top bar
    page.goto(f"{live_server.url}/sanitation/?date={day}")
    page.wait_for_function("() => ['bins','roads','routes'].every(x => "
                           "document.getElementById('san-map').dataset.loaded.split(',').includes(x))")
    # Every bin is on the map, coloured by its forecast; every route drawn in its truck's colour.
    assert page.evaluate("sanitationLayers.bins.getLayers().length") == Bin.objects.count()
    colours = set(page.evaluate("sanitationLayers.bins.getLayers().map(l => l.options.fillColor)"))
    assert len(colours) >= 2 and "#8c96a1" not in colours  # several fill classes; every bin has a forecast
    assert page.evaluate("sanitationLayers.routes.getLayers().length") == plan.routes.count()
    assert page.locator(".route-card").count() == plan.routes.count()
    # Each route's load/time chart is drawn (Chart.js on its canvas).
    first_chart = f"#profile-{plan.routes.order_by('order').first().pk}"
    assert page.evaluate(f"!!Chart.getChart(document.querySelector('{first_chart}'))")
    kpis = page.inner_text("#plan-kpis")
    assert "Fixed schedule" in kpis and "km" in kpis
    assert "accepts this plan" in page.inner_text("#checker-verdict")
    assert page.inner_text("#plan-status").strip().lower() == "draft"
    page.screenshot(path=str(SCREENSHOTS / "screenshot-sanitation.png"), full_page=True)
    page.click("#approve-form button")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#plan-status").strip().lower() == "approved"
    plan.refresh_from_db()
    assert plan.status == "approved" and plan.approved_by == users.dispatcher

    page.goto(f"{live_server.url}/sanitation/fill/")
    assert page.locator("#fill-table tbody tr").count() == min(50, Bin.objects.count())
    assert page.inner_text("#overall-mae").strip() != "–"
    assert not errors, errors
    page.close()

    # The crew member's phone: the approved route as a map and an ordered list; mark two stops.
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(phone, live_server, "crew", "pw-crew-123")
    phone.goto(f"{live_server.url}/sanitation/crew/?date={day}")
    route = plan.routes.order_by("order").first()
    phone.wait_for_function(f"() => document.getElementById('crew-map-{route.pk}').dataset.loaded === 'route'")
    assert phone.locator(".crew-route").count() == 1
    stops = list(route.stops.order_by("order"))
    assert phone.locator(".crew-stop").count() == len(stops)
    assert phone.locator(".gpx, a[download]").first.get_attribute("href").endswith(f"/routes/{route.pk}/gpx/")
    bins = [s for s in stops if s.kind == "bin"]
    phone.select_option(f"#stop-{bins[0].pk} select[name=observed_fill]", "1.0")
    phone.click(f"#stop-{bins[0].pk} .collect-form button")
    phone.wait_for_load_state("networkidle")
    assert phone.get_attribute(f"#stop-{bins[0].pk}", "data-status") == "collected"
    phone.click(f"#stop-{bins[1].pk} details summary")
    phone.select_option(f"#stop-{bins[1].pk} select[name=reason]", "blocked")
    phone.click(f"#stop-{bins[1].pk} .skip-form button")
    phone.wait_for_load_state("networkidle")
    assert phone.get_attribute(f"#stop-{bins[1].pk}", "data-status") == "skipped"
    phone.screenshot(path=str(SCREENSHOTS / "screenshot-sanitation-crew.png"), full_page=False)
    assert Pickup.objects.get(stop=bins[0]).observed_fill == 1.0
    assert Pickup.objects.get(stop=bins[1]).reason == "blocked"
    # The crew cannot open the dispatcher's panel.
    assert phone.goto(f"{live_server.url}/sanitation/").status == 403
    assert not errors, errors
    phone.close()
