"""The sanitation agent's one task of its own: a district's part of a city plan (`services.city_plans`), one
task per district on the planning queue, ids in. Nightly plans, re-plans after closures and breakdowns, and
a dispatcher's "re-optimise" run as agent runs through the runtime's `agents.run_agent` task (agent.py)."""
from __future__ import annotations

from celery import shared_task

from agents.runtime.errors import TRANSIENT_ERRORS


@shared_task(name="sanitation.plan_district", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=5)
def plan_district(part_id: int) -> str:
    from .services.city_plans import district_plan_execute

    part = district_plan_execute(part_id=part_id)
    return part.status if part else "skipped"
