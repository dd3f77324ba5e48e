"""The road inspection agent: photos from crews and cameras go through the ONNX detector (on the `vision`
queue, task by task as they arrive); its daily run merges and ranks the defects, orders repairs above the
threshold, applies the retention rules and reports what the inspection achieved."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_noop

from agents.runtime.base import Agent, AgentResult, Asset, Kpi, RunContext, RunParam, Schedule
from agents.runtime.registry import register
from city_ops.copilot.tools import DISTRICT, EVERYONE, STREET, Tool, args_schema
from city_ops.queues import Queue

from .conf import DEFAULTS
from .copilot import CLASS_PATTERN, CLASSES, SEVERITY_LEVELS, roads_defects


@register
class RoadsAgent(Agent):
    name = "roads"
    label = gettext_noop("Road inspection")
    description = ("Finds road damage in crew and camera photos (ONNX detector), puts each defect on its road "
                   "segment, merges repeat sightings, ranks them and orders the repairs.")
    reads = ("city.RoadSegment", "workorders.WorkOrder", "agent_roads.InspectionPhoto")
    queue = Queue.DEFAULT  # the daily run is bookkeeping; detection itself runs on the vision queue
    events = ()
    schedules = (Schedule(name="daily inspection ranking", crontab={"minute": "15", "hour": "5"}),)
    console_url_name = "roads:panel"
    setting_names = tuple(DEFAULTS)
    crew_links = (("roads:upload", gettext_noop("Upload photos")),)
    run_params = (RunParam("threshold", float, min=0, max=100,
                           help="priority score (0-100) from which a defect gets a repair order"),)
    tools = (
        Tool(name="roads.defects", handler=roads_defects, roles=EVERYONE,
             description="Open road defects the user may see, most urgent first; filter by street, district, "
                         "least severity and class.",
             schema=args_schema({
                 "street": STREET, "district": DISTRICT,
                 "severity": {"type": "string", "enum": list(SEVERITY_LEVELS), "description": "at least this"},
                 "class": {"type": "string", "pattern": CLASS_PATTERN, "description": " or ".join(CLASSES)}})),
    )

    @property
    def map_layers(self) -> tuple[dict, ...]:
        """Defects (coloured by severity) and segment condition for the console map."""
        return (
            {"id": "roads-defects", "label": gettext_noop("Road defects by severity"), "url": reverse("roads:defects_geojson"),
             "on": True, "kind": "point", "color": "#e8710a", "refresh": 60},
            {"id": "roads-condition", "label": gettext_noop("Road condition index"), "url": reverse("roads:conditions_geojson"),
             "on": False, "kind": "line", "color": "#c9a300"},
        )

    @property
    def map_sources(self):
        """Its layers as vector tiles (the models are imported when asked, not at registration)."""
        from .mapsources import defect_sources

        return defect_sources()

    def run(self, ctx: RunContext) -> AgentResult:
        from .services.agent_run import daily_run

        out = daily_run(run=ctx.run, progress=ctx.progress)
        k = out["kpis"]
        return AgentResult(
            kpis=[
                Kpi("photos_processed", k["photos_processed"], "", label=gettext_noop("Photos processed")),
                Kpi("defects_found", k["defects_found"], "", label=gettext_noop("Defects found (new)")),
                Kpi("sightings_merged", k["sightings_merged"], "", label=gettext_noop("Sightings merged into known defects")),
                Kpi("orders_created", k["orders_created"], "", label=gettext_noop("Repair orders created")),
                Kpi("open_defects", k["open_defects"], "", label=gettext_noop("Open defects")),
                Kpi("km_inspected", k["km_inspected"], "km", label=gettext_noop("Road inspected (km of segments)")),
                # The SLA is the baseline: every repair by its due time, in the hours the SLA allows.
                Kpi("repairs_in_sla", k["repairs_in_sla"], "", baseline=k["repairs_done"],
                    label=gettext_noop("Repairs done within their SLA")),
                Kpi("repairs_done", k["repairs_done"], "", label=gettext_noop("Repairs done")),
                Kpi("repair_hours", k["repair_hours"], "h", baseline=k["sla_hours"],
                    label=gettext_noop("Hours from detection to repair (sum)")),
            ]
            # No real photo ran through the model in the window (only synthetic demo ones, or none): no time to
            # report, rather than a "0 ms" that reads like a measurement.
            + ([Kpi("mean_inference_ms", k["mean_inference_ms"], "ms", label=gettext_noop("Mean inference time per image"))]
               if k["mean_inference_ms"] is not None else []),
            summary=(f"{k['photos_processed']} photos processed, {k['defects_found']} new defects, "
                     f"{k['sightings_merged']} sightings merged, {k['orders_created']} orders created"),
            details=out,
        )

    def statement_section(self, *, date_from, date_to):
        from .selectors import roads_statement

        return roads_statement(date_from=date_from, date_to=date_to)

    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        """A handful of generated road photos (marked synthetic) on real segments, their defects and orders.
        A synthetic (benchmark) city gets `scale` x 40 photo and defect rows instead: no images, no model,
        no privacy pass (seconds per photo), marked synthetic."""
        from fixtures.roads_demo import roads_demo_load, roads_synthetic_rows_load

        return roads_synthetic_rows_load(scale=scale) if synthetic else roads_demo_load()

    def assets_in_area(self, *, area) -> list[Asset]:
        """Open defects and fixed cameras inside ``area``."""
        from .models import Defect, FixedCamera

        found = [Asset(agent=self.name, kind="defect", id=str(d.pk), label=f"{d.class_name} ({d.severity_label})",
                       lon=d.location.x, lat=d.location.y)
                 for d in Defect.objects.active().filter(location__within=area)[:500]]
        found += [Asset(agent=self.name, kind="camera", id=str(c.pk), label=c.name, lon=c.location.x,
                        lat=c.location.y) for c in FixedCamera.objects.filter(location__within=area)]
        return found

