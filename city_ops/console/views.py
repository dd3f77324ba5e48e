"""Server-rendered console pages. Thin: each reads through selectors and renders."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.db.models import Sum
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from agents.core.models import AgentRun, RunKpi
from agents.core.registry import agents_all
from city_ops.city.models import CityProfile
from city_ops.core.models import UserProfile
from city_ops.core.roles import Role, user_has_role
from city_ops.workorders.models import WorkOrder

from .decorators import role_required


@method_decorator(ratelimit(key="ip", rate=settings.LOGIN_RATE_LIMIT, method="POST", block=True), name="post")
class RateLimitedLoginView(LoginView):
    """Django's login with a per-address rate limit on attempts (brute force)."""


@role_required(Role.DISPATCHER, Role.FIELD_CREW)
def home(request):
    if not user_has_role(request.user, Role.DISPATCHER):
        return redirect("console:my_orders")
    profile = CityProfile.objects.first()
    runs = AgentRun.objects.restrict(request.user).prefetch_related("kpis")[:8]
    layers = [
        {"id": "roads", "label": "Roads", "url": "/api/city/roads.geojson", "on": True},
        {"id": "closures", "label": "Closures", "url": "/api/city/closures.geojson", "on": True},
        {"id": "districts", "label": "Districts", "url": "/api/city/districts.geojson", "on": True},
        {"id": "places", "label": "Places", "url": "/api/city/places.geojson", "on": False},
    ] + [layer for a in agents_all() for layer in getattr(a, "map_layers", ())]
    return render(request, "console/home.html", {
        "profile": profile, "runs": runs, "layers": layers,
        "tile_url": settings.CITY_TILE_URL, "tile_attribution": settings.CITY_TILE_ATTRIBUTION,
        "bounds": profile.bounds.extent if profile and profile.bounds else None,
        "open_orders": WorkOrder.objects.restrict(request.user).exclude(status__in=WorkOrder.CLOSED_STATES).count(),
    })


@role_required(Role.DISPATCHER)
def runs(request):
    qs = AgentRun.objects.restrict(request.user).prefetch_related("kpis")
    agent = request.GET.get("agent")
    if agent:
        qs = qs.filter(agent=agent)
    return render(request, "console/runs.html", {"runs": qs[:100], "agents": agents_all(), "agent": agent})


@role_required(Role.DISPATCHER)
def results(request):
    rows = (RunKpi.objects.filter(run__status=AgentRun.Status.SUCCEEDED)
            .values("agent", "run_date", "name", "label", "unit")
            .annotate(value=Sum("value"), baseline=Sum("baseline")).order_by("-run_date", "agent", "name")[:500])
    return render(request, "console/results.html", {"rows": rows})


@role_required(Role.DISPATCHER)
def workorders(request):
    orders = WorkOrder.objects.restrict(request.user).select_related("assignee")[:200]
    return render(request, "console/workorders.html", {"orders": orders, "title": "Work orders"})


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def my_orders(request):
    orders = WorkOrder.objects.filter(assignee=request.user).exclude(status__in=WorkOrder.CLOSED_STATES)
    return render(request, "console/workorders.html", {"orders": orders, "title": "My orders", "mine": True})


@require_POST
@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def language_set(request):
    lang = request.POST.get("language", "en")
    if lang in dict(settings.LANGUAGES):
        UserProfile.objects.update_or_create(user=request.user, defaults={"language": lang})
    return redirect(request.POST.get("next") or "console:home")
