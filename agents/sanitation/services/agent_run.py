"""The agent's run as one service call: refit the fill model, then plan (the nightly plan, a re-optimise
on request, or re-plans after a road closure or a truck breakdown). `agent.py` maps the outcome to KPIs."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.utils import timezone

from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_today

from .. import selectors
from ..conf import conf
from ..models import CollectionPlan, Truck
from .fill import FillUpdate, fill_models_update
from .plans import PlanOptions, Replan, plan_create, plan_reoptimise, plan_touches

CLOSURE_EVENTS = ("closure.opened", "closure.lifted")
BREAKDOWN = "vehicle.breakdown"


@dataclass
class CollectionRun:
    """What a run did: the fill model's update, the overflows of the last day, the plans it stored (the
    last is the one its KPIs report) and the current plans it left alone, each with the reason."""

    update: FillUpdate
    overflows: int
    plans: list[CollectionPlan] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def mae_pct(self) -> float | None:
        return None if self.update.mae is None else round(self.update.mae * 100, 2)


def truck_from_payload(payload: dict) -> Truck | None:
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


@transaction.atomic
def truck_breakdown_record(*, truck: Truck, reason: str, actor=None) -> Truck:
    """Take a broken truck out of service (audited); plans made from now on leave it out."""
    truck.in_service = False
    truck.out_of_service_reason = reason[:200]
    truck.save(update_fields=["in_service", "out_of_service_reason"])
    audit_record(action="sanitation.truck_broke_down", obj=truck, actor=actor,
                 changes={"in_service": False, "reason": truck.out_of_service_reason})
    return truck


def _plan_options(params: dict) -> PlanOptions:
    """Solver settings: a run's own `time_limit`, else the deployment's SANITATION_PLAN_TIME_LIMIT_S; the
    fixed schedule routed beside the nightly plan unless the run says `baseline: 0` (re-plans keep their
    parent's)."""
    return PlanOptions(
        time_limit=float(params.get("time_limit", conf("SANITATION_PLAN_TIME_LIMIT_S"))),
        seed=int(params.get("seed", 1)),
        max_iterations=int(params["max_iterations"]) if params.get("max_iterations") else None,
        baseline=str(params.get("baseline", "1")).lower() not in ("0", "false", "no"),
    )


def _replan_closure(*, run, params: dict, options: PlanOptions, extra: dict) -> tuple[list[CollectionPlan], list[str]]:
    """Re-plan every current plan from today on whose routes drive a segment that just closed (or that
    was planned around a segment that just reopened)."""
    payload = params.get("payload") or {}
    segments = {int(s) for s in payload.get("segment_ids") or []}
    kind = params["event_kind"]
    label = f"{kind} #{params.get('event_id', '?')}" + (f": {payload['reason']}" if payload.get("reason") else "")
    plans, skipped = [], []
    for plan in selectors.plans_current(since=city_today()):
        if kind == "closure.opened":
            affected = plan_touches(plan=plan, segment_ids=segments)
        else:
            affected = bool(segments & set(plan.closed_segments or []))
        if not affected:
            skipped.append(f"{plan} does not use the road(s) of {kind} #{params.get('event_id', '?')}")
            continue
        replan = Replan(parent=plan, reuse_candidates=True, now=timezone.now(), positions=_positions(payload))
        plans.append(plan_create(date=plan.date, reason=f"re-plan after {label}"[:300], run=run, replan=replan,
                                 extra_kpis=extra, options=replace(options, baseline=False)))
    return plans, skipped


def _replan_breakdown(*, run, params: dict, options: PlanOptions, extra: dict) -> tuple[list[CollectionPlan], list[str]]:
    """Take the broken truck out of service and re-plan the current plans that use it (on the road, from
    where the other trucks are, when the day has begun: the broken truck's remaining bins go to them)."""
    payload = params.get("payload") or {}
    truck = truck_from_payload(payload)
    if truck is None:
        return [], ["the breakdown names no truck of ours"]
    truck_breakdown_record(truck=truck, reason=str(payload.get("reason") or "breakdown"), actor=run.created_by)
    plans, skipped = [], []
    for plan in selectors.plans_current(since=city_today()):
        if not plan.routes.filter(truck=truck).exists():
            skipped.append(f"{plan} does not use {truck.code}")
            continue
        replan = Replan(parent=plan, reuse_candidates=True, exclude_truck_ids=frozenset({truck.pk}),
                        now=timezone.now(), positions=_positions(payload))
        plans.append(plan_create(
            date=plan.date, reason=f"re-plan after breakdown of {truck.code} (event #{params.get('event_id', '?')})",
            run=run, replan=replan, extra_kpis=extra, options=replace(options, baseline=False)))
    return plans, skipped


def collection_run(*, run, progress: Callable[[int, int, str], None]) -> CollectionRun:
    """The agent's run: learn fill rates, then plan what the run's trigger asks for."""
    params, run_date = run.params or {}, run.run_date
    options = _plan_options(params)
    now = timezone.now()
    progress(0, 3, "learning fill rates")
    out = CollectionRun(update=fill_models_update(now=now, forecast_for=run_date),
                        overflows=selectors.overflows_count(since=now - dt.timedelta(days=1), until=now))
    extra = {"forecast_mae": out.mae_pct, "overflows": out.overflows}
    kind = params.get("event_kind", "")
    progress(1, 3, "planning")
    if params.get("action") == "reoptimise":
        plan = CollectionPlan.objects.get(pk=int(params["plan_id"]))
        out.plans = [plan_reoptimise(plan=plan, user=run.created_by, run=run, options=options)]
    elif kind in CLOSURE_EVENTS:
        out.plans, out.skipped = _replan_closure(run=run, params=params, options=options, extra=extra)
    elif kind == BREAKDOWN:
        out.plans, out.skipped = _replan_breakdown(run=run, params=params, options=options, extra=extra)
    else:
        reason = run.reason or ("nightly plan" if run.trigger == "schedule" else "planned on request")
        latest = selectors.plan_latest(date=run_date)
        out.plans = [plan_create(date=run_date, reason=reason, run=run,
                                 replan=Replan(parent=latest) if latest is not None else None,
                                 states=out.update.states, extra_kpis=extra, options=options)]
    progress(3, 3, "done")
    return out
