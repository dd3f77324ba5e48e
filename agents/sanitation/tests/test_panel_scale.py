"""The sanitation panel with a city's plan (24 trucks, 960 stops, 40 planner notes) in a real browser: the
map and the plan's totals above the fold, the route cards a page at a time under a truck filter, the notes
folded, so the page stays about two screens tall however many trucks the city runs."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRUCKS, STOPS = 24, 40


@pytest.fixture
def city_plan_rows(users):
    """A stored plan of TRUCKS routes of STOPS bins each, written as rows (no solving needed to lay it out)."""
    from django.contrib.gis.geos import LineString, Point

    from agents.sanitation.models import Bin, CollectionPlan, Depot, PlanRoute, PlanStop, Truck
    from city_ops.core.timeutil import city_today, city_tz

    day = city_today() + dt.timedelta(days=1)
    at = dt.datetime.combine(day, dt.time(7), tzinfo=city_tz())
    depot = Depot.objects.create(name="Depot", geom=Point(24.94, 60.17, srid=4326))
    plan = CollectionPlan.objects.create(date=day, version=1, feasible=True, kpis={
        "km": 1234.5, "hours": 190.0, "bins_visited": TRUCKS * STOPS, "trucks_used": TRUCKS, "unloads": TRUCKS,
        "mandatory": 10, "optional_visited": 900, "optional_offered": 2000,
        "notes": [f"bin B{k:04d}: no readings or pickups yet" for k in range(40)]})
    stops = []
    for t in range(TRUCKS):
        truck = Truck.objects.create(code=f"T{t + 1:02d}", depot=depot, capacity_l=16000, capacity_kg=3000,
                                     waste_types=["mixed"])
        lon = 24.90 + t * 0.002
        route = PlanRoute.objects.create(plan=plan, truck=truck, order=t, distance_m=50000, depart_at=at,
                                         back_at=at + dt.timedelta(hours=8),
                                         geom=LineString((lon, 60.16), (lon, 60.18), srid=4326))
        bins = Bin.objects.bulk_create([
            Bin(code=f"B{t:02d}{k:03d}", geom=Point(lon, 60.16 + k * 0.0005, srid=4326), capacity_l=660)
            for k in range(STOPS)])
        stops += [PlanStop(route=route, order=k + 1, kind=PlanStop.Kind.BIN, bin=b, forecast_fill=0.8,
                           arrival=at + dt.timedelta(minutes=5 * k), start=at + dt.timedelta(minutes=5 * k),
                           departure=at + dt.timedelta(minutes=5 * k + 2), load_after_l=100 * k)
                  for k, b in enumerate(bins)]
    PlanStop.objects.bulk_create(stops)
    return plan


def test_a_city_plan_keeps_its_map_and_totals_above_the_fold_and_the_page_short(browser, live_server, users,
                                                                                  city_plan_rows):
    plan = city_plan_rows
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    page.goto(f"{live_server.url}/sanitation/?date={plan.date.isoformat()}")
    page.wait_for_function("() => document.getElementById('san-map').dataset.loaded.split(',').includes('routes')")
    # The main result first: the map and the plan's totals start within the first screen.
    for selector in ("#san-map", "#plan-kpis"):
        assert page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().top") < 950 - 200
    # Every route on the map, six route cards on the page, the others a page away.
    assert page.evaluate("sanitationLayers.routes.getLayers().length") == TRUCKS
    assert page.locator(".route-card").count() == 6
    assert f"{TRUCKS} routes" in page.inner_text("#route-filter")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2 * 950, height  # all 24 cards on the page measured 4,612 px
    assert page.locator("#plan-notes").count() == 1 and not page.locator("#plan-notes").get_attribute("open")
    page.click("#route-filter .pager a")
    page.wait_for_load_state("networkidle")
    assert page.locator(".route-card").first.get_attribute("data-truck") == "T07"
    # Filtering by truck finds one truck's card among the 24.
    page.fill("#route-filter input[name=truck]", "t17")
    page.click("#route-filter button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert [c.get_attribute("data-truck") for c in page.locator(".route-card").all()] == ["T17"]
    assert page.evaluate("document.documentElement.scrollHeight") < 2 * 950
