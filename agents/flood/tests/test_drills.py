"""Drills from the flood panel: a file or a bundled scenario replayed tick by tick as tasks, paused, resumed
and stopped by a dispatcher; the same alert log as `replay_readings`, and nothing written to live data."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from agents.flood.domain import AlertTracker, Level
from agents.flood.models import Alert, AlertEvent, Drill, Reading, Series
from agents.flood.selectors import config_sensor_code, drill_status
from agents.flood.services import (
    drill_pause,
    drill_replay,
    drill_resume,
    drill_start,
    drill_stop,
    drill_tick_advance,
)
from agents.flood.services.drills import DRILL_FILES_KEPT, drill_files_clear, drill_files_info
from city_ops.city.models import RoadClosure
from city_ops.core.testing import PermissionMatrixMixin
from city_ops.notifications.models import Notification
from city_ops.workorders.models import WorkOrder

from .conftest import csv_text, series_rows
from .test_agent_rules import FLOOD, STORM

STEP = dt.timedelta(minutes=15)


def _storm() -> bytes:
    return csv_text(
        series_rows("R-1", "rainfall", STORM)
        + series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)])
        + series_rows("D-1", "depth", FLOOD, minutes=5)
    ).encode()


def _run_out(drill: Drill, limit: int = 500) -> Drill:
    """Do what the worker does: each tick's task, one after another, until the drill stops running."""
    for _ in range(limit):
        drill.refresh_from_db()
        if drill.status != Drill.Status.RUNNING:
            return drill
        assert drill_tick_advance(drill_id=drill.pk, tick=drill.ticks) is not None
    raise AssertionError("the drill did not end")


@pytest.mark.django_db
def test_a_panel_drill_gives_the_command_log_and_leaves_live_data_alone(world, users):
    drill = drill_start(data=_storm(), name="storm.csv", user=users.dispatcher, speed=0, step=STEP)
    assert (
        drill.status == "running"
        and drill.readings == len(STORM) + 36 + len(FLOOD)
        and drill.clock == drill.start
    )
    drill = _run_out(drill)
    assert drill.status == "finished" and drill.clock == drill.end
    command = drill_replay(data=_storm(), step=STEP)
    assert drill.events == command.events and drill.ticks == command.ticks
    assert {"raised", "closure_requested", "closure_lift_proposed", "closure_lifted"} <= {
        e["kind"] for e in drill.events
    }
    # in memory only: no live alert, event, reading, closure, order or notification
    for model in (Alert, AlertEvent, Reading, Notification, WorkOrder):
        assert not model.objects.exists(), model
    assert not RoadClosure.objects.filter(source_agent="flood").exists()


@pytest.mark.django_db
def test_the_status_carries_the_drills_picture_for_the_map(world, users):
    """After every tick the map's picture is what the drill's alert log says so far and what its own tracker
    holds: each zone of its sensors at its highest open drill alert, each sensor of the file in fault or at
    its zone's level (`ok` at none)."""
    stuck = series_rows("R-1", "rainfall", [0.0] * 8 + [12.7] * 12)  # a logger repeating its last packet
    level = series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)])  # over its warning level at 5 m
    data = csv_text(stuck + level + series_rows("D-1", "depth", FLOOD, minutes=5)).encode()
    drill = drill_start(data=data, name="mixed.csv", user=users.dispatcher, speed=0, step=STEP)
    zone_of = {"D-1": "UND", "L-1": "RIV", "R-1": "LOW"}  # one hazard per zone in this file
    seen: set[str] = set()
    while drill.status == Drill.Status.RUNNING:
        drill = drill_tick_advance(drill_id=drill.pk, tick=drill.ticks)
        picture = drill_status(drill=drill)["map"]
        zones = {z["code"]: z["level"] for z in picture["zones"]}
        sensors = {s["code"]: s for s in picture["sensors"]}
        assert set(zones) == set(zone_of.values()) and set(sensors) == set(zone_of)  # before they alert too
        last: dict[tuple[str, str], Level] = {}  # the log read on its own: each key's last event's level
        for event in drill.events:
            last[(event["zone"], event["hazard"])] = Level.parse(event["level"])
        state = drill.position["state"]
        held: dict[str, Level] = {}  # the drill's tracker: its open alerts
        for alert in AlertTracker.state_load(state).open_alerts():
            held[alert.zone] = max(held.get(alert.zone, Level.NONE), alert.level)
        faulty = {config_sensor_code(f["sensor"]) for f in state["faults"]}
        for zone, label in zones.items():
            from_log = max((lv for (z, _), lv in last.items() if z == zone), default=Level.NONE)
            assert label == from_log.label == held.get(zone, Level.NONE).label, (drill.ticks, zone)
        for code, sensor in sensors.items():
            zone_level = zones[zone_of[code]]
            assert sensor["fault"] == (code in faulty), (drill.ticks, code)
            assert sensor["state"] == ("fault" if code in faulty else "ok" if zone_level == "none" else zone_level)
        seen |= set(zones.values()) | {s["state"] for s in sensors.values()}
    assert drill.status == "finished" and {"ok", "fault", "yellow"} <= seen and seen & {"orange", "red"}


@pytest.mark.django_db
def test_a_worker_parses_a_drills_file_once(world, users):
    """The first tick in a worker parses the file, the next ones reuse it; a changed file, a changed city
    configuration or a drill the bounded cache dropped is parsed again; and a tick in a fresh worker each
    time gives the same log as one worker keeping the file, and as the command."""
    drill_files_clear()
    drill = drill_start(data=_storm(), name="storm.csv", user=users.dispatcher, speed=0, step=STEP)
    start = drill_files_info()
    assert start["kept"] == 0  # the web process that started it keeps nothing

    def tick() -> dict[str, int]:
        before = drill_files_info()
        drill_tick_advance(drill_id=drill.pk, tick=Drill.objects.get(pk=drill.pk).ticks)
        after = drill_files_info()
        return {"hits": after["hits"] - before["hits"], "misses": after["misses"] - before["misses"]}

    assert tick() == {"hits": 0, "misses": 1} and drill_files_info()["kept"] == 1
    assert tick() == {"hits": 1, "misses": 0} and tick() == {"hits": 1, "misses": 0}
    Drill.objects.filter(pk=drill.pk).update(data=_storm() + b"R-1,rainfall,2026-07-01T12:00:00Z,0.0\n")
    assert tick() == {"hits": 0, "misses": 1}  # another file
    assert tick() == {"hits": 1, "misses": 0}
    Series.objects.filter(sensor__code="L-1", parameter="level").update(warning_level=4.5)
    assert tick() == {"hits": 0, "misses": 1}  # the city's configuration changed: matched again
    others = [
        drill_start(data=_storm(), name=f"storm-{i}.csv", user=users.dispatcher, speed=0, step=STEP)
        for i in range(DRILL_FILES_KEPT)
    ]
    for other in others:
        drill_tick_advance(drill_id=other.pk, tick=0)
    assert drill_files_info()["kept"] == DRILL_FILES_KEPT
    assert tick() == {"hits": 0, "misses": 1}  # the least recently used was dropped

    kept = _run_out(others[0])
    fresh = Drill.objects.get(pk=others[1].pk)
    while fresh.status == Drill.Status.RUNNING:
        drill_files_clear()  # each tick in another worker
        fresh = drill_tick_advance(drill_id=fresh.pk, tick=fresh.ticks)
    command = drill_replay(data=_storm(), step=STEP)
    assert kept.events == fresh.events == command.events and kept.ticks == fresh.ticks == command.ticks


@pytest.mark.django_db
def test_pause_resume_stop_and_stale_tick_messages(world, users):
    drill = drill_start(data=_storm(), name="storm.csv", user=users.dispatcher, speed=60, step=STEP)
    drill_tick_advance(drill_id=drill.pk, tick=0)
    drill_tick_advance(drill_id=drill.pk, tick=1)
    assert drill_tick_advance(drill_id=drill.pk, tick=1) is None  # a repeated message does nothing
    drill.refresh_from_db()
    assert drill.ticks == 2 and drill.clock == drill.start + 2 * STEP
    drill_pause(drill=drill, user=users.dispatcher)
    assert drill_tick_advance(drill_id=drill.pk, tick=2) is None  # the tick in flight finds it paused
    drill.refresh_from_db()
    assert drill.status == "paused" and drill.ticks == 2
    with pytest.raises(ValidationError):
        drill_pause(drill=drill, user=users.dispatcher)
    drill_resume(drill=drill, user=users.dispatcher)
    assert drill_tick_advance(drill_id=drill.pk, tick=2).ticks == 3
    drill_stop(drill=drill, user=users.dispatcher)
    assert drill_tick_advance(drill_id=drill.pk, tick=3) is None
    drill.refresh_from_db()
    assert drill.status == "stopped" and drill.ticks == 3
    with pytest.raises(ValidationError):
        drill_resume(drill=drill, user=users.dispatcher)


@pytest.mark.django_db
def test_a_drill_refuses_what_it_cannot_replay(world, users):
    with pytest.raises(ValidationError, match="nope.bin"):
        drill_start(data=b"\x00\x01 not readings", name="nope.bin", user=users.dispatcher, speed=0)
    ghost = csv_text(series_rows("GHOST", "depth", [1.0, 2.0])).encode()
    with pytest.raises(ValidationError, match="no reading names a sensor of this city"):
        drill_start(data=ghost, name="ghost.csv", user=users.dispatcher, speed=0)
    with pytest.raises(ValidationError, match="speed"):
        drill_start(data=_storm(), name="storm.csv", user=users.dispatcher, speed=-1)
    assert not Drill.objects.exists()


@pytest.mark.django_db
class TestDrillViews(PermissionMatrixMixin):
    def test_every_cell(self, users, world):
        drill = drill_start(data=_storm(), name="storm.csv", user=users.dispatcher, speed=0, step=STEP)
        d = drill.pk
        self.matrix = [
            ("GET", f"/flood/drills/{d}/", {"anonymous": 302, "crew": 403, "dispatcher": 200, "admin": 200}),
            ("POST", "/flood/drills/start/", {"anonymous": 302, "crew": 403, "dispatcher": 302}),
            ("POST", f"/flood/drills/{d}/action/", {"anonymous": 302, "crew": 403, "dispatcher": 302}),
        ]
        self.matrix_check(users)

    def test_start_follow_and_stop_from_the_panel(self, users, world):
        c = Client()
        c.force_login(users.dispatcher)
        # the bundled scenario is made for the demo city: refused here, with the reason
        page = c.post("/flood/drills/start/", {"scenario": "demo-storm", "speed": "0"}, follow=True)
        assert (
            "no reading names a sensor of this city" in page.content.decode() and not Drill.objects.exists()
        )
        from django.core.files.uploadedfile import SimpleUploadedFile

        c.post(
            "/flood/drills/start/",
            {"file": SimpleUploadedFile("storm.csv", _storm()), "speed": "900", "step_min": "30"},
        )
        drill = Drill.objects.get()
        assert (drill.name, drill.speed, drill.step_min, drill.started_by) == (
            "storm.csv",
            900,
            30,
            users.dispatcher,
        )
        for tick in range(4):
            drill_tick_advance(drill_id=drill.pk, tick=tick)
        state = c.get(f"/flood/drills/{drill.pk}/").json()
        assert state["drill"] is True and state["status"] == "running" and state["ticks"] == 4
        assert (
            state["clock"] == (drill.start + dt.timedelta(hours=2)).isoformat() and 0 < state["progress"] < 1
        )
        assert state["events"] and all(e["kind_label"] and e["level_label"] for e in state["events"])
        html = c.get("/flood/").content.decode()
        assert 'id="flood-drill"' in html and "storm.csv" in html and 'data-action="drill-pause"' in html
        c.post(f"/flood/drills/{drill.pk}/action/", {"action": "stop"})
        assert c.get(f"/flood/drills/{drill.pk}/").json()["status"] == "stopped"


@pytest.mark.django_db(transaction=True)
def test_drill_in_the_browser_with_a_real_worker(
    browser, live_server, demo_city, users, celery_worker_proc, tmp_path
):
    """A dispatcher starts the bundled storm from the panel; a real worker runs its ticks; the replayed clock
    and the drill's alerts follow in the page; pause holds the clock, resume moves it on, stop ends it."""
    from .conftest import browser_login, readings_clear

    readings_clear()
    live = (
        Alert.objects.count(),
        AlertEvent.objects.count(),
        RoadClosure.objects.filter(source_agent="flood").count(),
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def clock() -> str:
        return page.locator("#drill-clock").get_attribute("datetime")

    try:
        browser_login(page, live_server, "dispatcher", "pw-disp-123")
        page.goto(f"{live_server.url}/flood/")
        page.select_option("#drill-scenario", "demo-storm")
        page.select_option("#drill-speed", "3600")  # a 15-minute tick every quarter second
        page.click("button[data-action='drill-start']")
        page.wait_for_load_state("networkidle")
        assert page.locator("#flood-drill").get_attribute("data-status") == "running"
        # the worker's ticks move the clock, and the storm's first alerts show up as the drill's
        page.wait_for_function(
            "() => document.querySelectorAll('#drill-events li[data-seq]').length >= 2", timeout=60000
        )
        # From here on a tick every 15 s (x60): the whole storm takes 9 s at x3600, and on a loaded machine it
        # ran to its end before the test reached the stop button ('finished', not 'stopped'). Every check
        # below still sees the clock move at once: a resume sends its first tick without waiting.
        Drill.objects.update(speed=60)
        assert clock() > Drill.objects.get().start.isoformat()
        # the drill's picture is on the map: its zones at the drill's levels, marked DRILL, in a layer of its own
        page.wait_for_function(
            "() => /:(blue|yellow|orange|red)/.test(document.getElementById('flood-map').dataset.drillZones || '')",
            timeout=30000,
        )
        assert "drill" in page.locator("#flood-map").get_attribute("data-loaded").split(",")
        assert page.locator(".drill-legend .drill-badge").is_visible()
        page.screenshot(path=str(tmp_path / "flood-drill.png"), full_page=True)
        toggle = page.locator(".leaflet-control-layers-overlays input[type=checkbox]")
        toggle.uncheck()  # the live picture alone
        assert page.locator(".drill-legend").is_hidden()
        toggle.check()
        assert page.locator(".drill-legend").is_visible()
        page.click("button[data-action='drill-pause']")
        page.wait_for_load_state("networkidle")
        assert page.locator("#flood-drill").get_attribute("data-status") == "paused"
        held = clock()
        # The database's clock, not the page's: a tick that committed just before the pause may not be on
        # the page yet, and that is no movement while paused.
        paused_at = Drill.objects.get().clock
        time.sleep(1.5)
        assert Drill.objects.get().clock == paused_at  # nothing moves while paused
        page.click("button[data-action='drill-resume']")
        page.wait_for_load_state("networkidle")
        page.wait_for_function(
            f"() => document.getElementById('drill-clock').getAttribute('datetime') > '{held}'", timeout=30000
        )
        page.click("button[data-action='drill-stop']")
        page.wait_for_load_state("networkidle")
        assert page.locator("#flood-drill").get_attribute("data-status") == "stopped"
        drill = Drill.objects.get()
        assert drill.status == "stopped" and drill.events and drill.started_by.username == "dispatcher"
    finally:
        page.close()
    assert not errors, errors
    assert live == (
        Alert.objects.count(),
        AlertEvent.objects.count(),
        RoadClosure.objects.filter(source_agent="flood").count(),
    )
