"""The sanitation agent's copilot tools (declared in agent.py; `sanitation.plan` is the runtime's run-request
tool): approve a day's plan through the approval service, and the bins at risk of overflowing."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from city_ops.copilot.places import district_resolve
from city_ops.copilot.tools import ToolFailed, ToolResult, date_arg
from city_ops.core.timeutil import city_today

from . import selectors
from .models import CollectionPlan
from .services.plans import PlanEditError, plan_approve


def _plan(*, user, args: dict) -> CollectionPlan:
    """The plan named by id, or the version in force for the date; ToolFailed when there is none."""
    if args.get("plan_id"):
        plan = CollectionPlan.objects.restrict(user, "change").filter(pk=args["plan_id"]).first()
        missing = _("There is no collection plan #%(id)d.") % {"id": args["plan_id"]}
    else:
        day = date_arg(args)
        found = selectors.plan_latest(date=day)
        plan = CollectionPlan.objects.restrict(user, "change").filter(pk=found.pk).first() if found else None
        missing = _("There is no collection plan for %(date)s.") % {"date": day.isoformat()}
    if plan is None:
        raise ToolFailed(missing)
    return plan


def _plan_link(plan: CollectionPlan) -> dict:
    return {"label": _("Collection plan %(date)s v%(version)d") % {"date": plan.date, "version": plan.version},
            "url": f"{reverse('sanitation:panel')}?date={plan.date.isoformat()}&plan={plan.pk}"}


def plan_approve_describe(*, user, args: dict) -> str:
    plan = _plan(user=user, args=args)
    return _("Approve the collection plan for %(date)s, version %(version)d (%(status)s): crews then see its "
             "routes, and the version approved before is superseded.") % {
        "date": plan.date.isoformat(), "version": plan.version, "status": plan.status}


def plan_approve_run(*, user, args: dict) -> ToolResult:
    plan = _plan(user=user, args=args)
    try:
        plan = plan_approve(plan=plan, user=user)
    except PlanEditError as exc:
        raise ToolFailed("; ".join(exc.messages)) from None
    return ToolResult(data={"plan_id": plan.pk, "date": plan.date.isoformat(), "version": plan.version,
                            "status": plan.status},
                      summary=_("Approved the collection plan for %(date)s (version %(version)d).") % {
                          "date": plan.date.isoformat(), "version": plan.version},
                      links=[_plan_link(plan)])


def bins_at_risk(*, user, args: dict) -> ToolResult:
    day = date_arg(args, default=city_today())
    area = district_resolve(args["district"]).geom if args.get("district") else None
    models = list(selectors.bins_at_risk(date=day, area=area)[:50])
    rows = [{"bin": m.bin.code, "street": m.bin.street, "waste_type": m.bin.waste_type,
             "forecast_fill_pct": round(100 * m.forecast_fill), "last_level_pct":
             round(100 * m.last_level) if m.last_level is not None else None} for m in models]
    summary = (_("%(n)d bins may overflow by the end of %(date)s: %(list)s.") % {
        "n": len(rows), "date": day.isoformat(),
        "list": ", ".join(f"{r['bin']} {r['forecast_fill_pct']}%" for r in rows[:5])}
        if rows else _("No bin is forecast to overflow by the end of %(date)s.") % {"date": day.isoformat()})
    return ToolResult(data={"date": day.isoformat(), "threshold_pct": round(100 * selectors.AT_RISK_FILL),
                            "bins": rows}, summary=summary,
                      links=[{"label": _("Fill forecasts"), "url": reverse("sanitation:fill")}])
