"""Reads for the sanitation agent: bins with their fill models, plans and their routes, crews' routes,
overflow reports, and the history the fill model learns from."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_noop
from pyproj import Transformer

from agents.runtime.base import Headline, StatementSection
from agents.runtime.statement import Note, PeriodKpis, SummedKpi, ratio, section_summed
from city_ops.core.timeutil import city_tz, day_bounds

from .domain.baseline import FixedBin, fixed_schedule_build
from .domain.counterfactual import (
    MAX_INTERVAL_DAYS,
    MAX_LEVEL,
    DayFills,
    ReplayBin,
    day_fills,
    fixed_schedule_replay,
    visits_replay,
)
from .domain.fill import FillObservation, FillParams, FillState, fill_fit, forecast_mae_by_week, local_days
from .models import Bin, CollectionPlan, FillModel, FillReading, Pickup, PlanRoute, PlanStop


def bins_in_area(*, area: GEOSGeometry) -> QuerySet[Bin]:
    """Active bins inside a polygon (spatial index)."""
    if area.srid is None:
        area.srid = 4326
    return Bin.objects.filter(active=True, geom__within=area).order_by("code")


def readings_since(*, since: dt.datetime, bin_ids=None) -> QuerySet:
    qs = FillReading.objects.filter(at__gte=since)
    if bin_ids is not None:
        qs = qs.filter(bin_id__in=bin_ids)
    return qs.order_by("bin_id", "at").values_list("bin_id", "at", "fill")


def pickups_since(*, since: dt.datetime, bin_ids=None) -> QuerySet:
    qs = Pickup.objects.filter(at__gte=since)
    if bin_ids is not None:
        qs = qs.filter(bin_id__in=bin_ids)
    return qs.order_by("bin_id", "at").values_list("bin_id", "at", "status", "reason", "observed_fill", "overflowing")


CREW_SD = 0.08  # a crew's eye on a bin's level (a sensor's is 0.03)


def fill_observations(*, since: dt.datetime, bin_ids: list[int], tz, until: dt.datetime | None = None
                      ) -> dict[int, list[FillObservation]]:
    """Each bin's observed levels since `since` (before `until`), as the fill model and the statement's
    replay read them: sensor readings, and crews' pickups (a recorded level, or "at least full" where it
    overflowed; a collection empties the bin after it)."""
    obs: dict[int, list[FillObservation]] = defaultdict(list)
    for bin_id, at, fill in readings_since(since=since, bin_ids=bin_ids).iterator(chunk_size=20000):
        if until is None or at < until:
            obs[bin_id].append(FillObservation(at=local_days(at=at, tz=tz), level=fill, sd=0.03))
    for bin_id, at, status, reason, observed, overflowing in pickups_since(since=since, bin_ids=bin_ids):
        if until is not None and at >= until:
            continue
        level = observed
        if level is None and (reason == Pickup.Reason.OVERFLOWING or overflowing):
            level = 1.0  # at least full: the filter treats it as censored
        obs[bin_id].append(FillObservation(at=local_days(at=at, tz=tz), level=level,
                                           emptied=status == Pickup.Status.COLLECTED, sd=CREW_SD, source="crew"))
    return obs


def fill_states_fit(*, since: dt.datetime, until: dt.datetime | None = None, params: FillParams = FillParams()
                    ) -> tuple[list[int], list[FillState], list[bool]]:
    """Every active bin's fill model fitted from scratch on what was observed from `since` (before `until`):
    the bin ids, their states (with the day-ahead errors the fit made on the way) and which bins borrowed
    their neighbours' rates. Reads and computes; the fill service stores the result, the statement reads the
    errors."""
    bins = list(Bin.objects.filter(active=True).order_by("id").values_list("id", "geom", "waste_type", "capacity_l"))
    if not bins:
        return [], [], []
    ids = [b[0] for b in bins]
    obs = fill_observations(since=since, bin_ids=ids, tz=city_tz(), until=until)
    to_metric = Transformer.from_crs(4326, settings.CITY_METRIC_SRID, always_xy=True)
    x, y = to_metric.transform([b[1].x for b in bins], [b[1].y for b in bins])
    states, fallback = fill_fit(observations=[obs.get(i, []) for i in ids], xy=np.column_stack([x, y]),
                                groups=[f"{b[2]}:{b[3]}" for b in bins], params=params)
    return ids, states, fallback

def plan_latest(*, date: dt.date, approved_only: bool = False) -> CollectionPlan | None:
    """The newest version for a date that is still in force (approved, or a draft), None if none."""
    qs = CollectionPlan.objects.filter(date=date).exclude(status=CollectionPlan.Status.SUPERSEDED)
    if approved_only:
        qs = qs.filter(status=CollectionPlan.Status.APPROVED)
    return qs.order_by("-version").first()


def plans_current(*, since: dt.date) -> list[CollectionPlan]:
    """The newest in-force version of every date from `since` on (what a closure or breakdown re-plans)."""
    out = []
    for date in (CollectionPlan.objects.filter(date__gte=since).values_list("date", flat=True)
                 .distinct().order_by("date")):
        plan = plan_latest(date=date)
        if plan is not None:
            out.append(plan)
    return out


def plan_routes(*, plan: CollectionPlan, user=None) -> QuerySet[PlanRoute]:
    """A plan's routes with their stops (restricted to what `user` may see, when given)."""
    qs = PlanRoute.objects.filter(plan=plan)
    if user is not None:
        qs = qs.restrict(user, "view")
    stops = PlanStop.objects.select_related("bin", "disposal_site", "pickup").order_by("order")
    return qs.select_related("truck", "crew", "truck__depot").prefetch_related(Prefetch("stops", queryset=stops))


def crew_routes(*, user, date: dt.date) -> list[PlanRoute]:
    """The user's crews' routes in the approved plan for `date` (empty before a dispatcher approves)."""
    plan = plan_latest(date=date, approved_only=True)
    if plan is None:
        return []
    return list(plan_routes(plan=plan).filter(crew__members=user).distinct())


def overflow_reports(*, since: dt.datetime, user=None) -> QuerySet[Pickup]:
    """Crews' reports of overflowing bins (skipped because overflowing, or collected with waste beside)."""
    qs = Pickup.objects.filter(at__gte=since).filter(
        Q(reason=Pickup.Reason.OVERFLOWING) | Q(overflowing=True) | Q(observed_fill__gte=1.0))
    if user is not None:
        qs = qs.restrict(user, "view")
    return qs.select_related("bin", "crew", "reported_by").order_by("-at")


def overflows_count(*, since: dt.datetime, until: dt.datetime) -> int:
    """Bins seen overflowing (a crew's report, or a sensor at its top) between `since` and `until`."""
    reported = set(Pickup.objects.filter(at__gte=since, at__lt=until).filter(
        Q(reason=Pickup.Reason.OVERFLOWING) | Q(overflowing=True) | Q(observed_fill__gte=1.0))
        .values_list("bin_id", flat=True))
    sensed = set(FillReading.objects.filter(at__gte=since, at__lt=until, fill__gte=0.98)
                 .values_list("bin_id", flat=True))
    return len(reported | sensed)


# --- the results statement ---------------------------------------------------------------------------------


def approved_plan_runs(*, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
    """Date -> the run behind the date's approved plan, where that run's KPIs describe that plan (a run is
    for the plan's date and the plan is the last it made; a closure re-plan across several dates reports
    its last plan only)."""
    plans = (CollectionPlan.objects.filter(status=CollectionPlan.Status.APPROVED, date__range=(date_from, date_to),
                                           run__isnull=False)
             .select_related("run"))
    out = {}
    for plan in plans:
        last = plan.run.sanitation_plans.order_by("-pk").values_list("pk", flat=True).first()
        if plan.run.run_date == plan.date and last == plan.pk:
            out[plan.date] = plan.run_id
    return out


# The sanitation agent's part of the results statement: its approved plans' (else nightly runs') distance,
# truck-hours, trucks, bins emptied and bins at risk left full, each against the fixed weekly schedule routed
# by the same solver on the same day's bins and forecast (stored by every plan as `baseline_*`), km per bin
# emptied beside the totals, and the overflows seen.
SPECS = [
    SummedKpi("km", gettext_noop("Distance driven"), gettext_noop("km"), priced=("truck_km", "truck_km_co2")),
    SummedKpi("hours", gettext_noop("Truck-hours"), gettext_noop("h"), priced=("truck_hour",)),
    SummedKpi("trucks_used", gettext_noop("Trucks used (truck-days)"), gettext_noop("truck-days"), priced=("truck_day",)),
    SummedKpi("bins_visited", gettext_noop("Bins emptied"), gettext_noop("bins"), better="higher"),
    SummedKpi("unserved_mandatory", gettext_noop("Bins at risk left out"), gettext_noop("bins")),
    SummedKpi("overflows", gettext_noop("Bins seen overflowing"), gettext_noop("bins"), why_no_baseline=gettext_noop(
        "overflows: what crews and sensors reported; it is compared with the fixed schedule as "
        "overflow_bin_days, both replayed on the same fills")),
]


PER_BIN_NONE = gettext_noop("km_per_bin: no baseline (km or bins emptied has none)")


def sanitation_statement(*, date_from: dt.date, date_to: dt.date) -> StatementSection:
    kpis = PeriodKpis.load(agent="sanitation", date_from=date_from, date_to=date_to)
    km, bins = kpis.total("km"), kpis.total("bins_visited")
    base_km, _ = kpis.baseline_total("km")
    base_bins, _ = kpis.baseline_total("bins_visited")
    # More bins emptied costs more km; per bin emptied, the plan and the schedule compare like with like.
    per_bin = Headline(name="km_per_bin", label=gettext_noop("Distance per bin emptied"), unit=gettext_noop("km/bin"),
                       value=ratio(km, bins), baseline=ratio(base_km, base_bins))
    notes = [] if per_bin.baseline is not None else [PER_BIN_NONE]
    overflow, why = overflow_headline(date_from=date_from, date_to=date_to)
    section = section_summed(kpis=kpis, specs=SPECS, extra=[per_bin, overflow], notes=notes + [why])
    section.learning = forecast_error_weekly(date_from=date_from, date_to=date_to)
    return section


# The fill model learns from every reading and collection: the statement shows its day-ahead error week by
# week over the period, the model refitted from scratch on what was observed from this many days before the
# period on (as the nightly runs fit it, `services.fill.WINDOW_DAYS`), each error counted in the week it was made.
LEARNING_WARMUP_DAYS = 28


def forecast_error_weekly(*, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """The fill model's mean absolute day-ahead error (share of a bin's volume) per week of the period, with
    the number of forecasts checked; bench/sanitation.py prints the same curve (`forecast_mae_by_week`)."""
    since, _ = day_bounds(date_from - dt.timedelta(days=LEARNING_WARMUP_DAYS))
    _, until = day_bounds(date_to)
    ids, states, _fallback = fill_states_fit(since=since, until=until)
    if not ids:
        return []
    start, days = float(date_from.toordinal()), (date_to - date_from).days + 1
    weeks = -(-days // 7)
    errors = [e for s in states for e in s.errors if start <= e.at < start + days]
    maes = forecast_mae_by_week(errors=errors, start=start, weeks=weeks)
    counts = Counter(int((e.at - start) // 7) for e in errors)
    return [{"week_from": (date_from + dt.timedelta(days=7 * w)).isoformat(),
             "week_to": min(date_from + dt.timedelta(days=7 * w + 6), date_to).isoformat(),
             "forecast_mae": None if maes[w] is None else round(maes[w], 4), "forecasts": counts[w]}
            for w in range(weeks)]


@dataclass(frozen=True)
class OverflowReplay:
    """Bin-days overflowing over a period, replayed on the same fills two ways: under the collections crews
    recorded (what the agent's plans did) and under the fixed weekly schedule."""

    agent: int
    fixed: int
    collections: int
    bins: int
    measured_share: float


def _rate_on(model, day: int) -> float:
    rates = model.rates or []
    return float(rates[(day - 1) % 7]) if len(rates) == 7 else float(model.mean_rate)


def _start_levels(observed: list[list[FillObservation]], rates: list[float], first_day: int) -> np.ndarray:
    """Each bin's level when the period starts: its last observed level before (empty after a collection)
    plus its mean rate since, or empty where nothing was observed; the same start for both replays."""
    out = np.zeros(len(observed))
    for i, obs in enumerate(observed):
        before = [o for o in obs if o.at < first_day and (o.emptied or o.level is not None)]
        if before:
            last = max(before, key=lambda o: o.at)
            level = 0.0 if last.emptied else last.level
            out[i] = min(MAX_LEVEL, level + rates[i] * (first_day - last.at))
    return out


def _collections(observed: list[list[FillObservation]], fills: DayFills) -> list[dict[int, float]]:
    """Per day of the period: bin position -> when crews recorded emptying it (the last time that day)."""
    days = [{} for _ in range(len(fills.growth))]
    for i, obs in enumerate(observed):
        for o in sorted(obs, key=lambda o: o.at):
            k = int(np.floor(o.at)) - fills.first_day
            if o.emptied and 0 <= k < len(days):
                days[k][i] = o.at
    return days


def overflow_replay(*, date_from: dt.date, date_to: dt.date) -> OverflowReplay | None:
    """The period's overflows on the days' fills (agents/sanitation/domain/counterfactual.py): measured where a
    sensor or a crew recorded levels, each bin's learned weekday rate elsewhere; None without fill models."""
    bins = [b for b in Bin.objects.filter(active=True, fill_model__isnull=False).select_related("fill_model")
            .order_by("pk") if b.fill_model.mean_rate > 0]
    if not bins:
        return None
    first_day, n_days = date_from.toordinal(), (date_to - date_from).days + 1
    estimate = np.array([[_rate_on(b.fill_model, first_day + k) for b in bins] for k in range(n_days)])
    margin = dt.timedelta(days=MAX_INTERVAL_DAYS)
    found = fill_observations(since=day_bounds(date_from)[0] - margin, until=day_bounds(date_to)[1] + margin,
                              bin_ids=[b.pk for b in bins], tz=city_tz())
    observed = [found.get(b.pk, []) for b in bins]
    fills = day_fills(observed=observed, estimate=estimate, first_day=first_day)
    rates = [b.fill_model.mean_rate for b in bins]
    start = _start_levels(observed, rates, first_day)
    collections = _collections(observed, fills)
    agent = visits_replay(start_levels=start, fills=fills, visits=collections)
    schedule = fixed_schedule_build(bins=[FixedBin(id=i, mean_rate=r, capacity_l=b.capacity_l)
                                          for i, (b, r) in enumerate(zip(bins, rates, strict=True))])
    fixed = fixed_schedule_replay(
        bins=[ReplayBin(id=i, capacity_l=b.capacity_l, mean_rate=r, density_kg_l=b.density_kg_l)
              for i, (b, r) in enumerate(zip(bins, rates, strict=True))],
        schedule=schedule, first_day=first_day, start_levels=start, growth=list(fills.growth))
    return OverflowReplay(agent=int(sum(d.overflowed.sum() for d in agent)),
                          fixed=sum(len(d.overflowed) for d in fixed),
                          collections=sum(len(d) for d in collections), bins=len(bins),
                          measured_share=round(float(fills.measured.mean()), 3))


OVERFLOW_NO_MODEL = gettext_noop("overflow_bin_days: no fill model, so the overflows are not replayed")
OVERFLOW_NO_COLLECTION = gettext_noop("overflow_bin_days: no collection recorded by crews in the period, so the "
                                      "overflows are not replayed")
OVERFLOW_REPLAYED = gettext_noop(
    "overflow_bin_days: %(bins)s bins replayed on the days' fills, measured for %(measured)s of bin-days (sensor "
    "readings, crews' recorded levels) and each bin's learned weekday rate elsewhere; the agent's side is the "
    "%(collections)s collections crews recorded, the baseline the fixed weekly schedule on the same fills from the "
    "same levels")


def overflow_headline(*, date_from: dt.date, date_to: dt.date) -> tuple[Headline, str]:
    """Bin-days overflowing under the crews' recorded collections against the fixed schedule, and the note
    that says how the fills were known (or why there is no comparison)."""
    replay = overflow_replay(date_from=date_from, date_to=date_to)
    label = gettext_noop("Bin-days overflowing (replayed on the days' fills)")
    if replay is None or not replay.collections:
        why = OVERFLOW_NO_MODEL if replay is None else OVERFLOW_NO_COLLECTION
        return (Headline(name="overflow_bin_days", label=label, unit=gettext_noop("bin-days"), value=None, baseline=None),
                why)
    return (Headline(name="overflow_bin_days", label=label, unit=gettext_noop("bin-days"), value=float(replay.agent),
                     baseline=float(replay.fixed)),
            Note(OVERFLOW_REPLAYED, bins=replay.bins, measured=f"{replay.measured_share:.0%}",
                 collections=replay.collections))


AT_RISK_FILL = 0.8  # a bin forecast this full by the end of the day is at risk of overflowing


def bins_at_risk(*, date: dt.date | None = None, area: GEOSGeometry | None = None) -> QuerySet[FillModel]:
    """Active bins whose forecast fill reaches AT_RISK_FILL (for `date` when given: the forecast made for that
    day), fullest first; inside `area` when given."""
    qs = FillModel.objects.filter(bin__active=True, forecast_fill__gte=AT_RISK_FILL)
    if date is not None:
        qs = qs.filter(forecast_for=date)
    if area is not None:
        qs = qs.filter(bin__geom__within=area)
    return qs.select_related("bin").order_by("-forecast_fill", "bin__code")
