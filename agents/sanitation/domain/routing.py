"""The city's day as a routing `Instance` (agents.sanitation.vrp), and the solved plan back as timed stops.

Sites are named `depot:<id>`, `site:<id>` and `bin:<id>`; every one refers by `loc` into the travel
matrices the caller computed on the road network (seconds and metres), so one big matrix can serve many
days. Each truck is its own vehicle type (count 1): its depot, shift, capacity in litres and kilograms,
daily weight cap, stop limit and the crew's lunch break; every truck may unload at every disposal site,
and must unload before returning to its depot. A fixed cost per truck used (in metres) makes the solver
consolidate work onto fewer trucks, which PyVRP without it rarely does.

Clock times are seconds after the plan day's local midnight."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from agents.sanitation.vrp import (
    Client,
    Depot,
    DisposalSite,
    Instance,
    LunchBreak,
    PlanRoute,
    VehicleType,
    Violation,
    instance_solve,
    plan_check,
    plan_schedule,
)

from .choice import BinChoice


@dataclass(frozen=True)
class SiteSpec:
    """A depot or disposal site: its node id, matrix location, opening hours and service (unload) time."""

    id: str
    loc: int
    tw_early: int = 0
    tw_late: int = 24 * 3600
    service: int = 0


@dataclass(frozen=True)
class BinSpec:
    """A bin's static routing facts: matrix location, access window and service time."""

    id: str
    loc: int
    tw_early: int = 0
    tw_late: int = 24 * 3600
    service: int = 60


@dataclass(frozen=True)
class TruckSpec:
    """A truck for the day (see the module docstring). A re-plan during the day starts it where it is:
    `start` names a node of `city_instance_build`'s `starts` (its last stop, or where it reported from),
    `shift_start` is then when it is free there, `load_l`/`load_kg` what it carries, and `daily_cap_kg`
    what it may still collect; it still ends the day at its `depot`."""

    id: str
    depot: str
    capacity_l: int
    capacity_kg: int
    shift_start: int
    shift_end: int
    daily_cap_kg: int | None = None
    max_stops: int | None = None
    lunch: LunchBreak | None = None
    fixed_cost: int = 0
    second_cost: int = 0
    start: str | None = None
    load_l: int = 0
    load_kg: int = 0


def city_instance_build(
    *,
    name: str,
    depots: Sequence[SiteSpec],
    sites: Sequence[SiteSpec],
    trucks: Sequence[TruckSpec],
    bins: dict[str, BinSpec],
    choices: Sequence[BinChoice],
    duration: np.ndarray,
    distance: np.ndarray,
    coords: np.ndarray | None = None,
    starts: Sequence[SiteSpec] = (),
) -> Instance:
    """The day's instance: the chosen bins (required or with prizes) for the available trucks.

    `choices` carry bin ids as in `bins` (e.g. 'bin:12'); a deadline narrows a bin's access window but
    never below its opening. `starts` are where trucks already on the road are (depots of their own in
    the instance, which only those trucks leave from)."""
    depots = list(depots) + list(starts)
    depot_pos = {d.id: i for i, d in enumerate(depots)}
    # Emptying a bin takes its service time whenever it is done, so an optional bin's prize carries the
    # price of that time too: only the detour to it counts against taking it today.
    second_cost = max((t.second_cost for t in trucks), default=0)
    clients = []
    for c in choices:
        spec = bins[str(c.id)]
        tw_early, tw_late = spec.tw_early, spec.tw_late
        if c.deadline_s is not None:
            tw_late = max(spec.tw_early, min(tw_late, c.deadline_s))
        clients.append(
            Client(
                id=spec.id,
                loc=spec.loc,
                demand=(c.demand_l, c.demand_kg),
                service=spec.service,
                tw_early=tw_early,
                tw_late=tw_late,
                prize=int(c.prize) + (0 if c.required else spec.service * second_cost),
                required=c.required,
            )
        )
    types = [
        VehicleType(
            name=t.id,
            count=1,
            capacity=(t.capacity_l, t.capacity_kg),
            depot=depot_pos[t.start or t.depot],
            end_depot=depot_pos[t.depot],
            tw_early=t.shift_start,
            tw_late=t.shift_end,
            unload_sites=tuple(range(len(sites))),
            daily_cap=t.daily_cap_kg,
            daily_cap_dim=1,
            max_stops=t.max_stops,
            lunch=t.lunch,
            fixed_cost=t.fixed_cost,
            unit_duration_cost=t.second_cost,
            initial_load=(t.load_l, t.load_kg) if t.load_l or t.load_kg else (),
        )
        for t in trucks
    ]
    return Instance(
        name=name,
        clients=clients,
        depots=[
            Depot(id=d.id, loc=d.loc, tw_early=d.tw_early, tw_late=d.tw_late, service=d.service)
            for d in depots
        ],
        disposal_sites=[
            DisposalSite(id=s.id, loc=s.loc, tw_early=s.tw_early, tw_late=s.tw_late, service=s.service)
            for s in sites
        ],
        vehicle_types=types,
        distance=np.asarray(distance, dtype=np.int64),
        duration=np.asarray(duration, dtype=np.int64),
        objective="distance",
        coords=coords,
        fmt="city",
    )


def matrix_to_int(
    *, seconds: np.ndarray, metres: np.ndarray, unreachable: int = 10**7
) -> tuple[np.ndarray, np.ndarray]:
    """Round the road network's float matrices to integers; unreachable pairs get a prohibitive value
    (the caller leaves bins that only such pairs reach out of the problem)."""
    secs = np.where(np.isfinite(seconds), np.rint(seconds), unreachable).astype(np.int64)
    mets = np.where(np.isfinite(metres), np.rint(metres), unreachable).astype(np.int64)
    np.fill_diagonal(secs, 0)
    np.fill_diagonal(mets, 0)
    return secs, mets


@dataclass(frozen=True)
class StopTiming:
    """A visit of a planned route: when the truck arrives, starts and leaves, and its load after it."""

    node: str
    arrival: int
    start: int
    end: int
    load_l: int
    load_kg: int


@dataclass
class RouteSummary:
    """One truck's planned day: its stops with times and loads, distance, and when it leaves and is back."""

    vehicle_type: int
    truck: str
    visits: list[str]
    depart: int
    back: int
    distance_m: int
    lunch_start: int | None
    stops: list[StopTiming] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return (self.back - self.depart) / 3600.0


def routes_summarise(*, instance: Instance, routes: Sequence[PlanRoute]) -> list[RouteSummary]:
    """Times (plan_schedule's timetable, leaving the depot as late as the day allows), loads after each stop
    and distance per route."""
    kinds = instance.node_kinds()
    schedules = {s.route: s for s in plan_schedule(instance=instance, routes=routes, late_start=True)}
    out = []
    for r, route in enumerate(routes):
        if not route.visits:
            continue
        vt = instance.vehicle_types[route.vehicle_type]
        sched = schedules[r]
        locs = [instance.depots[vt.depot].loc]
        load_l, load_kg = vt.initial_load or (0, 0)
        stops = []
        for node, vtime in zip(route.visits, sched.visits):
            kind, pos = kinds[node]
            if kind == "client":
                c = instance.clients[pos]
                load_l += c.demand[0]
                load_kg += c.demand[1]
                locs.append(c.loc)
            else:
                load_l = load_kg = 0
                locs.append((instance.depots if kind == "depot" else instance.disposal_sites)[pos].loc)
            stops.append(
                StopTiming(
                    node=str(node),
                    arrival=vtime.arrival,
                    start=vtime.start,
                    end=vtime.end,
                    load_l=load_l,
                    load_kg=load_kg,
                )
            )
        locs.append(instance.depots[vt.end].loc)
        dist = int(sum(int(instance.distance[a, b]) for a, b in pairwise(locs)))
        out.append(
            RouteSummary(
                vehicle_type=route.vehicle_type,
                truck=vt.name,
                visits=[str(v) for v in route.visits],
                depart=sched.depart,
                back=sched.back,
                distance_m=dist,
                lunch_start=sched.lunch_start,
                stops=stops,
            )
        )
    return out


def streams_split(
    *,
    truck_types: Sequence[Sequence[str]],
    truck_idx: Sequence[int],
    client_stream: dict[str, str],
    client_litres: dict[str, int],
) -> list[tuple[list[int], set[str]]]:
    """Split a day by waste stream: each truck serves one stream, each stream is solved on its own.

    Every stream first gets one truck (the most specialised that takes it, scarcest stream first); the
    other trucks go where the most litres per truck wait. A stream no truck takes comes back with no
    trucks (its bins stay unserved and the checker says so)."""
    by_stream: dict[str, set[str]] = defaultdict(set)
    for cid, w in client_stream.items():
        by_stream[w].add(cid)
    litres = {w: sum(client_litres.get(c, 0) for c in ids) for w, ids in by_stream.items()}
    kinds = {i: [w for w in (truck_types[i] or []) if w in by_stream] for i in truck_idx}
    free = [i for i in truck_idx if kinds[i]]
    assigned: dict[str, list[int]] = defaultdict(list)
    for w in sorted(by_stream, key=lambda w: (sum(1 for i in free if w in kinds[i]), w)):
        able = [i for i in free if w in kinds[i]]
        if able:
            pick = min(able, key=lambda i: (len(kinds[i]), i))
            assigned[w].append(pick)
            free.remove(pick)
    for i in free:
        best = max(kinds[i], key=lambda w: litres[w] / (1 + len(assigned[w])))
        assigned[best].append(i)
    return [(assigned.get(w, []), ids) for w, ids in sorted(by_stream.items())]


def instance_subset(*, instance: Instance, truck_idx: Sequence[int], client_ids: set[str]) -> Instance:
    """The same matrices and sites with a subset of trucks and clients."""
    return Instance(
        name=instance.name,
        clients=[c for c in instance.clients if c.id in client_ids],
        depots=instance.depots,
        disposal_sites=instance.disposal_sites,
        vehicle_types=[instance.vehicle_types[i] for i in truck_idx],
        distance=instance.distance,
        duration=instance.duration,
        objective=instance.objective,
        coords=instance.coords,
        fmt=instance.fmt,
    )


@dataclass
class DaySolution:
    """A solved day: routes over the whole instance's trucks, the checker's verdict, time, notes."""

    routes: list[PlanRoute]
    violations: list[Violation]
    solve_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def day_solve(
    *,
    instance: Instance,
    truck_types: Sequence[Sequence[str]],
    client_stream: dict[str, str],
    locked: Sequence[PlanRoute] = (),
    time_limit: float = 10.0,
    seed: int = 1,
    max_iterations: int | None = None,
    initial: Sequence[PlanRoute] = (),
) -> DaySolution:
    """Solve the trucks and clients not in `locked` routes stream by stream (the time limit shared by size,
    at least a second each, or the whole limit when that is shorter) and check the whole day, locked routes
    included, with our own checker. `initial` routes (a earlier solve of the same day) warm-start each
    stream's search."""
    started = time.perf_counter()
    locked_trucks = {r.vehicle_type for r in locked}
    locked_clients = {v for r in locked for v in r.visits}
    free_trucks = [i for i in range(len(instance.vehicle_types)) if i not in locked_trucks]
    free = {c.id: c for c in instance.clients if c.id not in locked_clients}
    routes: list[PlanRoute] = list(locked)
    notes = []
    streams = streams_split(
        truck_types=truck_types,
        truck_idx=free_trucks,
        client_stream={cid: client_stream[cid] for cid in free},
        client_litres={cid: c.demand[0] for cid, c in free.items()},
    )
    for truck_idx, ids in streams:
        if not truck_idx:
            notes.append(f"no truck in service takes {len(ids)} bins of this waste type")
            continue
        sub = instance_subset(instance=instance, truck_idx=truck_idx, client_ids=ids)
        share = max(min(1.0, time_limit), time_limit * len(ids) / max(1, len(free)))
        sub_of = {t: k for k, t in enumerate(truck_idx)}
        known = ids | {s.id for s in instance.disposal_sites} | {d.id for d in instance.depots}
        start = [
            PlanRoute(vehicle_type=sub_of[r.vehicle_type], visits=[v for v in r.visits if v in known])
            for r in initial
            if r.vehicle_type in sub_of and any(v in ids for v in r.visits)
        ]
        result = instance_solve(
            instance=sub, time_limit=share, seed=seed, max_iterations=max_iterations, initial=start or None
        )
        routes += [
            PlanRoute(vehicle_type=truck_idx[r.vehicle_type], visits=list(r.visits)) for r in result.routes
        ]
    violations = plan_check(instance=instance, routes=routes)
    return DaySolution(
        routes=routes, violations=violations, solve_s=time.perf_counter() - started, notes=notes
    )


@dataclass
class DayPlan:
    """A day solved by `day_plan_solve`: the instance and choices the routes were finally checked against."""

    instance: Instance
    choices: list[BinChoice]
    solution: DaySolution
    notes: list[str] = field(default_factory=list)


def day_plan_solve(
    *,
    build: Callable[[Sequence[BinChoice]], Instance],
    choices: Sequence[BinChoice],
    truck_types: Sequence[Sequence[str]],
    client_stream: dict[str, str],
    demand_at: Callable[[str, int], tuple[int, int]] | None = None,
    locked: Sequence[PlanRoute] = (),
    time_limit: float = 10.0,
    seed: int = 1,
    max_iterations: int | None = None,
    refine_share: float = 0.4,
) -> DayPlan:
    """The day's plan as the agent makes it, from its candidate bins (`build` turns choices into the
    instance):

    1. solve with the conservative demand of the choices (what a bin holds at the end of the shift);
    2. deadlines no truck can meet are dropped and the day solved again (`deadlines_missed`);
    3. with `demand_at` (bin id, service start in seconds -> litres, kg: the fill model's forecast at that
       time), every planned bin's demand becomes what it is forecast to hold *when the truck gets there*,
       and the day is solved again from the first plan (warm start) for `refine_share` of the time. A
       full-shift forecast over-fills the plan by most of a morning's waste, so trucks ran their trips
       part-empty; the second pass fills them. Its plan is kept unless the checker likes it less.

    Bins the first plan left out keep their conservative demand."""
    notes: list[str] = []
    choices = list(choices)
    first = time_limit * (1.0 - refine_share) if demand_at is not None else time_limit

    def solve(instance: Instance, limit: float, initial: Sequence[PlanRoute] = ()) -> DaySolution:
        return day_solve(instance=instance, truck_types=truck_types, client_stream=client_stream, locked=locked,
                         time_limit=limit, seed=seed, max_iterations=max_iterations, initial=initial)

    instance = build(choices)
    day = solve(instance, first)
    missed = deadlines_missed(violations=day.violations, choices=choices)
    if missed:
        # Some bins overflow before any truck can reach them: plan them as soon as possible instead.
        choices = choices_relaxed(choices=choices, ids=missed)
        instance = build(choices)
        day = solve(instance, first)
        notes.append(
            f"{len(missed)} bins will overflow before a truck can reach them; planned as early as fits"
        )
    if demand_at is None or not day.routes:
        return DayPlan(instance=instance, choices=choices, solution=day, notes=notes)
    starts = {
        st.node: st.start for s in routes_summarise(instance=instance, routes=day.routes) for st in s.stops
    }
    refined = choices_at_service(choices=choices, starts=starts, demand_at=demand_at)
    instance2 = build(refined)
    locked_ids = {r.vehicle_type for r in locked}
    day2 = solve(instance2, time_limit * refine_share, [r for r in day.routes if r.vehicle_type not in locked_ids])
    if len(day2.violations) <= len(day.violations):
        day2.solve_s += day.solve_s
        return DayPlan(instance=instance2, choices=refined, solution=day2, notes=notes)
    day.solve_s += day2.solve_s
    return DayPlan(instance=instance, choices=choices, solution=day, notes=notes)


def choices_at_service(
    *, choices: Sequence[BinChoice], starts: dict[str, int], demand_at: Callable[[str, int], tuple[int, int]]
) -> list[BinChoice]:
    """The choices with each planned bin's demand forecast at its planned service start (`starts`)."""
    from dataclasses import replace

    out = []
    for c in choices:
        at = starts.get(str(c.id))
        if at is None:
            out.append(c)
            continue
        litres, kg = demand_at(str(c.id), int(at))
        out.append(replace(c, demand_l=max(1, int(litres)), demand_kg=max(1, int(kg))))
    return out


def deadlines_missed(*, violations: Sequence[Violation], choices: Sequence[BinChoice]) -> set[str]:
    """Bins whose overflow deadline the day could not meet (a time-window violation on a bin that has a
    deadline): the caller drops those deadlines and solves again, so the plan reaches them as soon as it
    can instead of being rejected outright."""
    with_deadline = {str(c.id) for c in choices if c.deadline_s is not None}
    return {str(v.node) for v in violations if v.rule == "time_window" and str(v.node) in with_deadline}


def choices_relaxed(*, choices: Sequence[BinChoice], ids: set[str]) -> list[BinChoice]:
    """The same choices with the deadlines of `ids` dropped."""
    from dataclasses import replace

    return [replace(c, deadline_s=None) if str(c.id) in ids else c for c in choices]
