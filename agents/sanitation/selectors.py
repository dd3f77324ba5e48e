"""Reads for the sanitation agent: bins with their fill models, plans and their routes, crews' routes,
overflow reports, and the history the fill model learns from."""
from __future__ import annotations

import datetime as dt

from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Prefetch, Q, QuerySet

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
