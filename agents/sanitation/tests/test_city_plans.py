"""The whole city planned district by district: the trucks shared among districts by their bins, one task per
district on the planning queue taken by two real Celery workers at once, and the districts' km, trucks and
bins summed into the city plan by the last one to finish; a redelivered task finds its district claimed."""
from __future__ import annotations

import datetime as dt
import random
import time

import pytest

from agents.sanitation.services.city_plans import trucks_shared
from tests.fixtures import WorkerProcess


def test_trucks_are_shared_by_bins_with_every_district_served_while_trucks_last():
    shares = trucks_shared(bins={1: 500, 2: 300, 3: 200, 4: 0}, trucks=list(range(10)))
    assert {d: len(t) for d, t in shares.items()} == {1: 5, 2: 3, 3: 2, 4: 0}
    assert sorted(sum(shares.values(), [])) == list(range(10))  # each truck once
    # Fewer trucks than districts: the districts with the most bins get one each.
    few = trucks_shared(bins={1: 10, 2: 900, 3: 50}, trucks=[7, 8])
    assert {d: len(t) for d, t in few.items()} == {1: 0, 2: 1, 3: 1}
    # A district with a small share still gets one truck.
    assert min(len(t) for t in trucks_shared(bins={1: 990, 2: 10}, trucks=list(range(5))).values()) == 1


@pytest.fixture
def district_city(transactional_db):
    """A synthetic grid city of four districts, 160 bins without fill history and five trucks."""
    from agents.sanitation.models import Truck
    from city_ops.city.models import CityProfile
    from fixtures.demo_city import HELSINKI_DISTRICTS, _grid_districts, _places, synthetic_city_build
    from fixtures.sanitation_demo import sanitation_demo_load

    synthetic_city_build(scale=2)
    _grid_districts(CityProfile.objects.first().bounds.extent, HELSINKI_DISTRICTS)
    _places(random.Random(7))
    sanitation_demo_load(scale=2, synthetic=True, history_days=0)
    first = Truck.objects.order_by("pk").first()
    for k in range(Truck.objects.count(), 5):
        Truck.objects.create(code=f"X{k}", name=f"extra {k}", depot=first.depot, waste_types=first.waste_types,
                             capacity_l=first.capacity_l, capacity_kg=first.capacity_kg,
                             daily_cap_kg=first.daily_cap_kg, shift_start=first.shift_start,
                             shift_end=first.shift_end)


def test_city_planned_by_district_on_two_workers_sums_km_and_trucks(district_city, celery_worker_proc):
    from agents.sanitation.models import CityPlan, DistrictPlan
    from agents.sanitation.services.city_plans import city_plan_start, district_plan_execute

    second = WorkerProcess(queues="planning", name="second").start()
    try:
        plan = city_plan_start(date=dt.date.today() + dt.timedelta(days=1), time_limit=0.5, assume_level=0.9)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and CityPlan.objects.get(pk=plan.pk).status != CityPlan.Status.DONE:
            time.sleep(0.5)
    finally:
        second.stop()
    plan.refresh_from_db()
    parts = list(plan.districts.all())
    assert plan.status == CityPlan.Status.DONE, [(p.status, p.error) for p in parts]
    assert len(parts) == 4 and all(p.status == DistrictPlan.Status.DONE for p in parts)
    assert sorted(t for p in parts for t in p.truck_ids) == sorted(set(t for p in parts for t in p.truck_ids))
    # Both workers planned districts: the parts ran in parallel, not one after the other on one worker.
    assert len({p.claimed_by for p in parts}) == 2
    k = plan.kpis
    assert k["districts"] == 4 and k["districts_failed"] == [] and k["feasible"]
    assert k["km"] == pytest.approx(sum(p.kpis["km"] for p in parts), abs=0.01) and k["km"] > 0
    # (Every bin is optional here: a district whose bins are not worth a truck's fixed cost may use none.)
    assert 0 < k["trucks_used"] == sum(p.kpis["trucks_used"] for p in parts) <= 5
    assert k["bins_visited"] == sum(p.kpis["bins_visited"] for p in parts) > 0
    # Each district's routes serve only that district's bins (its trucks, its part of the city).
    for p in parts:
        assert sum(r["bins"] for r in p.routes) == p.kpis["bins_visited"]
        assert len(p.routes) == p.kpis["trucks_used"] <= len(p.truck_ids)
    # A message delivered again (a worker lost before its ack) finds its district claimed: nothing changes.
    assert district_plan_execute(part_id=parts[0].pk) is None
    assert CityPlan.objects.get(pk=plan.pk).kpis == k


@pytest.mark.django_db
def test_a_district_that_fails_is_reported_and_the_city_still_summed():
    """A district that cannot be planned (here: no road network to route on) records why; the city plan is
    still summed, naming it, and not called feasible. (No worker: the test's transaction never commits, so
    nothing is sent; the part is executed here.)"""
    from django.contrib.gis.geos import MultiPolygon, Point, Polygon

    from agents.sanitation.models import Bin, CityPlan, Depot, DistrictPlan, Truck
    from agents.sanitation.services.city_plans import city_plan_start, district_plan_execute
    from city_ops.city.models import District, RoadNode, RoadSegment
    from city_ops.city.network import network_cache_clear

    # No network at all: the roads tests keep the Helsinki network committed for the session, and its
    # junctions without their segments would still be a (disconnected) network. A network an earlier test
    # built stays cached under the same version (deleting rows does not bump it): forget it too.
    RoadSegment.objects.all().delete()
    RoadNode.objects.all().delete()
    network_cache_clear()
    District.objects.all().delete()
    District.objects.create(code="A", name="A", geom=MultiPolygon(Polygon.from_bbox((0, 0, 1, 1)), srid=4326))
    District.objects.create(code="B", name="B", geom=MultiPolygon(Polygon.from_bbox((2, 0, 3, 1)), srid=4326))
    depot = Depot.objects.create(name="d", geom=Point(0.5, 0.5, srid=4326))
    truck = Truck.objects.create(code="T1", depot=depot, capacity_l=16000, capacity_kg=3000, waste_types=["mixed"])
    Bin.objects.create(code="B1", geom=Point(0.5, 0.5, srid=4326), capacity_l=660)
    plan = city_plan_start(date=dt.date.today() + dt.timedelta(days=1), time_limit=0.1, assume_level=0.9)
    part = plan.districts.get()  # district B has no bins: no part
    assert part.district.code == "A" and part.truck_ids == [truck.pk]
    part = district_plan_execute(part_id=part.pk, worker="test:1")
    assert part.status == DistrictPlan.Status.FAILED and "road network" in part.error
    plan.refresh_from_db()
    assert plan.status == CityPlan.Status.DONE
    assert plan.kpis["districts_failed"] == ["A"] and not plan.kpis["feasible"] and plan.kpis["km"] == 0


@pytest.mark.django_db
def test_the_command_prints_the_city_plan_as_json_alone_and_refuses_a_bad_date(capsys):
    import json

    from django.contrib.gis.geos import MultiPolygon, Point, Polygon
    from django.core.management import CommandError, call_command

    from agents.sanitation.models import Bin, Depot, Truck
    from city_ops.city.models import District

    District.objects.all().delete()
    District.objects.create(code="A", name="A", geom=MultiPolygon(Polygon.from_bbox((0, 0, 1, 1)), srid=4326))
    depot = Depot.objects.create(name="d", geom=Point(0.5, 0.5, srid=4326))
    Truck.objects.create(code="T1", depot=depot, capacity_l=16000, capacity_kg=3000, waste_types=["mixed"])
    Bin.objects.create(code="B1", geom=Point(0.5, 0.5, srid=4326), capacity_l=660)
    call_command("plan_by_district", "--date", "2031-05-06", "--time-limit", "5", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["date"] == "2031-05-06" and doc["status"] == "running"
    assert [(d["district"], d["status"], d["trucks"]) for d in doc["districts"]] == [("A", "pending", 1)]
    with pytest.raises(CommandError, match="not a date"):
        call_command("plan_by_district", "--date", "2031-13-45")
    with pytest.raises(CommandError, match="positive"):
        call_command("plan_by_district", "--time-limit", "0")
