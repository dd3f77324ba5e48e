"""Each crew's own lunch break: the lunch groups of `vrp.model`, plans whose routes take each truck's break
in its own window (overlapping windows modelled as one, apart ones each on its own clock in one solve),
the checker judging a route by its own truck's break, and the city's plans with crews that lunch apart."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from agents.sanitation.models import CollectionPlan, Truck
from agents.sanitation.plan_selectors import problem_build, trucks_in_flight
from agents.sanitation.vrp import (
    Client,
    Depot,
    Instance,
    InstanceError,
    LunchBreak,
    PlanRoute,
    VehicleType,
    instance_solve,
    plan_check,
    plan_schedule,
)
from agents.sanitation.vrp.model import instance_model, lunch_groups
from agents.sanitation.vrp.solve import _model_solve

from .test_plans import TOMORROW, nightly, recheck
from .test_vrp_solve import H, city

EARLY = LunchBreak(earliest=int(10.5 * H), latest=12 * H, duration=1800)  # 10:30-12:00, 30 min
MIDDAY = LunchBreak(earliest=int(11.5 * H), latest=13 * H, duration=2700)  # overlaps EARLY: 11:30-12:00
LATE = LunchBreak(earliest=int(12.5 * H), latest=int(13.5 * H), duration=1800)  # apart from EARLY


def crews(first: LunchBreak, second: LunchBreak) -> Instance:
    """The hand-built city of test_vrp_solve with one small truck on `first`'s break, and the other
    small truck and the large one on `second`'s."""
    inst = city()
    small, large = inst.vehicle_types
    types = [
        dataclasses.replace(small, name="small-a", count=1, lunch=first),
        dataclasses.replace(small, name="small-b", count=1, lunch=second),
        dataclasses.replace(large, lunch=second),
    ]
    return dataclasses.replace(inst, vehicle_types=types)


def assert_own_breaks(inst: Instance, routes: list[PlanRoute]) -> int:
    """Every route out during its crew's window takes the break inside that window; returns how many did."""
    taken = 0
    for sched in plan_schedule(instance=inst, routes=routes):
        lunch = inst.vehicle_types[routes[sched.route].vehicle_type].lunch
        if sched.back > lunch.earliest and sched.depart <= lunch.latest:
            assert sched.lunch_start is not None and lunch.earliest <= sched.lunch_start <= lunch.latest
            taken += 1
    return taken


def test_lunch_groups_are_the_fewest_whose_windows_share_an_instant():
    types = [
        VehicleType(name="late", count=1, capacity=(1,), lunch=LATE),
        VehicleType(name="early", count=1, capacity=(1,), lunch=EARLY),
        VehicleType(name="none", count=1, capacity=(1,)),
        VehicleType(name="midday", count=1, capacity=(1,), lunch=MIDDAY),
    ]
    groups = lunch_groups(vehicle_types=types)
    # EARLY closes first; MIDDAY opens before it closes; LATE does not, so it is a group of its own.
    assert [g.types for g in groups] == [(1, 2, 3), (0,)]
    assert groups[0].lunch == LunchBreak(earliest=int(11.5 * H), latest=12 * H, duration=2700)
    assert groups[1].lunch == LATE
    assert lunch_groups(vehicle_types=types[2:3])[0].lunch is None


def test_overlapping_breaks_are_one_clock_and_each_route_breaks_in_its_own_window():
    inst = crews(EARLY, MIDDAY)
    assert len(instance_model(instance=inst).groups) == 1
    result = instance_solve(instance=inst, time_limit=2, seed=3)
    assert result.feasible, result.violations
    assert {c.id for c in inst.clients if c.required} <= {v for r in result.routes for v in r.visits}
    assert assert_own_breaks(inst, result.routes) >= 2


def test_breaks_apart_are_planned_on_two_clocks_in_one_solve():
    inst = crews(EARLY, LATE)
    model = instance_model(instance=inst)
    assert [g.types for g in model.groups] == [(0,), (1, 2)]
    # Each client once per group, one mutually exclusive group per client, required where the client is.
    assert model.data.num_clients == 2 * len(inst.clients) and model.data.num_groups == len(inst.clients)
    assert [g.required for g in model.data.groups()] == [c.required for c in inst.clients]
    result = instance_solve(instance=inst, time_limit=2, seed=3)
    assert result.feasible and result.solver_feasible, result.violations
    visited = [v for r in result.routes for v in r.visits if str(v).startswith("bin-")]
    assert len(visited) == len(set(visited))  # one copy of each bin at most
    assert {c.id for c in inst.clients if c.required} <= set(visited)
    assert {r.vehicle_type for r in result.routes} & {0} and {r.vehicle_type for r in result.routes} & {1, 2}
    assert assert_own_breaks(inst, result.routes) >= 2
    # The plan warm-starts a second solve on the same clocks (the city's second pass does so).
    again = instance_solve(instance=inst, time_limit=0.5, seed=4, initial=result.routes)
    assert again.feasible, again.violations


def test_the_checker_judges_a_route_by_its_own_trucks_break():
    """Five hours at one bin: a crew that must break at 10:00-10:30 cannot (waiting for it makes the day run
    past the shift end); a crew whose break opens at noon is back before it."""
    inst = Instance(
        name="two-crews",
        clients=[Client(id="c1", loc=1, demand=(1,), service=5 * H)],
        depots=[Depot(id="d", loc=0)],
        vehicle_types=[
            VehicleType(name=name, count=1, capacity=(10,), tw_early=6 * H, tw_late=13 * H,
                        lunch=LunchBreak(earliest=start, latest=start + 1800, duration=1800))
            for name, start in (("early", 10 * H), ("noon", 12 * H))
        ],
        distance=np.array([[0, 600], [600, 0]]),
        duration=np.array([[0, 600], [600, 0]]),
    )
    assert [v.rule for v in plan_check(instance=inst, routes=[PlanRoute(0, ["c1"])])] == ["lunch"]
    assert plan_check(instance=inst, routes=[PlanRoute(1, ["c1"])]) == []


def test_a_break_as_long_as_the_shift_is_refused_clearly():
    inst = crews(EARLY, EARLY)
    types = [dataclasses.replace(inst.vehicle_types[0], shift_duration=1800), *inst.vehicle_types[1:]]
    with pytest.raises(InstanceError, match="small-a.*lunch break .1800. as long as its shift duration"):
        dataclasses.replace(inst, vehicle_types=types)


def test_the_merged_clock_hides_every_groups_break_and_stays_feasible_for_each_crew():
    """One clock for crews that lunch apart: one copy of each client, every truck modelled as breaking at
    10:30 and again at 12:30 (its shift an hour shorter in compressed time); each crew's own break is
    still where the checker finds it."""
    inst = crews(EARLY, LATE)
    model = instance_model(instance=inst, merged=True)
    assert model.data.num_clients == len(inst.clients) and model.data.num_groups == 0
    vt = model.data.vehicle_type(0)
    assert (vt.tw_early, vt.tw_late) == (6 * H, 14 * H + 1800 - 2 * 1800)
    routes, _ = _model_solve(inst, model, 1.0, None, 3, False, None)
    assert plan_check(instance=inst, routes=routes) == []
    assert assert_own_breaks(inst, routes) >= 1


@pytest.mark.django_db
def test_city_crews_that_lunch_apart_each_get_their_own_break(demo_city):
    """T02's crew breaks 6:30-7:15, the others 7:30-8:30 (early, so the demo day's short routes are out
    then): the nightly plan honours both, and a re-plan on the road at 7:20 knows that only T02's window
    has passed."""
    from city_ops.core.timeutil import city_tz

    Truck.objects.update(lunch_earliest=dt.time(7, 30), lunch_latest=dt.time(8, 30))
    Truck.objects.filter(code="T02").update(lunch_earliest=dt.time(6, 30), lunch_latest=dt.time(7, 15))
    plan = CollectionPlan.objects.get(run=nightly())
    assert plan.feasible, plan.violations
    assert recheck(plan) == []
    required = {k for k, c in plan.candidates.items() if c["required"]}
    assert required <= {f"bin:{b}" for b in plan.routes.values_list("stops__bin", flat=True) if b}
    trucks = list(Truck.objects.filter(in_service=True).order_by("code"))
    problem = problem_build(date=TOMORROW, trucks=trucks, choices=[])
    assert len(lunch_groups(vehicle_types=problem.instance.vehicle_types)) == 2
    tz = city_tz()
    out = 0
    for route in plan.routes.select_related("truck"):
        t = route.truck
        a, b = (dt.datetime.combine(TOMORROW, x, tzinfo=tz) for x in (t.lunch_earliest, t.lunch_latest))
        if route.back_at > a and route.depart_at <= b:
            assert route.lunch_at is not None and a <= route.lunch_at <= b, (t.code, route.lunch_at)
            out += 1
    assert out >= 2
    starts, _, _ = trucks_in_flight(
        plan=plan, now=dt.datetime.combine(TOMORROW, dt.time(7, 20), tzinfo=tz), trucks=trucks
    )
    taken = {t.code: starts[t.pk].lunch_taken for t in trucks if t.pk in starts}
    assert taken["T02"] is True and taken["T01"] is False
