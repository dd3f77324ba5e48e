"""Who may open what in the flood panel and API (anonymous, crew, dispatcher, admin), and the panel in a
real browser: the map with its layers, alerts with their actions, the hydrograph."""
from __future__ import annotations

import pytest

from agents.flood.models import Alert, Sensor
from city_ops.core.testing import PermissionMatrixMixin

from .conftest import evaluate, ingest, readings_clear, series_rows
from .test_agent_rules import STORM

OK, REDIRECT, FORBIDDEN = 200, 302, 403
API_DENIED = (401, 403)


@pytest.fixture
def alert(world) -> Alert:
    ingest(series_rows("R-1", "rainfall", STORM[:10]))
    evaluate()
    return Alert.objects.get(zone__code="LOW")


@pytest.mark.django_db
class TestFloodPermissions(PermissionMatrixMixin):
    def test_every_cell(self, users, alert):
        a, s = alert.pk, Sensor.objects.get(code="L-1").pk
        self.matrix = [
            ("GET", "/flood/", {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}),
            ("POST", f"/flood/alerts/{a}/action/", {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": REDIRECT}),
            ("POST", "/flood/cap/import/", {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": REDIRECT}),
            ("GET", "/api/flood/sensors.geojson", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK}),
            ("GET", "/api/flood/zones.geojson", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK}),
            ("GET", f"/api/flood/sensors/{s}/hydrograph/", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK}),
            ("GET", "/api/flood/alerts/", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK, "admin": OK}),
            ("GET", f"/api/flood/alerts/{a}/", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK}),
            ("POST", f"/api/flood/alerts/{a}/acknowledge/",
             {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}),
            ("POST", f"/api/flood/alerts/{a}/escalate/",
             {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": OK, "admin": 409}),  # orange -> red, then red
            ("POST", f"/api/flood/alerts/{a}/confirm-lift/",
             {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 409}),  # nothing proposed
            ("POST", "/api/flood/cap/", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 400}),
            ("POST", "/api/flood/readings/", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 400}),
            # the CAP documents and the ATOM feed are public, as a warning agency's are
            ("GET", f"/api/flood/alerts/{a}.cap", {"anonymous": OK, "crew": OK}),
            ("GET", "/api/flood/alerts.atom", {"anonymous": OK}),
        ]
        self.matrix_check(users)
        alert.refresh_from_db()
        assert alert.level_label == "red" and alert.manual_level == 4  # the dispatcher's escalation held

    def test_crew_sees_alerts_but_cannot_act(self, users, alert):
        from django.test import Client

        crew = Client()
        crew.force_login(users.crew)
        assert [x["id"] for x in crew.get("/api/flood/alerts/").json()] == [alert.pk]
        assert crew.post(f"/flood/alerts/{alert.pk}/action/", {"action": "acknowledge"}).status_code == FORBIDDEN
        alert.refresh_from_db()
        assert alert.acknowledged_at is None


@pytest.mark.django_db
def test_a_drills_words_come_in_the_users_language(users, world):
    """The drill status gives each state, level and sensor state as its code and as its word in the user's
    language (the model's translated choice label, the level's and sensor state's msgids), and the panel
    shows the same: a zh-hans dispatcher reads them in Chinese once the catalogue has them."""
    import datetime as dt

    from django.test import Client
    from django.utils import translation
    from django.utils.translation import gettext, pgettext

    from agents.flood.models import Drill
    from agents.flood.services import drill_start, drill_stop, drill_tick_advance
    from city_ops.core.models import UserProfile

    from .conftest import csv_text
    from .test_agent_rules import FLOOD

    UserProfile.objects.update_or_create(user=users.dispatcher, defaults={"language": "zh-hans"})
    c = Client()
    c.force_login(users.dispatcher)
    data = csv_text(series_rows("R-1", "rainfall", STORM) + series_rows("D-1", "depth", FLOOD, minutes=5)).encode()
    drill = drill_start(data=data, name="storm.csv", user=users.dispatcher, speed=0, step=dt.timedelta(minutes=15))
    for tick in range(12):  # three hours of the storm
        drill_tick_advance(drill_id=drill.pk, tick=tick)
    state = c.get(f"/flood/drills/{drill.pk}/").json()
    page = c.get("/flood/").content.decode()
    with translation.override("zh-hans"):
        assert state["status"] == "running" and state["status_label"] == str(Drill.Status.RUNNING.label)
        assert state["status_label"] == gettext("Running") != "Running"  # the catalogue has this word already
        assert f'<span id="drill-status">{state["status_label"]}</span>' in page
        assert 'id="flood-drill-state"' in page and f'data-drill="{gettext("DRILL")}"' in page
        zones = {z["code"]: z for z in state["map"]["zones"]}
        assert zones["LOW"]["level"] != "none"  # the storm's rain has raised the drill's alert there
        for zone in zones.values():
            assert zone["level_label"] == pgettext("flood warning level", zone["level"])
        for sensor in state["map"]["sensors"]:
            word = {"ok": pgettext("flood drill sensor state", "ok"),
                    "fault": pgettext("flood drill sensor state", "fault")}.get(sensor["state"])
            assert sensor["state_label"] == (word or pgettext("flood warning level", sensor["state"]))
    drill_stop(drill=drill, user=users.dispatcher)
    state = c.get(f"/flood/drills/{drill.pk}/").json()
    with translation.override("zh-hans"):
        assert state["status"] == "stopped" and state["status_label"] == str(Drill.Status.STOPPED.label)
    with translation.override("en"):
        assert str(Drill.Status.STOPPED.label) == "Stopped"


@pytest.mark.django_db(transaction=True)
def test_flood_panel_in_the_browser(browser, live_server, demo_city, users, tmp_path):
    import datetime as dt

    from agents.flood.services import readings_ingest
    from fixtures.flood_demo import storm_csv

    from .conftest import browser_login

    readings_clear()
    readings_ingest(data=storm_csv(start=dt.datetime(2026, 7, 1, tzinfo=dt.UTC)).encode(), evaluate=False)
    evaluate()
    assert Alert.objects.filter(status="open").exists()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        browser_login(page, live_server, "dispatcher", "pw-disp-123")
        page.goto(f"{live_server.url}/flood/")
        page.wait_for_function(
            "() => ['closures','roads','sensors','zones'].every(l => "
            "(document.getElementById('flood-map').dataset.loaded || '').split(',').includes(l))", timeout=20000)
        page.wait_for_function("() => document.getElementById('hydrograph').dataset.sensor", timeout=20000)
        open_alerts = page.locator(".flood-alert")
        assert open_alerts.count() == Alert.objects.filter(status="open").count() > 0
        assert page.locator(".flood-alert.level-orange, .flood-alert.level-yellow").count() > 0
        page.screenshot(path=str(tmp_path / "flood-panel.png"), full_page=True)
        # the hydrograph follows the sensor picked
        page.locator(".sensor-pick[data-code='L-SILTA']").click()
        page.wait_for_function("() => document.getElementById('hydrograph').dataset.sensor === 'L-SILTA'")
        assert int(page.locator("#hydrograph").get_attribute("data-points")) > 10
        # acknowledge the first alert from its button
        first = open_alerts.first
        alert_id = int(first.get_attribute("data-alert"))
        first.locator("button[data-action='acknowledge']").click()
        page.wait_for_load_state("networkidle")
        assert "acknowledged by dispatcher" in page.locator(f".flood-alert[data-alert='{alert_id}']").inner_text()
        assert Alert.objects.get(pk=alert_id).acknowledged_by.username == "dispatcher"
    finally:
        page.close()
    assert not errors, errors
