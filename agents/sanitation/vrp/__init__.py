"""Routing core of the sanitation agent: read instances, solve them with PyVRP, check plans independently.

Public entry points (keyword-only):

- `instance_read(path=..., fmt=None)` / `instance_parse(text=..., fmt=None)` -> `Instance`
- `instance_solve(instance=..., time_limit=..., seed=1)` -> `SolveResult` (`.as_dict()` for JSON)
- `plan_check(instance=..., routes=...)` -> list of `Violation`; `plan_cost`, `plan_schedule`
- `cli.main(argv)` for ``python -m agents.sanitation.vrp.cli``

The modelling of disposal sites, the unload-before-home rule, the daily cap and the lunch break on top of
PyVRP is explained in `model.py`.
"""

from agents.sanitation.vrp.check import (
    RULES,
    PlanRoute,
    RouteSchedule,
    Violation,
    VisitTime,
    plan_check,
    plan_cost,
    plan_schedule,
)
from agents.sanitation.vrp.instance import (
    Client,
    Depot,
    DisposalSite,
    Instance,
    InstanceError,
    LunchBreak,
    NodeId,
    VehicleType,
)
from agents.sanitation.vrp.readers import instance_format_detect, instance_parse, instance_read
from agents.sanitation.vrp.solve import SolveResult, instance_solve

__all__ = [
    "RULES",
    "Client",
    "Depot",
    "DisposalSite",
    "Instance",
    "InstanceError",
    "LunchBreak",
    "NodeId",
    "PlanRoute",
    "RouteSchedule",
    "SolveResult",
    "VehicleType",
    "Violation",
    "VisitTime",
    "instance_format_detect",
    "instance_parse",
    "instance_read",
    "instance_solve",
    "plan_check",
    "plan_cost",
    "plan_schedule",
]
