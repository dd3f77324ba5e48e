"""The collection planner's Django-free half: a day's routing problem (`Problem`) assembled from the
depots, sites, bins and trucks it is given (duck-typed rows: any object with the fields the models have),
solved with the city's router (`routing`), re-chosen, checked and summed up into the plan's KPIs; and the
search behind a dispatcher's "move this bin to that truck". `agents.sanitation.plan_selectors` reads what
it needs from the database and `services.plans` stores what it returns.

Clock times here are seconds after the city's local midnight (the router's unit)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.sanitation.vrp import Instance, LunchBreak, plan_check, plan_cost
from agents.sanitation.vrp import PlanRoute as VrpRoute

from .baseline import SERVICE_WEEKDAYS
from .choice import BinChoice, ChoicePolicy, bin_demand_at
from .fill import FillState
from .routing import (
    BinSpec,
    SiteSpec,
    TruckSpec,
    city_instance_build,
    day_plan_solve,
    day_solve,
    matrix_to_int,
    routes_summarise,
)

if TYPE_CHECKING:  # the rows and the network are only passed through
    from city_ops.city.network import RoadNetwork

DEFAULT_POLICY = ChoicePolicy()
TRUCK_FIXED_COST_M = 15_000  # a truck used must save this many metres of driving to be worth its crew
# A truck's time on the road, in metres per second (1: an hour weighs as much as 3.6 km driven), so a plan
# does not keep a crew waiting for a bin's window when another street could be served first
# (bench/sanitation.py --second-cost 0 shows what it costs in km and saves in hours).
TRUCK_SECOND_COST_M = 1


# --- time helpers ----------------------------------------------------------------------------------------


def seconds_of(t: dt.time | None) -> int:
    """A clock time as seconds after midnight (0 for none)."""
    return 0 if t is None else t.hour * 3600 + t.minute * 60 + t.second


def next_service_day(date: dt.date) -> dt.date:
    """The next day after `date` on which trucks run (Monday to Saturday)."""
    day = date + dt.timedelta(days=1)
    while day.weekday() not in SERVICE_WEEKDAYS:
        day += dt.timedelta(days=1)
    return day


# --- the day's problem -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruckStart:
    """Where a truck already on the road is when a re-plan during the day takes over (`trucks_in_flight`):
    the point it starts from and what it is, the clock time (seconds after midnight) it is free there,
    the load it carries, the kilograms it has collected so far today and whether its crew has had lunch."""

    lonlat: tuple[float, float]
    label: str
    ready_s: int
    load_l: int = 0
    load_kg: int = 0
    collected_kg: int = 0
    lunch_taken: bool = False


@dataclass
class Problem:
    """The routing problem of a day: the instance, and what its node ids and vehicle types stand for
    (`trucks`, `bins`, `sites`, `depots` are the model rows)."""

    date: dt.date
    instance: Instance
    trucks: list[Any]
    bins: dict[str, Any]
    sites: dict[str, Any]
    depots: dict[str, Any]
    lonlat: dict[str, tuple[float, float]]
    choices: dict[str, BinChoice]
    network: RoadNetwork
    unreachable: list[str] = field(default_factory=list)
    specs: dict = field(default_factory=dict)
    """What `city_instance_build` took besides the choices, so the day can be rebuilt with other choices."""
    starts: dict[int, TruckStart] = field(default_factory=dict)
    """Truck id -> where a truck already on the road starts (a re-plan during the day)."""

    def vehicle_type_of(self, truck) -> int:
        return next(i for i, t in enumerate(self.trucks) if t.pk == truck.pk)


def lunch_of(truck) -> LunchBreak | None:
    """The truck's crew's own break (the router models each crew's window, grouping crews whose windows
    overlap: `vrp.model.lunch_groups`); None when the truck has no break set."""
    if not (truck.lunch_earliest and truck.lunch_latest and truck.lunch_min):
        return None
    return LunchBreak(
        earliest=seconds_of(truck.lunch_earliest),
        latest=seconds_of(truck.lunch_latest),
        duration=truck.lunch_min * 60,
    )


def truck_spec(*, truck, fixed_cost: int = TRUCK_FIXED_COST_M) -> TruckSpec:
    """A truck as the router sees it at the start of its shift, with its crew's own lunch break (re-plans
    on the road `replace` the start, and drop the break once taken)."""
    return TruckSpec(
        id=truck.code,
        depot=f"depot:{truck.depot_id}",
        capacity_l=truck.capacity_l,
        capacity_kg=truck.capacity_kg,
        shift_start=seconds_of(truck.shift_start),
        shift_end=seconds_of(truck.shift_end),
        daily_cap_kg=truck.daily_cap_kg,
        max_stops=truck.max_stops,
        lunch=lunch_of(truck),
        fixed_cost=fixed_cost,
        second_cost=TRUCK_SECOND_COST_M,
    )


def depot_spec(*, depot, loc: int) -> SiteSpec:
    return SiteSpec(
        id=f"depot:{depot.pk}", loc=loc, tw_early=seconds_of(depot.opens), tw_late=seconds_of(depot.closes)
    )


def site_spec(*, site, loc: int) -> SiteSpec:
    """A disposal site: its opening hours and the time a truck takes to unload there."""
    return SiteSpec(
        id=f"site:{site.pk}", loc=loc, tw_early=seconds_of(site.opens), tw_late=seconds_of(site.closes),
        service=site.unload_min * 60,
    )


def bin_spec(*, bin, loc: int) -> BinSpec:
    return BinSpec(
        id=f"bin:{bin.pk}", loc=loc, tw_early=seconds_of(bin.access_from), tw_late=seconds_of(bin.access_to),
        service=bin.service_s,
    )


def _started_spec(*, truck, spec: TruckSpec, start_id: str, start: TruckStart) -> TruckSpec:
    """A truck already on the road: it starts where it is, when it is free, with its load, the daily cap
    it has left and its lunch unless taken."""
    return replace(
        spec,
        start=start_id,
        shift_start=max(spec.shift_start, start.ready_s),
        load_l=start.load_l,
        load_kg=start.load_kg,
        lunch=None if start.lunch_taken else spec.lunch,
        daily_cap_kg=None if truck.daily_cap_kg is None else max(0, truck.daily_cap_kg - start.collected_kg),
    )


def _unreachable(nodes: list[str], secs: np.ndarray, *, first: int, fixed_idx: list[int]) -> list[str]:
    """Nodes from `first` on that the road network cannot connect to and from every depot and site."""
    out = []
    for i, k in enumerate(nodes[first:], start=first):
        if not (np.isfinite(secs[i, fixed_idx]).all() and np.isfinite(secs[fixed_idx, i]).all()):
            out.append(k)
    return out


def problem_assemble(
    *,
    date: dt.date,
    trucks: Sequence[Any],
    choices: Sequence[BinChoice],
    depots: dict[str, Any],
    sites: dict[str, Any],
    bins: dict[str, Any],
    network: RoadNetwork,
    fixed_cost: int = TRUCK_FIXED_COST_M,
    starts: dict[int, TruckStart] | None = None,
) -> Problem:
    """Travel matrices on `network` and the `Instance` for a day, from its rows (`plan_selectors.
    problem_build` reads them).

    Bins the road network cannot connect to every depot (a closure may cut them off) are left out and
    listed in `unreachable`. Trucks in `starts` (a re-plan during the day) start where they are."""
    trucks = list(trucks)
    starts = {pk: st for pk, st in (starts or {}).items() if pk in {t.pk for t in trucks}}
    start_ids = {t.pk: f"start:{t.code}" for t in trucks if t.pk in starts}
    nodes = (
        list(depots)
        + list(sites)
        + list(start_ids.values())
        + [str(c.id) for c in choices if str(c.id) in bins]
    )
    geoms = {
        **{k: v.geom for k, v in depots.items()},
        **{k: v.geom for k, v in sites.items()},
        **{k: v.geom for k, v in bins.items()},
    }
    lonlat = {k: (geoms[k].x, geoms[k].y) for k in nodes if k in geoms}
    lonlat.update({start_ids[pk]: tuple(st.lonlat) for pk, st in starts.items()})
    if len(nodes) > 0:
        secs, metres = network.matrix([lonlat[k] for k in nodes])
    else:
        secs = metres = np.zeros((0, 0))
    loc = {k: i for i, k in enumerate(nodes)}
    fixed_idx = [loc[k] for k in list(depots) + list(sites)]
    unreachable = _unreachable(nodes, secs, first=len(fixed_idx) + len(start_ids), fixed_idx=fixed_idx)
    duration, distance = matrix_to_int(seconds=secs, metres=metres)
    truck_specs = []
    for t in trucks:
        spec = truck_spec(truck=t, fixed_cost=fixed_cost)
        if t.pk in starts:
            spec = _started_spec(truck=t, spec=spec, start_id=start_ids[t.pk], start=starts[t.pk])
        truck_specs.append(spec)
    specs = {
        "name": f"sanitation {date}",
        "depots": [depot_spec(depot=d, loc=loc[k]) for k, d in depots.items()],
        "sites": [site_spec(site=s, loc=loc[k]) for k, s in sites.items()],
        "trucks": truck_specs,
        "bins": {k: bin_spec(bin=b, loc=loc[k]) for k, b in bins.items()},
        "duration": duration,
        "distance": distance,
        "coords": np.array([lonlat[k] for k in nodes]).reshape(-1, 2),
        "starts": [
            SiteSpec(id=start_ids[pk], loc=loc[start_ids[pk]], tw_early=starts[pk].ready_s) for pk in start_ids
        ],
    }
    kept = [c for c in choices if str(c.id) in bins and str(c.id) not in unreachable]
    return Problem(
        date=date,
        instance=city_instance_build(choices=kept, **specs),
        trucks=trucks,
        bins=bins,
        sites=sites,
        depots=depots,
        lonlat=lonlat,
        choices={str(c.id): c for c in kept},
        network=network,
        unreachable=unreachable,
        specs=specs,
        starts=starts,
    )


def problem_rechoose(*, problem: Problem, choices: Sequence[BinChoice]) -> Problem:
    """The same day (matrices, trucks, sites) with other bin choices."""
    kept = [c for c in choices if str(c.id) in problem.bins and str(c.id) not in problem.unreachable]
    return replace(
        problem,
        instance=city_instance_build(choices=kept, **problem.specs),
        choices={str(c.id): c for c in kept},
    )


# --- solving it ------------------------------------------------------------------------------------------


@dataclass
class Solved:
    """A solved (or edited) day: routes in problem terms, the checker's verdict, solver time, notes."""

    routes: list[VrpRoute]
    violations: list
    solve_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def problem_solve(
    *,
    problem: Problem,
    time_limit: float,
    locked: Sequence[VrpRoute] = (),
    seed: int = 1,
    max_iterations: int | None = None,
) -> Solved:
    """Solve the trucks and bins not in `locked` routes (waste stream by stream) and check the whole day."""
    day = day_solve(
        instance=problem.instance,
        truck_types=[t.waste_types or [] for t in problem.trucks],
        client_stream={c.id: problem.bins[c.id].waste_type for c in problem.instance.clients},
        locked=locked,
        time_limit=time_limit,
        seed=seed,
        max_iterations=max_iterations,
    )
    return Solved(routes=day.routes, violations=day.violations, solve_s=day.solve_s, notes=day.notes)


def demand_at_for(
    *,
    date: dt.date,
    bins: dict[str, Any],
    states: dict[int, FillState],
    policy: ChoicePolicy = DEFAULT_POLICY,
) -> Callable[[str, int], tuple[int, int]] | None:
    """`demand_at` for `day_plan_solve`: a bin's forecast load when its truck gets there (None without a
    fill model for any of the bins)."""
    if not states:
        return None
    day0 = date.toordinal()

    def demand_at(node: str, seconds: int) -> tuple[int, int]:
        b = bins[node]
        s = states.get(b.pk)
        if s is None or s.last_at is None:  # no forecast: the most a bin can hold
            litres = round(policy.max_level * b.capacity_l)
            return litres, round(litres * b.density_kg_l)
        return bin_demand_at(
            state=s,
            capacity_l=b.capacity_l,
            density_kg_l=b.density_kg_l,
            at=day0 + seconds / 86400,
            policy=policy,
        )

    return demand_at


def day_planned(
    *,
    problem: Problem,
    states: dict[int, FillState],
    policy: ChoicePolicy,
    locked: Sequence[VrpRoute],
    time_limit: float,
    seed: int,
    max_iterations: int | None,
) -> tuple[Problem, Solved, list[str]]:
    """The day's plan from the problem's candidate bins (`day_plan_solve`), checked: the problem with the
    bins the router kept, the routes (a loaded truck given no bins still unloads) and the router's notes."""
    day = day_plan_solve(
        build=lambda ch: problem_rechoose(problem=problem, choices=ch).instance,
        choices=list(problem.choices.values()),
        truck_types=[t.waste_types or [] for t in problem.trucks],
        client_stream={k: b.waste_type for k, b in problem.bins.items()},
        demand_at=demand_at_for(date=problem.date, bins=problem.bins, states=states, policy=policy),
        locked=locked,
        time_limit=time_limit,
        seed=seed,
        max_iterations=max_iterations,
    )
    problem = problem_rechoose(problem=problem, choices=day.choices)
    routes = unloads_added(problem, day.solution.routes)
    solved = Solved(
        routes=routes,
        violations=plan_check(instance=problem.instance, routes=routes),
        solve_s=day.solution.solve_s,
        notes=day.solution.notes,
    )
    return problem, solved, day.notes


def unloads_added(problem: Problem, routes: list[VrpRoute]) -> list[VrpRoute]:
    """A truck that is re-planned with a load on board but given no bins still drives to the nearest
    disposal site to unload before it goes home (the solver leaves an unused truck out)."""
    used = {r.vehicle_type for r in routes if r.visits}
    out = list(routes)
    for vt, t in enumerate(problem.instance.vehicle_types):
        if vt in used or not any(t.initial_load) or not problem.instance.disposal_sites:
            continue
        here = problem.instance.depots[t.depot].loc
        site = min(
            problem.instance.disposal_sites,
            key=lambda s: (
                problem.instance.distance[here, s.loc]
                + problem.instance.distance[s.loc, problem.instance.depots[t.end].loc]
            ),
        )
        out.append(VrpRoute(vehicle_type=vt, visits=[site.id]))
    return out


# --- what a plan achieves --------------------------------------------------------------------------------


def visited(problem: Problem, solved: Solved) -> set[str]:
    """The bins (client ids, `bin:<pk>`) the routes empty."""
    kinds = problem.instance.node_kinds()
    return {v for r in solved.routes for v in r.visits if kinds.get(v, ("",))[0] == "client"}


def summary_kpis(problem: Problem, solved: Solved) -> dict:
    summaries = routes_summarise(instance=problem.instance, routes=solved.routes)
    seen = visited(problem, solved)
    required = {cid for cid, c in problem.choices.items() if c.required}
    return {
        "km": round(sum(s.distance_m for s in summaries) / 1000, 3),
        "hours": round(sum(s.hours for s in summaries), 3),
        "bins_visited": len(seen),
        "mandatory": len(required),
        "unserved_mandatory": len(required - seen),
        "optional_offered": len(problem.choices) - len(required),
        "optional_visited": len(seen - required),
        "trucks_used": len(summaries),
        "unloads": sum(1 for r in solved.routes for v in r.visits if str(v).startswith("site:")),
        "litres": int(sum(problem.choices[v].demand_l for v in seen if v in problem.choices)),
    }


def baseline_kpis(*, problem: Problem, base_problem: Problem, base: Solved) -> dict:
    """The fixed schedule's figures beside the plan's (`baseline_*`)."""
    b = summary_kpis(base_problem, base)
    # The bins the plan had to empty (at risk of overflowing) that the fixed schedule leaves full: not due
    # on this weekday, or due but left off its routes.
    at_risk = {cid for cid, c in problem.choices.items() if c.required}
    return {
        "baseline_km": b["km"],
        "baseline_hours": b["hours"],
        "baseline_bins": b["bins_visited"],
        "baseline_trucks": b["trucks_used"],
        "baseline_at_risk_left": len(at_risk - visited(base_problem, base)),
        "baseline_feasible": not base.violations,
    }


# --- a dispatcher's edit ---------------------------------------------------------------------------------


def node_loc(problem: Problem, node: str) -> int:
    kind, pos = problem.instance.node_kinds()[node]
    items = {
        "client": problem.instance.clients,
        "depot": problem.instance.depots,
        "disposal": problem.instance.disposal_sites,
    }[kind]
    return items[pos].loc


def drop_empty_trips(visits: list[str]) -> list[str]:
    """Remove unloads that follow no collection since the previous one (a trip emptied by an edit)."""
    out, loaded = [], False
    for v in visits:
        if v.startswith("bin:"):
            out.append(v)
            loaded = True
        elif loaded:
            out.append(v)
            loaded = False
    return out


def _move_trials(problem: Problem, key: str, base_visits: list[str]) -> list[list[str]]:
    """Every way of putting `key` on a route: into a trip, or (when the trips are full) as a short trip of
    its own with an unload after it; each ends at a disposal site."""
    site_ids = [s.id for s in problem.instance.disposal_sites]
    nearest = min(site_ids, key=lambda s: problem.instance.distance[node_loc(problem, key), node_loc(problem, s)])
    positions = range(len(base_visits) + 1) if base_visits else [0]
    trials = [base_visits[:pos] + [key] + base_visits[pos:] for pos in positions]
    trials += [
        base_visits[:pos] + [key, nearest] + base_visits[pos:]
        for pos in positions
        if pos < len(base_visits) and (pos == 0 or base_visits[pos - 1].startswith("site:"))
    ]
    return [v if v and v[-1].startswith("site:") else v + [nearest] for v in trials]


def stop_move_best(
    *, problem: Problem, routes: list[VrpRoute], key: str, target: int, before: set[tuple]
) -> tuple[list[VrpRoute] | None, list]:
    """The cheapest routes with bin `key` put on vehicle type `target`'s route (already taken off its own
    route) that break no rule outside `before` ((rule, node) pairs the plan already broke); otherwise
    None and the fewest new violations any placement had."""
    t_idx = next((i for i, r in enumerate(routes) if r.vehicle_type == target), None)
    if t_idx is None:
        routes = routes + [VrpRoute(vehicle_type=target, visits=[])]
        t_idx = len(routes) - 1
    best, best_cost, best_bad = None, None, None
    for visits in _move_trials(problem, key, routes[t_idx].visits):
        trial = routes[:t_idx] + [VrpRoute(vehicle_type=target, visits=visits)] + routes[t_idx + 1 :]
        trial = [r for r in trial if r.visits]
        new = [
            v for v in plan_check(instance=problem.instance, routes=trial) if (v.rule, v.node) not in before
        ]
        cost = plan_cost(instance=problem.instance, routes=trial)
        if not new and (best_cost is None or cost < best_cost):
            best, best_cost = trial, cost
        elif best is None and (best_bad is None or len(new) < len(best_bad)):
            best_bad = new
    return best, best_bad or []
