"""The console in a real browser (Debian's Chromium): a dispatcher's map with its layers actually drawn,
toggled and refreshed; a field crew member's phone view of their orders, and the pages they may not open."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point

from city_ops.results.tests.statement_sample import sanitation_days_seed

from .conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".run"


@pytest.fixture
def no_broker(monkeypatch):
    """Closures publish a city event to the broker after commit; no worker runs here, so keep the test's
    events out of the shared broker (another run's worker must not pick them up)."""
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app._get_current_object(), "send_task", lambda *a, **k: sent.append(a))
    return sent


@pytest.fixture
def fresh_road_cache():
    # The roads layer is cached by network version, which every freshly loaded test city shares.
    from django.core.cache import cache

    from city_ops.city.models import CityProfile

    profile = CityProfile.objects.first()
    cache.delete(f"roads:{profile.network_version if profile else 0}:")


def _loaded(page) -> list[str]:
    return [x for x in page.get_attribute("#map", "data-loaded").split(",") if x]


# Every layer that starts switched on has arrived (or failed visibly): agents may add layers of their own.
ALL_ON_LOADED = """() => {
    const loaded = document.getElementById('map').dataset.loaded.split(',');
    return [...document.querySelectorAll('.layer-toggle:checked')].every(b =>
        loaded.includes(b.dataset.layer) ||
        document.querySelector(`[data-state-for="${b.dataset.layer}"]`).dataset.state === 'error');
}"""


def test_dispatcher_map_layers(browser, live_server, demo_city, users, no_broker, fresh_road_cache):
    from city_ops.city.models import RoadSegment
    from city_ops.city.services import closure_create

    page = browser.new_page(viewport={"width": 1400, "height": 880})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    assert page.url == f"{live_server.url}/"  # dispatchers land on the map
    page.wait_for_function(ALL_ON_LOADED)
    assert {"roads", "closures", "districts"} <= set(_loaded(page)) and "places" not in _loaded(page)
    assert not page.locator("[data-state=error]").count()

    # The road network is the base layer (no tile server): vector tiles of every segment in view, drawn on
    # the roads pane's canvases. Dispatchers' defects come as tiles too; closures stay GeoJSON.
    assert page.evaluate("!!cityLayers.roads.redraw && !cityLayers.closures.redraw")
    assert "/api/city/tiles/roads/{z}/{x}/{y}.mvt" == page.get_attribute("input[data-layer=roads]", "data-tiles")
    # Tiles past the city's edge are empty: the ink is counted over the tiles that have roads.
    page.wait_for_function("""() => {
        let inked = 0, all = 0, tiles = 0;
        for (const c of document.querySelectorAll('.leaflet-roads-pane canvas')) {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            if (n) { tiles++; inked += n; all += d.length / 4; }
        }
        return tiles >= 2 && inked / all > 0.02;
    }""", timeout=30_000)
    assert "© OpenStreetMap contributors" in page.inner_text(".leaflet-control-attribution")
    legend = page.inner_text("#legend")
    assert "Road closed" in legend and "District boundary" in legend

    # Toggling a layer off removes it from the map; on again brings it back.
    page.uncheck("input[data-layer=districts]")
    page.wait_for_function("() => !document.getElementById('map').dataset.loaded.includes('districts')")
    assert "districts" not in _loaded(page) and {"roads", "closures"} <= set(_loaded(page))
    assert page.evaluate("cityMap.hasLayer(cityLayers.districts)") is False
    page.check("input[data-layer=places]")
    page.wait_for_function("() => document.getElementById('map').dataset.loaded.includes('places')")
    assert page.evaluate("cityLayers.places.getLayers().length") >= 4

    # A closure made through the service appears on the closures layer when it refreshes.
    closures_drawn = "cityLayers.closures.getLayers().filter(l => l.feature).length"
    assert page.evaluate(closures_drawn) == 0
    seg = RoadSegment.objects.filter(road_class__in=["primary", "secondary"]).order_by("id").first()
    closure = closure_create(geom=seg.geom, reason="Water main burst", source_agent="dispatcher")
    assert closure.segments.exists() and no_broker  # the closure.opened event was published
    page.evaluate("cityMapReload('closures')")
    page.wait_for_function(f"() => {closures_drawn} === 1")
    assert page.locator(".leaflet-marker-pane .closure-sign, .leaflet-points-pane .closure-sign").count() == 1
    page.uncheck("input[data-layer=places]")
    page.check("input[data-layer=districts]")
    page.reload()  # the sidebar lists it too
    page.wait_for_function(ALL_ON_LOADED)
    assert "Water main burst" in page.inner_text("#closure-list")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "screenshot-map.png"))
    zoom = page.evaluate("cityMap.getZoom()")
    page.click("#closure-list .zoom-to")
    page.wait_for_function(f"() => cityMap.getZoom() > {zoom}")
    assert not errors, errors


def test_crew_lands_on_my_orders_on_a_phone(browser, live_server, users):
    from city_ops.workorders.services import work_order_create

    work_order_create(title="Pothole outside Vanha kirkkopuisto, Bulevardi 14", location=Point(24.9385, 60.1655),
                      priority=4, assignee=users.crew, description="About 40 cm across, 8 cm deep.")
    work_order_create(title="Someone else's job", location=Point(24.94, 60.16), assignee=users.crew_other)
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    browser_login(page, live_server, "crew", "pw-crew-123")
    assert page.url == f"{live_server.url}/my-orders/"
    cards = page.locator(".order-card")
    assert cards.count() == 1 and "Bulevardi 14" in cards.first.inner_text()
    assert page.locator(".order-card .start-btn").is_visible()
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "screenshot-my-orders.png"), full_page=True)
    page.click(".order-card .start-btn")
    page.wait_for_selector(".order-card[data-status=in_progress] input[type=file]")
    # Dispatcher pages are closed to crews, and the nav does not offer them.
    assert page.locator("nav.mainnav >> text=Agent runs").count() == 0
    for url in ("/runs/", "/results/", "/statement/", "/workorders/"):
        resp = page.goto(f"{live_server.url}{url}")
        assert resp.status == 403, url
        assert page.locator("#error-403").is_visible()


CONSOLE_PAGES = ["/", "/runs/", "/results/", "/statement/", "/workorders/", "/workorders/{order}/", "/notifications/",
                 "/flood/", "/bus/", "/roads/", "/roads/upload/", "/roads/photos/", "/roads/report/",
                 "/sanitation/", "/sanitation/fill/", "/sanitation/overflows/", "/admin/",
                 "/admin/agent_sanitation/bin/add/", "/admin/agent_flood/floodzone/add/",
                 "/admin/agent_roads/inspectionphoto/",
                 "/api/schema/swagger/"]


def test_every_console_page_runs_under_the_content_security_policy(browser, live_server, demo_city, users):
    """Each page opens with its scripts working and nothing refused (the `browser` fixture fails the test on any
    CSP report): behaviour once in onchange=/onsubmit= attributes and colours once in style= come from
    console/page.js."""
    from city_ops.workorders.services import work_order_create

    order, _ = work_order_create(title="Blocked drain, Mannerheimintie 5", location=Point(24.9386, 60.1689),
                                 assignee=users.crew)
    page = browser.new_page(viewport={"width": 1400, "height": 880})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "admin", "pw-admin-123")
    for url in CONSOLE_PAGES:
        resp = page.goto(f"{live_server.url}{url.format(order=order.pk)}")
        assert resp.status == 200 and "default-src 'self'" in resp.headers["content-security-policy"], url
        assert "no-store" in resp.headers["cache-control"], url
        page.wait_for_load_state("networkidle")
    # Colours from data: the legend's main-road swatch has its --c, set through the CSSOM.
    page.goto(f"{live_server.url}/")
    assert page.eval_on_selector("#legend .swatch-main", "e => getComputedStyle(e).getPropertyValue('--c')") == "#3d4752"
    # A filter applies on change (data-autosubmit), and cancelling an order asks first (data-confirm).
    page.goto(f"{live_server.url}/workorders/")
    with page.expect_navigation():
        page.select_option("select[name=status]", "new")
    assert "status=new" in page.url
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click(".cancel-form button[type=submit]")
    assert asked == ["Cancel this work order?"]
    assert errors == [], errors


def test_statement_page_draws_a_chart_per_agent(browser, live_server, users):
    """The Statement page in Chromium: every agent chart in the page's data is drawn, its headline picker
    redraws it with that headline's figures, and the page fits a phone without sideways scrolling."""
    sanitation_days_seed(days=[dt.date(2026, 11, d) for d in range(2, 9)])
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    page.goto(f"{live_server.url}/statement/?month=2026-11")
    page.wait_for_load_state("networkidle")
    charts = page.evaluate("JSON.parse(document.getElementById('statement-charts').textContent)")
    drawn = page.evaluate("ids => ids.map(id => !!Chart.getChart(document.getElementById(id)))",
                          [c["id"] for c in charts])
    assert charts and all(drawn), drawn
    several = next(c for c in charts if len(c["series"]) > 1)  # sanitation: distance and truck-hours
    page.select_option(f"select[data-chart={several['id']}]", "1")
    shown = page.evaluate("id => Chart.getChart(document.getElementById(id)).data.datasets[0].data", several["id"])
    assert shown == several["series"][1]["values"]
    page.screenshot(path=str(SCREENSHOTS / "screenshot-statement.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    # Chart.js resizes its canvases on the next frames: wait for the page to settle within the phone's width.
    # A function, not a bare expression: Playwright polls a bare expression through eval, which the page's
    # Content Security Policy refuses (the test failed whenever the first check came too early).
    page.wait_for_function("() => document.documentElement.scrollWidth <= window.innerWidth", timeout=20000)
    page.goto(f"{live_server.url}/results/")
    page.wait_for_selector("#statement-lead .headline-card")
    page.set_viewport_size({"width": 1300, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / "screenshot-results.png"), full_page=True)
    assert errors == [], errors
