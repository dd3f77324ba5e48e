"""Collection plans: build the day's routing problem from the database and the fill model
(`agents.sanitation.plan_selectors`), plan it with the Django-free planner (`domain.planner`: PyVRP through
agents.sanitation.vrp, checked by our own checker), and store it as a new plan version with routes that
follow the roads; edit (move a bin, lock a route, re-optimise the rest), approve, and re-plan around
closures and breakdowns.

Every stored version carries its checker verdict (`feasible`, `violations`). An edit that would break a
rule the plan did not already break is refused with the checker's messages; approval refuses a plan the
checker rejects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise

from django.contrib.gis.geos import LineString
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.sanitation.vrp import PlanRoute as VrpRoute
from agents.sanitation.vrp import plan_check
from city_ops.city.network import NoRouteError, RoadNetwork
from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record

from .. import plan_selectors as ps  # a module: plan_selectors reads services.fill, which imports this one
from ..conf import DEFAULTS
from ..domain.choice import ChoicePolicy
from ..domain.fill import FillState
from ..domain.planner import (
    DEFAULT_POLICY,
    TRUCK_FIXED_COST_M,
    Problem,
    Solved,
    TruckStart,
    baseline_kpis,
    day_planned,
    drop_empty_trips,
    problem_solve,
    seconds_of,
    stop_move_best,
    summary_kpis,
)
from ..domain.routing import routes_summarise
from ..models import Bin, CollectionPlan, PlanRoute, PlanStop, Truck

DEFAULT_TIME_LIMIT = float(DEFAULTS["SANITATION_PLAN_TIME_LIMIT_S"])
ROUTE_COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#e67700"]


class PlanEditError(ValidationError):
    """An edit the checker refuses; `messages` are the rules it would break."""


@dataclass(frozen=True)
class PlanOptions:
    """How a day is planned: the solver's budget and seed (`max_iterations` too, for a plan that must come
    out the same on any machine), the bin choice's policy, what a truck used costs, and whether the fixed
    schedule is routed beside the plan for the KPIs (`baseline_*`)."""

    time_limit: float = DEFAULT_TIME_LIMIT
    seed: int = 1
    max_iterations: int | None = None
    policy: ChoicePolicy = DEFAULT_POLICY
    fixed_cost: int = TRUCK_FIXED_COST_M
    baseline: bool = True

    def solver(self) -> dict:
        return {"time_limit": self.time_limit, "seed": self.seed, "max_iterations": self.max_iterations}


@dataclass(frozen=True)
class Replan:
    """A new version of the stored plan `parent`. Its locked routes are kept as they are (their bins and
    trucks leave the problem) unless their truck is out of service or in `exclude_truck_ids` (a
    breakdown); `reuse_candidates` re-optimises the parent's own bins instead of asking the fill model
    again. At `now` during the parent's shift it is a re-plan *on the road*: bins the crews have dealt
    with stay done, each truck not locked starts where it is (`trucks_in_flight`; `positions` are trucks'
    reported positions by code), at `now`, with its load; the new routes are the rest of the day."""

    parent: CollectionPlan
    reuse_candidates: bool = False
    exclude_truck_ids: frozenset[int] = frozenset()
    now: dt.datetime | None = None
    positions: Mapping[str, tuple[float, float]] | None = None


def _clock(date: dt.date, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else ps.midnight(date) + dt.timedelta(seconds=int(seconds))


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


def _plan_row(
    *, problem: Problem, solved: Solved, reason: str, run, user, parent: CollectionPlan | None, kpis: dict | None
) -> CollectionPlan:
    """The plan's own row, as the next version of its date."""
    date = problem.date
    # Serialise version numbers per date: lock the date's rows, then take the next number.
    last = (
        CollectionPlan.objects.select_for_update()
        .filter(date=date)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    ) or 0
    return CollectionPlan.objects.create(
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


def _route_profile(problem: Problem, summary, start: TruckStart | None) -> list[dict]:
    """The truck's load along its route, stop by stop. A route re-planned on the road starts where the
    truck is, with what it carries (the next re-plan reads that load back from here)."""
    date = problem.date
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
            {"t": _clock(date, st.end).isoformat(), "load_l": st.load_l, "load_kg": st.load_kg, "label": label}
        )
    profile.append({"t": _clock(date, summary.back).isoformat(), "load_l": 0, "load_kg": 0, "label": "depot"})
    return profile


def _route_store(
    *, plan: CollectionPlan, problem: Problem, summary, order: int, locked_trucks: set[int]
) -> PlanRoute:
    """One truck's route, following the roads from where it starts back to its depot."""
    date = problem.date
    truck = problem.trucks[summary.vehicle_type]
    depot_key = f"depot:{truck.depot_id}"
    start = problem.starts.get(truck.pk)
    first = problem.lonlat[f"start:{truck.code}"] if start else problem.lonlat[depot_key]
    points = [first] + [problem.lonlat[v] for v in summary.visits] + [problem.lonlat[depot_key]]
    coords, segment_ids, road_m = _route_geometry(problem.network, points)
    return PlanRoute.objects.create(
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
        profile=_route_profile(problem, summary, start),
        locked=summary.vehicle_type in locked_trucks,
        color=ROUTE_COLORS[order % len(ROUTE_COLORS)],
    )


def _route_stops(*, route: PlanRoute, problem: Problem, summary) -> list[PlanStop]:
    date = problem.date
    stops = []
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
    return stops


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
    plan = _plan_row(problem=problem, solved=solved, reason=reason, run=run, user=user, parent=parent, kpis=kpis)
    summaries = routes_summarise(instance=problem.instance, routes=solved.routes)
    stops = []
    for order, summary in enumerate(sorted(summaries, key=lambda s: s.truck)):
        route = _route_store(plan=plan, problem=problem, summary=summary, order=order, locked_trucks=locked_trucks)
        stops += _route_stops(route=route, problem=problem, summary=summary)
    PlanStop.objects.bulk_create(stops, batch_size=2000)
    audit_record(
        action="sanitation.plan_created",
        obj=plan,
        actor=user,
        actor_label="agent:sanitation",
        changes={"version": plan.version, "reason": plan.reason, "feasible": plan.feasible},
    )
    return plan


# --- the public services -------------------------------------------------------------------------------------


def _is_on_road(*, date: dt.date, now: dt.datetime | None, trucks: list[Truck]) -> bool:
    """Whether `now` falls within the day's shifts (a re-plan then starts the trucks where they are)."""
    if now is None or not trucks:
        return False
    now_s = ps.day_seconds(date, now)
    return min(seconds_of(t.shift_start) for t in trucks) < now_s < max(seconds_of(t.shift_end) for t in trucks)


def _day_choices(
    *,
    date: dt.date,
    trucks: list[Truck],
    parent: CollectionPlan | None,
    reuse_candidates: bool,
    locked_bins: set[str],
    states: dict[int, FillState],
    policy: ChoicePolicy,
    done_until: dt.datetime | None,
) -> tuple[list, list[str]]:
    """The day's candidate bins: the parent's own (less those the crews have dealt with) when re-using
    them, otherwise the fill model's, plus the parent's locked routes' bins whatever today's forecast says."""
    if reuse_candidates and parent is not None:
        done = ps.done_on(date, until=done_until) if done_until is not None else ps.collected_on(date)
        done = {f"bin:{pk}" for pk in done} - locked_bins
        return [c for c in ps.plan_candidates(parent) if c.id not in done], []
    choices, notes = ps.bins_choices_for(date=date, trucks=trucks, states=states, policy=policy)
    if parent is not None:
        fresh = {c.id for c in choices}
        choices += [c for c in ps.plan_candidates(parent) if c.id in locked_bins and c.id not in fresh]
    return choices, notes


def _baseline_routed(
    *, problem: Problem, trucks: list[Truck], states: dict[int, FillState], options: PlanOptions
) -> dict:
    """The fixed schedule for the same day, routed by the same solver on the same roads (`baseline_*`)."""
    base_problem = ps.problem_build(
        date=problem.date,
        trucks=trucks,
        choices=ps.baseline_choices_for(date=problem.date, states=states),
        fixed_cost=options.fixed_cost,
        network=problem.network,
    )
    base = problem_solve(problem=base_problem, **options.solver())
    return baseline_kpis(problem=problem, base_problem=base_problem, base=base)


def _plan_store_retrying(**kwargs) -> CollectionPlan:
    try:
        return _plan_store(**kwargs)
    except IntegrityError:  # a concurrent run took the same version number: take the next one
        return _plan_store(**kwargs)


def plan_create(
    *,
    date: dt.date,
    reason: str,
    run=None,
    user=None,
    replan: Replan | None = None,
    states: dict[int, FillState] | None = None,
    extra_kpis: dict | None = None,
    options: PlanOptions = PlanOptions(),
) -> CollectionPlan:
    """Plan `date` (a new version of a stored plan: `replan`) and store it as the next draft version.

    The plan is checked by the independent checker before it is stored, and the fixed-schedule baseline
    for the same day is routed by the same solver for the KPIs (`options.baseline`; a re-plan without it
    keeps its parent's)."""
    parent = replan.parent if replan is not None else None
    exclude = set(replan.exclude_truck_ids) if replan is not None else set()
    trucks = ps.plan_trucks(parent, exclude=exclude)
    if states is None:
        states = ps.fill_states_active()
    locked_bins, locked_trucks, notes = ps.locked_kept(parent, exclude_truck_ids=exclude)
    starts: dict[int, TruckStart] = {}
    on_road = replan is not None and _is_on_road(date=date, now=replan.now, trucks=trucks)
    if on_road:
        starts, finished, more = ps.trucks_in_flight(
            plan=parent, now=replan.now, positions=dict(replan.positions or {}),
            trucks=[t for t in trucks if t.pk not in locked_trucks],
        )
        trucks = [t for t in trucks if t.pk not in finished]
        notes += more
    choices, more = _day_choices(
        date=date, trucks=trucks, parent=parent, reuse_candidates=replan is not None and replan.reuse_candidates,
        locked_bins=locked_bins, states=states, policy=options.policy, done_until=replan.now if on_road else None,
    )
    notes += more
    problem = ps.problem_build(
        date=date, trucks=trucks, choices=choices, fixed_cost=options.fixed_cost, starts=starts
    )
    locked_routes: list[VrpRoute] = []
    if parent is not None and locked_bins:
        locked_routes, _ = ps.stored_routes(parent, problem, only_locked=True)
    problem, solved, more = day_planned(
        problem=problem, states=states, policy=options.policy, locked=locked_routes, **options.solver()
    )
    kpis = summary_kpis(problem, solved)
    kpis.update(
        {
            "solve_s": round(solved.solve_s, 2),
            "feasible": not solved.violations,
            "unreachable": problem.unreachable[:50],
            "notes": (notes + more + solved.notes)[:50],
        }
    )
    if options.baseline and trucks:
        kpis.update(_baseline_routed(problem=problem, trucks=trucks, states=states, options=options))
    elif parent is not None:
        kpis.update({k: v for k, v in parent.kpis.items() if k.startswith("baseline_")})
    kpis.update(extra_kpis or {})
    return _plan_store_retrying(
        problem=problem,
        solved=solved,
        reason=reason,
        run=run,
        user=user,
        parent=parent,
        locked_trucks={r.vehicle_type for r in locked_routes},
        kpis=kpis,
    )


def _move_checked(*, plan: CollectionPlan, bin: Bin, truck: Truck) -> None:
    """The refusals a move needs no routing for."""
    if not truck.in_service:
        raise PlanEditError(f"truck {truck.code} is out of service")
    if f"bin:{bin.pk}" not in plan.candidates:
        raise PlanEditError(f"bin {bin.code} is not among this plan's bins")
    if plan.routes.filter(truck=truck, locked=True).exists():
        raise PlanEditError(f"the route of {truck.code} is locked; unlock it first")
    if bin.waste_type not in (truck.waste_types or []):
        raise PlanEditError(f"truck {truck.code} does not collect {bin.get_waste_type_display()}")


def _move_problem(*, plan: CollectionPlan, truck: Truck) -> Problem:
    """The plan's day with its own bins, on every truck it uses plus the target."""
    trucks = ps.plan_trucks(plan)
    if truck.pk not in {t.pk for t in trucks}:
        trucks.append(truck)
    for r in plan.routes.select_related("truck"):
        if r.truck_id not in {t.pk for t in trucks}:
            trucks.append(r.truck)
    return ps.problem_build(date=plan.date, trucks=trucks, choices=ps.plan_candidates(plan))


def plan_stop_move(*, plan: CollectionPlan, bin: Bin, truck: Truck, user) -> CollectionPlan:
    """Move a bin to another truck's route (at its cheapest feasible place) as a new draft version.

    Refused when either route is locked or the checker finds a rule the plan did not already break."""
    _move_checked(plan=plan, bin=bin, truck=truck)
    key = f"bin:{bin.pk}"
    problem = _move_problem(plan=plan, truck=truck)
    if key in problem.unreachable:
        raise PlanEditError(f"bin {bin.code} cannot be reached on the open roads")
    routes, locked = ps.stored_routes(plan, problem)
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
            visits=drop_empty_trips([v for v in routes[source].visits if v != key]),
        )
    best, bad = stop_move_best(problem=problem, routes=routes, key=key, target=target, before=before)
    if best is None:
        raise PlanEditError(
            [f"moving {bin.code} to {truck.code} breaks: {v.message}" for v in bad[:5]]
            or [f"no place on {truck.code}'s route takes {bin.code}"]
        )
    solved = Solved(routes=best, violations=plan_check(instance=problem.instance, routes=best))
    kpis = {
        **{k: v for k, v in plan.kpis.items() if k.startswith("baseline_") or k == "forecast_mae"},
        **summary_kpis(problem, solved),
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
    *, plan: CollectionPlan, user, run=None, options: PlanOptions = PlanOptions()
) -> CollectionPlan:
    """Re-solve everything but the locked routes, with the plan's own bins, as a new draft version."""
    locked = list(plan.routes.filter(locked=True).values_list("truck__code", flat=True))
    reason = "re-optimised" + (f", keeping {', '.join(locked)}" if locked else "")
    return plan_create(
        date=plan.date,
        reason=reason,
        user=user,
        run=run,
        replan=Replan(parent=plan, reuse_candidates=True),
        options=replace(options, baseline=False),
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
