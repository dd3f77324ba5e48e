"""Collection plans: build the day's routing problem from the database and the fill model, solve it with
PyVRP (agents.sanitation.vrp), check it with our own checker, and store it as a new plan version with
routes that follow the roads; edit (move a bin, lock a route, re-optimise the rest), approve, and
re-plan around closures and breakdowns.

Every stored version carries its checker verdict (`feasible`, `violations`). An edit that would break a
rule the plan did not already break is refused with the checker's messages; approval refuses a plan the
checker rejects."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
from django.contrib.gis.geos import LineString
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.sanitation.vrp import Instance, LunchBreak, plan_check, plan_cost
from agents.sanitation.vrp import PlanRoute as VrpRoute
from city_ops.city.network import NoRouteError, RoadNetwork, road_network
from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_tz

from ..conf import DEFAULTS
from ..core.baseline import SERVICE_WEEKDAYS, FixedBin, fixed_due, fixed_schedule_build
from ..core.choice import (
    BinChoice,
    ChoicePolicy,
    bin_demand_at,
    bin_outlook,
    bins_choose,
    stream_prize_scales,
)
from ..core.fill import FillState, fill_forecast
from ..core.routing import (
    BinSpec,
    SiteSpec,
    TruckSpec,
    city_instance_build,
    day_plan_solve,
    day_solve,
    matrix_to_int,
    routes_summarise,
)
from ..models import Bin, CollectionPlan, Depot, DisposalSite, FillModel, Pickup, PlanRoute, PlanStop, Truck
from .fill import state_from_json

log = logging.getLogger(__name__)

DEFAULT_POLICY = ChoicePolicy()
TRUCK_FIXED_COST_M = 15_000  # a truck used must save this many metres of driving to be worth its crew
# A truck's time on the road, in metres per second (1: an hour weighs as much as 3.6 km driven), so a plan
# does not keep a crew waiting for a bin's window when another street could be served first
# (bench/sanitation.py --second-cost 0 shows what it costs in km and saves in hours).
TRUCK_SECOND_COST_M = 1
DEFAULT_TIME_LIMIT = float(DEFAULTS["SANITATION_PLAN_TIME_LIMIT_S"])
ROUTE_COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#e67700"]


class PlanEditError(ValidationError):
    """An edit the checker refuses; `messages` are the rules it would break."""


# --- time helpers ----------------------------------------------------------------------------------------


def _secs(t: dt.time | None) -> int:
    return 0 if t is None else t.hour * 3600 + t.minute * 60 + t.second


def _midnight(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(), tzinfo=city_tz())


def _clock(date: dt.date, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else _midnight(date) + dt.timedelta(seconds=int(seconds))


def next_service_day(date: dt.date) -> dt.date:
    """The next day after `date` on which trucks run (Monday to Saturday)."""
    day = date + dt.timedelta(days=1)
    while day.weekday() not in SERVICE_WEEKDAYS:
        day += dt.timedelta(days=1)
    return day


def _network_for(date: dt.date) -> RoadNetwork:
    """The road network as it will be when the day's shift starts (now, if that has passed)."""
    at = max(timezone.now(), _midnight(date) + dt.timedelta(hours=6))
    return road_network(at=at)


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
    """The routing problem of a day as built from the database: the instance, and what its node ids and
    vehicle types stand for."""

    date: dt.date
    instance: Instance
    trucks: list[Truck]
    bins: dict[str, Bin]
    sites: dict[str, DisposalSite]
    depots: dict[str, Depot]
    lonlat: dict[str, tuple[float, float]]
    choices: dict[str, BinChoice]
    network: RoadNetwork
    unreachable: list[str] = field(default_factory=list)
    specs: dict = field(default_factory=dict)
    """What `city_instance_build` took besides the choices, so the day can be rebuilt with other choices."""
    starts: dict[int, TruckStart] = field(default_factory=dict)
    """Truck id -> where a truck already on the road starts (a re-plan during the day)."""

    def vehicle_type_of(self, truck: Truck) -> int:
        return next(i for i, t in enumerate(self.trucks) if t.pk == truck.pk)


def _lunch(truck: Truck) -> LunchBreak | None:
    """The truck's crew's own break (the router models each crew's window, grouping crews whose windows
    overlap: `vrp.model.lunch_groups`); None when the truck has no break set."""
    if not (truck.lunch_earliest and truck.lunch_latest and truck.lunch_min):
        return None
    return LunchBreak(
        earliest=_secs(truck.lunch_earliest), latest=_secs(truck.lunch_latest), duration=truck.lunch_min * 60
    )


def truck_spec(*, truck: Truck, fixed_cost: int = TRUCK_FIXED_COST_M) -> TruckSpec:
    """A truck as the router sees it at the start of its shift, with its crew's own lunch break (re-plans
    on the road `replace` the start, and drop the break once taken)."""
    return TruckSpec(
        id=truck.code,
        depot=f"depot:{truck.depot_id}",
        capacity_l=truck.capacity_l,
        capacity_kg=truck.capacity_kg,
        shift_start=_secs(truck.shift_start),
        shift_end=_secs(truck.shift_end),
        daily_cap_kg=truck.daily_cap_kg,
        max_stops=truck.max_stops,
        lunch=_lunch(truck),
        fixed_cost=fixed_cost,
        second_cost=TRUCK_SECOND_COST_M,
    )


def depot_spec(*, depot, loc: int) -> SiteSpec:
    return SiteSpec(id=f"depot:{depot.pk}", loc=loc, tw_early=_secs(depot.opens), tw_late=_secs(depot.closes))


def site_spec(*, site, loc: int) -> SiteSpec:
    """A disposal site: its opening hours and the time a truck takes to unload there."""
    return SiteSpec(
        id=f"site:{site.pk}", loc=loc, tw_early=_secs(site.opens), tw_late=_secs(site.closes),
        service=site.unload_min * 60,
    )


def bin_spec(*, bin, loc: int) -> BinSpec:
    return BinSpec(
        id=f"bin:{bin.pk}", loc=loc, tw_early=_secs(bin.access_from), tw_late=_secs(bin.access_to),
        service=bin.service_s,
    )


def problem_build(
    *,
    date: dt.date,
    trucks: Sequence[Truck],
    choices: Sequence[BinChoice],
    fixed_cost: int = TRUCK_FIXED_COST_M,
    network: RoadNetwork | None = None,
    starts: dict[int, TruckStart] | None = None,
) -> Problem:
    """Sites, travel matrices on the (closure-aware) road network and the `Instance` for a day.

    Bins the road network cannot connect to every depot (a closure may cut them off) are left out and
    listed in `unreachable`. Trucks in `starts` (a re-plan during the day) start where they are, when
    they are free, with their load, the daily cap they have left and their lunch unless taken."""
    network = network or _network_for(date)
    trucks = list(trucks)
    starts = {pk: st for pk, st in (starts or {}).items() if pk in {t.pk for t in trucks}}
    depots = {
        f"depot:{d.pk}": d for d in Depot.objects.filter(pk__in={t.depot_id for t in trucks}).order_by("pk")
    }
    sites = {f"site:{s.pk}": s for s in DisposalSite.objects.order_by("pk")}
    bin_ids = [int(str(c.id).split(":")[1]) for c in choices]
    bins = {f"bin:{b.pk}": b for b in Bin.objects.filter(pk__in=bin_ids)}
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
    fixed = list(depots) + list(sites)
    fixed_idx = [loc[k] for k in fixed]
    unreachable = []
    for k in nodes[len(fixed) + len(start_ids) :]:
        i = loc[k]
        if not (np.isfinite(secs[i, fixed_idx]).all() and np.isfinite(secs[fixed_idx, i]).all()):
            unreachable.append(k)
    duration, distance = matrix_to_int(seconds=secs, metres=metres)
    truck_specs = []
    for t in trucks:
        st = starts.get(t.pk)
        spec = truck_spec(truck=t, fixed_cost=fixed_cost)
        if st is not None:
            spec = replace(
                spec,
                start=start_ids[t.pk],
                shift_start=max(spec.shift_start, st.ready_s),
                load_l=st.load_l,
                load_kg=st.load_kg,
                lunch=None if st.lunch_taken else spec.lunch,
                daily_cap_kg=None if t.daily_cap_kg is None else max(0, t.daily_cap_kg - st.collected_kg),
            )
        truck_specs.append(spec)
    depot_specs = [depot_spec(depot=d, loc=loc[k]) for k, d in depots.items()]
    site_specs = [site_spec(site=s, loc=loc[k]) for k, s in sites.items()]
    start_specs = [
        SiteSpec(id=start_ids[pk], loc=loc[start_ids[pk]], tw_early=starts[pk].ready_s) for pk in start_ids
    ]
    bin_specs = {k: bin_spec(bin=b, loc=loc[k]) for k, b in bins.items()}
    kept = [c for c in choices if str(c.id) in bins and str(c.id) not in unreachable]
    specs = {
        "name": f"sanitation {date}",
        "depots": depot_specs,
        "sites": site_specs,
        "trucks": truck_specs,
        "bins": bin_specs,
        "duration": duration,
        "distance": distance,
        "coords": np.array([lonlat[k] for k in nodes]).reshape(-1, 2),
        "starts": start_specs,
    }
    instance = city_instance_build(choices=kept, **specs)
    return Problem(
        date=date,
        instance=instance,
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
    locked: Sequence[VrpRoute] = (),
    time_limit: float = DEFAULT_TIME_LIMIT,
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


# --- forecasting the day ---------------------------------------------------------------------------------


def _states(bin_ids: Sequence[int]) -> dict[int, FillState]:
    out = {}
    for bin_id, state in FillModel.objects.filter(bin_id__in=bin_ids).values_list("bin_id", "state"):
        s = state_from_json(state)
        if s is not None:
            out[bin_id] = s
    return out


def _collected_on(date: dt.date) -> set[int]:
    """Bins a crew has already emptied on `date` (a re-plan during the day leaves them out)."""
    return set(
        Pickup.objects.filter(
            status=Pickup.Status.COLLECTED,
            at__gte=_midnight(date),
            at__lt=_midnight(date + dt.timedelta(days=1)),
        ).values_list("bin_id", flat=True)
    )


def _day_seconds(date: dt.date, at: dt.datetime) -> int:
    """Seconds from `date`'s local midnight to `at`."""
    return int((at - _midnight(date)).total_seconds())


def _done_on(date: dt.date, *, until: dt.datetime) -> set[int]:
    """Bins a crew has dealt with on `date` up to `until`: collected, or skipped with a reason (a re-plan
    on the road does not send a truck back to a bin its crew just found blocked)."""
    return set(Pickup.objects.filter(at__gte=_midnight(date), at__lte=until).values_list("bin_id", flat=True))


def trucks_in_flight(
    *,
    plan: CollectionPlan,
    now: dt.datetime,
    trucks: Sequence[Truck],
    positions: dict[str, tuple[float, float]] | None = None,
) -> tuple[dict[int, TruckStart], set[int], list[str]]:
    """Where each truck is at `now` on the plan's day, from its crew's marks: at its last marked bin (or
    the position it reported, snapped to the road graph when routed), free from then on, carrying what it
    collected since its last planned unload before that bin (litres from the fill the crew saw, plus the
    load its route started with when no unload came since), with the kilograms it collected today taken
    off its daily cap. A truck with no mark is at its depot. Returns the starts, the trucks whose shift
    is over, and notes."""
    date = plan.date
    now_s = _day_seconds(date, now)
    positions = positions or {}
    marks = defaultdict(list)
    for p in Pickup.objects.filter(
        at__gte=_midnight(date), at__lte=now, stop__route__plan__date=date
    ).select_related("stop__route", "bin"):
        marks[p.stop.route.truck_id].append(p)
    routes = {r.truck_id: r for r in plan.routes.all()}
    starts: dict[int, TruckStart] = {}
    finished: set[int] = set()
    notes: list[str] = []

    def litres(p: Pickup) -> float:
        if p.status != Pickup.Status.COLLECTED:
            return 0.0
        return min(max(p.observed_fill or 0.0, 0.0), DEFAULT_POLICY.max_level) * p.bin.capacity_l

    for t in trucks:
        mine = sorted(marks.get(t.pk, []), key=lambda p: (p.at, p.stop.order))
        collected_kg = round(sum(litres(p) * p.bin.density_kg_l for p in mine))
        depot = t.depot.geom
        lonlat, label, ready, load_l, load_kg = (
            (depot.x, depot.y),
            "depot",
            max(now_s, _secs(t.shift_start)),
            0,
            0,
        )
        if mine:
            last = mine[-1]
            route = last.stop.route
            stops = list(route.stops.order_by("order"))
            unload = max(
                (
                    st.order
                    for st in stops
                    if st.kind == PlanStop.Kind.DISPOSAL and st.order < last.stop.order
                ),
                default=None,
            )
            head = route.profile[0] if route.profile and unload is None else {}
            since = [p for p in mine if p.stop.route_id == route.pk and p.stop.order > (unload or 0)]
            # More than the nominal capacity (the crews' eyes, compaction) is a full truck: it unloads first.
            load_l = min(round(head.get("load_l", 0) + sum(litres(p) for p in since)), t.capacity_l)
            load_kg = min(
                round(head.get("load_kg", 0) + sum(litres(p) * p.bin.density_kg_l for p in since)),
                t.capacity_kg,
            )
            lonlat, label = (last.bin.geom.x, last.bin.geom.y), f"at {last.bin.code}"
            ready = max(now_s, _day_seconds(date, last.at))
        if t.code in positions:
            lonlat, label, ready = tuple(float(x) for x in positions[t.code]), "reported position", now_s
        if ready >= _secs(t.shift_end):
            finished.add(t.pk)
            notes.append(f"{t.code}'s shift is over; it is left out of the re-plan")
            continue
        route = routes.get(t.pk)
        taken = bool(route and route.lunch_at and now >= route.lunch_at + dt.timedelta(minutes=t.lunch_min))
        lunch = _lunch(t)
        if lunch is not None and not taken and ready > lunch.latest:
            taken = True  # its crew's window has passed: the crew had its break where it could
        starts[t.pk] = TruckStart(
            lonlat=lonlat,
            label=label,
            ready_s=ready,
            load_l=load_l,
            load_kg=load_kg,
            collected_kg=collected_kg,
            lunch_taken=taken,
        )
        if mine or t.code in positions:
            notes.append(
                f"{t.code} re-planned from {label} at {now_s // 3600}:{now_s % 3600 // 60:02d} "
                f"with {load_l} L on board"
            )
    return starts, finished, notes


def bins_choices_for(
    *,
    date: dt.date,
    trucks: Sequence[Truck],
    states: dict[int, FillState] | None = None,
    policy: ChoicePolicy = DEFAULT_POLICY,
    exclude: set[int] = frozenset(),
) -> tuple[list[BinChoice], list[str]]:
    """The day's candidate bins from the fill model (mandatory and optional with prizes); notes for bins
    it cannot forecast. Bins already collected that day, or in `exclude`, are left out."""
    bins = list(Bin.objects.filter(active=True).order_by("pk"))
    states = states if states is not None else _states([b.pk for b in bins])
    start = min((_secs(t.shift_start) for t in trucks), default=6 * 3600)
    end = max((_secs(t.shift_end) for t in trucks), default=15 * 3600)
    nxt = next_service_day(date).toordinal()
    collected = _collected_on(date)
    outlooks, notes = [], []
    scales = dict(
        zip(
            [b.pk for b in bins],
            stream_prize_scales(streams=[b.waste_type for b in bins], policy=policy),
            strict=True,
        )
    )
    for b in bins:
        if b.pk in collected or b.pk in exclude:
            continue
        s = states.get(b.pk)
        if s is None or s.last_at is None:
            notes.append(f"bin {b.code}: no readings or pickups yet, and no similar bin nearby to learn from")
            continue
        outlooks.append(
            bin_outlook(
                id=f"bin:{b.pk}",
                state=s,
                capacity_l=b.capacity_l,
                density_kg_l=b.density_kg_l,
                day=date.toordinal(),
                shift_start_s=start,
                shift_end_s=end,
                next_day=nxt,
                policy=policy,
                prize_scale=scales[b.pk],
            )
        )
    return bins_choose(outlooks=outlooks, policy=policy, shift_start_s=start), notes


def demand_at_for(
    *,
    date: dt.date,
    bins: dict[str, Bin],
    states: dict[int, FillState],
    policy: ChoicePolicy = DEFAULT_POLICY,
):
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


def baseline_choices_for(*, date: dt.date, states: dict[int, FillState] | None = None) -> list[BinChoice]:
    """The fixed schedule's bins for `date` (every bin on fixed weekdays as often as its learned mean rate
    needs), all required, with the same demand forecast as the plan."""
    bins = list(Bin.objects.filter(active=True).order_by("pk"))
    states = states if states is not None else _states([b.pk for b in bins])
    rated = {b.pk: states[b.pk] for b in bins if b.pk in states and states[b.pk].last_at is not None}
    schedule = fixed_schedule_build(
        bins=[
            FixedBin(id=pk, mean_rate=s.mean_rate, capacity_l=next(b.capacity_l for b in bins if b.pk == pk))
            for pk, s in rated.items()
        ]
    )
    due = set(fixed_due(schedule=schedule, weekday=date.weekday()))
    by_pk = {b.pk: b for b in bins}
    out = []
    for pk in sorted(due):
        b, s = by_pk[pk], rated[pk]
        level = min(max(fill_forecast(state=s, at=date.toordinal() + 0.6), 0.05), 1.2)
        litres = round(level * b.capacity_l)
        out.append(
            BinChoice(
                id=f"bin:{pk}",
                required=True,
                prize=0,
                demand_l=max(litres, 1),
                demand_kg=max(1, round(litres * b.density_kg_l)),
                level=round(level, 3),
                reason="fixed schedule",
            )
        )
    return out


# --- storing a plan ----------------------------------------------------------------------------------------


def _route_geometry(network: RoadNetwork, points: list[tuple[float, float]]) -> tuple[list, list[int], float]:
    coords: list[tuple[float, float]] = []
    segments: list[int] = []
    length = 0.0
    for a, b in pairwise(points):
        try:
            path = network.path(a, b)
        except NoRouteError:
            path = None
        if path is None:
            leg = [a, b]
        else:
            leg = path.coords
            segments.extend(path.segment_ids)
            length += path.length_m
        coords.extend(leg if not coords else leg[1:])
    if len(coords) < 2:
        coords = [points[0], points[0]]
    return coords, segments, length


def _visited(problem: Problem, solved: Solved) -> set[str]:
    """The bins (client ids, `bin:<pk>`) the routes empty."""
    kinds = problem.instance.node_kinds()
    return {v for r in solved.routes for v in r.visits if kinds.get(v, ("",))[0] == "client"}


def _summary_kpis(problem: Problem, solved: Solved) -> dict:
    summaries = routes_summarise(instance=problem.instance, routes=solved.routes)
    visited = _visited(problem, solved)
    required = {cid for cid, c in problem.choices.items() if c.required}
    return {
        "km": round(sum(s.distance_m for s in summaries) / 1000, 3),
        "hours": round(sum(s.hours for s in summaries), 3),
        "bins_visited": len(visited),
        "mandatory": len(required),
        "unserved_mandatory": len(required - visited),
        "optional_offered": len(problem.choices) - len(required),
        "optional_visited": len(visited - required),
        "trucks_used": len(summaries),
        "unloads": sum(1 for r in solved.routes for v in r.visits if str(v).startswith("site:")),
        "litres": int(sum(problem.choices[v].demand_l for v in visited if v in problem.choices)),
    }


@transaction.atomic
def _plan_store(
    *,
    problem: Problem,
    solved: Solved,
    reason: str,
    run=None,
    user=None,
    parent: CollectionPlan | None = None,
    locked_trucks: set[int] = frozenset(),
    kpis: dict | None = None,
) -> CollectionPlan:
    date = problem.date
    # Serialise version numbers per date: lock the date's rows, then take the next number.
    last = (
        CollectionPlan.objects.select_for_update()
        .filter(date=date)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    ) or 0
    plan = CollectionPlan.objects.create(
        date=date,
        version=last + 1,
        status=CollectionPlan.Status.DRAFT,
        reason=reason[:300],
        run=run,
        parent=parent,
        feasible=not solved.violations,
        violations=[v.as_dict() for v in solved.violations][:200],
        kpis=kpis or {},
        created_by=user if getattr(user, "is_authenticated", False) else None,
        candidates={
            cid: {
                "required": c.required,
                "prize": c.prize,
                "demand_l": c.demand_l,
                "demand_kg": c.demand_kg,
                "level": c.level,
                "reason": c.reason,
                "deadline_s": c.deadline_s,
            }
            for cid, c in problem.choices.items()
        },
        closed_segments=sorted(problem.network.closed),
    )
    summaries = routes_summarise(instance=problem.instance, routes=solved.routes)
    stops = []
    for order, summary in enumerate(sorted(summaries, key=lambda s: s.truck)):
        truck = problem.trucks[summary.vehicle_type]
        depot_key = f"depot:{truck.depot_id}"
        start = problem.starts.get(truck.pk)
        first = problem.lonlat[f"start:{truck.code}"] if start else problem.lonlat[depot_key]
        points = [first] + [problem.lonlat[v] for v in summary.visits] + [problem.lonlat[depot_key]]
        coords, segment_ids, road_m = _route_geometry(problem.network, points)
        # A route re-planned on the road starts where the truck is, with what it carries (the next re-plan
        # reads that load back from here).
        profile = [
            {
                "t": _clock(date, summary.depart).isoformat(),
                "load_l": start.load_l if start else 0,
                "load_kg": start.load_kg if start else 0,
                "label": start.label if start else "depot",
            }
        ]
        for st in summary.stops:
            label = problem.bins[st.node].code if st.node in problem.bins else problem.sites[st.node].name
            profile.append(
                {
                    "t": _clock(date, st.end).isoformat(),
                    "load_l": st.load_l,
                    "load_kg": st.load_kg,
                    "label": label,
                }
            )
        profile.append(
            {"t": _clock(date, summary.back).isoformat(), "load_l": 0, "load_kg": 0, "label": "depot"}
        )
        route = PlanRoute.objects.create(
            plan=plan,
            truck=truck,
            crew=truck.crew,
            order=order,
            geom=LineString(coords, srid=4326),
            segment_ids=segment_ids,
            distance_m=round(road_m or summary.distance_m, 1),
            depart_at=_clock(date, summary.depart),
            back_at=_clock(date, summary.back),
            lunch_at=_clock(date, summary.lunch_start),
            profile=profile,
            locked=summary.vehicle_type in locked_trucks,
            color=ROUTE_COLORS[order % len(ROUTE_COLORS)],
        )
        for k, st in enumerate(summary.stops):
            choice = problem.choices.get(st.node)
            stops.append(
                PlanStop(
                    route=route,
                    order=k + 1,
                    kind=PlanStop.Kind.BIN if choice else PlanStop.Kind.DISPOSAL,
                    bin=problem.bins.get(st.node),
                    disposal_site=problem.sites.get(st.node),
                    arrival=_clock(date, st.arrival),
                    start=_clock(date, st.start),
                    departure=_clock(date, st.end),
                    load_after_l=st.load_l,
                    load_after_kg=st.load_kg,
                    forecast_fill=choice.level if choice else None,
                    required=bool(choice and choice.required),
                    reason=choice.reason[:60] if choice else "unload",
                )
            )
    PlanStop.objects.bulk_create(stops, batch_size=2000)
    audit_record(
        action="sanitation.plan_created",
        obj=plan,
        actor=user,
        actor_label="agent:sanitation",
        changes={"version": plan.version, "reason": plan.reason, "feasible": plan.feasible},
    )
    return plan


def _stored_routes(
    plan: CollectionPlan, problem: Problem, *, only_locked: bool = False
) -> tuple[list[VrpRoute], set[int]]:
    """A stored plan's routes in problem terms (for edits), and the vehicle types of its locked routes.
    Routes of trucks the problem does not have are left out."""
    routes, locked = [], set()
    present = {t.pk for t in problem.trucks}
    qs = plan.routes.select_related("truck").prefetch_related("stops")
    for route in qs.filter(locked=True) if only_locked else qs:
        if route.truck_id not in present:
            continue
        vt = problem.vehicle_type_of(route.truck)
        visits = [
            f"bin:{s.bin_id}" if s.kind == PlanStop.Kind.BIN else f"site:{s.disposal_site_id}"
            for s in sorted(route.stops.all(), key=lambda s: s.order)
        ]
        routes.append(VrpRoute(vehicle_type=vt, visits=visits))
        if route.locked:
            locked.add(vt)
    return routes, locked


def _candidates(plan: CollectionPlan) -> list[BinChoice]:
    return [
        BinChoice(
            id=cid,
            required=c["required"],
            prize=c["prize"],
            demand_l=c["demand_l"],
            demand_kg=c["demand_kg"],
            level=c["level"],
            reason=c["reason"],
            deadline_s=c.get("deadline_s"),
        )
        for cid, c in sorted(plan.candidates.items())
    ]


def _plan_trucks(plan: CollectionPlan | None, *, exclude: set[int] = frozenset()) -> list[Truck]:
    """Trucks in service, plus those a plan's locked routes use; never the excluded ones."""
    qs = Truck.objects.filter(in_service=True)
    trucks = {t.pk: t for t in qs}
    if plan is not None:
        for r in plan.routes.filter(locked=True).select_related("truck"):
            if r.truck.in_service:
                trucks.setdefault(r.truck_id, r.truck)
    return [t for pk, t in sorted(trucks.items()) if pk not in exclude]


# --- the public services -------------------------------------------------------------------------------------


def plan_create(
    *,
    date: dt.date,
    reason: str,
    run=None,
    user=None,
    parent: CollectionPlan | None = None,
    states: dict[int, FillState] | None = None,
    reuse_candidates: bool = False,
    exclude_truck_ids: set[int] = frozenset(),
    time_limit: float = DEFAULT_TIME_LIMIT,
    seed: int = 1,
    max_iterations: int | None = None,
    policy: ChoicePolicy = DEFAULT_POLICY,
    fixed_cost: int = TRUCK_FIXED_COST_M,
    baseline: bool = True,
    extra_kpis: dict | None = None,
    now: dt.datetime | None = None,
    positions: dict[str, tuple[float, float]] | None = None,
) -> CollectionPlan:
    """Plan `date` and store it as the next draft version.

    A `parent` plan's locked routes are kept as they are (their bins and trucks leave the problem) unless
    their truck is out of service; `reuse_candidates` re-optimises the parent's own bins instead of asking
    the fill model again. The plan is checked by the independent checker before it is stored, and the
    fixed-schedule baseline for the same day is routed by the same solver for the KPIs (`baseline`).

    A re-plan (`parent`) at `now` during the parent's shift is a re-plan *on the road*: bins the crews
    have dealt with stay done, each truck not locked starts where it is (`trucks_in_flight`; `positions`
    are trucks' reported positions by code), at `now`, with its load; the new routes are the rest of the
    day."""
    trucks = _plan_trucks(parent, exclude=set(exclude_truck_ids))
    if states is None:
        states = _states(list(Bin.objects.filter(active=True).values_list("pk", flat=True)))
    notes: list[str] = []
    locked_routes: list[VrpRoute] = []
    locked_bins: set[str] = set()
    locked_trucks: set[int] = set()
    if parent is not None:
        for r in parent.routes.filter(locked=True).select_related("truck").prefetch_related("stops"):
            if r.truck_id in exclude_truck_ids or not r.truck.in_service:
                notes.append(f"route of {r.truck.code} was locked but the truck is out of service")
                continue
            locked_bins |= {f"bin:{s.bin_id}" for s in r.stops.all() if s.bin_id}
            locked_trucks.add(r.truck_id)
    starts: dict[int, TruckStart] = {}
    on_road = (
        parent is not None
        and now is not None
        and trucks
        and _day_seconds(date, now) > min(_secs(t.shift_start) for t in trucks)
        and _day_seconds(date, now) < max(_secs(t.shift_end) for t in trucks)
    )
    if on_road:
        starts, finished, more = trucks_in_flight(
            plan=parent, now=now, positions=positions, trucks=[t for t in trucks if t.pk not in locked_trucks]
        )
        trucks = [t for t in trucks if t.pk not in finished]
        notes += more
    if reuse_candidates and parent is not None:
        done = _done_on(date, until=now) if on_road else _collected_on(date)
        done = {f"bin:{pk}" for pk in done} - locked_bins
        choices = [c for c in _candidates(parent) if c.id not in done]
    else:
        choices, more = bins_choices_for(date=date, trucks=trucks, states=states, policy=policy)
        notes += more
        if parent is not None:  # a locked route's bins stay in the problem whatever today's forecast says
            fresh = {c.id for c in choices}
            choices += [c for c in _candidates(parent) if c.id in locked_bins and c.id not in fresh]
    problem = problem_build(date=date, trucks=trucks, choices=choices, fixed_cost=fixed_cost, starts=starts)
    if parent is not None and locked_bins:
        locked_routes, _ = _stored_routes(parent, problem, only_locked=True)
    day = day_plan_solve(
        build=lambda ch: problem_rechoose(problem=problem, choices=ch).instance,
        choices=list(problem.choices.values()),
        truck_types=[t.waste_types or [] for t in problem.trucks],
        client_stream={k: b.waste_type for k, b in problem.bins.items()},
        demand_at=demand_at_for(date=date, bins=problem.bins, states=states, policy=policy),
        locked=locked_routes,
        time_limit=time_limit,
        seed=seed,
        max_iterations=max_iterations,
    )
    problem = problem_rechoose(problem=problem, choices=day.choices)
    notes += day.notes
    routes = _unloads_added(problem, day.solution.routes)
    solved = Solved(
        routes=routes,
        violations=plan_check(instance=problem.instance, routes=routes),
        solve_s=day.solution.solve_s,
        notes=day.solution.notes,
    )
    kpis = _summary_kpis(problem, solved)
    kpis.update(
        {
            "solve_s": round(solved.solve_s, 2),
            "feasible": not solved.violations,
            "unreachable": problem.unreachable[:50],
            "notes": (notes + solved.notes)[:50],
        }
    )
    if baseline and trucks:
        base_problem = problem_build(
            date=date,
            trucks=trucks,
            choices=baseline_choices_for(date=date, states=states),
            fixed_cost=fixed_cost,
            network=problem.network,
        )
        base = problem_solve(
            problem=base_problem, time_limit=time_limit, seed=seed, max_iterations=max_iterations
        )
        b = _summary_kpis(base_problem, base)
        # The bins the plan had to empty (at risk of overflowing) that the fixed schedule leaves full: not due
        # on this weekday, or due but left off its routes.
        at_risk = {cid for cid, c in problem.choices.items() if c.required}
        kpis.update(
            {
                "baseline_km": b["km"],
                "baseline_hours": b["hours"],
                "baseline_bins": b["bins_visited"],
                "baseline_trucks": b["trucks_used"],
                "baseline_at_risk_left": len(at_risk - _visited(base_problem, base)),
                "baseline_feasible": not base.violations,
            }
        )
    elif parent is not None:
        kpis.update({k: v for k, v in parent.kpis.items() if k.startswith("baseline_")})
    kpis.update(extra_kpis or {})
    locked_vt = {r.vehicle_type for r in locked_routes}
    for attempt in range(2):
        try:
            return _plan_store(
                problem=problem,
                solved=solved,
                reason=reason,
                run=run,
                user=user,
                parent=parent,
                locked_trucks=locked_vt,
                kpis=kpis,
            )
        except IntegrityError:  # a concurrent run took the same version number
            if attempt:
                raise


def _unloads_added(problem: Problem, routes: list[VrpRoute]) -> list[VrpRoute]:
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


def plan_stop_move(*, plan: CollectionPlan, bin: Bin, truck: Truck, user) -> CollectionPlan:
    """Move a bin to another truck's route (at its cheapest feasible place) as a new draft version.

    Refused when either route is locked or the checker finds a rule the plan did not already break."""
    if not truck.in_service:
        raise PlanEditError(f"truck {truck.code} is out of service")
    key = f"bin:{bin.pk}"
    if key not in plan.candidates:
        raise PlanEditError(f"bin {bin.code} is not among this plan's bins")
    if plan.routes.filter(truck=truck, locked=True).exists():
        raise PlanEditError(f"the route of {truck.code} is locked; unlock it first")
    if bin.waste_type not in (truck.waste_types or []):
        raise PlanEditError(f"truck {truck.code} does not collect {bin.get_waste_type_display()}")
    trucks = _plan_trucks(plan)
    if truck.pk not in {t.pk for t in trucks}:
        trucks.append(truck)
    for r in plan.routes.select_related("truck"):
        if r.truck_id not in {t.pk for t in trucks}:
            trucks.append(r.truck)
    problem = problem_build(date=plan.date, trucks=trucks, choices=_candidates(plan))
    if key in problem.unreachable:
        raise PlanEditError(f"bin {bin.code} cannot be reached on the open roads")
    routes, locked = _stored_routes(plan, problem)
    target = problem.vehicle_type_of(truck)
    if target in locked:
        raise PlanEditError(f"the route of {truck.code} is locked; unlock it first")
    # What the plan already breaks is not the edit's fault; anything about the moved bin is.
    before = {(v.rule, v.node) for v in plan_check(instance=problem.instance, routes=routes) if v.node != key}
    source = next((i for i, r in enumerate(routes) if key in r.visits), None)
    if source is not None:
        if routes[source].vehicle_type in locked:
            raise PlanEditError("the bin's current route is locked; unlock it first")
        if routes[source].vehicle_type == target:
            raise PlanEditError(f"bin {bin.code} is already on {truck.code}'s route")
        routes[source] = VrpRoute(
            vehicle_type=routes[source].vehicle_type,
            visits=_drop_empty_trips([v for v in routes[source].visits if v != key]),
        )
    t_idx = next((i for i, r in enumerate(routes) if r.vehicle_type == target), None)
    if t_idx is None:
        routes.append(VrpRoute(vehicle_type=target, visits=[]))
        t_idx = len(routes) - 1
    base_visits = routes[t_idx].visits
    best, best_cost, best_bad = None, None, None
    site_ids = [s.id for s in problem.instance.disposal_sites]
    nearest = min(site_ids, key=lambda s: problem.instance.distance[_loc(problem, key), _loc(problem, s)])
    positions = range(len(base_visits) + 1) if base_visits else [0]
    # Into a trip, or (when the trips are full) as a short trip of its own with an unload after it.
    trials = [base_visits[:pos] + [key] + base_visits[pos:] for pos in positions]
    trials += [
        base_visits[:pos] + [key, nearest] + base_visits[pos:]
        for pos in positions
        if pos < len(base_visits) and (pos == 0 or base_visits[pos - 1].startswith("site:"))
    ]
    for visits in trials:
        if not visits or not visits[-1].startswith("site:"):
            visits = visits + [nearest]
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
    if best is None:
        raise PlanEditError(
            [f"moving {bin.code} to {truck.code} breaks: {v.message}" for v in (best_bad or [])[:5]]
            or [f"no place on {truck.code}'s route takes {bin.code}"]
        )
    solved = Solved(routes=best, violations=plan_check(instance=problem.instance, routes=best))
    kpis = {
        **{k: v for k, v in plan.kpis.items() if k.startswith("baseline_") or k == "forecast_mae"},
        **_summary_kpis(problem, solved),
        "feasible": not solved.violations,
    }
    return _plan_store(
        problem=problem,
        solved=solved,
        reason=f"edit: {bin.code} moved to {truck.code}",
        user=user,
        parent=plan,
        locked_trucks=locked,
        kpis=kpis,
    )


def _loc(problem: Problem, node: str) -> int:
    kind, pos = problem.instance.node_kinds()[node]
    items = {
        "client": problem.instance.clients,
        "depot": problem.instance.depots,
        "disposal": problem.instance.disposal_sites,
    }[kind]
    return items[pos].loc


def _drop_empty_trips(visits: list[str]) -> list[str]:
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


def plan_route_lock(*, route: PlanRoute, locked: bool, user) -> PlanRoute:
    """Lock (or unlock) a route against re-optimising. Only a plan still in force can be changed."""
    if route.plan.status == CollectionPlan.Status.SUPERSEDED:
        raise PlanEditError("this plan version has been superseded; edit the current one")
    PlanRoute.objects.filter(pk=route.pk).update(locked=locked)
    route.locked = locked
    audit_record(
        action="sanitation.route_locked" if locked else "sanitation.route_unlocked", obj=route, actor=user
    )
    return route


def plan_reoptimise(
    *,
    plan: CollectionPlan,
    user,
    run=None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    seed: int = 1,
    max_iterations: int | None = None,
) -> CollectionPlan:
    """Re-solve everything but the locked routes, with the plan's own bins, as a new draft version."""
    locked = list(plan.routes.filter(locked=True).values_list("truck__code", flat=True))
    reason = "re-optimised" + (f", keeping {', '.join(locked)}" if locked else "")
    return plan_create(
        date=plan.date,
        reason=reason,
        user=user,
        run=run,
        parent=plan,
        reuse_candidates=True,
        time_limit=time_limit,
        seed=seed,
        max_iterations=max_iterations,
        baseline=False,
        extra_kpis={k: v for k, v in plan.kpis.items() if k in ("forecast_mae", "overflows")},
    )


@transaction.atomic
def plan_approve(*, plan: CollectionPlan, user) -> CollectionPlan:
    """A dispatcher approves a version: crews then see it; the version approved before is superseded."""
    if not user_has_role(user, Role.DISPATCHER):
        raise PermissionDenied("only dispatchers approve plans")
    plan = CollectionPlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status == CollectionPlan.Status.SUPERSEDED:
        raise PlanEditError("this version has been superseded by a newer one")
    if not plan.feasible:
        raise PlanEditError(
            ["the checker rejects this plan: " + "; ".join(v["message"] for v in plan.violations[:3])]
        )
    if plan.status == CollectionPlan.Status.APPROVED:
        return plan
    newer = CollectionPlan.objects.filter(date=plan.date, version__gt=plan.version).exists()
    if newer:
        raise PlanEditError(f"a newer version of the plan for {plan.date} exists; approve that one")
    CollectionPlan.objects.filter(date=plan.date, version__lt=plan.version).exclude(
        status=CollectionPlan.Status.SUPERSEDED
    ).update(status=CollectionPlan.Status.SUPERSEDED)
    plan.status = CollectionPlan.Status.APPROVED
    plan.approved_by = user
    plan.approved_at = timezone.now()
    plan.save(update_fields=["status", "approved_by", "approved_at"])
    audit_record(action="sanitation.plan_approved", obj=plan, actor=user, changes={"version": plan.version})
    return plan


def plan_touches(*, plan: CollectionPlan, segment_ids: set[int]) -> bool:
    """Whether any route of the plan drives one of these road segments."""
    return any(segment_ids & set(r.segment_ids or []) for r in plan.routes.all())
