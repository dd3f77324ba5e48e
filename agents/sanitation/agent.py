"""The sanitation agent: every night it learns how fast each bin fills, decides which bins tomorrow's plan
must and may visit, routes the trucks on the road network (PyVRP, multi-trip with unloads, lunch and
daily caps) and stores the plan as a draft with its KPIs against the fixed weekly schedule. It re-plans
when a road closes or reopens under a plan, or a truck breaks down (a new version with the reason)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from agents.core.base import Agent, AgentResult, Asset, Kpi, RunContext, Schedule
from agents.core.registry import register
from city_ops.core.timeutil import city_today
from city_ops.queues import Queue

from . import selectors, services
from .models import CollectionPlan, Truck
from .services.plans import DEFAULT_TIME_LIMIT

CLOSURE_EVENTS = ("closure.opened", "closure.lifted")
BREAKDOWN = "vehicle.breakdown"


def _truck_from_payload(payload: dict) -> Truck | None:
    """The truck a breakdown event names (`truck_id`, or its code as `truck` or `vehicle`); None when the
    event is about another agent's vehicle (a bus)."""
    if payload.get("truck_id") is not None:
        return Truck.objects.filter(pk=payload["truck_id"]).first()
    code = payload.get("truck") or payload.get("vehicle")
    return Truck.objects.filter(code=str(code)).first() if code else None


def _positions(payload: dict) -> dict[str, tuple[float, float]]:
    """Trucks' reported positions in an event (`positions`: {code: [lon, lat]}); malformed ones ignored."""
    out = {}
    for code, point in (payload.get("positions") or {}).items():
        try:
            lon, lat = (float(x) for x in point)
        except (TypeError, ValueError):
            continue
        out[str(code)] = (lon, lat)
    return out


@register
class SanitationAgent(Agent):
    name = "sanitation"
    label = gettext_noop("Sanitation")
    description = (
        "Learns how fast each bin fills, chooses the bins that must and may be emptied, and routes "
        "the trucks on the road network with unloads, lunch and daily caps."
    )
    reads = (
        "city.RoadSegment",
        "city.RoadClosure",
        "agent_sanitation.Bin",
        "agent_sanitation.FillReading",
        "agent_sanitation.Pickup",
        "agent_sanitation.Truck",
    )
    queue = Queue.PLANNING
    events = (*CLOSURE_EVENTS, BREAKDOWN)
    schedules = (
        Schedule(name="nightly collection plan", crontab={"minute": "0", "hour": "21"}, for_tomorrow=True),
    )
    console_url_name = "sanitation:panel"
    crew_links = (("sanitation:crew", gettext_noop("My route")),)

    @property
    def map_layers(self) -> tuple[dict, ...]:
        """The bins (coloured by forecast fill) and the newest plan's routes, for the console map."""
        try:
            return (
                {
                    "id": "sanitation-bins",
                    "label": gettext_noop("Bins by forecast fill"),
                    "url": reverse("sanitation:bins_geojson"),
                    "on": False,
                    "kind": "point",
                    "color": "#2b8a3e",
                },
                {
                    "id": "sanitation-routes",
                    "label": gettext_noop("Collection routes"),
                    "url": reverse("sanitation:routes_geojson"),
                    "on": False,
                    "kind": "line",
                    "color": "#1f6feb",
                },
            )
        except NoReverseMatch:  # the panel is not mounted in this deployment
            return ()

    # --- hooks ---------------------------------------------------------------------------------------------
    def event_params(self, *, event) -> dict | None:
        if event.kind == BREAKDOWN and _truck_from_payload(event.payload or {}) is None:
            return None  # someone else's vehicle
        return {"event_id": event.pk, "event_kind": event.kind, "payload": event.payload or {}}

    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        from fixtures.sanitation_demo import sanitation_demo_load

        days = {} if history_days is None else {"history_days": history_days}
        return sanitation_demo_load(scale=scale, synthetic=synthetic, **days).counts

    def assets_in_area(self, *, area) -> list[Asset]:
        return [
            Asset(
                agent=self.name,
                kind="bin",
                id=b.code,
                label=f"{b.capacity_l} L {b.get_waste_type_display()} bin, {b.street}".rstrip(", "),
                lon=b.geom.x,
                lat=b.geom.y,
            )
            for b in selectors.bins_in_area(area=area)
        ]

    # --- the run -------------------------------------------------------------------------------------------
    def run(self, ctx: RunContext) -> AgentResult:
        params = ctx.params or {}
        # Solver seconds per plan: a run's own `time_limit`, else the deployment's setting.
        default_limit = getattr(settings, "SANITATION_PLAN_TIME_LIMIT_S", DEFAULT_TIME_LIMIT)
        solve = {
            "time_limit": float(params.get("time_limit", default_limit)),
            "seed": int(params.get("seed", 1)),
            "max_iterations": int(params["max_iterations"]) if params.get("max_iterations") else None,
        }
        now = timezone.now()
        ctx.progress(0, 3, "learning fill rates")
        update = services.fill_models_update(now=now, forecast_for=ctx.run_date)
        mae_pct = None if update.mae is None else round(update.mae * 100, 2)
        overflows = selectors.overflows_count(since=now - dt.timedelta(days=1), until=now)
        common = [
            Kpi(
                "forecast_mae",
                mae_pct if mae_pct is not None else 0.0,
                "%",
                label=gettext_noop("Fill forecast error (MAE)"),
            ),
            Kpi("overflows", overflows, "", label=gettext_noop("Bins seen overflowing (24 h)")),
        ]
        extra = {"forecast_mae": mae_pct, "overflows": overflows}
        kind = params.get("event_kind", "")
        ctx.progress(1, 3, "planning")
        if params.get("action") == "reoptimise":
            plan = CollectionPlan.objects.get(pk=int(params["plan_id"]))
            plans = [services.plan_reoptimise(plan=plan, user=ctx.run.created_by, run=ctx.run, **solve)]
            skipped = []
        elif kind in CLOSURE_EVENTS:
            plans, skipped = self._replan_closure(ctx, params, solve, extra)
        elif kind == BREAKDOWN:
            plans, skipped = self._replan_breakdown(ctx, params, solve, extra)
        else:
            parent = selectors.plan_latest(date=ctx.run_date)
            reason = ctx.run.reason or (
                "nightly plan" if ctx.run.trigger == "schedule" else "planned on request"
            )
            baseline = str(params.get("baseline", "1")).lower() not in ("0", "false", "no")
            plans = [
                services.plan_create(
                    date=ctx.run_date,
                    reason=reason,
                    run=ctx.run,
                    parent=parent,
                    states=update.states,
                    extra_kpis=extra,
                    baseline=baseline,
                    **solve,
                )
            ]
            skipped = []
        ctx.progress(3, 3, "done")
        details = {
            "fill": {
                "bins": update.bins,
                "fallback_bins": update.fallback,
                "mae": update.mae,
                "mae_errors": update.mae_n,
            },
            "plans": [
                {
                    "id": p.pk,
                    "date": str(p.date),
                    "version": p.version,
                    "feasible": p.feasible,
                    "reason": p.reason,
                }
                for p in plans
            ],
            "skipped": skipped,
        }
        if not plans:
            summary = "; ".join(skipped) or "no plan to re-plan"
            return AgentResult(kpis=common, summary=summary[:300], details=details)
        plan = plans[-1]
        k = plan.kpis
        kpis = [
            Kpi("km", k.get("km", 0.0), "km", baseline=k.get("baseline_km"), label=gettext_noop("Distance driven")),
            Kpi("hours", k.get("hours", 0.0), "h", baseline=k.get("baseline_hours"), label=gettext_noop("Truck-hours")),
            Kpi(
                "bins_visited",
                k.get("bins_visited", 0),
                "",
                baseline=k.get("baseline_bins"),
                label=gettext_noop("Bins emptied"),
            ),
            *common,
            Kpi("unserved_mandatory", k.get("unserved_mandatory", 0), "", label=gettext_noop("Bins at risk left out")),
            Kpi("trucks_used", k.get("trucks_used", 0), "", label=gettext_noop("Trucks used")),
        ]
        versions = ", ".join(f"{p.date} v{p.version}" for p in plans)
        base = f" (fixed schedule {k['baseline_km']:.1f} km)" if k.get("baseline_km") is not None else ""
        summary = (
            f"plan {versions}: {k.get('bins_visited', 0)} bins, {k.get('km', 0):.1f} km{base}, "
            f"{k.get('trucks_used', 0)} trucks, {'feasible' if plan.feasible else 'CHECKER REJECTS IT'}; "
            f"forecast MAE {mae_pct if mae_pct is not None else '-'} %"
        )
        return AgentResult(kpis=kpis, summary=summary[:300], details=details)

    def _replan_closure(self, ctx, params, solve, extra) -> tuple[list[CollectionPlan], list[str]]:
        """Re-plan every current plan from today on whose routes drive a segment that just closed (or that
        was planned around a segment that just reopened)."""
        payload = params.get("payload") or {}
        segments = {int(s) for s in payload.get("segment_ids") or []}
        kind = params["event_kind"]
        label = f"{kind} #{params.get('event_id', '?')}" + (
            f": {payload['reason']}" if payload.get("reason") else ""
        )
        plans, skipped = [], []
        for plan in selectors.plans_current(since=city_today()):
            if kind == "closure.opened":
                affected = services.plan_touches(plan=plan, segment_ids=segments)
            else:
                affected = bool(segments & set(plan.closed_segments or []))
            if not affected:
                skipped.append(f"{plan} does not use the road(s) of {kind} #{params.get('event_id', '?')}")
                continue
            plans.append(
                services.plan_create(
                    date=plan.date,
                    reason=f"re-plan after {label}"[:300],
                    run=ctx.run,
                    parent=plan,
                    reuse_candidates=True,
                    now=timezone.now(),
                    positions=_positions(payload),
                    baseline=False,
                    extra_kpis=extra,
                    **solve,
                )
            )
        return plans, skipped

    def _replan_breakdown(self, ctx, params, solve, extra) -> tuple[list[CollectionPlan], list[str]]:
        """Take the broken truck out of service and re-plan the current plans that use it (on the road, from
        where the other trucks are, when the day has begun: the broken truck's remaining bins go to them)."""
        payload = params.get("payload") or {}
        truck = _truck_from_payload(payload)
        if truck is None:
            return [], ["the breakdown names no truck of ours"]
        Truck.objects.filter(pk=truck.pk).update(
            in_service=False, out_of_service_reason=str(payload.get("reason") or "breakdown")[:200]
        )
        plans, skipped = [], []
        for plan in selectors.plans_current(since=city_today()):
            if not plan.routes.filter(truck=truck).exists():
                skipped.append(f"{plan} does not use {truck.code}")
                continue
            plans.append(
                services.plan_create(
                    date=plan.date,
                    reason=f"re-plan after breakdown of {truck.code} (event #{params.get('event_id', '?')})",
                    run=ctx.run,
                    parent=plan,
                    reuse_candidates=True,
                    exclude_truck_ids={truck.pk},
                    now=timezone.now(),
                    positions=_positions(payload),
                    baseline=False,
                    extra_kpis=extra,
                    **solve,
                )
            )
        return plans, skipped
