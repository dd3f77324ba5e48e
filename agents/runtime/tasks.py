"""Thin Celery tasks of the runtime: ids in, a service call, explicit names. Queues are chosen at enqueue time
(each agent names its queue); retries only for transient errors, with capped exponential backoff."""
from __future__ import annotations

import datetime as dt

from celery import shared_task

from city_ops.core.timeutil import city_today

from .errors import TRANSIENT_ERRORS


@shared_task(
    name="agents.run_agent", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=5,
)
def run_agent(run_id: int) -> str:
    from .services import agent_run_execute

    run = agent_run_execute(run_id=run_id)
    return run.status if run else "skipped"


@shared_task(name="agents.dispatch_event", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=2, retry_backoff_max=60, max_retries=5)
def dispatch_event(event_id: int) -> int:
    from .services import event_dispatch

    return len(event_dispatch(event_id=event_id))


@shared_task(name="agents.reap_stuck_runs", acks_late=True)
def reap_stuck_runs() -> int:
    from .services import agent_run_reap

    return len(agent_run_reap())


@shared_task(name="agents.schedule_run", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=5, retry_backoff_max=120, max_retries=5)
def schedule_run(agent: str, trigger: str = "schedule", for_tomorrow: bool = False) -> int:
    """Beat's entry point: create (once) the scheduled run of `agent` for today or tomorrow, city time."""
    from .services import agent_run_create

    day = city_today() + (dt.timedelta(days=1) if for_tomorrow else dt.timedelta(0))
    run, _ = agent_run_create(agent=agent, run_date=day, trigger=trigger, reason="beat")
    return run.pk
