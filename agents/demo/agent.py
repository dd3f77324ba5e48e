"""The demo agent: proves the runtime end to end on the real city (reads the network, computes a matrix,
reports KPIs) without owning any domain data."""
from __future__ import annotations

from django.utils.translation import gettext_noop

from agents.core.base import Agent, AgentResult, Kpi, RunContext, RunParam, Schedule
from agents.core.registry import register
from city_ops.queues import Queue

from . import selectors, services


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
        # `sleep_s` makes the run slow on purpose: the runtime's dead-worker test kills a worker mid-run.
        sleep_s = float(ctx.params.get("sleep_s", 0) or 0)
        if sleep_s:
            import time

            steps = max(1, int(sleep_s * 4))
            for i in range(steps):
                ctx.progress(i, steps, "sleeping (test)")
                time.sleep(sleep_s / steps)
        # `allocate_mb` takes that much memory at once, on purpose: the worker memory-limit test.
        if allocate_mb := int(ctx.params.get("allocate_mb", 0) or 0):
            ballast = bytearray(allocate_mb * 2**20)
            del ballast
        ctx.progress(0, 2, "measuring the network")
        stats = selectors.network_stats()
        ctx.progress(1, 2, "travel-time matrix between places")
        matrix = services.place_matrix_compute(points=selectors.place_points())
        ctx.progress(2, 2, "done")
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
