"""The sanitation agent: every night it learns how fast each bin fills, decides which bins tomorrow's plan
must and may visit, routes the trucks on the road network (PyVRP, multi-trip with unloads, lunch and
daily caps) and stores the plan as a draft with its KPIs against the fixed weekly schedule. It re-plans
when a road closes or reopens under a plan, or a truck breaks down (a new version with the reason)."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_noop

from agents.runtime.base import Agent, AgentResult, Asset, Kpi, RunContext, RunParam, Schedule
from agents.runtime.registry import register
from city_ops.copilot.tools import DATE_SCHEMA, DISTRICT, Tool, args_schema, run_request_tool
from city_ops.queues import Queue

from . import selectors
from .conf import DEFAULTS
from .copilot import bins_at_risk, plan_approve_describe, plan_approve_run
from .domain.baseline import per_bin
from .services.agent_run import BREAKDOWN, CLOSURE_EVENTS, CollectionRun, collection_run, truck_from_payload


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
    setting_names = tuple(DEFAULTS)
    schedules = (
        Schedule(name="nightly collection plan", crontab={"minute": "0", "hour": "21"}, for_tomorrow=True),
    )
    console_url_name = "sanitation:panel"
    crew_links = (("sanitation:crew", gettext_noop("My route")),)
    run_params = (
        RunParam("time_limit", float, min=0.1, max=3600, help="solver seconds per plan"),
        RunParam("seed", int, min=0, max=2**31 - 1, help="the solver's random seed"),
        RunParam("max_iterations", int, min=1, max=10_000_000, help="stop the solver after this many iterations"),
        RunParam("baseline", bool, help="also cost the fixed weekly schedule for comparison (default yes)"),
    )
    tools = (
        run_request_tool(agent="sanitation", verb="plan", run_params=run_params,
                         description="Plan the collection routes of a day (a planning run; the plan is a draft to "
                                     "review and approve). Default: tomorrow."),
        Tool(name="sanitation.plan_approve", writes=True, handler=plan_approve_run, describe=plan_approve_describe,
             description="Approve a collection plan (the version in force for a date, or a plan by id): crews "
                         "then see its routes.",
             schema=args_schema({"date": DATE_SCHEMA, "plan_id": {"type": "integer", "minimum": 1}},
                                one_of=("date", "plan_id"))),
        Tool(name="sanitation.bins_at_risk", handler=bins_at_risk,
             description="Bins forecast to be at least 80 % full by the end of a day (default today), fullest "
                         "first; optionally in one district.",
             schema=args_schema({"date": DATE_SCHEMA, "district": DISTRICT})),
    )

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
        if event.kind == BREAKDOWN and truck_from_payload(event.payload or {}) is None:
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

    def approved_runs(self, *, date_from, date_to):
        return selectors.approved_plan_runs(date_from=date_from, date_to=date_to)

    def statement_section(self, *, date_from, date_to):
        return selectors.sanitation_statement(date_from=date_from, date_to=date_to)

    # --- the run -------------------------------------------------------------------------------------------
    @property
    def map_sources(self):
        """Its layers as vector tiles (the models are imported when asked, not at registration)."""
        from .mapsources import bin_sources

        return bin_sources()

    def run(self, ctx: RunContext) -> AgentResult:
        return collection_result(collection_run(run=ctx.run, progress=ctx.progress))


def collection_result(out: CollectionRun) -> AgentResult:
    """The run's KPIs: the newest plan's distance, hours and bins against the fixed weekly schedule, and the
    fill forecast's error."""
    common = [
        Kpi("forecast_mae", out.mae_pct if out.mae_pct is not None else 0.0, "%",
            label=gettext_noop("Fill forecast error (MAE)")),
        Kpi("overflows", out.overflows, "", label=gettext_noop("Bins seen overflowing (24 h)")),
    ]
    update = out.update
    details = {
        "fill": {"bins": update.bins, "fallback_bins": update.fallback, "mae": update.mae, "mae_errors": update.mae_n},
        "plans": [{"id": p.pk, "date": str(p.date), "version": p.version, "feasible": p.feasible, "reason": p.reason}
                  for p in out.plans],
        "skipped": out.skipped,
    }
    if not out.plans:
        summary = "; ".join(out.skipped) or "no plan to re-plan"
        return AgentResult(kpis=common, summary=summary[:300], details=details)
    plan = out.plans[-1]
    k = plan.kpis
    kpis = [
        Kpi("km", k.get("km", 0.0), "km", baseline=k.get("baseline_km"), label=gettext_noop("Distance driven")),
        # The plan and the fixed schedule empty different bins: per bin emptied they compare like with like.
        *([Kpi("km_per_bin", per_bin(k.get("km"), k.get("bins_visited")), "km/bin",
               baseline=per_bin(k.get("baseline_km"), k.get("baseline_bins")),
               label=gettext_noop("Distance per bin emptied"))] if k.get("bins_visited") else []),
        Kpi("hours", k.get("hours", 0.0), "h", baseline=k.get("baseline_hours"), label=gettext_noop("Truck-hours")),
        Kpi("bins_visited", k.get("bins_visited", 0), "", baseline=k.get("baseline_bins"),
            label=gettext_noop("Bins emptied")),
        *common,
        Kpi("unserved_mandatory", k.get("unserved_mandatory", 0), "", baseline=k.get("baseline_at_risk_left"),
            label=gettext_noop("Bins at risk left out")),
        Kpi("trucks_used", k.get("trucks_used", 0), "", baseline=k.get("baseline_trucks"),
            label=gettext_noop("Trucks used")),
    ]
    versions = ", ".join(f"{p.date} v{p.version}" for p in out.plans)
    base = f" (fixed schedule {k['baseline_km']:.1f} km)" if k.get("baseline_km") is not None else ""
    summary = (
        f"plan {versions}: {k.get('bins_visited', 0)} bins, {k.get('km', 0):.1f} km{base}, "
        f"{k.get('trucks_used', 0)} trucks, {'feasible' if plan.feasible else 'CHECKER REJECTS IT'}; "
        f"forecast MAE {out.mae_pct if out.mae_pct is not None else '-'} %"
    )
    return AgentResult(kpis=kpis, summary=summary[:300], details=details)
