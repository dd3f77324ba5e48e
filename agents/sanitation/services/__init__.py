"""The sanitation agent's writes and domain rules (keyword-only, typed, `<entity>_<action>`):

- `ingest`: fill readings from the API and CSV files (idempotent, bad rows reported).
- `fill`: the fill model refit that every run does.
- `plans`: plan a day (reads in `plan_selectors`, the planning in `domain.planner`) and store it as a version;
  edits, approval, re-plans.
- `crews`: crews' stop marks (the pickups the fill model learns from) and GPX.
- `agent_run`: the agent's run (fill refit, then the plan its trigger asks for); a truck's breakdown.
"""
from .crews import route_gpx, stop_mark
from .fill import FillUpdate, fill_models_update
from .ingest import IngestFileError, IngestResult, fill_readings_csv_ingest, fill_readings_ingest
from .plans import (
    PlanEditError,
    PlanOptions,
    Replan,
    plan_approve,
    plan_create,
    plan_reoptimise,
    plan_route_lock,
    plan_stop_move,
    plan_touches,
)

__all__ = [
    "FillUpdate",
    "IngestFileError",
    "IngestResult",
    "PlanEditError",
    "PlanOptions",
    "Replan",
    "fill_models_update",
    "fill_readings_csv_ingest",
    "fill_readings_ingest",
    "plan_approve",
    "plan_create",
    "plan_reoptimise",
    "plan_route_lock",
    "plan_stop_move",
    "plan_touches",
    "route_gpx",
    "stop_mark",
]
