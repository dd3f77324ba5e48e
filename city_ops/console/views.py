"""Server-rendered console pages. Thin: each checks the user's role, reads through querysets restricted to
that user, and changes things only through services (work orders, notifications, agent runs)."""
from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.db.models.expressions import RawSQL
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.core import get_usage

from agents.runtime.models import AgentRun
from agents.runtime.registry import UnknownAgentError, agent_names, agents_all
from agents.runtime.selectors import results_daily
from agents.runtime.services import RunParamsError, agent_run_request, run_params_parse
from city_ops.city.geovalidate import city_extent, extent_sql
from city_ops.city.maplayers import map_sources
from city_ops.city.models import CityProfile, RoadClosure
from city_ops.core.models import UserProfile
from city_ops.core.roles import Role, user_has_role
from city_ops.core.throttling import run_start_limited
from city_ops.core.timeutil import city_today, date_parse
from city_ops.core.uploads import UploadError, image_upload_validate
from city_ops.notifications.models import Notification
from city_ops.notifications.services import notification_acknowledge
from city_ops.results.pages import period_default, statement_context
from city_ops.results.selectors import statement_cached
from city_ops.workorders.models import WorkOrder, WorkOrderPhoto
from city_ops.workorders.services import work_order_photo_add, work_order_transition

from .decorators import role_required

log = logging.getLogger(__name__)

# --- login -------------------------------------------------------------------------------------------------

LOGIN_RATELIMIT_GROUP = "console.login"


def login_rate(group: str, request) -> str:
    """The allowed failed logins per address, read at request time (not at import) so a deployment's
    environment and a test's settings override both take effect."""
    return settings.LOGIN_RATE_LIMIT


def _login_usage(request, *, increment: bool):
    return get_usage(request, group=LOGIN_RATELIMIT_GROUP, key="ip", rate=login_rate, method="POST",
                     increment=increment)


class RateLimitedLoginView(LoginView):
    """Django's login, refusing an address with 429 once it has failed LOGIN_RATE_LIMIT times (brute force).
    Only failed attempts count, so a busy depot behind one address is not locked out by its own logins."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        usage = _login_usage(request, increment=False)
        # A failing cache reports limit 0: refuse (fail closed), as django-ratelimit itself does.
        if usage is not None and usage["count"] >= usage["limit"]:
            log.warning("login refused for %s: too many failed attempts", request.META.get("REMOTE_ADDR"))
            context = self.get_context_data(form=self.get_form_class()(request), rate_limited=True)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        _login_usage(self.request, increment=True)
        return super().form_invalid(form)


def _next_url(request, default: str) -> str:
    """A `next` the user sent, only when it points back into this site (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


# --- the map -----------------------------------------------------------------------------------------------

def _map_layers() -> list[dict]:
    """The map's layers: the city's own, then whatever agents add (`Agent.map_layers`: dicts with id, label,
    url, on and optionally color)."""
    layers = [
        {"id": "roads", "label": gettext_lazy("Roads"), "url": reverse("city-api:roads"), "on": True,
         "color": "#6b7785", "kind": "line"},
        {"id": "closures", "label": gettext_lazy("Closures"), "url": reverse("city-api:closures"), "on": True,
         "color": "#d0021b", "kind": "closure", "refresh": 60},
        {"id": "districts", "label": gettext_lazy("Districts"), "url": reverse("city-api:districts"),
         "on": True, "color": "#1f6feb", "kind": "area"},
        {"id": "places", "label": gettext_lazy("Places"), "url": reverse("city-api:places"), "on": False,
         "color": "#8a3ffc", "kind": "point"},
        {"id": "workorders", "label": gettext_lazy("Open work orders"), "url": reverse("console:workorders_geojson"),
         "on": False, "color": "#e8710a", "kind": "point", "refresh": 60},
    ]
    seen = {layer["id"] for layer in layers}
    for agent in agents_all():
        try:
            agent_layers = list(getattr(agent, "map_layers", ()) or ())
        except Exception:  # one agent's broken hook (say, an unmounted URL) must not take the map down
            log.exception("agent %s: map_layers failed; its layers are left off the map", agent.name)
            continue
        for layer in agent_layers:
            if layer.get("id") and layer["id"] not in seen:
                seen.add(layer["id"])
                # Agents mark their layer labels with gettext_noop; translated here, per request.
                layers.append({"kind": "point", "color": "#8a3ffc", "on": False, **layer,
                               "label": _(str(layer.get("label") or layer["id"])),
                               "agent": _(agent.label or agent.name)})
    return _with_tiles(layers)


def _with_tiles(layers: list[dict]) -> list[dict]:
    """Give each layer that has a tile source its tile URL template ({z}/{x}/{y} filled in by Leaflet): the
    map draws those as vector tiles, which hold at any city size (docs/deploy.md, "City scale")."""
    tiled = {s.id for s in map_sources().values() if s.console_tiles}
    probe = reverse("city-api:layer-tile", args=["LAYER", 0, 0, 0])
    for layer in layers:
        if layer["id"] in tiled:
            layer["tiles"] = probe.replace("LAYER", layer["id"]).replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt")
    return layers


@role_required(Role.DISPATCHER, Role.FIELD_CREW)
def home(request):
    """Dispatchers land on the map; field crews on their own orders."""
    if not user_has_role(request.user, Role.DISPATCHER):
        return redirect("console:my_orders")
    profile = CityProfile.objects.first()
    runs = _latest_runs(request.user)
    # Extents come from SQL (NULL for a row that cannot be drawn), so no stored closure can break the page.
    closures = list(RoadClosure.objects.active().restrict(request.user, "view")
                    .annotate(n_segments=Count("segments"), extent=RawSQL(extent_sql("city_roadclosure.geom"), []))
                    .defer("geom").order_by("-valid_from")[:20])
    orders = WorkOrder.objects.restrict(request.user).exclude(status__in=WorkOrder.CLOSED_STATES)
    return render(request, "console/home.html", {
        "profile": profile, "runs": runs, "layers": _map_layers(), "closures": closures,
        "tile_url": settings.CITY_TILE_URL, "tile_attribution": settings.CITY_TILE_ATTRIBUTION,
        "attribution": (profile.attribution if profile and profile.attribution else "© OpenStreetMap contributors"),
        "bounds": city_extent(),
        "open_orders": orders.count(), "overdue_orders": orders.overdue().count(),
    })


def _latest_runs(user) -> list[AgentRun]:
    """The newest run of each agent (what the map's sidebar shows), newest first."""
    newest: OrderedDict[str, AgentRun] = OrderedDict()
    for run in AgentRun.objects.restrict(user).prefetch_related("kpis")[:50]:
        newest.setdefault(run.agent, run)
    return list(newest.values())[:8]


@role_required(Role.DISPATCHER)
@require_GET
def workorders_geojson(request):
    """Open work orders as GeoJSON points for the map (the API's list is paged and not GeoJSON)."""
    orders = WorkOrder.objects.restrict(request.user).exclude(status__in=WorkOrder.CLOSED_STATES)[:2000]
    features = [{
        "type": "Feature", "id": o.pk,
        "geometry": {"type": "Point", "coordinates": [round(o.location.x, 6), round(o.location.y, 6)]},
        "properties": {"title": o.title, "status": o.status, "priority": o.priority, "overdue": o.is_overdue,
                       "color": "#b3261e" if o.is_overdue or o.priority >= WorkOrder.Priority.HIGH else "#e8710a",
                       "url": reverse("console:workorder_detail", args=[o.pk])},
    } for o in orders]
    return JsonResponse({"type": "FeatureCollection", "features": features})


# --- agent runs and results ------------------------------------------------------------------------------

@role_required(Role.DISPATCHER)
def runs(request):
    qs = AgentRun.objects.restrict(request.user).prefetch_related("kpis", "attempt_history")
    agent = request.GET.get("agent", "")
    status = request.GET.get("status", "")
    if agent:
        qs = qs.filter(agent=agent)
    if status in AgentRun.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    active = AgentRun.objects.restrict(request.user).filter(
        status__in=[AgentRun.Status.PENDING, AgentRun.Status.RUNNING]).exists()
    return render(request, "console/runs.html", {
        "page": page, "runs": page.object_list, "agents": agents_all(), "agent": agent, "status": status,
        "statuses": AgentRun.Status.values, "active": active, "today": city_today().isoformat(),
    })


@require_POST
@role_required(Role.DISPATCHER)
@run_start_limited
def run_start(request):
    """Start a run by hand (a dispatcher's 're-plan now'); the worker picks it up after commit."""
    agent = request.POST.get("agent", "")
    reason = request.POST.get("reason", "").strip()[:300]
    back = reverse("console:runs")
    if agent not in agent_names():
        messages.error(request, _("Choose an agent to run."))
        return redirect(back)
    run_date = None
    if raw := request.POST.get("date", "").strip():
        try:
            run_date = date_parse(raw)
        except ValueError:
            messages.error(request, _("The date %(date)s is not a valid date (YYYY-MM-DD).") % {"date": raw})
            return redirect(back)
    try:
        run, created = agent_run_request(agent=agent, run_date=run_date, trigger=AgentRun.Trigger.MANUAL,
                                         params=run_params_parse(request.POST.get("params", "").split()),
                                         reason=reason or _("started from the console"), user=request.user)
    except UnknownAgentError:
        raise Http404("no such agent") from None
    except RunParamsError as exc:
        messages.error(request, _("The run was refused: %(why)s") % {"why": exc})
        return redirect(back)
    if created:
        messages.success(request, _("Run #%(id)s of %(agent)s was queued.") % {"id": run.pk, "agent": agent})
    else:  # the same request is pending or running: that run is the answer (a double click, a burst)
        messages.info(request, _("Run #%(id)s of %(agent)s is already under way with these parameters.") % {
            "id": run.pk, "agent": agent})
    return redirect(f"{back}?agent={agent}")


@role_required(Role.DISPATCHER)
def results(request):
    """KPIs per agent per day (a daily agent's from its approved plan, else its nightly run: never a sum over
    re-plans), a chart per KPI and the table."""
    try:
        days = max(1, min(int(request.GET.get("days", 30)), 366))
    except ValueError:
        days = 30
    agent = request.GET.get("agent", "")
    rows = results_daily(date_from=city_today() - dt.timedelta(days=days - 1), date_to=dt.date.max,
                         agent=agent or None)
    charts: OrderedDict[tuple[str, str], dict] = OrderedDict()
    for r in rows:
        r["label"] = _(r["label"] or r["name"])  # stored in English, marked with gettext_noop
        chart = charts.setdefault((r["agent"], r["name"]), {
            "id": f"chart-{r['agent']}-{r['name']}", "agent": r["agent"], "name": r["name"], "label": r["label"],
            "unit": r["unit"], "dates": [], "values": [], "baselines": []})
        chart["dates"].append(r["run_date"].isoformat())
        chart["values"].append(r["value"])
        chart["baselines"].append(r["baseline"])
    for chart in charts.values():
        if all(b is None for b in chart["baselines"]):
            chart["baselines"] = []
        chart["latest"] = chart["values"][-1] if chart["values"] else None
        # One day of figures shows as a number: a line needs two points, and a lone dot on empty axes reads
        # as "no data".
        chart["single"] = len(chart["values"]) == 1
    table = sorted(rows, key=lambda r: (r["run_date"], r["agent"], r["name"]), reverse=True)[:500]
    month_from, month_to = period_default(city_today())
    return render(request, "console/results.html", {
        "rows": table, "charts": list(charts.values()), "agents": agents_all(), "agent": agent, "days": days,
        "chart_labels": {"value": _("Result"), "baseline": _("Baseline")},
        **statement_context(statement_cached(date_from=month_from, date_to=month_to)),
    })


# --- work orders -----------------------------------------------------------------------------------------

def _crew_members():
    return (get_user_model().objects.filter(is_active=True, groups__name=Role.FIELD_CREW.value)
            .order_by("username").distinct())


@role_required(Role.DISPATCHER)
def workorders(request):
    """Every order, filterable by status (open by default) and overdue, with assign and cancel."""
    qs = WorkOrder.objects.restrict(request.user).select_related("assignee")
    status = request.GET.get("status", "open")
    if status == "open":
        qs = qs.exclude(status__in=WorkOrder.CLOSED_STATES)
    elif status in WorkOrder.Status.values:
        qs = qs.filter(status=status)
    else:
        status = "all"
    overdue = request.GET.get("overdue") == "1"
    if overdue:
        qs = qs.overdue()
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    counts = dict(WorkOrder.objects.restrict(request.user).values_list("status").annotate(n=Count("id")))
    return render(request, "console/workorders.html", {
        "orders": page.object_list, "page": page, "status": status, "overdue": overdue,
        "statuses": WorkOrder.Status.values, "counts": counts, "crews": _crew_members(),
        "overdue_count": WorkOrder.objects.restrict(request.user).overdue().count(),
    })


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def my_orders(request):
    """A crew member's own orders, open first, for a phone: start, then close with an 'after' photo."""
    mine = WorkOrder.objects.filter(assignee=request.user)
    open_orders = mine.exclude(status__in=WorkOrder.CLOSED_STATES)
    recent = mine.filter(status__in=WorkOrder.CLOSED_STATES,
                         closed_at__gte=timezone.now() - dt.timedelta(days=7)).order_by("-closed_at")[:20]
    return render(request, "console/my_orders.html", {"orders": open_orders, "recent": recent})


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def workorder_detail(request, pk: int):
    """One order with its history and photos. A crew member sees only orders assigned to them (404)."""
    order = get_object_or_404(WorkOrder.objects.restrict(request.user).select_related("assignee", "created_by"),
                              pk=pk)
    return render(request, "console/workorder_detail.html", {
        "order": order, "events": order.events.select_related("actor"), "photos": order.photos.all(),
        "crews": _crew_members(), "is_assignee": order.assignee_id == request.user.pk,
    })


# Console actions -> (target status, roles that may ask). The service checks again (crews: own orders).
_ACTIONS = {
    "assign": (WorkOrder.Status.ASSIGNED, (Role.DISPATCHER,)),
    "unassign": (WorkOrder.Status.NEW, (Role.DISPATCHER,)),
    "cancel": (WorkOrder.Status.CANCELLED, (Role.DISPATCHER,)),
    "verify": (WorkOrder.Status.VERIFIED, (Role.DISPATCHER,)),
    "reopen": (WorkOrder.Status.IN_PROGRESS, (Role.DISPATCHER,)),
    "start": (WorkOrder.Status.IN_PROGRESS, (Role.FIELD_CREW, Role.DISPATCHER)),
}


@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def workorder_action(request, pk: int):
    """Move an order along its workflow from a console button (assign, cancel, start, ...)."""
    order = get_object_or_404(WorkOrder.objects.restrict(request.user), pk=pk)
    action = request.POST.get("action", "")
    if action not in _ACTIONS:
        messages.error(request, _("Unknown action."))
        return redirect(_next_url(request, reverse("console:workorder_detail", args=[pk])))
    to_status, roles = _ACTIONS[action]
    if not user_has_role(request.user, *roles):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("your role cannot do this")
    assignee = None
    if action == "assign":
        assignee = _crew_members().filter(pk=request.POST.get("assignee") or 0).first()
        if assignee is None:
            messages.error(request, _("Choose a field crew member to assign."))
            return redirect(_next_url(request, reverse("console:workorder_detail", args=[pk])))
    try:
        work_order_transition(order=order, to_status=to_status, user=request.user, assignee=assignee,
                              note=request.POST.get("note", "")[:500])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Order #%(id)s is now %(status)s.") % {
            "id": order.pk, "status": _status_text(to_status)})
    return redirect(_next_url(request, reverse("console:workorder_detail", args=[pk])))


def _status_text(status: str) -> str:
    from .templatetags.console import status_label

    return str(status_label(status))


@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def workorder_photo(request, pk: int):
    """Upload a photo. An 'after' photo on an order in progress closes the repair. The image is checked
    (size, really an image, not truncated) before anything is stored."""
    order = get_object_or_404(WorkOrder.objects.restrict(request.user), pk=pk)
    back = _next_url(request, reverse("console:workorder_detail", args=[pk]))
    kind = request.POST.get("kind", WorkOrderPhoto.Kind.AFTER)
    if kind not in WorkOrderPhoto.Kind.values:
        messages.error(request, _("A photo is either 'before' or 'after'."))
        return redirect(back)
    try:
        upload = image_upload_validate(file=request.FILES.get("image"))
    except UploadError as exc:
        messages.error(request, _("The photo was not accepted: %(reason)s") % {"reason": exc})
        return redirect(back)
    try:
        work_order_photo_add(order=order, kind=kind, image=upload, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    order.refresh_from_db()
    if order.status == WorkOrder.Status.DONE:
        messages.success(request, _("Photo saved; order #%(id)s is done.") % {"id": order.pk})
    else:
        messages.success(request, _("Photo saved."))
    return redirect(back)


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
@require_GET
def workorder_photo_file(request, pk: int, photo_pk: int):
    """A work order's photo, served only to those who may see the order (media is not public)."""
    order = get_object_or_404(WorkOrder.objects.restrict(request.user), pk=pk)
    photo = get_object_or_404(order.photos, pk=photo_pk)
    try:
        return FileResponse(photo.image.open("rb"))
    except FileNotFoundError:
        raise Http404("the photo file is missing") from None


# --- notifications -----------------------------------------------------------------------------------------

@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def notifications(request):
    """The user's own notifications, newest first; opening the list marks them read (not acknowledged)."""
    qs = Notification.objects.restrict(request.user).filter(recipient=request.user)
    pending_only = request.GET.get("pending") == "1"
    if pending_only:
        qs = qs.filter(requires_ack=True, acknowledged_at__isnull=True)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    items = list(page.object_list)
    unread = [n.pk for n in items if n.read_at is None]
    if unread:
        Notification.objects.filter(pk__in=unread).update(read_at=timezone.now())
    return render(request, "console/notifications.html", {
        "notifications": items, "page": page, "pending_only": pending_only, "unread_ids": set(unread)})


@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def notification_ack(request, pk: int):
    n = get_object_or_404(Notification.objects.filter(recipient=request.user), pk=pk)
    notification_acknowledge(notification=n, user=request.user)
    messages.success(request, _("Acknowledged: %(subject)s") % {"subject": n.subject})
    return redirect(_next_url(request, reverse("console:notifications")))


# --- settings ------------------------------------------------------------------------------------------------

@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def language_set(request):
    """Keep the user's console language on their profile (it follows them to every device)."""
    lang = request.POST.get("language", "")
    response = redirect(_next_url(request, reverse("console:home")))
    if lang in dict(settings.LANGUAGES):
        UserProfile.objects.update_or_create(user=request.user, defaults={"language": lang})
        # The cookie keeps the login page in the same language after logging out.
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, lang, max_age=settings.LANGUAGE_COOKIE_AGE,
                            samesite="Lax")
    return response
