"""The demo's history made by the agents themselves (fixtures/history): three days on the demo city, one of
them stormy."""
from __future__ import annotations

import datetime as dt

import pytest

from agents.bus.models import VehiclePlan, VehiclePosition
from agents.runtime.models import AgentRun, RunKpi
from agents.sanitation.models import CollectionPlan, FillReading, Pickup
from city_ops.city.models import RoadClosure
from city_ops.core.timeutil import city_today, city_tz, day_bounds
from fixtures.demo_city import demo_agents_load
from fixtures.history import HISTORY_MAX_ITERATIONS, demo_history_load, history_clear
from fixtures.history.bus import POSITIONS_SOURCE
from fixtures.history.sanitation import PICKUP_NOTE, READINGS_SOURCE

DAYS = 3


def _runs(**filters):
    return AgentRun.objects.filter(params__contains={"synthetic": True}, **filters)


@pytest.fixture
def history(demo_city, users, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = str(tmp_path)
    # The storm of the 10th day on the 2nd, so three days see one (its closure, the re-plans, the reopening).
    monkeypatch.setattr("fixtures.history.flood.STORM_FIRST_DAY", 1)
    lines: list[str] = []
    out = demo_agents_load(history_days=DAYS, progress=lines.append)
    return out, lines


def test_three_days_made_by_the_agents_then_none_again(history):
    out, lines = history
    today = city_today()
    days = [today - dt.timedelta(days=k) for k in range(DAYS, 0, -1)]
    assert out["history"] == {"days": DAYS, "made": DAYS, "skipped": 0}
    assert [ln.split(" ")[1] for ln in lines if ln.startswith("history 2")] == [d.isoformat() for d in days]

    for day in days:
        # One succeeded nightly run per daily agent and day, made by the runtime, marked synthetic.
        for agent in ("sanitation", "bus", "roads"):
            runs = list(_runs(agent=agent, run_date=day, trigger=AgentRun.Trigger.SCHEDULE))
            assert [r.status for r in runs] == [AgentRun.Status.SUCCEEDED], (agent, day)
            assert runs[0].kpis.exists() and "simulated demo history" in runs[0].reason
        assert _runs(agent="flood", run_date=day, status=AgentRun.Status.SUCCEEDED).exists()
        # The planning agents' plans for the day, approved by a dispatcher, are their nightly runs' plans.
        plan = CollectionPlan.objects.get(date=day, status=CollectionPlan.Status.APPROVED)
        assert plan.run.run_date == day and plan.run.params["synthetic"] and plan.approved_by.username == "dispatcher"
        bus = VehiclePlan.objects.get(service_date=day, status=VehiclePlan.Status.APPROVED)
        assert bus.run.run_date == day and bus.run.params["synthetic"]
        # The buses reported through the morning peak; the evening review replayed the day both ways.
        review = _runs(agent="bus", run_date=day, trigger=AgentRun.Trigger.MONITOR).get()
        replay = {k.name: k for k in review.kpis.all() if k.name.startswith("replay_")}
        assert set(replay) == {"replay_ewt_min", "replay_cv"}, review.summary
        assert all(k.baseline is not None for k in replay.values()) and review.details["replay"]
        # The crews emptied the approved plan's bins (on its stops), the sensors reported, all marked.
        start, end = day_bounds(day)
        pickups = Pickup.objects.filter(at__gte=start, at__lt=end)
        assert pickups.exists() and not pickups.exclude(note=PICKUP_NOTE).exists()
        assert set(pickups.values_list("stop__route__plan", flat=True)) == {plan.pk}
        # (after midnight: the loaded weeks' last reading is stamped at the stroke of it)
        readings = FillReading.objects.filter(at__gt=start, at__lt=end)
        assert readings.exists() and set(readings.values_list("source", flat=True)) == {READINGS_SOURCE}
    # The storm day: the flood agent raised alerts and closed the flooded road; the agents that react to a
    # closure re-planned (their runs marked too); the dispatcher reopened the road once the water was down.
    storm = days[1]
    flood_kpis = {n: sum(k.value for k in RunKpi.objects.filter(run__in=_runs(agent="flood", run_date=storm), name=n))
                  for n in ("alerts_raised", "closures", "closures_lifted")}
    assert flood_kpis["alerts_raised"] >= 1 and flood_kpis["closures"] == 1
    closure = RoadClosure.objects.get(source_agent="flood")
    assert closure.valid_to is not None and closure.valid_to.astimezone(city_tz()).date() in (storm, days[2])
    replans = AgentRun.objects.filter(trigger=AgentRun.Trigger.EVENT, event__kind="closure.opened")
    assert {"bus", "sanitation"} <= set(replans.values_list("agent", flat=True))
    assert not replans.exclude(params__contains={"synthetic": True}).exists()
    assert not replans.exclude(status=AgentRun.Status.SUCCEEDED).exists()
    # The history's solver budget is iterations, not seconds (the same plans on any machine), re-plans too.
    assert {r.params.get("max_iterations") for r in _runs(agent="sanitation")} == {HISTORY_MAX_ITERATIONS}
    # Nothing before the history's first day or on today was made by it.
    assert not _runs(run_date__lt=days[0]).exists() and not _runs(run_date__gte=today).exists()

    counts = (_runs().count(), CollectionPlan.objects.count(), Pickup.objects.count(), FillReading.objects.count())
    lines = []
    assert demo_history_load(days=DAYS, progress=lines.append) == {"days": DAYS, "made": 0, "skipped": DAYS}
    assert counts == (_runs().count(), CollectionPlan.objects.count(), Pickup.objects.count(),
                      FillReading.objects.count())

    # A reload of the demo first clears what this history made beyond its agents' own demo data.
    assert history_clear() == counts[0]
    assert not _runs().exists() and not RoadClosure.objects.filter(source_agent="flood").exists()
    assert not CollectionPlan.objects.exists() and not VehiclePlan.objects.filter(run__isnull=False).exists()
    assert not VehiclePosition.objects.filter(source=POSITIONS_SOURCE).exists()
