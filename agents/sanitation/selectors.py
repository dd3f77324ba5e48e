"""Reads for the sanitation agent: bins with their fill models, plans and their routes, crews' routes,
overflow reports, and the history the fill model learns from."""
from __future__ import annotations

import datetime as dt

from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_noop

from agents.core.base import Headline, StatementSection
from agents.core.statement import PeriodKpis, SummedKpi, ratio, section_summed

from .models import Bin, CollectionPlan, FillReading, Pickup, PlanRoute, PlanStop


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
    SummedKpi("km", gettext_noop("Distance driven"), "km", priced=("truck_km", "truck_km_co2")),
    SummedKpi("hours", gettext_noop("Truck-hours"), "h", priced=("truck_hour",)),
    SummedKpi("trucks_used", gettext_noop("Trucks used (truck-days)"), "truck-days"),
    SummedKpi("bins_visited", gettext_noop("Bins emptied"), "bins", better="higher"),
    SummedKpi("unserved_mandatory", gettext_noop("Bins at risk left out"), "bins"),
    SummedKpi("overflows", gettext_noop("Bins seen overflowing"), "bins", why_no_baseline=(
        "overflows: the fixed schedule's overflows on the days' fills (agents/sanitation/core/counterfactual.py) "
        "are not stored by the runs yet, so there is no baseline")),
]


def sanitation_statement(*, date_from: dt.date, date_to: dt.date) -> StatementSection:
    kpis = PeriodKpis.load(agent="sanitation", date_from=date_from, date_to=date_to)
    km, bins = kpis.total("km"), kpis.total("bins_visited")
    base_km, _ = kpis.baseline_total("km")
    base_bins, _ = kpis.baseline_total("bins_visited")
    # More bins emptied costs more km; per bin emptied, the plan and the schedule compare like with like.
    per_bin = Headline(name="km_per_bin", label=gettext_noop("Distance per bin emptied"), unit="km/bin",
                       value=ratio(km, bins), baseline=ratio(base_km, base_bins))
    notes = [] if per_bin.baseline is not None else ["km_per_bin: no baseline (km or bins emptied has none)"]
    return section_summed(kpis=kpis, specs=SPECS, extra=[per_bin], notes=notes)
