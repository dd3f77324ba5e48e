"""The demo agent: proves the runtime end to end on the real city (reads the network, computes a matrix,
reports KPIs) without owning any domain data."""
from __future__ import annotations

from django.utils.translation import gettext_noop

from agents.runtime.base import Agent, AgentResult, Kpi, RunContext, RunParam, Schedule
from agents.runtime.registry import register
from city_ops.queues import Queue

from . import services


@register
class DemoAgent(Agent):
    name = "demo"
    label = gettext_noop("Demo")
    description = "Measures the road network and the travel times between the city's places."
    reads = ("city.RoadSegment", "city.Place", "city.RoadClosure")
    queue = Queue.DEFAULT
    events = ("demo.ping", "closure.opened", "closure.lifted")
    schedules = (Schedule(name="nightly network check", crontab={"minute": "30", "hour": "2"}),)
    run_params = (RunParam("sleep_s", float, min=0, max=600, help="seconds to sleep first (a slow run, for tests)"),
                  RunParam("allocate_mb", int, min=0, max=65536,
                           help="MiB to take at once (the worker memory-limit test)"))

    def run(self, ctx: RunContext) -> AgentResult:
        stats, matrix = services.demo_run(params=ctx.params, progress=ctx.progress)
        return AgentResult(
            kpis=[
                Kpi("road_km", round(stats["road_km"], 3), "km", label=gettext_noop("Drivable road")),
                Kpi("closed_km", round(stats["closed_km"], 3), "km", label=gettext_noop("Road closed")),
                Kpi("place_pairs", matrix["pairs"], "", label=gettext_noop("Place pairs routed")),
                Kpi("mean_travel_min", round(matrix["mean_min"], 2), "min", label=gettext_noop("Mean travel time")),
            ],
            summary=f"{stats['segments']} segments, {stats['road_km']:.1f} km of road, "
                    f"{matrix['pairs']} place pairs routed (mean {matrix['mean_min']:.1f} min)",
            details={"stats": stats, "matrix": matrix},
        )
