"""The vehicle plan through `plan_buses`: minimum fleet on small cases checked by hand, every trip once with
the layover kept (checked here independently of the planner), deadhead on the demo city's roads with the
depot, versions, dispatcher edits refused or accepted with reasons, approval and exports."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import zipfile

import pytest
from django.core.exceptions import ValidationError

from agents.bus.domain.blocking import blocks_first_fit
from agents.bus.domain.gtfs import feed_read, feed_validate, service_trips
from agents.bus.models import Block, BlockTrip, Feed, VehiclePlan
from agents.bus.services.plans import (
    block_assign,
    plan_approve,
    plan_blocks_lock,
    plan_create,
    plan_csv,
    plan_gtfs_zip,
    plan_reoptimise,
    plan_trip_move,
)
from agents.geo import haversine_m

from .conftest import at, command_json, feed_from_legs

pytestmark = pytest.mark.django_db
WEDNESDAY = "2024-03-06"

# Stops for the first-fit trap (metres east/north of a point near Philadelphia; no road network there).
TRAP_STOPS = {"A": at(0, 5000), "B": at(0, 0), "E": at(2000, 0), "C": at(4000, 0), "F": at(4000, 5000),
              "G": at(2000, -8000), "H": at(-6000, -6000)}
TRAP_LEGS = {
    "tA": (("A", "08:00:00"), ("B", "08:30:00")),
    "tB": (("F", "08:05:00"), ("C", "08:30:00")),
    "t3": (("E", "08:42:00"), ("G", "09:10:00")),
    "t4": (("B", "08:45:00"), ("H", "09:15:00")),
}


def _secs(clock: str) -> int:
    h, m, s = map(int, clock.split(":"))
    return h * 3600 + m * 60 + s


def _check_blocks(blocks, legs, stops, *, layover_min=5.0, expand=None):
    """Independent check of a plan: each trip exactly once; within a block the next trip starts no earlier
    than the previous end + straight-line deadhead (x1.3 at 25 km/h) + layover."""
    trips = expand or {k: (v[0][0], _secs(v[0][1]), v[-1][0], _secs(v[-1][1])) for k, v in legs.items()}
    flat = [k for b in blocks for k in b]
    assert sorted(flat) == sorted(trips), "every trip exactly once"
    for block in blocks:
        for a, b in itertools.pairwise(block):
            _, _, end_stop, end_s = trips[a]
            start_stop, start_s, _, _ = trips[b]
            (lat1, lon1), (lat2, lon2) = stops[end_stop], stops[start_stop]
            metres = 0.0 if end_stop == start_stop else haversine_m(lat1=lat1, lon1=lon1, lat2=lat2, lon2=lon2) * 1.3
            assert start_s >= end_s + metres / (25 / 3.6) + layover_min * 60 - 1e-6, f"{a} -> {b} too tight"


def test_min_fleet_beats_first_fit_on_a_hand_checked_case(tmp_path):
    """tA ends at B, tB at C (4 km apart). t3 at E (2 km from both) can follow either; t4 at B only tA.
    First-fit gives t3 to tA and needs a third bus for t4; the optimum is [tA, t4] + [tB, t3]: 2 buses,
    which is also the peak (lower bound)."""
    path = feed_from_legs(tmp_path / "trap.zip", TRAP_STOPS, TRAP_LEGS)
    out = command_json("plan_buses", str(path), "--date", WEDNESDAY)
    assert out["trips"] == 4
    assert out["vehicles"] == out["lower_bound"] == 2
    assert sorted(map(tuple, out["blocks"])) == [("tA", "t4"), ("tB", "t3")]
    _check_blocks(out["blocks"], TRAP_LEGS, TRAP_STOPS)
    assert out["deadhead_source"] == "straight line" and out["depot"] is None
    # the case really is one where the rule of thumb fails
    feed = feed_read(path=path)
    assert len(blocks_first_fit(trips=service_trips(feed=feed, service_date=dt.date(2024, 3, 6)))) == 3
    # deadhead: only t3 needs an empty run (C -> E, 2 km x 1.3)
    assert out["deadhead_km"] == pytest.approx(2.6, abs=0.01)


@pytest.mark.parametrize(("layover", "buses"), [(5, 4), (15, 5)])
def test_frequency_departures_need_ceil_cycle_over_headway_buses(tmp_path, layover, buses):
    """A 30-minute loop leaving every 10 minutes from 08:00 to 09:00 (6 departures): a bus is free again
    after 30 + layover minutes, so ceil((30 + layover) / 10) buses are needed and enough."""
    stops = {"P": at(0, 0), "Q": at(3000, 0)}
    legs = {"loop": (("P", "08:00:00"), ("Q", "08:15:00"), ("P", "08:30:00"))}
    freq = [{"trip_id": "loop", "start_time": "08:00:00", "end_time": "09:00:00", "headway_secs": 600, "exact_times": 1}]
    path = feed_from_legs(tmp_path / "loop.zip", stops, legs, frequencies=freq)
    out = command_json("plan_buses", str(path), "--date", WEDNESDAY, "--layover", str(layover))
    assert out["trips"] == 6
    assert out["vehicles"] == out["lower_bound"] == buses == math.ceil((30 + layover) / 10)
    expand = {f"loop@08:{m:02d}:00": ("P", 8 * 3600 + m * 60, "P", 8 * 3600 + m * 60 + 1800) for m in range(0, 60, 10)}
    _check_blocks(out["blocks"], legs, stops, layover_min=layover, expand=expand)
    assert out["deadhead_km"] == 0.0
    # The feed was imported once: planning it again by id makes version 2 of that day's plan.
    again = command_json("plan_buses", str(out["feed"]), "--date", WEDNESDAY, "--layover", str(layover))
    assert again["version"] == 2 and again["feed"] == out["feed"] and Feed.objects.count() == 1


def test_plan_buses_refuses_a_day_without_service(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    path = feed_from_legs(tmp_path / "trap.zip", TRAP_STOPS, TRAP_LEGS)
    with pytest.raises(CommandError, match="no trips .* run on 2024-03-09"):
        call_command("plan_buses", str(path), "--date", "2024-03-09", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("plan_buses", str(path), "--date", "9.3.2024", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no imported feed has id 999"):
        call_command("plan_buses", "999", "--date", WEDNESDAY, stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.shared
def test_shared_kcm_plan_covers_every_trip_and_reports_the_feed_blocks(gtfs_dir):
    out = command_json("plan_buses", str(gtfs_dir / "kcm_gtfs_subset.zip"), "--date", "2016-05-04")
    feed = feed_read(path=gtfs_dir / "kcm_gtfs_subset.zip")
    trips = service_trips(feed=feed, service_date=dt.date(2016, 5, 4))
    assert sorted(k for b in out["blocks"] for k in b) == sorted(trips["trip_key"])
    assert out["feed_vehicles"] == trips["block_id"].nunique()
    # King County's blocks also run routes left out of this subset, so they are not comparable in size;
    # the plan can never beat the peak, and the subset's own trips need no more buses than its blocks.
    assert out["lower_bound"] <= out["vehicles"] <= out["feed_vehicles"]
    assert out["deadhead_source"] == "straight line"


@pytest.mark.shared
def test_shared_bullrunner_plan_names_frequency_departures(gtfs_dir):
    out = command_json("plan_buses", str(gtfs_dir / "bullrunner_gtfs.zip"), "--date", "2017-09-13", "--layover", "5")
    keys = [k for b in out["blocks"] for k in b]
    assert len(keys) == out["trips"] == len(set(keys)) > 100
    assert all("@" in k and len(k.split("@")[1]) == 8 for k in keys)
    assert out["lower_bound"] <= out["vehicles"]


def test_demo_city_plan_uses_roads_and_the_depot_then_edits_and_approval(demo_city, users):
    feed = Feed.objects.get(name="Demo city buses")
    day = dt.date(2026, 12, 2)  # a Wednesday
    plan = plan_create(feed=feed, service_date=day, reason="test")
    assert plan.deadhead_source == "road network" and plan.depot.kind == "depot"
    assert plan.lower_bound <= plan.vehicles and plan.trips == BlockTrip.objects.filter(block__plan=plan).count()
    # every block pulls out of and back into the depot, so empty running is at least 2 legs per bus
    assert plan.deadhead_km > 0.2 * plan.vehicles

    blocks = list(plan.blocks.order_by("sequence"))
    first, second = blocks[0], blocks[1]
    # Moving a trip into a block that is busy at that time breaks the layover: refused, plan unchanged.
    victim = second.trips.order_by("order").first()
    clash = first.trips.filter(start_s__lte=victim.start_s).order_by("-start_s").first()
    assert clash is not None and clash.end_s > victim.start_s - 300
    before = list(BlockTrip.objects.filter(block__plan=plan).values_list("block_id", "trip_key"))
    with pytest.raises(ValidationError, match="refused: .*B001"):
        plan_trip_move(plan=plan, trip_key=victim.trip_key, to_block=first.sequence, user=users.dispatcher)
    assert list(BlockTrip.objects.filter(block__plan=plan).values_list("block_id", "trip_key")) == before

    # Lock B001 with its bus, re-optimise the rest: B001 is untouched and the plan is still sound.
    block_assign(block=first, vehicle="BUS-7", driver="Aino", user=users.dispatcher)
    kept = list(first.trips.values_list("trip_key", flat=True))
    plan_blocks_lock(plan=plan, sequences=[first.sequence], user=users.dispatcher)
    plan = plan_reoptimise(plan=plan, user=users.dispatcher)
    first = Block.objects.get(plan=plan, sequence=1)
    assert first.locked and first.vehicle == "BUS-7" and list(first.trips.values_list("trip_key", flat=True)) == kept
    with pytest.raises(ValidationError, match="BUS-7 already runs block B001"):
        block_assign(block=plan.blocks.exclude(pk=first.pk).first(), vehicle="BUS-7", user=users.dispatcher)
    with pytest.raises(ValidationError, match="locked"):
        plan_trip_move(plan=plan, trip_key=kept[0], to_block=2, user=users.dispatcher)

    # A second version, then approvals: approving v2 supersedes v1.
    plan = plan_approve(plan=plan, user=users.dispatcher)
    assert plan.status == "approved" and plan.approved_by == users.dispatcher
    with pytest.raises(ValidationError, match="only a draft"):
        plan_trip_move(plan=plan, trip_key=kept[0], to_block=2)
    v2 = plan_create(feed=feed, service_date=day, reason="re-plan: breakdown")
    assert v2.version == 2 and v2.reason == "re-plan: breakdown"
    plan_approve(plan=v2, user=users.dispatcher)
    plan.refresh_from_db()
    assert plan.status == "superseded"

    # Exports: CSV row per trip; a one-day GTFS with block_id that the core reads and validates.
    rows = list(csv.DictReader(io.StringIO(plan_csv(plan=v2))))
    assert len(rows) == v2.trips and {r["block_id"] for r in rows} == {b.code for b in v2.blocks.all()}
    with zipfile.ZipFile(io.BytesIO(plan_gtfs_zip(plan=v2))) as z:
        assert {"trips.txt", "stop_times.txt", "stops.txt", "calendar_dates.txt"} <= set(z.namelist())
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.zip"
        path.write_bytes(plan_gtfs_zip(plan=v2))
        exported = feed_read(path=path)
        feed_validate(feed=exported)
        trips = service_trips(feed=exported, service_date=day)
    assert len(trips) == v2.trips and trips["block_id"].nunique() == v2.vehicles
    assert service_trips(feed=exported, service_date=day + dt.timedelta(days=1)).empty  # that day only


def test_nightly_run_plans_tomorrow_with_kpis(demo_city):
    from agents.runtime.services import agent_run_create, agent_run_execute

    day = dt.date(2026, 12, 3)
    run, _ = agent_run_create(agent="bus", run_date=day, trigger="schedule", reason="beat", enqueue=False)
    run = agent_run_execute(run_id=run.pk, worker="test")
    assert run.status == "succeeded", run.error
    kpis = {k.name: k for k in run.kpis.all()}
    plan = VehiclePlan.objects.get(run=run)
    assert plan.service_date == day and plan.status == "draft" and plan.reason == "beat"
    # Against what the city runs without the agent: the demo feed's own blocks, else first-fit on its trips.
    assert plan.baseline_rule in ("feed blocks", "first-fit") and plan.baseline_vehicles >= plan.vehicles
    assert kpis["vehicles"].value == plan.vehicles and kpis["vehicles"].baseline == plan.baseline_vehicles
    assert kpis["lower_bound"].value == plan.lower_bound <= plan.vehicles
    assert kpis["deadhead_km"].value == pytest.approx(plan.deadhead_km)
    assert kpis["deadhead_km"].baseline == pytest.approx(plan.baseline_deadhead_km) and plan.baseline_deadhead_km > 0
    # the same scheduled run again produces no second plan
    again, created = agent_run_create(agent="bus", run_date=day, trigger="schedule", enqueue=False)
    assert not created and again.pk == run.pk
