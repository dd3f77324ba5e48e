"""The bus panel of the console (thin: reads through selectors, writes through services): the network and
live buses on the map, bunching/gap warnings to accept or dismiss, the day's plan as a Gantt chart with
approval and editing, detours, feed upload and re-plan."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from agents.bus.conf import conf
from agents.runtime.models import AgentRun
from agents.runtime.services import RunParamsError, agent_run_request
from city_ops.city.geovalidate import city_extent
from city_ops.city.models import CityProfile
from city_ops.console.decorators import role_required
from city_ops.core.query import whole_number
from city_ops.core.roles import Role
from city_ops.core.throttling import run_start_limited
from city_ops.core.timeutil import city_today, date_parse

from .models import Block, Detour, Feed, HeadwayWarning, VehiclePlan
from .selectors import feed_latest, headway_latest, plan_blocks, plan_gantt, warnings_open_ranked
from .services.feeds import FeedImportError, feed_import
from .services.plans import (
    block_assign,
    plan_approve,
    plan_blocks_lock,
    plan_csv,
    plan_gtfs_zip,
    plan_reoptimise,
    plan_trip_move,
    plan_violations,
)
from .services.realtime import warning_decide

# The panel's live lists: the warnings shown open (the rest behind "show all"), and rows per page.
WORST_WARNINGS = 5
LIST_PAGE_ROWS = 20


def _layers(agent_layers) -> list[dict]:
    roads = {"id": "roads", "label": _("Roads"), "url": reverse("city-api:roads"), "on": True, "color": "#6b7785",
             "kind": "line"}
    closures = {"id": "closures", "label": _("Closures"), "url": reverse("city-api:closures"), "on": True,
                "color": "#d0021b", "kind": "closure", "refresh": 60}
    return [roads, closures, *({**layer, "on": True} for layer in agent_layers)]


def _panel_date(request, feed: Feed | None) -> dt.date:
    if raw := request.GET.get("date"):
        try:
            return date_parse(raw)
        except ValueError:
            messages.error(request, _("%(value)s is not a date (YYYY-MM-DD); showing today.") % {"value": raw})
    today = city_today()
    if feed is not None and not VehiclePlan.objects.filter(feed=feed, service_date=today).exists() and \
            VehiclePlan.objects.filter(feed=feed, service_date=today + dt.timedelta(days=1)).exists():
        return today + dt.timedelta(days=1)
    return today


def _live_lists(request) -> dict:
    """The live lists, summarised so the plan stays in view: a city's snapshot flags hundreds of pairs on
    hundreds of routes. The open warnings' count, the worst few, the rest a page at a time behind "show
    all"; the headway table a page at a time, least regular first; both filtered to one route on ?route=."""
    route = request.GET.get("route", "").strip()[:100]
    warnings = warnings_open_ranked(user=request.user, route=route)
    snapshots = headway_latest(route=route)
    return {
        "route": route, "warning_count": warnings.count(), "warnings": warnings[:WORST_WARNINGS],
        "warnings_more": Paginator(warnings[WORST_WARNINGS:], LIST_PAGE_ROWS).get_page(request.GET.get("wpage")),
        "warnings_paged": "wpage" in request.GET,
        "snapshots": Paginator(snapshots, LIST_PAGE_ROWS).get_page(request.GET.get("hpage")),
        "snapshot_routes": sorted(set(headway_latest().values_list("route_id", flat=True))),
    }


@role_required(Role.DISPATCHER)
def panel(request):
    from agents.runtime.registry import agent_get

    feeds = list(Feed.objects.restrict(request.user))
    feed = next((f for f in feeds if str(f.pk) == request.GET.get("feed")), None) or feed_latest()
    day = _panel_date(request, feed)
    versions = list(VehiclePlan.objects.restrict(request.user).filter(feed=feed, service_date=day)
                    .select_related("approved_by")) if feed else []
    plan = next((p for p in versions if p.status == VehiclePlan.Status.APPROVED), None) or (versions[0] if versions else None)
    profile = CityProfile.objects.first()
    return render(request, "bus/panel.html", {
        "feeds": feeds, "feed": feed, "day": day, "plan": plan, "versions": versions,
        "gantt": plan_gantt(plan=plan) if plan else None,
        **_live_lists(request),
        "decided": HeadwayWarning.objects.restrict(request.user).filter(
            status__in=[HeadwayWarning.Status.ACCEPTED, HeadwayWarning.Status.DISMISSED]).select_related(
            "decided_by").order_by("-decided_at")[:10],
        "detours": Detour.objects.restrict(request.user).filter(status=Detour.Status.ACTIVE).select_related(
            "route", "closure", "from_stop", "to_stop").prefetch_related("skipped_stops"),
        "layers": _layers(agent_get("bus").map_layers),
        "bounds": city_extent(),
        "tile_url": settings.CITY_TILE_URL, "tile_attribution": settings.CITY_TILE_ATTRIBUTION,
        "attribution": (profile.attribution if profile and profile.attribution else "© OpenStreetMap contributors"),
        "runs": AgentRun.objects.restrict(request.user).filter(agent="bus")[:5],
        "max_upload_mb": int(conf("BUS_FEED_MAX_UPLOAD_BYTES")) // (1024 * 1024),
        "tomorrow": city_today() + dt.timedelta(days=1),
    })


@role_required(Role.DISPATCHER)
def plan_detail(request, pk: int):
    plan = get_object_or_404(VehiclePlan.objects.restrict(request.user).select_related("feed", "depot"), pk=pk)
    blocks, _keys = plan_blocks(plan=plan)
    from .domain.gtfs import seconds_format

    trips = {b.pk: list(b.trips.all()) for b in blocks}
    spans = {pk: (f"{seconds_format(ts[0].start_s)[:5]}–{seconds_format(ts[-1].end_s)[:5]}" if ts else "")
             for pk, ts in trips.items()}
    try:
        problems = plan_violations(plan=plan)
    except ValueError as exc:  # the feed no longer runs that day (re-imported since)
        problems = [str(exc)]
    return render(request, "bus/plan.html", {
        "plan": plan, "blocks": [(b, trips[b.pk], spans[b.pk]) for b in blocks], "gantt": plan_gantt(plan=plan),
        "problems": problems,
        "versions": VehiclePlan.objects.restrict(request.user).filter(feed=plan.feed, service_date=plan.service_date),
    })


@require_POST
@role_required(Role.DISPATCHER)
@run_start_limited
def plan_action(request, pk: int):
    """One edit or the approval from the plan page; a refused edit shows its reasons and changes nothing."""
    plan = get_object_or_404(VehiclePlan.objects.restrict(request.user, "change"), pk=pk)
    action = request.POST.get("action", "")
    back = reverse("bus:plan", args=[plan.pk])

    def number(name: str) -> int:
        number = whole_number(request.POST.get(name, "").strip().upper().lstrip("B") or "0")
        if number is None:
            raise ValidationError(_("'%(value)s' is not a block number") % {"value": request.POST.get(name)})
        return number

    try:
        if action == "approve":
            plan_approve(plan=plan, user=request.user)
            messages.success(request, _("Plan v%(version)s for %(day)s is approved.") % {
                "version": plan.version, "day": plan.service_date})
        elif action == "move":
            key = request.POST.get("trip_key", "").strip()
            plan_trip_move(plan=plan, trip_key=key, to_block=number("to_block"), user=request.user)
            messages.success(request, _("Trip %(trip)s moved to %(block)s.") % {
                "trip": key, "block": f"B{number('to_block'):03d}"})
        elif action in ("lock", "unlock"):
            plan_blocks_lock(plan=plan, sequences=[number("block")], locked=action == "lock", user=request.user)
            done = _("Block %(block)s locked.") if action == "lock" else _("Block %(block)s unlocked.")
            messages.success(request, done % {"block": f"B{number('block'):03d}"})
        elif action == "reoptimise":
            plan = plan_reoptimise(plan=plan, user=request.user)
            messages.success(request, _("Re-optimised: %(vehicles)s buses (lower bound %(lower_bound)s).") % {
                "vehicles": plan.vehicles, "lower_bound": plan.lower_bound})
        elif action == "assign":
            block = get_object_or_404(Block, plan=plan, sequence=number("block"))
            block_assign(block=block, vehicle=request.POST.get("vehicle"), driver=request.POST.get("driver"),
                         user=request.user)
            messages.success(request, _("Block %(block)s assigned.") % {"block": block.code})
        else:
            messages.error(request, _("Unknown action."))
    except ValidationError as exc:
        for m in exc.messages:
            messages.error(request, m)
    return redirect(back)


@require_POST
@role_required(Role.DISPATCHER)
@run_start_limited
def plan_request(request):
    """Ask the agent for a new plan version (queued like any run)."""
    feed = get_object_or_404(Feed.objects.restrict(request.user), pk=request.POST.get("feed") or 0)
    try:
        day = date_parse(request.POST.get("date", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("bus:panel")
    params = {"feed_id": feed.pk, "date": day.isoformat()}
    if layover := request.POST.get("layover_min", "").strip():
        params["layover_min"] = layover
    try:
        run, _created = agent_run_request(
            agent="bus", run_date=day, trigger=AgentRun.Trigger.REPLAN, params=params, user=request.user,
            reason=request.POST.get("reason", "").strip()[:300] or "re-plan from the console")
    except RunParamsError as exc:
        messages.error(request, _("The run was refused: %(why)s") % {"why": exc})
        return redirect("bus:panel")
    messages.success(request, _("Re-plan of %(feed)s for %(day)s queued (run #%(run)s).") % {
        "feed": feed.name, "day": day, "run": run.pk})
    return redirect(f"{reverse('bus:panel')}?feed={feed.pk}&date={day.isoformat()}")


@require_POST
@role_required(Role.DISPATCHER)
def feed_upload(request):
    """Upload a GTFS zip: checked (size, a real zip, GTFS validation) before anything is stored."""
    upload = request.FILES.get("file")
    limit = int(conf("BUS_FEED_MAX_UPLOAD_BYTES"))
    if upload is None:
        messages.error(request, _("Choose a GTFS zip to upload."))
    elif upload.size > limit:
        messages.error(request, _("The file is %(size)s bytes; the limit is %(limit)s.") % {
            "size": upload.size, "limit": limit})
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.zip"
            with open(path, "wb") as fh:
                fh.writelines(upload.chunks())
            try:
                result = feed_import(path=path, source_name=Path(upload.name).name, user=request.user)
            except FeedImportError as exc:
                messages.error(request, f"{exc.args[0]}")
                for p in exc.problems[:8]:
                    messages.error(request, p)
                return redirect("bus:panel")
        done = _("Feed #%(id)s %(name)s imported: %(counts)s") if result.created else \
            _("Feed #%(id)s %(name)s replaced: %(counts)s")
        messages.success(request, done % {"id": result.feed.pk, "name": result.feed.name,
                                          "counts": ", ".join(f"{v} {k}" for k, v in result.counts.items())})
        return redirect(f"{reverse('bus:panel')}?feed={result.feed.pk}")
    return redirect("bus:panel")


@require_POST
@role_required(Role.DISPATCHER)
def warning_action(request, pk: int, decision: str):
    warning = get_object_or_404(HeadwayWarning.objects.restrict(request.user, "change"), pk=pk)
    try:
        warning_decide(warning=warning, decision=decision, user=request.user, note=request.POST.get("note", ""))
        done = _("%(advice)s: accepted.") if decision == "accept" else _("%(advice)s: dismissed.")
        messages.success(request, done % {"advice": warning.advice_text})
    except ValidationError as exc:
        for m in exc.messages:
            messages.error(request, m)
    return redirect(reverse("bus:panel") + "#warnings")


@require_GET
@role_required(Role.DISPATCHER)
def plan_export_csv(request, pk: int):
    plan = get_object_or_404(VehiclePlan.objects.restrict(request.user), pk=pk)
    resp = HttpResponse(plan_csv(plan=plan), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="plan_{plan.service_date:%Y%m%d}_v{plan.version}.csv"'
    return resp


@require_GET
@role_required(Role.DISPATCHER)
def plan_export_gtfs(request, pk: int):
    plan = get_object_or_404(VehiclePlan.objects.restrict(request.user), pk=pk)
    resp = HttpResponse(plan_gtfs_zip(plan=plan), content_type="application/zip")
    resp["Content-Disposition"] = f'attachment; filename="plan_{plan.service_date:%Y%m%d}_v{plan.version}_gtfs.zip"'
    return resp
