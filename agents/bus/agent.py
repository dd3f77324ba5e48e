"""The bus dispatch agent: plans tomorrow's vehicle blocks at night (fewest buses, then least empty
running), reviews the day's headway regularity in the evening, and reroutes buses around road closures."""
from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils.translation import gettext_noop

from agents.runtime.base import Agent, AgentResult, Asset, Kpi, RunContext, RunParam, Schedule
from agents.runtime.registry import register
from city_ops.copilot.tools import Tool, args_schema, run_request_tool
from city_ops.queues import Queue

from .conf import DEFAULTS
from .copilot import bus_warnings
from .domain.realtime import headway_grade
from .services.agent_run import ClosureRun, HeadwayReview, PlanRun, bus_run
from .services.replay import DayReplay


@register
class BusAgent(Agent):
    name = "bus"
    label = gettext_noop("Buses")
    description = ("Plans tomorrow's vehicle blocks with the fewest buses and least empty running, watches "
                   "live headways for bunching and gaps, and detours buses around road closures.")
    reads = ("agent_bus.Feed", "agent_bus.VehicleState", "city.RoadSegment", "city.RoadClosure", "city.Place")
    queue = Queue.PLANNING
    events = ("closure.opened", "closure.lifted")
    schedules = (
        Schedule(name="nightly vehicle plan for tomorrow", crontab={"minute": "15", "hour": "1"}, for_tomorrow=True),
        # "monitor": one review a day, not deduplicated against the plan run that shares its date.
        Schedule(name="evening headway review", crontab={"minute": "45", "hour": "23"}, trigger="monitor"),
    )
    console_url_name = "bus:panel"
    setting_names = tuple(DEFAULTS)
    run_params = (
        RunParam("feed_id", int, min=1, max=2**31 - 1, help="the GTFS feed to plan (default: the newest)"),
        RunParam("date", dt.date, help="the service day to plan (default: the run's date)"),
        RunParam("layover_min", float, min=0, max=120, help="minimum layover between trips, minutes"),
        RunParam("mode", str, choices=("headways",), help="review the day's headways instead of planning"),
    )
    tools = (
        run_request_tool(agent="bus", verb="plan", run_params=run_params, params=("date", "layover_min"),
                         description="Re-plan the vehicle blocks of a service day (a planning run; the plan is a "
                                     "draft to review). Default: tomorrow."),
        Tool(name="bus.warnings", handler=bus_warnings,
             description="Open headway warnings (bunching, gaps) with the advice for each; optionally for one route.",
             schema=args_schema({"route": {"type": "string", "minLength": 1, "maxLength": 100,
                                           "description": "the route's short name (e.g. 55) or GTFS route_id"}})),
    )

    @property
    def map_layers(self) -> tuple[dict, ...]:
        return (
            {"id": "bus-routes", "label": gettext_noop("Bus routes"), "url": reverse("bus-api:layer-routes"), "on": False,
             "color": "#0b7a75", "kind": "line"},
            {"id": "bus-stops", "label": gettext_noop("Bus stops"), "url": reverse("bus-api:layer-stops"), "on": False,
             "color": "#0b7a75", "kind": "point"},
            {"id": "bus-vehicles", "label": gettext_noop("Buses (live)"), "url": reverse("bus-api:layer-vehicles"), "on": False,
             "color": "#1f6feb", "kind": "point", "refresh": 30},
            {"id": "bus-detours", "label": gettext_noop("Bus detours"), "url": reverse("bus-api:layer-detours"), "on": True,
             "color": "#e8710a", "kind": "line", "refresh": 60},
        )

    def approved_runs(self, *, date_from, date_to):
        from .selectors import approved_plan_runs

        return approved_plan_runs(date_from=date_from, date_to=date_to)

    def statement_section(self, *, date_from, date_to):
        from .selectors import bus_statement

        return bus_statement(date_from=date_from, date_to=date_to)

    def event_params(self, *, event) -> dict | None:
        closure_id = (event.payload or {}).get("closure_id")
        if closure_id is None:
            return None
        return {"event_id": event.pk, "event_kind": event.kind, "closure_id": closure_id}

    def run(self, ctx: RunContext) -> AgentResult:
        out = bus_run(run=ctx.run, progress=ctx.progress)
        if isinstance(out, ClosureRun):
            return closure_result(out)
        if isinstance(out, HeadwayReview):
            return headways_result(out)
        return plan_result(out)

    # --- hooks -----------------------------------------------------------------------------------------
    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        from fixtures.bus_demo import bus_demo_load

        return bus_demo_load(scale=scale, synthetic=synthetic)

    def assets_in_area(self, *, area) -> list[Asset]:
        from .selectors import stops_in_area

        return [Asset(agent=self.name, kind="bus_stop", id=f"{s.feed_id}:{s.stop_id}", label=s.name or s.stop_id,
                      lon=s.geom.x, lat=s.geom.y) for s in stops_in_area(area=area)]


def plan_result(out: PlanRun) -> AgentResult:
    """Buses planned against the fewest possible (and the feed's own blocks), and the empty running."""
    if out.feed is None:
        return AgentResult(summary="no GTFS feed is imported: nothing to plan (manage.py import_gtfs FEED.zip)")
    if out.plan is None:
        return AgentResult(kpis=[Kpi("trips", 0, "trips", label=gettext_noop("Trips planned"))], summary=out.refused,
                           details={"feed": out.feed.pk, "date": out.day.isoformat()})
    plan = out.plan
    kpis = [
        Kpi("vehicles", plan.vehicles, "buses", baseline=plan.baseline_vehicles,
            label=gettext_noop("Buses planned (baseline: the feed's blocks, else first-fit)")),
        Kpi("lower_bound", plan.lower_bound, "buses", label=gettext_noop("Fewest buses possible (peak trips at once)")),
        Kpi("deadhead_km", plan.deadhead_km, "km", baseline=plan.baseline_deadhead_km,
            label=gettext_noop("Empty running")),
        Kpi("deadhead_min", plan.deadhead_min, "min", label=gettext_noop("Empty running time")),
        Kpi("trips", plan.trips, "trips", label=gettext_noop("Trips planned")),
    ]
    against = f", {plan.baseline_rule} {plan.baseline_vehicles}" if plan.baseline_rule else ""
    return AgentResult(
        kpis=kpis,
        summary=(f"plan v{plan.version} for {out.day}: {plan.trips} trips on {plan.vehicles} buses (lower bound "
                 f"{plan.lower_bound}{against}), {plan.deadhead_km:.1f} km empty running ({plan.deadhead_source})"),
        details={"plan": plan.pk, "feed": out.feed.pk, "date": out.day.isoformat(), "version": plan.version,
                 "deadhead_source": plan.deadhead_source, "solve_s": plan.solve_s})


def headways_result(out: HeadwayReview) -> AgentResult:
    """The day's headway regularity (cv, excess wait, share at grade C or better) and its warnings, and the
    replay of its positions: excess wait and cv with the holding advice applied, against without."""
    day, replay = out.day_stats, replay_kpis(out.replay)
    details = {"replay": [r.as_dict() for r in out.replay.routes], "pruned_positions": out.pruned}
    if not day["n"] and not replay:
        return AgentResult(summary=f"no headways measured on {out.day} (no live positions)", details=details)
    kpis, summary = [], []
    if day["n"]:
        kpis, line = review_kpis(out.day, day)
        summary.append(line)
        details["routes"] = [{**r, "cv": round(r["cv"], 3), "ewt": round(r["ewt"] or 0, 1)} for r in day["by_route"]]
    if replay:
        kpis += replay
        summary.append(replay_summary(out.replay))
    return AgentResult(kpis=kpis, summary="; ".join(summary), details=details)


def review_kpis(when, day: dict) -> tuple[list[Kpi], str]:
    """The day's headway checks as KPIs, and their summary line."""
    share = 100.0 * day["good"] / day["n"]
    counts = day["warnings"]
    kpis = [
        Kpi("headway_cv", round(day["cv"], 3), "", baseline=0.39, label=gettext_noop("Headway cv, mean (grade C <= 0.39)")),
        Kpi("ewt_s", round(day["ewt"] or 0.0, 1), "s", label=gettext_noop("Excess wait time, mean")),
        Kpi("grade_c_or_better", round(share, 1), "%", label=gettext_noop("Route checks at grade C or better")),
        Kpi("bunching_warnings", counts["bunching"], "", label=gettext_noop("Bunching warnings")),
        Kpi("gap_warnings", counts["gap"], "", label=gettext_noop("Gap warnings")),
    ]
    return kpis, (f"{when}: mean headway cv {day['cv']:.2f}, EWT {day['ewt'] or 0:.0f} s, {share:.0f}% of route "
                  f"checks at C or better; {counts['bunching']} bunching and {counts['gap']} gap warnings "
                  f"({day['decided']} decided)")


def replay_kpis(replay: DayReplay) -> list[Kpi]:
    """Excess wait (minutes) and headway cv of the day's replay with the holding advice applied, each with
    the same replay without it as its baseline; none for a day no route of which could be replayed."""
    with_ewt, without_ewt = replay.mean(True, "ewt_s"), replay.mean(False, "ewt_s")
    if with_ewt is None or without_ewt is None:
        return []
    return [
        Kpi("replay_ewt_min", round(with_ewt / 60.0, 3), "min", baseline=round(without_ewt / 60.0, 3),
            label=gettext_noop("Excess wait with the holding advice applied (replay; baseline: not applied)")),
        Kpi("replay_cv", round(replay.mean(True, "cv"), 3), "", baseline=round(replay.mean(False, "cv"), 3),
            label=gettext_noop("Headway cv with the holding advice applied (replay; baseline: not applied)")),
    ]


def replay_summary(replay: DayReplay) -> str:
    cv_with, cv_without = replay.mean(True, "cv"), replay.mean(False, "cv")
    return (f"replay of {len(replay.replayed)} route(s)' positions: EWT {replay.mean(True, 'ewt_s'):.0f} s "
            f"(grade {headway_grade(cv_with)}) with the holding advice applied, {replay.mean(False, 'ewt_s'):.0f} s "
            f"(grade {headway_grade(cv_without)}) without")


def closure_result(out: ClosureRun) -> AgentResult:
    """Routes detoured, trips affected, stops skipped and the extra distance (or detours ended)."""
    closure, detours = out.closure, out.detours
    if closure is None:
        return AgentResult(summary=f"closure #{out.closure_id} no longer exists")
    if out.lifted:
        return AgentResult(kpis=[Kpi("detours_ended", len(detours), "", label=gettext_noop("Bus detours ended"))],
                           summary=f"closure #{closure.pk} lifted: {len(detours)} bus detour(s) ended",
                           details={"closure": closure.pk, "detours": [d.pk for d in detours]})
    trips = sum(d.affected_trips.count() for d in detours)
    skipped = sum(d.skipped_stops.count() for d in detours)
    extra = sum((d.detour_m or 0) - (d.replaced_m or 0) for d in detours if d.geom is not None) / 1000.0
    routes = len({d.route_id for d in detours})
    return AgentResult(
        kpis=[Kpi("routes_detoured", routes, "", label=gettext_noop("Bus routes detoured")),
              Kpi("trips_affected", trips, "trips", label=gettext_noop("Trips on a detour")),
              Kpi("stops_skipped", skipped, "", label=gettext_noop("Stops not served")),
              Kpi("detour_extra_km", round(extra, 3), "km", label=gettext_noop("Extra distance per trip (sum)"))],
        summary=(f"closure #{closure.pk} ({closure.reason}): {len(detours)} detour(s) on "
                 f"{routes} route(s), {trips} trips, {skipped} stops skipped"),
        details={"closure": closure.pk, "detours": [d.pk for d in detours]})
