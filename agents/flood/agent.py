"""The flood-control agent: evaluates the sensors every minute (beat) and after every ingest, raises and
clears alerts, closes flooded roads through the city's closure service and tells people."""
from __future__ import annotations

from statistics import mean

from django.urls import reverse_lazy
from django.utils.translation import gettext_noop

from agents.runtime.base import Agent, AgentResult, Asset, Kpi, RunContext, Schedule
from agents.runtime.registry import register
from city_ops.copilot.tools import DISTRICT, EVERYONE, Tool, args_schema
from city_ops.queues import Queue

from .conf import DEFAULTS
from .copilot import SENSOR, ZONE, flood_alerts, flood_status


@register
class FloodAgent(Agent):
    name = "flood"
    label = gettext_noop("Flood")
    description = ("Watches rain gauges, river and sea-level gauges and waterlogging sensors; raises rainstorm, "
                   "river-flood and waterlogging alerts with hysteresis; closes flooded roads.")
    reads = ("agent_flood.Reading", "agent_flood.FloodZone", "city.RoadSegment")
    queue = Queue.REALTIME
    events = ()
    schedules = (
        Schedule(name="evaluate sensors", every_s=60, trigger="monitor"),
        # The readings' monthly partitions made ahead, and the retention (services/storage.py).
        Schedule(name="readings partitions", crontab={"minute": "40", "hour": "3"},
                 task="flood.readings_partitions_maintain"),
    )
    daily = False
    console_url_name = "flood:panel"
    setting_names = tuple(DEFAULTS)
    tools = (
        Tool(name="flood.alerts", handler=flood_alerts, roles=EVERYONE,
             description="Open flood alerts (rainstorm, river flood, waterlogging) with their levels, most severe "
                         "first, and zones on standby under a CAP warning; optionally in one zone or district.",
             schema=args_schema({"zone": ZONE, "district": DISTRICT})),
        Tool(name="flood.status", handler=flood_status, roles=EVERYONE,
             description="The state of one flood sensor (its latest readings, faults) or of a flood zone (its level "
                         "and open alert).",
             schema=args_schema({"sensor": SENSOR, "zone": ZONE}, one_of=("sensor", "zone"))),
    )
    map_layers = (
        {"id": "flood-zones", "label": gettext_noop("Flood zones"), "url": reverse_lazy("flood-api:zones"), "on": True,
         "kind": "area", "color": "#1f6feb", "refresh": 60},
        {"id": "flood-sensors", "label": gettext_noop("Flood sensors"), "url": reverse_lazy("flood-api:sensors"), "on": True,
         "kind": "point", "color": "#2e7d32", "refresh": 60},
    )

    @property
    def map_sources(self):
        """Its layers as vector tiles (the models are imported when asked, not at registration)."""
        from .mapsources import sensor_sources

        return sensor_sources()

    def run(self, ctx: RunContext) -> AgentResult:
        from .services.evaluation import evaluation_run

        out = evaluation_run(run=ctx.run)
        if out.nothing_new:
            return AgentResult(kpis=[Kpi("readings_evaluated", 0, "", label=gettext_noop("Readings evaluated"))],
                               summary="no new readings since the last evaluation",
                               details={"evaluated_at": out.evaluated_at.isoformat() if out.evaluated_at else None})
        counts = out.counts
        kpis = [
            Kpi("alerts_raised", counts.get("raised", 0), "", label=gettext_noop("Alerts raised")),
            Kpi("alerts_escalated", counts.get("escalated", 0), "", label=gettext_noop("Alerts escalated")),
            Kpi("alerts_cleared", counts.get("cleared", 0), "", label=gettext_noop("Alerts cleared")),
            Kpi("closures", counts.get("closure_requested", 0), "", label=gettext_noop("Road closures")),
            Kpi("closures_lifted", counts.get("closure_lifted", 0), "", label=gettext_noop("Closures lifted")),
            Kpi("sensor_faults", counts.get("sensor_fault", 0), "", label=gettext_noop("Sensor faults")),
            Kpi("readings_evaluated", out.readings_new, "", label=gettext_noop("Readings evaluated")),
            Kpi("qc_flagged", out.qc_flagged, "", label=gettext_noop("Readings flagged by QC")),
            Kpi("evaluation_ms", round(out.seconds.get("total", 0.0) * 1000, 1), "ms", label=gettext_noop("Evaluation time")),
        ]
        if out.lead_times_min:
            kpis.append(Kpi("lead_time_min", round(mean(out.lead_times_min), 1), "min",
                            label=gettext_noop("Lead time before warning crossing")))
        changes = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no alert changes"
        return AgentResult(
            kpis=kpis,
            summary=f"{out.readings_new} new readings of {out.sensors} sensor configs: {changes}",
            details={"evaluated_at": out.evaluated_at.isoformat() if out.evaluated_at else None,
                     "since": out.since.isoformat() if out.since else None, "counts": counts,
                     "readings_loaded": out.readings_loaded, "carried": out.carried, "skipped": out.skipped,
                     "seconds": {k: round(v, 4) for k, v in out.seconds.items()},
                     "lead_times_min": out.lead_times_min},
        )

    def statement_section(self, *, date_from, date_to):
        from .selectors import flood_statement

        return flood_statement(date_from=date_from, date_to=date_to)

    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        """Zones on real low shore streets, sensors, thresholds and a calm day of readings. The synthetic
        grid city has none of those streets: it gets `scale` x 0.8 generated zones of 10 sensors each."""
        from fixtures.flood_demo import demo_load, synthetic_demo_load

        days = 1 if history_days is None else history_days
        if synthetic:
            return synthetic_demo_load(scale=scale, history_days=days)
        return demo_load(history_days=days)

    def assets_in_area(self, *, area) -> list[Asset]:
        """The agent's sensors inside `area`."""
        from .models import Sensor

        return [Asset(agent=self.name, kind=f"flood_sensor_{s.kind}", id=s.code, label=s.name or s.code,
                      lon=s.geom.x, lat=s.geom.y)
                for s in Sensor.objects.filter(geom__intersects=area).order_by("code")]
