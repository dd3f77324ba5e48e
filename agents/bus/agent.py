"""The bus dispatch agent: plans tomorrow's vehicle blocks at night (fewest buses, then least empty
running), reviews the day's headway regularity in the evening, and reroutes buses around road closures."""
from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Avg, Count, Q
from django.urls import reverse
from django.utils.translation import gettext_noop

from agents.core.base import Agent, AgentResult, Asset, Kpi, RunContext, Schedule
from agents.core.registry import register
from city_ops.core.timeutil import date_parse, day_bounds
from city_ops.queues import Queue

log = logging.getLogger(__name__)


@register
class BusAgent(Agent):
    name = "bus"
    label = gettext_noop("Buses")
    description = ("Plans tomorrow's vehicle blocks with the fewest buses and least empty running, watches "
                   "live headways for bunching and gaps, and detours buses around road closures.")
    reads = ("bus.Feed", "bus.VehicleState", "city.RoadSegment", "city.RoadClosure", "city.Place")
    queue = Queue.PLANNING
    events = ("closure.opened", "closure.lifted")
    schedules = (
        Schedule(name="nightly vehicle plan for tomorrow", crontab={"minute": "15", "hour": "1"}, for_tomorrow=True),
        # "monitor": one review a day, not deduplicated against the plan run that shares its date.
        Schedule(name="evening headway review", crontab={"minute": "45", "hour": "23"}, trigger="monitor"),
    )
    console_url_name = "bus:panel"

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

    def event_params(self, *, event) -> dict | None:
        closure_id = (event.payload or {}).get("closure_id")
        if closure_id is None:
            return None
        return {"event_id": event.pk, "event_kind": event.kind, "closure_id": closure_id}

    def run(self, ctx: RunContext) -> AgentResult:
        kind = ctx.params.get("event_kind", "")
        if kind in ("closure.opened", "closure.lifted") or ctx.params.get("closure_id"):
            return self._closure(ctx, lifted=kind == "closure.lifted")
        if ctx.run.trigger == "monitor" or ctx.params.get("mode") == "headways":
            return self._headways(ctx)
        return self._plan(ctx)

    # --- the vehicle plan ------------------------------------------------------------------------------
    def _plan(self, ctx: RunContext) -> AgentResult:
        from .models import Feed
        from .selectors import feed_latest
        from .services.plans import NoServiceError, plan_create

        feed_id = ctx.params.get("feed_id")
        feed = Feed.objects.filter(pk=int(feed_id)).first() if feed_id else feed_latest()
        if feed is None:
            return AgentResult(summary="no GTFS feed is imported: nothing to plan (manage.py import_gtfs FEED.zip)")
        day = date_parse(ctx.params["date"]) if ctx.params.get("date") else ctx.run_date
        layover = ctx.params.get("layover_min")
        ctx.progress(0, 2, f"planning {feed.name} for {day}")
        try:
            plan = plan_create(feed=feed, service_date=day,
                               layover_s=float(layover) * 60.0 if layover not in (None, "") else None,
                               reason=ctx.run.reason or "nightly plan", user=ctx.run.created_by, run=ctx.run)
        except NoServiceError as exc:
            return AgentResult(kpis=[Kpi("trips", 0, "trips", label=gettext_noop("Trips planned"))], summary=str(exc),
                               details={"feed": feed.pk, "date": day.isoformat()})
        ctx.progress(2, 2, "plan stored")
        kpis = [
            Kpi("vehicles", plan.vehicles, "buses", baseline=plan.lower_bound,
                label=gettext_noop("Buses planned (baseline: fewest possible)")),
            Kpi("lower_bound", plan.lower_bound, "buses", label=gettext_noop("Fewest buses possible (peak trips at once)")),
            Kpi("deadhead_km", plan.deadhead_km, "km", label=gettext_noop("Empty running")),
            Kpi("deadhead_min", plan.deadhead_min, "min", label=gettext_noop("Empty running time")),
            Kpi("trips", plan.trips, "trips", label=gettext_noop("Trips planned")),
        ]
        if plan.feed_vehicles:
            kpis.append(Kpi("vehicles_vs_feed", plan.vehicles, "buses", baseline=plan.feed_vehicles,
                            label=gettext_noop("Buses planned (baseline: the feed's own blocks)")))
        against = f", feed blocks {plan.feed_vehicles}" if plan.feed_vehicles else ""
        return AgentResult(
            kpis=kpis,
            summary=(f"plan v{plan.version} for {day}: {plan.trips} trips on {plan.vehicles} buses (lower bound "
                     f"{plan.lower_bound}{against}), {plan.deadhead_km:.1f} km empty running ({plan.deadhead_source})"),
            details={"plan": plan.pk, "feed": feed.pk, "date": day.isoformat(), "version": plan.version,
                     "deadhead_source": plan.deadhead_source, "solve_s": plan.solve_s})

    # --- the day's headways ------------------------------------------------------------------------------
    def _headways(self, ctx: RunContext) -> AgentResult:
        from django.conf import settings
        from django.utils import timezone

        from .models import HeadwaySnapshot, HeadwayWarning, VehicleState
        from .services.realtime import history_prune, positions_evaluate

        # Evaluate what is on the road now, then review the whole day.
        stale = dt.timedelta(seconds=float(getattr(settings, "BUS_VEHICLE_STALE_S", 900)))
        live_feeds = set(VehicleState.objects.filter(observed_at__gte=timezone.now() - stale)
                         .values_list("feed_id", flat=True))
        from .models import Feed

        for feed_id in live_feeds:
            positions_evaluate(feed=Feed.objects.filter(pk=feed_id).first() if feed_id else None)
        start, end = day_bounds(ctx.run_date)
        snaps = HeadwaySnapshot.objects.filter(evaluated_at__gte=start, evaluated_at__lt=end, cv__isnull=False)
        agg = snaps.aggregate(cv=Avg("cv"), ewt=Avg("ewt_s"), n=Count("id"),
                              good=Count("id", filter=Q(grade__in=["A", "B", "C"])))
        warnings = HeadwayWarning.objects.filter(created_at__gte=start, created_at__lt=end)
        counts = {k: warnings.filter(kind=k).count() for k in HeadwayWarning.Kind.values}
        decided = warnings.filter(status__in=[HeadwayWarning.Status.ACCEPTED, HeadwayWarning.Status.DISMISSED]).count()
        pruned = history_prune()
        if not agg["n"]:
            return AgentResult(summary=f"no headways measured on {ctx.run_date} (no live positions)",
                               details={"pruned_positions": pruned})
        share = 100.0 * agg["good"] / agg["n"]
        kpis = [
            Kpi("headway_cv", round(agg["cv"], 3), "", baseline=0.39, label=gettext_noop("Headway cv, mean (grade C <= 0.39)")),
            Kpi("ewt_s", round(agg["ewt"] or 0.0, 1), "s", label=gettext_noop("Excess wait time, mean")),
            Kpi("grade_c_or_better", round(share, 1), "%", label=gettext_noop("Route checks at grade C or better")),
            Kpi("bunching_warnings", counts["bunching"], "", label=gettext_noop("Bunching warnings")),
            Kpi("gap_warnings", counts["gap"], "", label=gettext_noop("Gap warnings")),
        ]
        by_route = list(snaps.values("route_id", "direction_id").annotate(cv=Avg("cv"), ewt=Avg("ewt_s"), n=Count("id"))
                        .order_by("route_id", "direction_id"))
        return AgentResult(
            kpis=kpis,
            summary=(f"{ctx.run_date}: mean headway cv {agg['cv']:.2f}, EWT {agg['ewt'] or 0:.0f} s, "
                     f"{share:.0f}% of route checks at C or better; {counts['bunching']} bunching and "
                     f"{counts['gap']} gap warnings ({decided} decided)"),
            details={"routes": [{**r, "cv": round(r["cv"], 3), "ewt": round(r["ewt"] or 0, 1)} for r in by_route],
                     "pruned_positions": pruned})

    # --- closures --------------------------------------------------------------------------------------
    def _closure(self, ctx: RunContext, *, lifted: bool) -> AgentResult:
        from city_ops.city.models import RoadClosure

        from .services.detours import detours_lift, detours_open

        closure = RoadClosure.objects.filter(pk=ctx.params.get("closure_id")).first()
        if closure is None:
            return AgentResult(summary=f"closure #{ctx.params.get('closure_id')} no longer exists")
        detours = detours_lift(closure=closure) if lifted else detours_open(closure=closure)
        if lifted:
            return AgentResult(kpis=[Kpi("detours_ended", len(detours), "", label=gettext_noop("Bus detours ended"))],
                               summary=f"closure #{closure.pk} lifted: {len(detours)} bus detour(s) ended",
                               details={"closure": closure.pk, "detours": [d.pk for d in detours]})
        trips = sum(d.affected_trips.count() for d in detours)
        skipped = sum(d.skipped_stops.count() for d in detours)
        extra = sum((d.detour_m or 0) - (d.replaced_m or 0) for d in detours if d.geom is not None) / 1000.0
        return AgentResult(
            kpis=[Kpi("routes_detoured", len({d.route_id for d in detours}), "", label=gettext_noop("Bus routes detoured")),
                  Kpi("trips_affected", trips, "trips", label=gettext_noop("Trips on a detour")),
                  Kpi("stops_skipped", skipped, "", label=gettext_noop("Stops not served")),
                  Kpi("detour_extra_km", round(extra, 3), "km", label=gettext_noop("Extra distance per trip (sum)"))],
            summary=(f"closure #{closure.pk} ({closure.reason}): {len(detours)} detour(s) on "
                     f"{len({d.route_id for d in detours})} route(s), {trips} trips, {skipped} stops skipped"),
            details={"closure": closure.pk, "detours": [d.pk for d in detours]})

    # --- hooks -----------------------------------------------------------------------------------------
    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        from fixtures.bus_demo import bus_demo_load

        return bus_demo_load(scale=scale, synthetic=synthetic)

    def assets_in_area(self, *, area) -> list[Asset]:
        from .selectors import stops_in_area

        return [Asset(agent=self.name, kind="bus_stop", id=f"{s.feed_id}:{s.stop_id}", label=s.name or s.stop_id,
                      lon=s.geom.x, lat=s.geom.y) for s in stops_in_area(area=area)]
