"""The road inspection console in a real browser (Debian's Chromium): the dispatcher's panel with defects on
the map by severity and the repair queue, the photo viewer with its boxes drawn over the photo, and a crew
member's phone upload with a pin that shows the boxes once detection is done."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import browser_login, photo_bytes

pytestmark = [pytest.mark.usefixtures("tiny_model"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[3] / ".run"


@pytest.fixture
def users_tx(city_tx):
    from city_ops.core.testing import role_users_create

    return role_users_create()


@pytest.fixture
def demo(users_tx):
    from agents.runtime.registry import agent_get

    return agent_get("roads").demo_data_load()


BOXES_SHOWN = """(sel) => {
    const fig = document.querySelector(sel);
    if (!fig) return false;
    const img = fig.querySelector('img'), rect = fig.querySelector('svg.boxes rect');
    if (!img || !rect || !img.complete || img.naturalWidth === 0) return false;
    const r = rect.getBoundingClientRect(), f = img.getBoundingClientRect();
    // the box is drawn, has a size, and lies over the picture
    return r.width > 4 && r.height > 4 && r.left >= f.left - 1 && r.right <= f.right + 1 &&
        r.top >= f.top - 1 && r.bottom <= f.bottom + 1;
}"""


def test_dispatcher_panel_map_and_photo_viewer(browser, live_server, demo, users_tx):
    from agents.roads.models import Defect, InspectionPhoto

    page = browser.new_page(viewport={"width": 1400, "height": 950})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    page.goto(f"{live_server.url}/roads/")
    page.wait_for_function("() => (document.getElementById('roads-map').dataset.loaded || '').includes('defects')")
    assert int(page.get_attribute("#roads-map", "data-defect-count")) == demo["defects"]
    rows = page.locator("#roads-defects tr[data-defect]")
    assert rows.count() == demo["defects"]
    assert page.locator("#roads-orders li[data-order]").count() == demo["orders"]
    assert page.locator(".roads-run, #roads-condition li").count() >= 1
    # the top bar links the panel (agent_nav) and the panel links the crews' "My orders"
    assert page.locator("a.agent-link", has_text="Road inspection").count() == 1
    page.screenshot(path=str(SHOTS / "roads-panel.png"), full_page=True)

    # the most urgent defect -> its photo with the box drawn over it
    top = Defect.objects.order_by("-priority_score").first()
    page.click(f"#roads-defects tr[data-defect='{top.pk}'] a[href$='/roads/defects/{top.pk}/']")
    page.wait_for_function(BOXES_SHOWN, arg=".sighting figure.photo-boxes")
    photo = InspectionPhoto.objects.filter(sightings__defect=top).first()
    page.click(f"a[href='/roads/photos/{photo.pk}/']")
    page.wait_for_function(BOXES_SHOWN, arg="#photo-viewer figure.photo-boxes")
    assert page.locator("#photo-viewer svg.boxes g.box").count() == len(photo.detections)
    page.screenshot(path=str(SHOTS / "roads-photo.png"), full_page=True)

    page.goto(f"{live_server.url}/roads/report/?segment={top.segment_id}")
    page.wait_for_function(BOXES_SHOWN, arg=".report-defect figure.photo-boxes")
    assert errors == []


def test_crew_uploads_from_a_phone_and_sees_the_boxes(browser, live_server, users_tx, settings, tmp_path):
    from django.db import connection

    from agents.roads.models import InspectionPhoto
    from agents.roads.services.detection import photos_detect
    from city_ops.city.models import RoadSegment

    seg = RoadSegment.objects.filter(road_class="residential", length_m__gte=90).exclude(name="").order_by(
        "-length_m", "osm_id").first()
    with connection.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) p FROM city_roadsegment "
                    "WHERE id = %s) t", [seg.pk])
        lon, lat = cur.fetchone()
    image = tmp_path / "pothole.jpg"
    image.write_bytes(photo_bytes())  # no GPS in the file: the crew drops a pin
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "crew", "pw-crew-123")
    page.goto(f"{live_server.url}/roads/upload/")
    page.set_input_files("#id_image", str(image))
    page.wait_for_function("() => !!window.L && document.querySelector('#pin-map .leaflet-pane')")
    # drop the pin on the street: tap the map where the street is
    point = page.evaluate("""([lat, lon]) => {
        window.pinMap.setView([lat, lon], 18, { animate: false });
        const p = window.pinMap.latLngToContainerPoint([lat, lon]);
        const box = document.getElementById('pin-map').getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", [lat, lon])
    page.mouse.click(point[0], point[1])
    assert page.input_value("#id_location_source") == "pin"
    assert float(page.input_value("#id_lat")) == pytest.approx(lat, abs=2e-5)
    page.click("#upload-submit")
    page.wait_for_selector("#photo-viewer")
    photo = InspectionPhoto.objects.get()
    assert page.get_attribute("#photo-viewer", "data-status") == "received"
    assert photo.location_source == "pin" and photo.uploader.username == "crew"
    photos_detect(photo_ids=[photo.pk])  # what the vision worker does
    page.wait_for_function(BOXES_SHOWN, arg="#photo-viewer figure.photo-boxes", timeout=15000)  # it polls, then reloads
    assert page.get_attribute("#photo-viewer", "data-status") == "done"
    page.screenshot(path=str(SHOTS / "roads-crew-photo.png"), full_page=True)
    assert errors == []
    ctx.close()
