"""What the collection planner reads (`services.plans` writes): the road network of a day, the fill model's
states, the bins a day's plan must or may visit, where trucks already on the road are, and a stored plan's
trucks, candidates and routes in the planner's terms. The planning itself is `domain.planner` (no Django)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from django.db.models import QuerySet
from django.utils import timezone

from agents.sanitation.vrp import PlanRoute as VrpRoute
from city_ops.city.network import RoadNetwork, road_network
from city_ops.core.timeutil import city_tz

from .domain.baseline import FixedBin, fixed_due, fixed_schedule_build
from .domain.choice import BinChoice, ChoicePolicy, bin_outlook, bin_prize, bins_choose, stream_prize_scales
from .domain.fill import FillState, fill_forecast
from .domain.planner import (
    DEFAULT_POLICY,
    TRUCK_FIXED_COST_M,
    Problem,
    TruckStart,
    lunch_of,
    next_service_day,
    problem_assemble,
    seconds_of,
)
from .models import Bin, CollectionPlan, Depot, DisposalSite, FillModel, Pickup, PlanStop, Truck
from .services.fill import state_from_json

# --- the day's clock and roads ---------------------------------------------------------------------------


def midnight(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(), tzinfo=city_tz())


def day_seconds(date: dt.date, at: dt.datetime) -> int:
    """Seconds from `date`'s local midnight to `at`."""
    return int((at - midnight(date)).total_seconds())


def network_for(date: dt.date) -> RoadNetwork:
    """The road network as it will be when the day's shift starts (now, if that has passed)."""
    at = max(timezone.now(), midnight(date) + dt.timedelta(hours=6))
    return road_network(at=at)


def problem_build(
    *,
    date: dt.date,
    trucks: Sequence[Truck],
    choices: Sequence[BinChoice],
    fixed_cost: int = TRUCK_FIXED_COST_M,
    network: RoadNetwork | None = None,
    starts: dict[int, TruckStart] | None = None,
) -> Problem:
    """The day's routing problem (`domain.planner.problem_assemble`) on the trucks' depots, every disposal
    site and the chosen bins, on the (closure-aware) road network of the day unless `network` is given."""
    depots = {
        f"depot:{d.pk}": d for d in Depot.objects.filter(pk__in={t.depot_id for t in trucks}).order_by("pk")
    }
    bin_ids = [int(str(c.id).split(":")[1]) for c in choices]
    return problem_assemble(
        date=date,
        trucks=trucks,
        choices=choices,
        depots=depots,
        sites={f"site:{s.pk}": s for s in DisposalSite.objects.order_by("pk")},
        bins={f"bin:{b.pk}": b for b in Bin.objects.filter(pk__in=bin_ids)},
        network=network or network_for(date),
        fixed_cost=fixed_cost,
        starts=starts,
    )


# --- the bins of a day -----------------------------------------------------------------------------------


def fill_states(bin_ids: Sequence[int]) -> dict[int, FillState]:
    """The fill model's state of each of these bins that has one."""
    out = {}
    for bin_id, state in FillModel.objects.filter(bin_id__in=bin_ids).values_list("bin_id", "state"):
        s = state_from_json(state)
        if s is not None:
            out[bin_id] = s
    return out


def fill_states_active() -> dict[int, FillState]:
    return fill_states(list(Bin.objects.filter(active=True).values_list("pk", flat=True)))


def collected_on(date: dt.date) -> set[int]:
    """Bins a crew has already emptied on `date` (a re-plan during the day leaves them out)."""
    return set(
        Pickup.objects.filter(
            status=Pickup.Status.COLLECTED,
            at__gte=midnight(date),
            at__lt=midnight(date + dt.timedelta(days=1)),
        ).values_list("bin_id", flat=True)
    )


def done_on(date: dt.date, *, until: dt.datetime) -> set[int]:
    """Bins a crew has dealt with on `date` up to `until`: collected, or skipped with a reason (a re-plan
    on the road does not send a truck back to a bin its crew just found blocked)."""
    return set(Pickup.objects.filter(at__gte=midnight(date), at__lte=until).values_list("bin_id", flat=True))


def bins_choices_for(
    *,
    date: dt.date,
    trucks: Sequence[Truck],
    states: dict[int, FillState] | None = None,
    policy: ChoicePolicy = DEFAULT_POLICY,
    exclude: set[int] = frozenset(),
    bins: QuerySet[Bin] | None = None,
) -> tuple[list[BinChoice], list[str]]:
    """The day's candidate bins from the fill model (mandatory and optional with prizes) among `bins` (every
    active bin by default); notes for bins it cannot forecast. Bins already collected that day, or in
    `exclude`, are left out."""
    bins = list((bins if bins is not None else Bin.objects.filter(active=True)).order_by("pk"))
    states = states if states is not None else fill_states([b.pk for b in bins])
    start = min((seconds_of(t.shift_start) for t in trucks), default=6 * 3600)
    end = max((seconds_of(t.shift_end) for t in trucks), default=15 * 3600)
    nxt = next_service_day(date).toordinal()
    collected = collected_on(date)
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


def baseline_choices_for(*, date: dt.date, states: dict[int, FillState] | None = None) -> list[BinChoice]:
    """The fixed schedule's bins for `date` (every bin on fixed weekdays as often as its learned mean rate
    needs), all required, with the same demand forecast as the plan."""
    bins = list(Bin.objects.filter(active=True).order_by("pk"))
    states = states if states is not None else fill_states([b.pk for b in bins])
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


def district_choices(
    *,
    date: dt.date,
    district,
    trucks: Sequence[Truck],
    policy: ChoicePolicy = DEFAULT_POLICY,
    max_bins: int | None = None,
    assume_level: float | None = None,
) -> tuple[list[BinChoice], list[str]]:
    """A district's candidate bins (`bins_choices_for` on the bins inside it). A bin the fill model cannot
    forecast yet is offered as optional at `assume_level` when that is given (a synthetic city has no fill
    history), else left out with a note. At most `max_bins`: mandatory ones first, then the best prizes."""
    inside = Bin.objects.filter(active=True, geom__within=district.geom)
    states = fill_states(list(inside.values_list("pk", flat=True)))
    known = {pk for pk, s in states.items() if s.last_at is not None}
    choices, notes = bins_choices_for(date=date, trucks=trucks, states=states, policy=policy,
                                      bins=inside.filter(pk__in=known))
    unknown = inside.exclude(pk__in=known).order_by("pk")
    if assume_level is None:
        notes += [f"bin {code}: no readings or pickups yet" for code in unknown.values_list("code", flat=True)]
    else:
        choices += [_assumed_choice(b, level=assume_level, policy=policy) for b in unknown]
    choices.sort(key=lambda c: (not c.required, -c.prize, str(c.id)))
    return choices[:max_bins] if max_bins is not None else choices, notes


def _assumed_choice(b: Bin, *, level: float, policy: ChoicePolicy) -> BinChoice:
    litres = round(level * b.capacity_l)
    return BinChoice(id=f"bin:{b.pk}", required=False, prize=bin_prize(level=level, policy=policy),
                     demand_l=litres, demand_kg=max(1, round(litres * b.density_kg_l)), level=level,
                     reason="no forecast yet: assumed level")


# --- trucks on the road ----------------------------------------------------------------------------------


def _litres(p: Pickup) -> float:
    """What a pickup put in its truck, from the fill its crew saw (none for a bin skipped)."""
    if p.status != Pickup.Status.COLLECTED:
        return 0.0
    return min(max(p.observed_fill or 0.0, 0.0), DEFAULT_POLICY.max_level) * p.bin.capacity_l


def _load_since_unload(truck: Truck, mine: list[Pickup]) -> tuple[int, int]:
    """The litres and kilograms on board after the truck's last mark: what it collected since its last
    planned unload before that bin, plus the load its route started with when no unload came since."""
    last = mine[-1]
    route = last.stop.route
    unload = max(
        (
            st.order
            for st in route.stops.order_by("order")
            if st.kind == PlanStop.Kind.DISPOSAL and st.order < last.stop.order
        ),
        default=None,
    )
    head = route.profile[0] if route.profile and unload is None else {}
    since = [p for p in mine if p.stop.route_id == route.pk and p.stop.order > (unload or 0)]
    # More than the nominal capacity (the crews' eyes, compaction) is a full truck: it unloads first.
    load_l = min(round(head.get("load_l", 0) + sum(_litres(p) for p in since)), truck.capacity_l)
    load_kg = min(
        round(head.get("load_kg", 0) + sum(_litres(p) * p.bin.density_kg_l for p in since)),
        truck.capacity_kg,
    )
    return load_l, load_kg


def _lunch_taken(truck: Truck, route, *, now: dt.datetime, ready: int) -> bool:
    taken = bool(route and route.lunch_at and now >= route.lunch_at + dt.timedelta(minutes=truck.lunch_min))
    lunch = lunch_of(truck)
    if lunch is not None and not taken and ready > lunch.latest:
        taken = True  # its crew's window has passed: the crew had its break where it could
    return taken


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
    now_s = day_seconds(date, now)
    positions = positions or {}
    marks = defaultdict(list)
    for p in Pickup.objects.filter(
        at__gte=midnight(date), at__lte=now, stop__route__plan__date=date
    ).select_related("stop__route", "bin"):
        marks[p.stop.route.truck_id].append(p)
    routes = {r.truck_id: r for r in plan.routes.all()}
    starts: dict[int, TruckStart] = {}
    finished: set[int] = set()
    notes: list[str] = []
    for t in trucks:
        mine = sorted(marks.get(t.pk, []), key=lambda p: (p.at, p.stop.order))
        collected_kg = round(sum(_litres(p) * p.bin.density_kg_l for p in mine))
        lonlat, label, ready = (t.depot.geom.x, t.depot.geom.y), "depot", max(now_s, seconds_of(t.shift_start))
        load_l = load_kg = 0
        if mine:
            load_l, load_kg = _load_since_unload(t, mine)
            lonlat, label = (mine[-1].bin.geom.x, mine[-1].bin.geom.y), f"at {mine[-1].bin.code}"
            ready = max(now_s, day_seconds(date, mine[-1].at))
        if t.code in positions:
            lonlat, label, ready = tuple(float(x) for x in positions[t.code]), "reported position", now_s
        if ready >= seconds_of(t.shift_end):
            finished.add(t.pk)
            notes.append(f"{t.code}'s shift is over; it is left out of the re-plan")
            continue
        starts[t.pk] = TruckStart(
            lonlat=lonlat,
            label=label,
            ready_s=ready,
            load_l=load_l,
            load_kg=load_kg,
            collected_kg=collected_kg,
            lunch_taken=_lunch_taken(t, routes.get(t.pk), now=now, ready=ready),
        )
        if mine or t.code in positions:
            notes.append(
                f"{t.code} re-planned from {label} at {now_s // 3600}:{now_s % 3600 // 60:02d} "
                f"with {load_l} L on board"
            )
    return starts, finished, notes


# --- a stored plan in the planner's terms ----------------------------------------------------------------


def stored_routes(
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


def plan_candidates(plan: CollectionPlan) -> list[BinChoice]:
    """The bins a stored plan was offered (its `candidates`), as the planner's choices."""
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


def locked_kept(
    parent: CollectionPlan | None, *, exclude_truck_ids: set[int]
) -> tuple[set[str], set[int], list[str]]:
    """The bins and trucks of the parent plan's locked routes that stay as they are; notes for the locked
    routes whose truck is out of service (they are re-planned)."""
    bins: set[str] = set()
    trucks: set[int] = set()
    notes: list[str] = []
    if parent is None:
        return bins, trucks, notes
    for r in parent.routes.filter(locked=True).select_related("truck").prefetch_related("stops"):
        if r.truck_id in exclude_truck_ids or not r.truck.in_service:
            notes.append(f"route of {r.truck.code} was locked but the truck is out of service")
            continue
        bins |= {f"bin:{s.bin_id}" for s in r.stops.all() if s.bin_id}
        trucks.add(r.truck_id)
    return bins, trucks, notes


def plan_trucks(plan: CollectionPlan | None, *, exclude: set[int] = frozenset()) -> list[Truck]:
    """Trucks in service, plus those a plan's locked routes use; never the excluded ones."""
    qs = Truck.objects.filter(in_service=True)
    trucks = {t.pk: t for t in qs}
    if plan is not None:
        for r in plan.routes.filter(locked=True).select_related("truck"):
            if r.truck.in_service:
                trucks.setdefault(r.truck_id, r.truck)
    return [t for pk, t in sorted(trucks.items()) if pk not in exclude]
