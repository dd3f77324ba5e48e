"""The sanitation console panel (thin views): the dispatcher's plan page (map of bins by forecast fill and
routes per truck, load and time profiles, KPIs against the fixed schedule, approve, move a bin, lock a
route, re-optimise), the fill model's error per bin, crews' overflow reports, and the crew's own route
for a phone (ordered stops, map, mark collected/skipped, GPX)."""
from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Avg, Count, F
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_request
from city_ops.console.decorators import role_required
from city_ops.core.query import whole_number
from city_ops.core.roles import Role, user_has_role
from city_ops.core.throttling import run_start_limited
from city_ops.core.timeutil import city_today, date_parse
from city_ops.core.uploads import UploadError, image_upload_validate

from . import selectors, services
from .api.views import gpx_response
from .domain.baseline import per_bin
from .models import Bin, CollectionPlan, FillModel, Pickup, PlanRoute, PlanStop, Truck

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# The map colours of a forecast fill level: the first threshold it reaches, grey without a forecast. Shared
# with the bins' map tiles (mapsources.py), which build the same rule in SQL.
FILL_COLOURS = ((1.0, "#b3261e"), (0.8, "#e8710a"), (0.5, "#e6b800"))
FILL_CALM, FILL_UNKNOWN = "#2b8a3e", "#8c96a1"


def fill_color(level: float | None) -> str:
    """The map colour of a forecast fill level (grey when there is no forecast yet)."""
    if level is None:
        return FILL_UNKNOWN
    return next((colour for at, colour in FILL_COLOURS if level >= at), FILL_CALM)


def _date_param(request, default: dt.date) -> dt.date:
    raw = request.GET.get("date", "").strip()
    if not raw:
        return default
    try:
        return date_parse(raw)
    except ValueError:
        messages.error(request, _("The date %(date)s is not a valid date (YYYY-MM-DD).") % {"date": raw})
        return default


def _default_plan_date() -> dt.date:
    """The nearest date from today on with a plan, else tomorrow (what the nightly run plans)."""
    upcoming = CollectionPlan.objects.filter(date__gte=city_today()).order_by("date").values_list("date", flat=True)
    return upcoming.first() or city_today() + dt.timedelta(days=1)


def _plan_for(request, date: dt.date) -> CollectionPlan | None:
    if (version := whole_number(request.GET.get("version"))) is not None:
        return CollectionPlan.objects.filter(date=date, version=version).first()
    return selectors.plan_latest(date=date)


def _route_chart(route: PlanRoute) -> dict:
    """A route's load and time profile for Chart.js: load (litres, kg) after each stop against the clock."""
    return {"id": route.pk, "truck": route.truck.code, "color": route.color,
            "points": [{"t": p["t"], "l": p["load_l"], "kg": p["load_kg"], "label": p["label"]}
                       for p in route.profile or []],
            "capacity_l": route.truck.capacity_l}


ROUTES_PER_PAGE = 6


def _routes_page(plan: CollectionPlan | None, *, truck_q: str, number):
    """One page of the plan's route cards (a city's sixty trucks would make the page metres long), those of
    the trucks whose code contains `truck_q` when given; the map still draws every route."""
    if plan is None:
        return None
    qs = selectors.plan_routes(plan=plan).order_by("order")
    if truck_q:
        qs = qs.filter(truck__code__icontains=truck_q)
    return Paginator(qs, ROUTES_PER_PAGE).get_page(number)


def _plan_bins(plan: CollectionPlan | None) -> list[Bin]:
    """The bins on the plan's routes, for the move form (every route, not just the page shown)."""
    if plan is None:
        return []
    return list(Bin.objects.filter(plan_stops__route__plan=plan).only("code", "street").order_by("code").distinct())


@role_required(Role.DISPATCHER)
def panel(request):
    """The plan of a day: map, routes with profiles, KPIs against the fixed schedule, edits and approval."""
    date = _date_param(request, _default_plan_date())
    plan = _plan_for(request, date)
    versions = list(CollectionPlan.objects.filter(date=date).order_by("-version"))
    truck_q = request.GET.get("truck", "").strip()
    page = _routes_page(plan, truck_q=truck_q, number=request.GET.get("page"))
    routes = list(page.object_list) if page else []
    kpis = plan.kpis if plan else {}
    since = timezone.now() - dt.timedelta(days=7)
    fill_stats = FillModel.objects.filter(bin__active=True).aggregate(mae=Avg("mae"), bins=Count("id"))
    at_risk = selectors.bins_at_risk().count()
    plan_dates = list(CollectionPlan.objects.filter(date__gte=city_today() - dt.timedelta(days=7))
                      .values_list("date", flat=True).distinct().order_by("date"))
    reopt = (AgentRun.objects.filter(agent="sanitation", trigger=AgentRun.Trigger.REPLAN,
                                     status__in=[AgentRun.Status.PENDING, AgentRun.Status.RUNNING]).exists())
    return render(request, "sanitation/panel.html", {
        "date": date, "plan": plan, "versions": versions, "routes": routes, "kpis": kpis,
        "km_per_bin": {"plan": per_bin(kpis.get("km"), kpis.get("bins_visited")),
                       "fixed": per_bin(kpis.get("baseline_km"), kpis.get("baseline_bins"))},
        "charts": [_route_chart(r) for r in routes],
        "trucks": Truck.objects.filter(in_service=True).order_by("code"),
        "trucks_out": Truck.objects.filter(in_service=False).order_by("code"),
        "plan_bins": _plan_bins(plan), "page": page, "truck_q": truck_q,
        "route_count": plan.routes.count() if plan else 0,
        "overflows": selectors.overflow_reports(since=since)[:10],
        "fill_mae": fill_stats["mae"], "fill_bins": fill_stats["bins"], "at_risk": at_risk,
        "plan_dates": plan_dates, "reoptimising": reopt,
        "bins_url": reverse("sanitation:bins_geojson"),
        "routes_url": reverse("sanitation:routes_geojson") + (f"?plan={plan.pk}" if plan else ""),
    })


@role_required(Role.DISPATCHER)
@require_GET
def bins_geojson(request):
    """Active bins as GeoJSON points coloured by their forecast fill."""
    features = []
    for b in Bin.objects.filter(active=True).select_related("fill_model"):
        m = getattr(b, "fill_model", None)
        level = m.forecast_fill if m else None
        features.append({
            "type": "Feature", "id": b.pk,
            "geometry": {"type": "Point", "coordinates": [round(b.geom.x, 6), round(b.geom.y, 6)]},
            "properties": {"title": b.code, "street": b.street, "litres": b.capacity_l, "waste": b.waste_type,
                           "forecast": None if level is None else f"{level * 100:.0f} %",
                           "for": m.forecast_for.isoformat() if m and m.forecast_for else None,
                           "mae": None if not m or m.mae is None else f"{m.mae * 100:.1f} %",
                           "sensor": b.sensor_id or "-", "color": fill_color(level)},
        })
    return JsonResponse({"type": "FeatureCollection", "features": features})


@role_required(Role.DISPATCHER)
@require_GET
def routes_geojson(request):
    """A plan's routes as GeoJSON lines (the newest plan from today on when none is named)."""
    plan_id = whole_number(request.GET.get("plan"))
    plan = (CollectionPlan.objects.filter(pk=plan_id).first() if plan_id is not None
            else selectors.plan_latest(date=_default_plan_date()))
    features = []
    if plan is not None:
        for r in plan.routes.select_related("truck").annotate(n=Count("stops")):
            if r.geom is None:
                continue
            features.append({
                "type": "Feature", "id": r.pk,
                "geometry": {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in r.geom.coords]},
                "properties": {"title": f"{r.truck.code} ({plan.date} v{plan.version})", "km": round(r.distance_m / 1000, 2),
                               "hours": round(r.hours, 2), "stops": r.n, "locked": r.locked, "color": r.color},
            })
    return JsonResponse({"type": "FeatureCollection", "features": features})


def _back(plan: CollectionPlan) -> str:
    return f"{reverse('sanitation:panel')}?date={plan.date.isoformat()}&version={plan.version}"


@require_POST
@role_required(Role.DISPATCHER)
def plan_approve(request, pk: int):
    plan = get_object_or_404(CollectionPlan.objects.restrict(request.user), pk=pk)
    try:
        services.plan_approve(plan=plan, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Plan %(date)s version %(v)s is approved; crews see it now.") % {
            "date": plan.date, "v": plan.version})
    return redirect(_back(plan))


@require_POST
@role_required(Role.DISPATCHER)
@run_start_limited
def plan_move(request, pk: int):
    """Move a bin to another truck: a new version, checked before it is stored."""
    plan = get_object_or_404(CollectionPlan.objects.restrict(request.user), pk=pk)
    bin_ = Bin.objects.filter(code=request.POST.get("bin", "")).first()
    truck = Truck.objects.filter(code=request.POST.get("truck", "")).first()
    if bin_ is None or truck is None:
        messages.error(request, _("Choose a bin of the plan and a truck."))
        return redirect(_back(plan))
    try:
        new = services.plan_stop_move(plan=plan, bin=bin_, truck=truck, user=request.user)
    except ValidationError as exc:
        messages.error(request, _("The move was refused: %(why)s") % {"why": " ".join(exc.messages)})
        return redirect(_back(plan))
    messages.success(request, _("Bin %(bin)s moved to %(truck)s: version %(v)s.") % {
        "bin": bin_.code, "truck": truck.code, "v": new.version})
    return redirect(_back(new))


@require_POST
@role_required(Role.DISPATCHER)
@run_start_limited
def plan_reoptimise(request, pk: int):
    """Re-optimise every unlocked route (an agent run on the planning queue)."""
    plan = get_object_or_404(CollectionPlan.objects.restrict(request.user), pk=pk)
    run, _created = agent_run_request(agent="sanitation", run_date=plan.date, trigger=AgentRun.Trigger.REPLAN,
                                      reason=f"re-optimise plan {plan.date} v{plan.version}",
                                      runtime_params={"action": "reoptimise", "plan_id": plan.pk}, user=request.user)
    messages.success(request, _("Re-optimising the unlocked routes (run #%(id)s); the new version appears here "
                                "when it is done.") % {"id": run.pk})
    return redirect(_back(plan))


@require_POST
@role_required(Role.DISPATCHER)
def route_lock(request, pk: int):
    route = get_object_or_404(PlanRoute.objects.restrict(request.user).select_related("plan", "truck"), pk=pk)
    locked = request.POST.get("locked", "1") == "1"
    try:
        services.plan_route_lock(route=route, locked=locked, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(_back(route.plan))


@role_required(Role.DISPATCHER)
def fill_models(request):
    """The fill model per bin: learned weekday rates, forecast, and day-ahead error (worst first)."""
    order = request.GET.get("order", "mae")
    qs = FillModel.objects.filter(bin__active=True).select_related("bin")
    qs = qs.order_by(F("mae").desc(nulls_last=True)) if order == "mae" else qs.order_by(
        F("forecast_fill").desc(nulls_last=True))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    overall = qs.aggregate(mae=Avg("mae"))["mae"]
    by_source = dict(qs.order_by().values_list("source").annotate(n=Count("id")))
    return render(request, "sanitation/fill.html", {
        "page": page, "models": page.object_list, "order": order, "overall_mae": overall, "by_source": by_source,
        "weekdays": WEEKDAYS, "colors": {m.pk: fill_color(m.forecast_fill) for m in page.object_list},
    })


@role_required(Role.DISPATCHER)
def overflows(request):
    """Crews' reports of overflowing bins, newest first, with their photos."""
    since = timezone.now() - dt.timedelta(days=30)
    page = Paginator(selectors.overflow_reports(since=since, user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "sanitation/overflows.html", {"page": page, "reports": page.object_list})


# --- crews -----------------------------------------------------------------------------------------------------

@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def crew_route(request):
    """The crew's route(s) of a day on a phone: the map, the stops in order, collected/skipped buttons, GPX.
    A dispatcher without a crew sees every route of the approved plan (to help by phone)."""
    date = _date_param(request, city_today())
    routes = selectors.crew_routes(user=request.user, date=date)
    if not routes and user_has_role(request.user, Role.DISPATCHER):
        plan = selectors.plan_latest(date=date, approved_only=True)
        routes = list(selectors.plan_routes(plan=plan)) if plan else []
    data = [{
        "id": r.pk, "truck": r.truck.code, "color": r.color,
        "line": [[round(y, 6), round(x, 6)] for x, y in r.geom.coords] if r.geom else [],
        "stops": [{"id": s.pk, "order": s.order, "lat": (s.bin or s.disposal_site).geom.y, "lon": (s.bin or s.disposal_site).geom.x,
                   "label": s.bin.code if s.bin else s.disposal_site.name, "kind": s.kind,
                   "done": bool(getattr(s, "pickup", None))} for s in r.stops.all()],
    } for r in routes]
    return render(request, "sanitation/crew.html", {
        "date": date, "routes": routes, "routes_data": data, "reasons": Pickup.Reason.choices,
        "today": city_today(),
    })


@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def crew_stop_mark(request, pk: int):
    """Mark a stop collected (fill seen) or skipped (reason, photo)."""
    stop = get_object_or_404(PlanStop.objects.restrict(request.user).select_related("route__plan", "bin"), pk=pk)
    back = f"{reverse('sanitation:crew')}?date={stop.route.plan.date.isoformat()}#stop-{stop.pk}"
    status = request.POST.get("status", "")
    observed = request.POST.get("observed_fill", "").strip()
    photo = request.FILES.get("photo")
    try:
        observed_fill = float(observed) / (100.0 if float(observed) > 1.5 else 1.0) if observed else None
    except ValueError:
        messages.error(request, _("The fill level must be a number."))
        return redirect(back)
    if photo is not None:
        try:
            photo = image_upload_validate(file=photo)
        except UploadError as exc:
            messages.error(request, _("The photo was not accepted: %(reason)s") % {"reason": exc})
            return redirect(back)
    try:
        services.stop_mark(stop=stop, user=request.user, status=status, observed_fill=observed_fill,
                           reason=request.POST.get("reason", ""), overflowing=request.POST.get("overflowing") == "1",
                           photo=photo, note=request.POST.get("note", ""))
    except PermissionDenied:
        raise
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, _("Stop %(n)s (%(bin)s) marked %(status)s.") % {
        "n": stop.order, "bin": stop.bin.code if stop.bin else "", "status": status})
    return redirect(back)


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
@require_GET
def route_gpx(request, pk: int):
    route = get_object_or_404(PlanRoute.objects.restrict(request.user).select_related("plan", "truck__depot"), pk=pk)
    return gpx_response(route)


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
@require_GET
def pickup_photo(request, pk: int):
    """A pickup's photo, only for those who may see the pickup (media is not public)."""
    pickup = get_object_or_404(Pickup.objects.restrict(request.user), pk=pk)
    if not pickup.photo:
        raise Http404("no photo")
    try:
        return FileResponse(pickup.photo.open("rb"))
    except FileNotFoundError:
        raise Http404("the photo file is missing") from None
