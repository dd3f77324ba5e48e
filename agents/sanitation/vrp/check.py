"""An independent feasibility checker and cost for routing plans.

Everything is recomputed from the `Instance` (matrices, windows, loads); nothing is taken from PyVRP's
own route statistics, so a modelling mistake in `model.py` shows up here as a violation.

A plan is a list of `PlanRoute`: the vehicle type and the visits in order as node ids, without the start
and end depot, with a depot or disposal-site id wherever the truck unloads (and, for trucks that must
unload before going home, a disposal site as the last visit).

Timing rules: a truck leaves its depot at the start of its shift (or later, when the clients of its first
trip are not yet released); it may wait for a window to open; a service must *start* within its window;
a reload or unload takes the site's service time and the next trip leaves no earlier than its clients'
release times; the truck must be back by the end of its shift and the depot's closing time. A lunch
break, when the truck is on duty during its window, may be taken anywhere between the end of one
service and the start of the next (at a site, while waiting, or parked en route) and must start within
its window; the checker tries every such gap and keeps the one that breaks the fewest rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from agents.sanitation.vrp.instance import HORIZON, Instance, NodeId, VehicleType

RULES = (
    "unknown_node",
    "unvisited",
    "duplicate",
    "fleet",
    "reload_site",
    "capacity",
    "daily_cap",
    "max_stops",
    "unload_before_depot",
    "time_window",
    "shift_end",
    "shift_duration",
    "lunch",
)


@dataclass(frozen=True)
class PlanRoute:
    """One truck's day: its vehicle type (position in `Instance.vehicle_types`) and its visits."""

    vehicle_type: int
    visits: list[NodeId] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    """A broken rule: `rule` is one of `RULES`; `route` the position in the plan, `node` the site."""

    rule: str
    message: str
    route: int | None = None
    node: NodeId | None = None

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {"rule": self.rule, "message": self.message, "route": self.route, "node": self.node}


@dataclass(frozen=True)
class VisitTime:
    """When a truck reaches a site, starts its service (after any wait) and leaves it."""

    node: NodeId
    arrival: int
    start: int
    end: int


@dataclass(frozen=True)
class RouteSchedule:
    """One route's timetable at the earliest times, with the lunch break where the checker placed it."""

    route: int
    depart: int
    back: int
    visits: list[VisitTime]
    lunch_start: int | None


@dataclass(frozen=True)
class _Stop:
    id: NodeId
    kind: str  # 'client' | 'depot' | 'disposal'
    pos: int
    loc: int
    tw_early: int
    tw_late: int
    service: int


def plan_routes_coerce(*, routes: Sequence[PlanRoute | Sequence[NodeId]]) -> list[PlanRoute]:
    """Accept `PlanRoute`s or bare visit lists (vehicle type 0) and return `PlanRoute`s."""
    return [r if isinstance(r, PlanRoute) else PlanRoute(vehicle_type=0, visits=list(r)) for r in routes]


def plan_check(*, instance: Instance, routes: Sequence[PlanRoute | Sequence[NodeId]]) -> list[Violation]:
    """Every rule the plan breaks (an empty list means feasible)."""
    routes = plan_routes_coerce(routes=routes)
    kinds = instance.node_kinds()
    violations: list[Violation] = []
    served: Counter[NodeId] = Counter()
    used: Counter[int] = Counter()

    for r, route in enumerate(routes):
        if not route.visits:
            continue
        if not 0 <= route.vehicle_type < len(instance.vehicle_types):
            violations.append(
                Violation(
                    "fleet",
                    f"route {r} uses vehicle type {route.vehicle_type}, which does not exist",
                    route=r,
                )
            )
            continue
        used[route.vehicle_type] += 1
        stops: list[_Stop] = []
        for node in route.visits:
            if node not in kinds:
                violations.append(
                    Violation(
                        "unknown_node",
                        f"route {r} visits {node!r}, which is not in the instance",
                        route=r,
                        node=node,
                    )
                )
                continue
            stops.append(_stop(instance, node, *kinds[node]))
        served.update(s.id for s in stops if s.kind == "client")
        vt = instance.vehicle_types[route.vehicle_type]
        violations += _route_loads(instance, vt, r, stops)
        violations += _route_times(instance, vt, r, stops)

    for t, n in used.items():
        vt = instance.vehicle_types[t]
        if n > vt.count:
            violations.append(
                Violation(
                    "fleet", f"{n} routes use vehicle type {vt.name!r}, which has only {vt.count} trucks"
                )
            )
    for client in instance.clients:
        n = served[client.id]
        if n == 0 and client.required:
            violations.append(Violation("unvisited", f"client {client.id!r} is not visited", node=client.id))
        elif n > 1:
            violations.append(
                Violation("duplicate", f"client {client.id!r} is visited {n} times", node=client.id)
            )
    return violations


def plan_schedule(
    *, instance: Instance, routes: Sequence[PlanRoute | Sequence[NodeId]], late_start: bool = False
) -> list[RouteSchedule]:
    """Each non-empty route's timetable (unknown nodes are skipped; run `plan_check` for the verdict).

    Trucks leave at the start of their shift, or with `late_start` just in time for their first stop's
    window: a wait for a bin that opens later is then spent at the depot, not on the road, every service
    keeps its time, and the truck's day (depart to back) is what it really works."""
    routes = plan_routes_coerce(routes=routes)
    kinds = instance.node_kinds()
    out = []
    for r, route in enumerate(routes):
        if not route.visits or not 0 <= route.vehicle_type < len(instance.vehicle_types):
            continue
        vt = instance.vehicle_types[route.vehicle_type]
        stops = [_stop(instance, node, *kinds[node]) for node in route.visits if node in kinds]
        release = _trip_releases(instance, stops)
        earliest = max(vt.tw_early, instance.depots[vt.depot].tw_early)
        base = _simulate(instance, vt, r, stops, release, earliest, None)
        timing, _ = _with_lunch(instance, vt, r, stops, release, earliest, base)
        depart = earliest
        if late_start:
            depart, timing = _latest_start(instance, vt, r, stops, release, earliest, timing)
        record: list[VisitTime] = []
        slot = timing.slot
        _simulate(instance, vt, r, stops, release, depart, slot, record)
        out.append(
            RouteSchedule(
                route=r, depart=timing.depart, back=timing.end, visits=record, lunch_start=timing.lunch_start
            )
        )
    return out


def plan_cost(*, instance: Instance, routes: Sequence[PlanRoute | Sequence[NodeId]]) -> float:
    """The plan's objective (distance or travel time over every leg, depot to depot) in published units."""
    routes = plan_routes_coerce(routes=routes)
    kinds = instance.node_kinds()
    obj = instance.objective_matrix
    total = 0
    for route in routes:
        if not route.visits or not 0 <= route.vehicle_type < len(instance.vehicle_types):
            continue  # plan_check reports such routes; the cost counts the legs that can be driven
        vt = instance.vehicle_types[route.vehicle_type]
        locs = [instance.depots[vt.depot].loc]
        locs += [_stop(instance, node, *kinds[node]).loc for node in route.visits if node in kinds]
        locs.append(instance.depots[vt.end].loc)
        total += sum(int(obj[a, b]) for a, b in pairwise(locs))
    return total / instance.cost_scale


def _stop(instance: Instance, node: NodeId, kind: str, pos: int) -> _Stop:
    sites = {"client": instance.clients, "depot": instance.depots, "disposal": instance.disposal_sites}
    item = sites[kind][pos]
    return _Stop(node, kind, pos, item.loc, item.tw_early, item.tw_late, item.service)


def _route_loads(instance: Instance, vt: VehicleType, r: int, stops: list[_Stop]) -> list[Violation]:
    out: list[Violation] = []
    dims = len(vt.capacity)
    trip = list(vt.initial_load) if vt.initial_load else [0] * dims  # goes at the first unload
    day = [0] * dims
    trip_no = 1
    n_clients = 0

    def close_trip() -> None:
        for d in range(dims):
            if trip[d] > vt.capacity[d]:
                out.append(
                    Violation(
                        "capacity",
                        f"route {r}, trip {trip_no}: load {trip[d]} exceeds capacity "
                        f"{vt.capacity[d]} (dimension {d})",
                        route=r,
                    )
                )

    for stop in stops:
        if stop.kind == "client":
            demand = instance.clients[stop.pos].demand
            for d in range(dims):
                trip[d] += demand[d]
                day[d] += demand[d]
            n_clients += 1
            continue
        allowed = (stop.pos in vt.reload_depots) if stop.kind == "depot" else (stop.pos in vt.unload_sites)
        if not allowed:
            what = "reload at depot" if stop.kind == "depot" else "unload at disposal site"
            out.append(
                Violation(
                    "reload_site",
                    f"route {r}: vehicle type {vt.name!r} may not {what} {stop.id!r}",
                    route=r,
                    node=stop.id,
                )
            )
        close_trip()
        trip = [0] * dims
        trip_no += 1
    close_trip()
    if vt.daily_cap is not None and day[vt.daily_cap_dim] > vt.daily_cap:
        out.append(
            Violation(
                "daily_cap",
                f"route {r}: collects {day[vt.daily_cap_dim]} in the day, over the daily cap {vt.daily_cap}",
                route=r,
            )
        )
    if vt.max_stops is not None and n_clients > vt.max_stops:
        out.append(
            Violation(
                "max_stops",
                f"route {r}: serves {n_clients} stops, over the daily limit {vt.max_stops}",
                route=r,
            )
        )
    if (
        vt.unload_sites
        and (n_clients or any(vt.initial_load))
        and (not stops or stops[-1].kind != "disposal")
    ):
        out.append(
            Violation(
                "unload_before_depot",
                f"route {r}: returns to the depot without unloading at a disposal site after its last stop",
                route=r,
            )
        )
    return out


@dataclass
class _Timing:
    violations: list[Violation]
    depart: int
    end: int
    lunch_start: int | None = None
    slot: int | None = None


def _route_times(instance: Instance, vt: VehicleType, r: int, stops: list[_Stop]) -> list[Violation]:
    """Time windows, shift end, lunch and shift duration for one route."""
    release = _trip_releases(instance, stops)
    earliest = max(vt.tw_early, instance.depots[vt.depot].tw_early)
    base = _simulate(instance, vt, r, stops, release, earliest, None)
    timing, lunch_violation = _with_lunch(instance, vt, r, stops, release, earliest, base)
    out = list(timing.violations)
    if lunch_violation is not None:
        out.append(lunch_violation)
    if vt.shift_duration is not None and not out:
        out += _shift_duration(instance, vt, r, stops, release, earliest, timing)
    return out


def _with_lunch(instance, vt, r, stops, release, depart, base: _Timing) -> tuple[_Timing, Violation | None]:
    lunch = vt.lunch
    if lunch is None or base.end <= lunch.earliest or base.depart > lunch.latest:
        return base, None
    best: _Timing | None = None
    for slot in range(len(stops) + 1):
        timing = _simulate(instance, vt, r, stops, release, depart, slot)
        fits = timing.lunch_start is not None and timing.lunch_start <= lunch.latest
        if fits and (best is None or len(timing.violations) < len(best.violations)):
            best = timing
    if best is not None and len(best.violations) <= len(base.violations):
        return best, None
    return base, Violation(
        "lunch",
        f"route {r}: no gap for the {lunch.duration // 60}-minute break starting "
        f"between {_clock(instance, lunch.earliest)} and {_clock(instance, lunch.latest)} without "
        f"breaking a time window or the shift end",
        route=r,
    )


def _shift_duration(instance, vt, r, stops, release, earliest, timing: _Timing) -> list[Violation]:
    """Duration with the latest feasible departure (leaving later never lengthens the day)."""
    lo, hi = earliest, max(earliest, min(vt.tw_late, instance.depots[vt.end].tw_late))
    best = timing
    while lo < hi:
        mid = (lo + hi + 1) // 2
        base = _simulate(instance, vt, r, stops, release, mid, None)
        trial, lunch_violation = _with_lunch(instance, vt, r, stops, release, mid, base)
        if trial.violations or lunch_violation is not None:
            hi = mid - 1
        else:
            lo, best = mid, trial
    duration = best.end - best.depart
    if duration > vt.shift_duration:
        return [
            Violation(
                "shift_duration",
                f"route {r}: the day lasts {duration}, over the shift duration {vt.shift_duration}",
                route=r,
            )
        ]
    return []


def _latest_start(instance, vt, r, stops, release, earliest, timing: _Timing) -> tuple[int, _Timing]:
    """Leave so as to reach the first stop as it opens: the earliest timetable's wait there is spent at
    the depot, and every service keeps its time (kept only if the day ends no later and breaks no more
    rules, which holds unless the lunch break falls before the first stop)."""
    record: list[VisitTime] = []
    _simulate(instance, vt, r, stops, release, earliest, timing.slot, record)
    if not record or record[0].start <= record[0].arrival:
        return earliest, timing
    depart = earliest + (record[0].start - record[0].arrival)
    base = _simulate(instance, vt, r, stops, release, depart, None)
    trial, lunch_violation = _with_lunch(instance, vt, r, stops, release, depart, base)
    if (
        trial.end <= timing.end
        and len(trial.violations) <= len(timing.violations)
        and lunch_violation is None
    ):
        return depart, trial
    return earliest, timing


def _trip_releases(instance: Instance, stops: list[_Stop]) -> list[int]:
    """Release time of each trip (the first trip, then one per reload stop)."""
    releases = [0]
    for stop in stops:
        if stop.kind == "client":
            releases[-1] = max(releases[-1], instance.clients[stop.pos].release)
        else:
            releases.append(0)
    return releases


def _simulate(
    instance: Instance,
    vt: VehicleType,
    r: int,
    stops: list[_Stop],
    release: list[int],
    depart: int,
    lunch_slot: int | None,
    record: list[VisitTime] | None = None,
) -> _Timing:
    """Walk the route at the earliest times; `lunch_slot` k puts the break in the gap before stop k
    (k == len(stops): before arriving home). `record`, when given, receives each visit's times."""
    dur = instance.duration
    out: list[Violation] = []
    t = max(depart, release[0])
    start_time = t
    prev = instance.depots[vt.depot].loc
    trip = 0
    lunch_start = None
    for k in range(len(stops) + 1):
        loc = stops[k].loc if k < len(stops) else instance.depots[vt.end].loc
        ready = t + int(dur[prev, loc])
        if lunch_slot == k and vt.lunch is not None:
            lunch_start = max(vt.lunch.earliest, t)
            ready = max(ready, lunch_start) + vt.lunch.duration
        if k == len(stops):
            end = ready
            break
        stop = stops[k]
        begin = max(ready, stop.tw_early)
        if begin > stop.tw_late:
            out.append(
                Violation(
                    "time_window",
                    f"route {r}: service at {stop.id!r} starts at "
                    f"{_clock(instance, begin)}, after its window closes at "
                    f"{_clock(instance, stop.tw_late)}",
                    route=r,
                    node=stop.id,
                )
            )
        t = begin + stop.service
        if record is not None:
            record.append(VisitTime(node=stop.id, arrival=ready, start=begin, end=t))
        if stop.kind != "client":
            trip += 1
            t = max(t, release[trip])
        prev = loc
    shift_end = min(vt.tw_late, instance.depots[vt.end].tw_late)
    if end > shift_end:
        out.append(
            Violation(
                "shift_end",
                f"route {r}: back at the depot at {_clock(instance, end)}, after the "
                f"shift ends at {_clock(instance, shift_end)}",
                route=r,
            )
        )
    return _Timing(out, start_time, end, lunch_start, lunch_slot if lunch_start is not None else None)


def _clock(instance: Instance, value: int) -> str:
    """A time for messages: H:MM:SS when the instance counts seconds, else the raw value and its unit."""
    if value >= HORIZON:
        return "never"
    if instance.time_unit != "s":
        return f"{value} ({instance.time_unit})"
    hours, rest = divmod(int(value), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
