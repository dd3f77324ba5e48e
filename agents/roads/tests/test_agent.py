"""The agent in the runtime: its daily run's KPIs over the window since the previous run, the demo data on the
real city, assets for other agents, and the map layers it adds to the console."""
from __future__ import annotations

import io
import json

import pytest
from django.contrib.gis.geos import Polygon
from django.core.management import call_command

from agents.roads.models import Defect, InspectionPhoto
from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import photos_receive
from agents.runtime.registry import agent_get
from city_ops.workorders.models import WorkOrder

from .conftest import photo_bytes, spot_on, upload_file

pytestmark = pytest.mark.usefixtures("tiny_model")


def _run_agent() -> dict:
    out = io.StringIO()
    call_command("run_agent", "roads", "--sync", "--json", stdout=out, stderr=io.StringIO())
    data = json.loads(out.getvalue())
    return data[0] if isinstance(data, list) else data


def test_daily_run_reports_what_the_inspection_achieved(long_segment, users):
    a = spot_on(long_segment, 0.5)
    b = spot_on(long_segment, 0.5, north_m=1.5)
    received = photos_receive(files=[upload_file(photo_bytes(lon=a.lon, lat=a.lat, seed=1), "a.jpg"),
                                     upload_file(photo_bytes(lon=b.lon, lat=b.lat, seed=2), "b.jpg")],
                              uploader=users.crew, enqueue=False)
    photos_detect(photo_ids=[r.photo.pk for r in received])
    run = _run_agent()
    assert run["status"] == "succeeded", run["error"]
    k = run["kpis"]
    assert k["photos_processed"] == 2 and k["defects_found"] == 1 and k["sightings_merged"] == 1
    assert k["orders_created"] == 1 and k["open_defects"] == 1
    assert k["mean_inference_ms"] > 0
    # the next run reports only what happened since this one
    again = _run_agent()
    assert again["kpis"]["photos_processed"] == 0 and again["kpis"]["orders_created"] == 0
    # no photo ran through the model since: no inference time at all, not a "0 ms" that reads as measured
    assert "mean_inference_ms" not in again["kpis"]


def test_demo_data_on_the_real_city(city, users):
    counts = agent_get("roads").demo_data_load()
    assert counts["photos"] == 6 and counts["cameras"] == 1
    assert InspectionPhoto.objects.filter(synthetic=True, status="done").count() == 6
    defects = Defect.objects.filter(synthetic=True)
    assert defects.count() == counts["defects"] == 5
    assert defects.filter(sightings_count=2).count() == 1  # the repeat sighting 2 m on merged
    # the real photos (fixtures/roads_photos) with both classes: phone photos and survey frames
    assert sorted(defects.values_list("class_name", flat=True)) == ["crack", "crack", "pothole", "pothole", "pothole"]
    sizes = set(InspectionPhoto.objects.filter(synthetic=True).values_list("source", "width", "height"))
    assert sizes == {("crew", 640, 640), ("crew", 512, 512), ("vehicle", 768, 480)}
    assert all(d.segment_id for d in defects)
    assert WorkOrder.objects.filter(source_agent="roads").count() == counts["orders"] >= 1
    # idempotent: a reload replaces the demo rows
    assert agent_get("roads").demo_data_load() == counts
    assert Defect.objects.filter(synthetic=True).count() == 5


def test_assets_in_area_and_map_layers(long_segment, client, users):
    agent = agent_get("roads")
    agent.demo_data_load()
    d = Defect.objects.filter(synthetic=True).first()
    x, y = d.location.x, d.location.y
    area = Polygon.from_bbox((x - 0.001, y - 0.001, x + 0.001, y + 0.001))
    assets = agent.assets_in_area(area=area)
    assert any(a.kind == "defect" and a.id == str(d.pk) for a in assets)
    client.force_login(users.dispatcher)
    for layer in agent.map_layers:
        resp = client.get(layer["url"])
        assert resp.status_code == 200 and resp.json()["type"] == "FeatureCollection"
        assert resp.json()["features"], layer["id"]
