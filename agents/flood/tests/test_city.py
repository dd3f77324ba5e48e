"""The flood agent on the real demo city: its demo zones lie on real shore streets, a flooded low point closes
its road in the shared closure table, the road-network service routes around it, other agents hear of it
through city events, and a reading posted through the API reaches an alert through a real Celery worker."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.test import Client

from agents.flood.models import Alert, FloodZone, Sensor
from agents.flood.selectors import zone_segments
from agents.runtime.models import AgentRun
from agents.runtime.registry import assets_in_area
from city_ops.city.models import CityEvent, RoadClosure
from city_ops.city.network import road_network
from city_ops.core.services import api_client_create
from tests.fixtures import PATIENCE_S

from .conftest import csv_text, evaluate, ingest, readings_clear, series_rows
from .test_agent_rules import FLOOD

START = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_flooded_low_point_is_closed_and_routes_avoid_it(demo_city):
    zone = FloodZone.objects.get(code="PITKA-U")
    [segment] = list(zone_segments(zone=zone))
    assert segment.name == "Pitkänsillanranta"
    assert Sensor.objects.get(code="D-PITKA").geom.within(zone.geom)
    ends = [segment.source.geom.coords, segment.target.geom.coords]
    before = road_network().path(ends[0], ends[1])
    assert segment.pk in before.segment_ids

    readings_clear()  # the demo's calm day lies in the present; this storm is in the past
    ingest(series_rows("D-PITKA", "depth", FLOOD, minutes=5, start=START))
    evaluate()
    alert = Alert.objects.get(zone=zone, hazard="waterlogging")
    closure = RoadClosure.objects.active().get(source_agent="flood")
    assert alert.closure == closure and list(closure.segments.all()) == [segment]
    after = road_network().path(ends[0], ends[1])
    assert segment.pk not in after.segment_ids and after.time_s > before.time_s
    opened = CityEvent.objects.get(kind="closure.opened")
    assert opened.payload["segment_ids"] == [segment.pk] and opened.source_agent == "flood"
    changed = CityEvent.objects.filter(kind="zone.level_changed", payload__zone_code="PITKA-U").last()
    assert changed.payload["geometry"]["type"] == "Polygon"
    # the demo sensors are the flood agent's assets for other agents
    assert {a.id for a in assets_in_area(area=zone.geom, exclude="bus")} >= {"D-PITKA"}


@pytest.mark.django_db
def test_demo_data_is_calm_and_the_agent_runs_on_it(demo_city):
    from django.core.management import call_command

    assert FloodZone.objects.count() == 4 and Sensor.objects.count() == 7
    assert all(s.metadata.get("synthetic") for s in Sensor.objects.all())
    call_command("run_agent", "flood", "--sync", "--json", stdout=__import__("io").StringIO())
    run = AgentRun.objects.filter(agent="flood").latest("id")
    kpis = {k.name: k.value for k in run.kpis.all()}
    assert run.status == "succeeded" and kpis["readings_evaluated"] > 1000
    assert kpis["alerts_raised"] == 0 and kpis["sensor_faults"] == 0  # a calm day


def test_reading_posted_by_a_gateway_reaches_an_alert_through_celery(celery_worker_proc, world):
    """The ingest enqueues an evaluation after commit on the realtime queue; a real worker runs it."""
    _, token = api_client_create(name="gauge-gateway", scopes=["flood.readings:write"])
    body = csv_text(series_rows("D-1", "depth", [0.0, 9.0, 18.0, 26.0, 27.0], minutes=5))
    resp = Client().post("/api/flood/readings/", body, content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert resp.status_code == 200 and resp.json()["accepted"] == 5
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline and not Alert.objects.filter(zone__code="UND").exists():
        time.sleep(0.2)
    alert = Alert.objects.get(zone__code="UND")
    assert alert.level_label == "yellow" and alert.closure_state == "requested"
    run = AgentRun.objects.get(agent="flood")
    assert run.trigger == "monitor" and run.status in ("running", "succeeded")
