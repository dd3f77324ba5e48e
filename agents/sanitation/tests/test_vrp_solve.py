"""Solving: a hand-built city instance, the rules modelled on top of PyVRP (each shown to change the
answer), the CLI, and the shared benchmark instances at short time limits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyvrp import Activity, ActivityType, Route

from agents.sanitation.vrp import (
    Client,
    Depot,
    DisposalSite,
    Instance,
    InstanceError,
    LunchBreak,
    PlanRoute,
    VehicleType,
    instance_read,
    instance_solve,
    plan_check,
    plan_schedule,
)
from agents.sanitation.vrp.cli import main
from agents.sanitation.vrp.model import instance_model
from agents.sanitation.vrp.readers.kim import kim_fleet_lower_bound
from agents.sanitation.vrp.solve import SolveResult

from .conftest import TINY_CVRP as TINY

H = 3600


def city(n: int = 40) -> Instance:
    """Bins in two load dimensions (litres, kg), a third of them optional with prizes, two depots, a
    transfer station and a landfill with opening hours, two truck types with daily weight caps and a lunch
    break; a few bins open only in the early morning, a few only after lunch."""
    rng = np.random.default_rng(7)
    depots = [
        Depot(id="depot-north", loc=0, tw_early=5 * H, tw_late=18 * H),
        Depot(id="depot-east", loc=1, tw_early=5 * H, tw_late=18 * H),
    ]
    sites = [
        DisposalSite(id="transfer", loc=2, tw_early=7 * H, tw_late=15 * H, service=900),
        DisposalSite(id="landfill", loc=3, tw_early=6 * H, tw_late=17 * H, service=1200),
    ]
    xy = [(0, 0), (4000, 0), (2000, 3000), (-1000, 2500)]
    clients = []
    for k in range(n):
        xy.append((float(rng.uniform(-1000, 5000)), float(rng.uniform(-500, 3500))))
        optional = k % 3 == 0
        market = k in (1, 2, 4)  # before the morning traffic
        school = k in (5, 6, 7, 8)  # after lunch, so days span the break
        clients.append(
            Client(
                id=f"bin-{k}",
                loc=4 + k,
                demand=(int(rng.integers(600, 2400)), int(rng.integers(150, 700))),
                service=int(rng.integers(300, 1200)),
                tw_early=6 * H if market else 12 * H + 1800 if school else 0,
                tw_late=9 * H if market else 14 * H if school else 24 * H,
                prize=900 if optional else 0,
                required=not optional,
            )
        )
    coords = np.array(xy)
    metres = np.floor(1.3 * np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(axis=2)) + 0.5)
    lunch = LunchBreak(earliest=11 * H, latest=12 * H + 1800, duration=1800)
    types = [
        VehicleType(
            name="small",
            count=2,
            capacity=(8000, 3000),
            depot=0,
            tw_early=6 * H,
            tw_late=14 * H + 1800,
            unload_sites=(0, 1),
            daily_cap=4500,
            daily_cap_dim=1,
            lunch=lunch,
        ),
        VehicleType(
            name="large",
            count=1,
            capacity=(16000, 6000),
            depot=1,
            tw_early=6 * H,
            tw_late=14 * H + 1800,
            unload_sites=(0, 1),
            daily_cap=9000,
            daily_cap_dim=1,
            lunch=lunch,
        ),
    ]
    return Instance(
        name="city",
        clients=clients,
        depots=depots,
        disposal_sites=sites,
        vehicle_types=types,
        distance=metres.astype(int),
        duration=np.floor(metres / 8.33 + 0.5).astype(int),
        objective="duration",
        coords=coords,
    )


def test_city_instance_from_rows_solves_feasibly():
    inst = city()
    result = instance_solve(instance=inst, time_limit=30, seed=3, max_iterations=3000)
    assert result.feasible, result.violations
    assert result.solver_feasible
    visited = {v for r in result.routes for v in r.visits}
    assert all(c.id in visited for c in inst.clients if c.required)
    assert set(result.skipped) <= {c.id for c in inst.clients if not c.required}
    for route in result.routes:
        assert route.visits[-1] in ("transfer", "landfill")  # unloads before going home
    used = [r.vehicle_type for r in result.routes]
    assert used.count(0) <= 2 and used.count(1) <= 1
    # the after-lunch bins keep some trucks out over the break, which the checker placed in the window
    breaks = [s.lunch_start for s in plan_schedule(instance=inst, routes=result.routes) if s.lunch_start]
    assert breaks and all(11 * H <= b <= 12 * H + 1800 for b in breaks)
    doc = result.as_dict()
    assert doc["feasible"] and doc["best_known"] is None and doc["gap_pct"] is None
    json.dumps(doc)


def line_instance(
    *,
    daily_cap: int | None = None,
    lunch: LunchBreak | None = None,
    service: int = 0,
    n: int = 6,
    demand: int = 3,
    count: int = 2,
) -> Instance:
    """Depot at 0, landfill at 10, n clients at 100, 101, ...: a second trip beats a second truck."""
    xs = np.array([0, 10] + [100 + k for k in range(n)])
    gaps = np.abs(xs[:, None] - xs[None, :])
    clients = [Client(id=f"c{k}", loc=2 + k, demand=(demand,), service=service) for k in range(n)]
    truck = VehicleType(
        name="truck",
        count=count,
        capacity=(9,),
        tw_early=6 * H,
        tw_late=13 * H,
        unload_sites=(0,),
        daily_cap=daily_cap,
        lunch=lunch,
    )
    return Instance(
        name="line",
        clients=clients,
        depots=[Depot(id="D", loc=0)],
        disposal_sites=[DisposalSite(id="L", loc=1, service=600)],
        vehicle_types=[truck],
        distance=gaps,
        duration=gaps,
        objective="distance",
    )


def solve(instance: Instance, seed: int = 1) -> SolveResult:
    """A seeded run bounded by iterations, so it repeats exactly on a busy machine."""
    return instance_solve(instance=instance, time_limit=30, seed=seed, max_iterations=2000)


def pyvrp_route(instance: Instance, visits: list[str]) -> Route:
    """A PyVRP route through the model built for `instance` (clients by id, 'L' = the landfill)."""
    model = instance_model(instance=instance)
    ids = [c.id for c in instance.clients]
    acts = [
        Activity(ActivityType.DEPOT, 1) if v == "L" else Activity(ActivityType.CLIENT, ids.index(v))
        for v in visits
    ]
    return Route(model.data, acts, 0)


def test_daily_cap_is_part_of_the_pyvrp_model():
    two_trips = ["c0", "c1", "c2", "L", "c3", "c4", "c5"]  # 18 units in the day, 9 per trip
    assert pyvrp_route(line_instance(), two_trips).is_feasible()
    capped = pyvrp_route(line_instance(daily_cap=9), two_trips)
    assert capped.has_excess_distance() and not capped.is_feasible()
    assert pyvrp_route(line_instance(daily_cap=9), two_trips[:3]).is_feasible()


@pytest.mark.filterwarnings(
    "ignore::pyvrp.exceptions.PenaltyBoundWarning"
)  # the one-truck case has no answer
def test_daily_cap_is_honoured_by_the_solver():
    one_truck = solve(line_instance(count=1))
    assert one_truck.feasible and one_truck.cost == 394  # D-c0-c1-c2-L-c3-c4-c5-L-D
    assert one_truck.routes[0].visits.count("L") == 2
    capped = solve(line_instance(daily_cap=9))
    assert capped.feasible and capped.vehicles == 2 and capped.cost == 414
    assert all(r.visits[-1] == "L" and r.visits.count("L") == 1 for r in capped.routes)
    # one truck cannot serve 18 units under a 9-unit cap: the result says so instead of hiding it
    stuck = solve(line_instance(daily_cap=9, count=1))
    assert not stuck.feasible and {v.rule for v in stuck.violations} & {"daily_cap", "unvisited"}


def test_lunch_break_is_part_of_the_pyvrp_model():
    # 8 x 45 min of work in one route: back 12:14 without a break, 13:14 with one (the shift ends 13:00)
    lunch = LunchBreak(earliest=11 * H, latest=12 * H, duration=H)
    day = [f"c{k}" for k in range(8)]
    assert pyvrp_route(line_instance(service=2700, n=8, demand=1), day).is_feasible()
    late = pyvrp_route(line_instance(service=2700, n=8, demand=1, lunch=lunch), day)
    assert late.has_time_warp()
    assert pyvrp_route(line_instance(service=2700, n=8, demand=1, lunch=lunch), day[:5]).is_feasible()


def test_lunch_break_is_honoured_by_the_solver():
    plain = solve(line_instance(service=2700, n=8, demand=1))
    assert plain.feasible and plain.vehicles == 1
    lunch = LunchBreak(earliest=11 * H, latest=12 * H, duration=H)
    inst = line_instance(service=2700, n=8, demand=1, lunch=lunch)
    with_lunch = solve(inst)
    assert with_lunch.feasible and with_lunch.vehicles == 2
    # the one-truck plan that was fine without the break is rejected with it
    assert {v.rule for v in plan_check(instance=inst, routes=plain.routes)} & {"lunch", "shift_end"}


def test_final_unload_goes_to_the_site_on_the_way_home():
    xs = np.array([0, 10, 400, 100, 101, 102])  # depot, 'near' landfill, 'out' landfill, three clients
    gaps = np.abs(xs[:, None] - xs[None, :])
    inst = Instance(
        name="two-sites",
        clients=[Client(id=f"c{k}", loc=3 + k, demand=(1,)) for k in range(3)],
        depots=[Depot(id="D", loc=0)],
        disposal_sites=[
            DisposalSite(id="out", loc=2, service=60),
            DisposalSite(id="near", loc=1, service=60),
        ],
        vehicle_types=[VehicleType(name="truck", count=1, capacity=(9,), unload_sites=(0, 1))],
        distance=gaps,
        duration=gaps,
    )
    result = solve(inst)
    assert result.feasible and result.routes[0].visits[-1] == "near" and result.cost == 204


def test_cli_prints_json_alone_on_stdout(tmp_path, capsys):
    path = tmp_path / "tiny.vrp"
    path.write_text(TINY)
    status = main([str(path), "--time-limit", "0.3", "--seed", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    assert doc["cost"] == 22 and doc["best_known"] == 22 and doc["gap_pct"] == 0.0
    assert doc["feasible"] and doc["vehicles"] == 2 and doc["violations"] == []
    assert sorted(map(sorted, doc["routes"])) == [[2, 3], [4]]  # file numbering, depot 1 left out
    assert doc["time_limit"] == 0.3 and doc["instance"] == "tiny-cvrp"


def test_cli_reports_a_broken_file_with_status_2(tmp_path, capsys):
    path = tmp_path / "bad.vrp"
    path.write_text(TINY.replace("3 6 8", "3 6 eight"))
    assert main([str(path), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "line 10" in doc["error"]


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "max_gap"),
    [
        ("A-n32-k5.vrp", 3.0),
        ("C101.txt", 3.0),
        ("X-n101-k25.vrp", None),
        ("R101.txt", None),
        ("C201R0.25.vrp", None),
        ("kim_102_stop.txt", None),
    ],
)
def test_shared_instances_solve_feasibly_at_two_seconds(shared_dir, name, max_gap):
    inst = instance_read(path=shared_dir / "benchmarks" / "vrp" / name)
    result = instance_solve(instance=inst, time_limit=2.0, seed=1)
    assert result.feasible, result.violations[:3]
    assert result.vehicles <= result.fleet_allowed
    if max_gap is not None:
        assert result.gap_pct is not None and result.gap_pct <= max_gap
    if inst.best_known is not None:
        assert result.cost >= inst.best_known  # a published optimum cannot be beaten: the costs agree
    depot_ids = {d.id for d in inst.depots}
    if name.startswith("C201"):
        assert any(depot_ids & set(r.visits) for r in result.routes)  # some trucks reload mid-day
    elif name.startswith("kim"):
        assert kim_fleet_lower_bound(instance=inst) == result.fleet_bound <= result.vehicles
        assert result.vehicles <= result.fleet_allowed
        assert all(r.visits[-1] in {s.id for s in inst.disposal_sites} for r in result.routes)
    else:
        assert not any(depot_ids & set(r.visits) for r in result.routes)


@pytest.mark.shared
@pytest.mark.parametrize("which", ["city", "C201R0.25.vrp", "kim_102_stop.txt"])
def test_a_plan_warm_starts_the_solver(which, shared_dir):
    """Our routes encode into a PyVRP solution that decodes to the same routes (trips and the final unload
    included), and a solve started from them is feasible and no worse."""
    from agents.sanitation.vrp.solve import solution_decode, solution_encode

    inst = city() if which == "city" else instance_read(path=shared_dir / "benchmarks" / "vrp" / which)
    first = instance_solve(instance=inst, time_limit=5, seed=1, max_iterations=300)
    assert first.feasible
    model = instance_model(instance=inst)
    solution = solution_encode(instance=inst, model=model, routes=first.routes)
    assert solution.is_feasible()
    back = solution_decode(instance=inst, model=model, solution=solution)
    assert sorted((r.vehicle_type, tuple(r.visits)) for r in back) == sorted(
        (r.vehicle_type, tuple(r.visits)) for r in first.routes
    )
    again = instance_solve(instance=inst, time_limit=5, seed=2, max_iterations=50, initial=first.routes)
    assert again.feasible and again.cost <= first.cost


def test_a_price_on_time_makes_the_solver_take_the_faster_order():
    """Two stops on a one-way triangle: going round one way is 30 m shorter, the other ten times quicker.
    On distance alone the solver takes the short way; a unit duration cost makes it take the quick one."""
    distance = np.array([[0, 1000, 990], [990, 0, 1000], [1000, 990, 0]])  # 0->2->1->0 shortest
    duration = np.array([[0, 100, 1000], [1000, 0, 100], [100, 1000, 0]])  # 0->1->2->0 quickest
    clients = [Client(id="a", loc=1, demand=(1,)), Client(id="b", loc=2, demand=(1,))]

    def solved(cost: int):
        inst = Instance(
            name="tri",
            clients=clients,
            depots=[Depot(id="D", loc=0)],
            vehicle_types=[VehicleType(name="t", count=1, capacity=(5,), unit_duration_cost=cost)],
            distance=distance,
            duration=duration,
        )
        result = instance_solve(instance=inst, time_limit=2, seed=1, max_iterations=200)
        (sched,) = plan_schedule(instance=inst, routes=result.routes)
        return result.routes[0].visits, result.cost, sched.back - sched.depart

    assert solved(0) == (["b", "a"], 2970, 3000)
    assert solved(1) == (["a", "b"], 3000, 300)
    with pytest.raises(InstanceError, match="negative fixed or duration cost"):
        Instance(
            name="bad",
            clients=clients,
            depots=[Depot(id="D", loc=0)],
            vehicle_types=[VehicleType(name="t", count=1, capacity=(5,), unit_duration_cost=-1)],
            distance=distance,
            duration=duration,
        )


def test_a_truck_already_loaded_unloads_on_its_first_trip():
    """A re-plan on the road starts a truck with a load: it counts on the first trip only, so the solver
    unloads before the trip would overflow, and the checker agrees."""
    inst = line_instance(n=3, demand=3, count=1)
    vt = inst.vehicle_types[0]
    loaded = Instance(
        name="loaded",
        clients=inst.clients,
        depots=inst.depots,
        disposal_sites=inst.disposal_sites,
        vehicle_types=[
            VehicleType(
                name=vt.name,
                count=1,
                capacity=vt.capacity,
                tw_early=vt.tw_early,
                tw_late=vt.tw_late,
                unload_sites=vt.unload_sites,
                initial_load=(5,),
            )
        ],
        distance=inst.distance,
        duration=inst.duration,
    )
    plain = instance_solve(instance=inst, time_limit=2, seed=1, max_iterations=300)
    assert plain.feasible and plain.routes[0].visits.count("L") == 1  # 3 x 3 fits one trip of 9
    result = instance_solve(instance=loaded, time_limit=2, seed=1, max_iterations=300)
    assert result.feasible and result.routes[0].visits.count("L") == 2  # 5 on board: one client, unload, two
    assert plan_check(instance=loaded, routes=[PlanRoute(0, ["c0", "c1", "c2", "L"])])[0].rule == "capacity"
    # Nothing left to collect, but a load on board: it must still unload before the depot.
    assert [v.rule for v in plan_check(instance=loaded, routes=[PlanRoute(0, ["L"])])] == ["unvisited"] * 3
    empty = Instance(
        name="e",
        clients=[],
        depots=inst.depots,
        disposal_sites=inst.disposal_sites,
        vehicle_types=loaded.vehicle_types,
        distance=inst.distance,
        duration=inst.duration,
    )
    assert plan_check(instance=empty, routes=[PlanRoute(0, ["L"])]) == []
    with pytest.raises(InstanceError, match="initial load"):
        Instance(
            name="bad",
            clients=inst.clients,
            depots=inst.depots,
            disposal_sites=inst.disposal_sites,
            vehicle_types=[VehicleType(name="t", count=1, capacity=(9,), initial_load=(1, 2))],
            distance=inst.distance,
            duration=inst.duration,
        )
