"""The independent plan checker: a hand-timed good plan passes, and each rule, broken alone, is caught.

The instance is a line: depot D at 0, landfill L at 1000, clients at known offsets; travel takes one
second per unit and costs two metres per unit, so every time below can be followed by hand. The good plan
takes the lunch break while waiting for c3's noon window, and its first route's shortest feasible day
(latest departure 6:58:20, back 12:48:20) is 21000 s, just under the 21400 s shift limit.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.sanitation.vrp import (
    Client,
    Depot,
    DisposalSite,
    Instance,
    LunchBreak,
    PlanRoute,
    VehicleType,
    plan_check,
    plan_cost,
    plan_schedule,
)
from agents.sanitation.vrp.readers import instance_read
from agents.sanitation.vrp.solve import _rounded

H = 3600
WIDE = (0, 24 * H)
X = {
    "D": 0,
    "L": 1000,
    "c1": 100,
    "c2": 200,
    "c3": 300,
    "c4": 400,
    "c5": 500,
    "c6": 600,
    "c7": 700,
    "c8": 150,
    "c9": 500,
    "c10": 800,
}
# id: (demand, window, service, required)
CLIENTS = {
    "c1": (1, (6 * H, 7 * H), 300, True),
    "c2": (2, WIDE, 300, True),
    "c3": (3, (12 * H, 14 * H), 300, True),
    "c4": (2, WIDE, 300, True),
    "c5": (2, WIDE, 300, True),
    "c6": (2, WIDE, 300, True),
    "c7": (0, WIDE, 300, True),
    "c8": (0, WIDE, 300, True),
    "c9": (0, (10 * H, 10 * H + 1800), 7300, False),  # two hours' work that leaves no gap for lunch
    "c10": (0, WIDE, 300, True),
}

GOOD = [
    PlanRoute(0, ["c1", "c8", "c2", "L", "c3", "c7", "L"]),
    PlanRoute(0, ["c4", "c5", "L", "c6", "c10", "L"]),
]


@pytest.fixture(scope="module")
def line() -> Instance:
    names = list(X)
    xs = np.array([X[n] for n in names])
    gaps = np.abs(xs[:, None] - xs[None, :])
    clients = [
        Client(
            id=c,
            loc=names.index(c),
            demand=(d,),
            service=s,
            tw_early=tw[0],
            tw_late=tw[1],
            required=req,
            prize=0 if req else 5,
        )
        for c, (d, tw, s, req) in CLIENTS.items()
    ]
    truck = VehicleType(
        name="truck",
        count=2,
        capacity=(4,),
        tw_early=6 * H,
        tw_late=13 * H,
        shift_duration=21400,
        unload_sites=(0,),
        daily_cap=7,
        max_stops=5,
        lunch=LunchBreak(earliest=11 * H, latest=12 * H, duration=H),
    )
    return Instance(
        name="line",
        clients=clients,
        depots=[Depot(id="D", loc=0, tw_early=6 * H, tw_late=16 * H)],
        disposal_sites=[DisposalSite(id="L", loc=1, tw_early=7 * H, tw_late=15 * H, service=600)],
        vehicle_types=[truck],
        distance=2 * gaps,
        duration=gaps,
        objective="distance",
    )


def rules(instance: Instance, plan: list[PlanRoute]) -> list[str]:
    return sorted(v.rule for v in plan_check(instance=instance, routes=plan))


def test_good_plan_passes_and_costs_what_the_legs_add_up_to(line):
    assert plan_check(instance=line, routes=GOOD) == []
    # route 1: 100+50+50+800+700+400+300+1000, route 2: 400+100+500+400+200+200+1000 units, 2 m each
    assert plan_cost(instance=line, routes=GOOD) == 2 * (3400 + 2800)


def test_schedule_waits_for_windows_and_places_lunch_in_the_wait(line):
    first, second = plan_schedule(instance=line, routes=GOOD)
    assert first.lunch_start == 11 * H
    c3 = next(v for v in first.visits if v.node == "c3")
    assert (c3.arrival, c3.start) == (12 * H, 12 * H)  # gets there 7:21:40, lunches 11-12, serves at noon
    landfill = first.visits[3]
    assert landfill.node == "L" and landfill.arrival == 23500 and landfill.start == 7 * H  # waits for opening
    assert first.back == 46100
    assert second.lunch_start is None and second.back < 11 * H


def test_a_late_start_spends_the_wait_at_the_depot():
    """A first bin that opens at nine, ten minutes from the depot: the earliest timetable leaves at six and
    waits there; a late start leaves at 8:50, serves everything at the same times, is back as early."""
    gaps = np.array([[0, 600, 900], [600, 0, 400], [900, 400, 0]])
    inst = Instance(
        name="wait",
        depots=[Depot(id="D", loc=0)],
        clients=[Client(id="a", loc=1, demand=(1,), service=300, tw_early=9 * H, tw_late=10 * H)],
        disposal_sites=[DisposalSite(id="L", loc=2, service=600)],
        vehicle_types=[
            VehicleType(name="t", count=1, capacity=(5,), tw_early=6 * H, tw_late=14 * H, unload_sites=(0,))
        ],
        distance=gaps,
        duration=gaps,
    )
    plan = [PlanRoute(0, ["a", "L"])]
    (early,) = plan_schedule(instance=inst, routes=plan)
    (late,) = plan_schedule(instance=inst, routes=plan, late_start=True)
    assert early.depart == 6 * H and early.visits[0].arrival == 6 * H + 600 and early.visits[0].start == 9 * H
    assert late.depart == 9 * H - 600 and late.visits[0].arrival == late.visits[0].start == 9 * H
    assert [(v.start, v.end) for v in late.visits] == [(v.start, v.end) for v in early.visits]
    assert late.back == early.back == 9 * H + 300 + 400 + 600 + 900
    # No wait at the first stop (the line's first routes): the late start is the earliest one.
    (plain,) = plan_schedule(instance=inst, routes=[PlanRoute(0, ["L"])], late_start=True)
    assert plain.depart == 6 * H


@pytest.mark.parametrize(
    ("rule", "plan"),
    [
        ("unvisited", [GOOD[0], PlanRoute(0, ["c4", "c5", "L", "c10", "L"])]),
        ("duplicate", [GOOD[0], PlanRoute(0, ["c4", "c5", "L", "c6", "c10", "c8", "L"])]),
        ("unknown_node", [GOOD[0], PlanRoute(0, ["c4", "zz", "c5", "L", "c6", "c10", "L"])]),
        ("fleet", [GOOD[0], PlanRoute(0, ["c4", "c5", "L"]), PlanRoute(0, ["c6", "c10", "L"])]),
        ("reload_site", [GOOD[0], PlanRoute(0, ["c4", "c5", "D", "c6", "c10", "L"])]),
        ("capacity", [GOOD[0], PlanRoute(0, ["c4", "c5", "c6", "c10", "L"])]),
        (
            "daily_cap",
            [
                PlanRoute(0, ["c1", "c8", "c2", "L", "c7", "L"]),
                PlanRoute(0, ["c4", "c5", "L", "c6", "c10", "L", "c3", "L"]),
            ],
        ),
        (
            "max_stops",
            [
                PlanRoute(0, ["c1", "c8", "c2", "L", "c3", "c7", "c10", "L"]),
                PlanRoute(0, ["c4", "c5", "L", "c6", "L"]),
            ],
        ),
        ("unload_before_depot", [GOOD[0], PlanRoute(0, ["c4", "c5", "L", "c6", "c10"])]),
        (
            "time_window",
            [
                PlanRoute(0, ["c8", "c2", "L", "c3", "c7", "L"]),
                PlanRoute(0, ["c4", "c5", "L", "c6", "c10", "c1", "L"]),
            ],
        ),
        ("shift_end", [PlanRoute(0, GOOD[0].visits + ["L", "L"]), GOOD[1]]),
        ("shift_duration", [PlanRoute(0, GOOD[0].visits + ["L"]), GOOD[1]]),
        ("lunch", [GOOD[0], PlanRoute(0, ["c4", "c5", "L", "c6", "c10", "c9", "L"])]),
    ],
)
def test_each_broken_rule_is_caught_alone(line, rule, plan):
    assert rules(line, plan) == [rule]


def test_vehicle_type_that_does_not_exist_is_a_fleet_violation(line):
    assert rules(line, [GOOD[0], PlanRoute(3, GOOD[1].visits)]) == [
        "fleet",
        "unvisited",
        "unvisited",
        "unvisited",
        "unvisited",
    ]


def test_bare_lists_mean_vehicle_type_zero(line):
    assert plan_check(instance=line, routes=[r.visits for r in GOOD]) == []


def test_optional_client_may_be_skipped_but_not_served_twice(line):
    assert "c9" not in {v for r in GOOD for v in r.visits}  # GOOD passes without it
    twice = [PlanRoute(0, GOOD[0].visits), PlanRoute(0, ["c9"] + GOOD[1].visits[:-1] + ["c9", "L"])]
    assert "duplicate" in rules(line, twice)


def test_rounding_of_reported_costs():
    assert _rounded(8273 / 10, 10) == 827.3
    assert _rounded(784.0, 1) == 784 and isinstance(_rounded(784.0, 1), int)


def _sol_routes(path) -> list[list[int]]:
    """VRPLIB .sol routes use PyVRP's numbering (depot 0, client k = file node k + 1)."""
    routes = []
    for line_ in path.read_text().splitlines():
        if line_.startswith("Route"):
            routes.append([int(v) + 1 for v in line_.split(":", 1)[1].split()])
    return routes


@pytest.mark.shared
@pytest.mark.parametrize(("name", "cost"), [("X-n101-k25", 27591), ("C201R0.25", 15006)])
def test_published_optimal_solutions_pass_at_their_published_cost(shared_dir, name, cost):
    vrp = shared_dir / "benchmarks" / "vrp"
    instance = instance_read(path=vrp / f"{name}.vrp")
    routes = _sol_routes(vrp / f"{name}.sol")
    assert plan_check(instance=instance, routes=routes) == []
    assert plan_cost(instance=instance, routes=routes) == cost
    # and breaking it is noticed: drop a client, or overload a trip by removing a reload
    assert [v.rule for v in plan_check(instance=instance, routes=[routes[0][1:]] + routes[1:])] == [
        "unvisited"
    ]
    if name.startswith("C201"):
        multi = next(i for i, r in enumerate(routes) if 1 in r)
        merged = [v for v in routes[multi] if v != 1]
        broken = routes[:multi] + [merged] + routes[multi + 1 :]
        assert "capacity" in {v.rule for v in plan_check(instance=instance, routes=broken)}
